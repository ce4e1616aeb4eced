//! Atomic file replacement: readers (and a resumed run) see either the old file or the new
//! one, never a torn write, even when the process is killed or the node loses power mid-write.

use crate::error::{Error, Result};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temp files of concurrent writes from one process (threads writing siblings).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temp file in the same directory (so the rename never
/// crosses a filesystem), named `.tmp-…` so it is recognisable as debris, is written, fsynced
/// and renamed over the target. Parent directories are created. On failure the temp file is
/// removed and [`Error::Io`] names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_replacing(path, bytes, true)
}

/// Files written by [`write_atomic_deferred`] whose data and rename are not yet known to be
/// on disk (shared by every run of the process; syncing another run's file is harmless).
static UNSYNCED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// [`write_atomic`] without waiting for the disk: the file appears whole under its name
/// (the rename is atomic, so a killed process leaves the old file or the new one), but only
/// [`sync_deferred`] makes it survive a power loss. For the many files of frequent
/// snapshots, where an fsync each (milliseconds on a busy or networked disk) would dominate;
/// a run syncs them before every checkpoint and at its end.
pub fn write_atomic_deferred(path: &Path, bytes: &[u8]) -> Result<()> {
    write_replacing(path, bytes, false)?;
    if let Ok(mut pending) = UNSYNCED.lock() {
        pending.push(path.to_path_buf());
    }
    Ok(())
}

/// Makes every file [`write_atomic_deferred`] wrote durable: each file's data, then each
/// directory once (its renames).
pub fn sync_deferred() -> Result<()> {
    let pending = match UNSYNCED.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return Ok(()),
    };
    let mut dirs: Vec<&Path> = Vec::new();
    for path in &pending {
        // A file removed since (a run directory replaced with --force) has nothing to sync.
        if let Ok(f) = fs::File::open(path) {
            f.sync_all().map_err(|e| Error::io(path, e))?;
        }
        if let Some(d) = path.parent()
            && !dirs.contains(&d)
        {
            dirs.push(d);
        }
    }
    for d in dirs {
        sync_dir(d);
    }
    Ok(())
}

fn write_replacing(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let name = path.file_name().ok_or_else(|| {
        Error::Output(format!(
            "cannot write {}: the path does not name a file",
            path.display()
        ))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        // Without this the rename can reach the disk before the data, and a crash leaves an
        // empty or truncated file under the final name.
        if sync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // Best effort: the original error is what the user needs to see.
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    if sync {
        sync_dir(dir);
    }
    Ok(())
}

/// Makes the rename itself durable. Best effort: some filesystems refuse to fsync a directory,
/// and the file is already complete under its final name at this point.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("file.bin");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(entries(&dir.path().join("a/b")), vec!["file.bin"]);
    }

    #[test]
    fn failure_names_the_path_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // The target is an existing directory: the rename fails.
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"x").unwrap();
        let err = write_atomic(&target, b"data").unwrap_err();
        match &err {
            Error::Io { path, .. } => assert_eq!(path, &target),
            other => panic!("expected Error::Io, got {other:?}"),
        }
        assert_eq!(entries(dir.path()), vec!["occupied"]);
    }

    #[test]
    fn path_without_file_name_is_an_error() {
        assert!(matches!(
            write_atomic(Path::new("/"), b"x"),
            Err(Error::Output(_))
        ));
    }

    #[test]
    fn deferred_writes_are_whole_and_synced_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.npy");
        write_atomic_deferred(&path, b"first").unwrap();
        write_atomic_deferred(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(entries(&dir.path().join("sub")), vec!["a.npy"]);
        assert!(UNSYNCED.lock().unwrap().contains(&path));
        // A pending file removed in the meantime is skipped, not an error.
        write_atomic_deferred(&dir.path().join("gone"), b"x").unwrap();
        fs::remove_file(dir.path().join("gone")).unwrap();
        sync_deferred().unwrap();
        assert!(!UNSYNCED.lock().unwrap().contains(&path));
    }
}
