//! Writing the files the tool owns (CODEOWNERS, state, cache and lock files) without following
//! a symbolic link someone placed there: a link could point the write at any file the
//! process may change. Each write goes to a new temporary file (created exclusively, so not
//! through a link either) and is renamed over the target, which replaces a link, never follows it.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// An error unless `path` is missing or is not a symbolic link.
pub fn refuse_symlink(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a symbolic link; refusing to write through it", path.display()),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` through a fresh temporary file beside it; refuses a `path` that
/// is a symbolic link.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    refuse_symlink(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    // A temporary file left by a crashed run (or planted as a link) is removed, not followed.
    match fs::remove_file(&temporary) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new().write(true).create_new(true).open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.txt");
        fs::write(&target, "precious").unwrap();
        let link = dir.path().join("CODEOWNERS");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write_file(&link, b"owned").is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        let plain = dir.path().join("state.json");
        write_file(&plain, b"one").unwrap();
        write_file(&plain, b"two").unwrap();
        assert_eq!(fs::read_to_string(&plain).unwrap(), "two");
    }
}
