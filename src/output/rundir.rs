//! The run directory guard: `--out` never silently mixes two runs, and `--force` never
//! deletes anything that is not a previous fokker run.

use crate::error::{Error, Result};
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// The manifest key that marks a directory as written by fokker. Checked, not just the file
/// name: `manifest.json` alone is common (web apps, browser extensions), and `--force` must
/// not empty those.
const MANIFEST: &str = "manifest.json";
const MARKER_KEY: &str = "fokker_version";

/// Makes `path` ready to receive a run:
/// - missing: created, with its parents;
/// - an empty directory: used as is;
/// - a non-empty directory: refused, unless `force` and it is a previous fokker run (it holds a
///   `manifest.json` that fokker wrote), in which case its contents are removed;
/// - anything else (a file): refused.
pub fn prepare_run_dir(path: &Path, force: bool) -> Result<()> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return fs::create_dir_all(path).map_err(|e| Error::io(path, e));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    if !meta.is_dir() {
        return Err(Error::Output(format!(
            "output directory {} exists and is not a directory; pick another --out",
            path.display()
        )));
    }
    let entries = fs::read_dir(path)
        .and_then(|it| it.collect::<std::io::Result<Vec<_>>>())
        .map_err(|e| Error::io(path, e))?;
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(Error::Output(format!(
            "output directory {} is not empty; pass --force to replace the run in it, or pick another --out",
            path.display()
        )));
    }
    if let Some(why) = not_a_run_dir(path) {
        return Err(Error::Output(format!(
            "refusing to empty {} with --force: {why}; --force only replaces a previous fokker \
             run directory. Pick another --out",
            path.display()
        )));
    }
    // The manifest goes last, so that an interrupted clean-up still leaves a directory that a
    // second `--force` recognises.
    let (manifest, rest): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|e| e.file_name() == MANIFEST);
    for entry in rest.into_iter().chain(manifest) {
        let p = entry.path();
        // file_type does not follow symlinks: a link to a directory is removed, not its target.
        let is_dir = entry.file_type().map_err(|e| Error::io(&p, e))?.is_dir();
        let removed = if is_dir {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        removed.map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// Why `dir` is not a fokker run directory, or None when it is one.
fn not_a_run_dir(dir: &Path) -> Option<String> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Some(format!("it has no {MANIFEST}"));
        }
        Err(e) => return Some(format!("cannot read its {MANIFEST} ({e})")),
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) if map.contains_key(MARKER_KEY) => None,
        _ => Some(format!("its {MANIFEST} was not written by fokker")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_manifest() -> &'static str {
        r#"{"status": "complete", "fokker_version": "0.1.0"}"#
    }

    fn message(e: Error) -> String {
        match e {
            Error::Output(m) => m,
            other => panic!("expected Error::Output, got {other:?}"),
        }
    }

    #[test]
    fn missing_is_created_and_empty_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b/run");
        prepare_run_dir(&out, false).unwrap();
        assert!(out.is_dir());
        prepare_run_dir(&out, false).unwrap();
        prepare_run_dir(&out, true).unwrap();
    }

    #[test]
    fn non_empty_is_refused_without_force() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(MANIFEST), run_manifest()).unwrap();
        let m = message(prepare_run_dir(tmp.path(), false).unwrap_err());
        assert!(m.contains(&tmp.path().display().to_string()), "{m}");
        assert!(m.contains("--force") && m.contains("--out"), "{m}");
        assert!(tmp.path().join(MANIFEST).exists());
    }

    #[test]
    fn force_clears_a_previous_run() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        fs::create_dir_all(out.join("density/0_1")).unwrap();
        fs::write(out.join(MANIFEST), run_manifest()).unwrap();
        fs::write(out.join("density/00000000.npy"), b"x").unwrap();
        fs::write(out.join(".tmp-metrics.csv-1-0"), b"x").unwrap();
        // A link into a directory outside the run: the link goes, the target stays.
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
        prepare_run_dir(&out, true).unwrap();
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn force_refuses_a_foreign_directory() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("thesis.tex"), b"x").unwrap();
        let m = message(prepare_run_dir(tmp.path(), true).unwrap_err());
        assert!(m.contains("no manifest.json"), "{m}");
        // A manifest.json that fokker did not write (a web app's) does not count.
        fs::write(
            tmp.path().join(MANIFEST),
            r#"{"name": "app", "version": "1"}"#,
        )
        .unwrap();
        let m = message(prepare_run_dir(tmp.path(), true).unwrap_err());
        assert!(m.contains("not written by fokker"), "{m}");
        fs::write(tmp.path().join(MANIFEST), b"not json").unwrap();
        assert!(prepare_run_dir(tmp.path(), true).is_err());
        assert!(tmp.path().join("thesis.tex").exists());
    }

    #[test]
    fn a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("file");
        fs::write(&f, b"x").unwrap();
        let m = message(prepare_run_dir(&f, true).unwrap_err());
        assert!(m.contains("not a directory"), "{m}");
    }
}
