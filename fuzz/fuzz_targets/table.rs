//! Any bytes, read as a `.npy` and as a `.csv` sample table, give a table or `Error::Data`:
//! never a panic, a hang or an allocation the file's size does not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One scratch directory per fuzzing process (`-jobs` / `-fork` run several processes).
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fokker-fuzz-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    for name in ["t.npy", "t.csv"] {
        let path = scratch().join(name);
        std::fs::write(&path, data).expect("write the scratch file");
        if let Ok(t) = fokker::scenario::data::read_table(&path) {
            // A table the reader accepts is consistent and finite.
            assert_eq!(t.values.len(), t.rows * t.dim);
            assert!(t.rows > 0 && t.dim > 0);
            assert!(t.values.iter().all(|v| v.is_finite()));
        }
    }
});
