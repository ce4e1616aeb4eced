//! Any bytes, read as a scenario file, give a plan or `Error::Scenario` / `Error::Data`:
//! never a panic, a hang or an allocation the text does not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = fokker::scenario::resolve_str(&text, "fuzz", Path::new("."), &[], None);
});
