//! Writing results to stdout. A closed pipe (`cpg-infra groups expand | head`) is the reader's
//! choice, not an error, so it ends output quietly instead of panicking like `print!` does.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout as is.
pub fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        _ => {}
    }
}

/// Writes `text` and a newline.
pub fn emit_line(text: &str) {
    emit(&format!("{text}\n"));
}
