//! What a datastore directory must be before it is trusted: private (directories 0700, files
//! 0600: the store holds keys in clear) and, once initialized, marked so outside sled, so that a
//! damaged or replaced sled store is refused instead of being taken for a first boot.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The first-boot marker, written once the datastores are seeded.
pub const MARKER: &str = "initialized";

/// Deepest directory nesting under the datastore directory that [`restrict`] walks.
const MAX_DEPTH: usize = 8;

/// Makes files the process creates from now on private (umask 077).
#[allow(unsafe_code)]
pub fn private_umask() {
    // SAFETY: umask only sets the process's file-creation mask; it takes no pointers.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (0700) when missing and takes group and other access away from it and from
/// everything under it. Returns how many entries had wider permissions.
pub fn restrict(dir: &Path) -> io::Result<usize> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut fixed = 0;
    tighten(dir, 0, &mut fixed)?;
    Ok(fixed)
}

fn tighten(path: &Path, depth: usize, fixed: &mut usize) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        let private = if meta.is_dir() { 0o700 } else { 0o600 };
        fs::set_permissions(path, fs::Permissions::from_mode(private))?;
        *fixed += 1;
    }
    if meta.is_dir() && depth < MAX_DEPTH {
        for entry in fs::read_dir(path)? {
            tighten(&entry?.path(), depth + 1, fixed)?;
        }
    }
    Ok(())
}

/// The marker's path in `dir`.
pub fn marker(dir: &Path) -> PathBuf {
    dir.join(MARKER)
}

/// Writes `data` to `path` as a file only the owner can read (0600), durably.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Writes the marker durably (the file, then the directory entry).
pub fn write_marker(dir: &Path) -> io::Result<()> {
    write_private(
        &marker(dir),
        b"mldhb datastore initialized; do not remove while the store is in use\n",
    )?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_permissions_are_tightened_and_counted() {
        let dir = std::env::temp_dir().join(format!("mldhb-guard-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(restrict(&dir).unwrap(), 0);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        fs::create_dir(dir.join("db")).unwrap();
        fs::set_permissions(dir.join("db"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("db/conf"), b"x").unwrap();
        fs::set_permissions(dir.join("db/conf"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(restrict(&dir).unwrap(), 3);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("db")), 0o700);
        assert_eq!(mode(&dir.join("db/conf")), 0o600);
        assert_eq!(restrict(&dir).unwrap(), 0);
        write_marker(&dir).unwrap();
        assert_eq!(mode(&marker(&dir)), 0o600);
        let _ = fs::remove_dir_all(&dir);
    }
}
