//! Commands the tool prints for people to run (a renewal, the apply after a preview), whose
//! arguments come from the definitions or the command line.

/// `text` as one word of a POSIX shell command: as it is when that is safe, else in single
/// quotes (an empty word too).
pub fn word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_that_need_quoting_are_quoted() {
        assert_eq!(word("prod"), "prod");
        assert_eq!(word("org/stack-1"), "org/stack-1");
        assert_eq!(word("amara.okafor@example.org"), "amara.okafor@example.org");
        assert_eq!(word("my dir"), "'my dir'");
        assert_eq!(word("it's"), "'it'\\''s'");
        assert_eq!(word(""), "''");
    }
}
