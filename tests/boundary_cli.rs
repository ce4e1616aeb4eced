//! Runs with walls and first-passage targets through the `fokker` binary: the output contract
//! (first_passage/<name>.npy, winding.npy, metrics columns, manifest), shards merged by
//! concatenation byte-identical to the unsharded run, and a resumed run that keeps its
//! absorbed particles absorbed, byte-identical to the uninterrupted one.

use std::path::Path;
use std::process::{Command, Output};

fn fokker(args: &[&str], cwd: &Path, stop_at: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fokker"));
    c.args(args).current_dir(cwd).env("FOKKER_TEST", "1");
    if let Some(s) = stop_at {
        c.env("FOKKER_TEST_STOP_AT", s);
    }
    c.output().expect("the fokker binary runs")
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Double well with a reflecting x, a periodic y, an absorbing right well and a recording
/// half-space: particles are absorbed, wind and pass during the run.
const SCENARIO: &str = r#"
seed = 21
[particles]
count = 3000
dim = 2
init = { kind = "gaussian", mean = [-1.0, 0.0], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.6
dt = 5e-3
steps = 400
[output]
every = 0.5
histogram = { axes = [0, 1], bins = [16, 16], range = [[-2.0, 2.0], [-1.0, 1.0]] }
particles = "final"
[boundary]
x = { kind = "reflecting", low = -2.0, high = 2.0 }
y = { kind = "periodic", low = -1.0, high = 1.0 }
[[observe.first_passage]]
name = "right_well"
region = { x = [0.8, 3.0] }
absorb = true
[[observe.first_passage]]
name = "barrier"
region = { normal = [1.0, 0.0], offset = 0.0 }
"#;

const FILES: &[&str] = &[
    "first_passage/right_well.npy",
    "first_passage/barrier.npy",
    "first_passage/right_well.exit_times.npy",
    "first_passage/barrier.exit_times.npy",
    "winding.npy",
    "density/00000400.npy",
];

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(rel).display()))
}

/// The survival and absorbed columns of metrics.csv.
fn passage_columns(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let wanted: Vec<usize> = [
        "survival_right_well",
        "survival_barrier",
        "absorbed_fraction",
    ]
    .iter()
    .map(|c| {
        header
            .iter()
            .position(|h| h == c)
            .unwrap_or_else(|| panic!("no column {c} in {header:?}"))
    })
    .collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            wanted.iter().map(|&i| f[i]).collect::<Vec<_>>().join(",")
        })
        .collect()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&read(dir, "manifest.json")).unwrap()
}

#[test]
fn the_output_contract_and_shards_merged_by_concatenation() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("s.toml"), SCENARIO).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "whole", "--progress", "none"],
        t,
        None,
    ));
    let whole = t.join("whole");
    // u32 of shape (count,), 4294967295 = never.
    let fp = read(&whole, "first_passage/right_well.npy");
    let header = String::from_utf8_lossy(&fp[..128]);
    assert!(
        header.contains("'<u4'") && header.contains("(3000, )"),
        "{header}"
    );
    let m = manifest(&whole);
    let targets = &m["first_passage"]["targets"];
    let right = &targets[0];
    assert_eq!(right["name"], "right_well");
    let (passed, never) = (
        right["passed"].as_u64().unwrap(),
        right["never"].as_u64().unwrap(),
    );
    assert_eq!(passed + never, 3000);
    assert!(passed > 0 && never > 0, "{right}");
    let ci = right["ci95"].as_array().unwrap();
    let mean = right["mean_time"].as_f64().unwrap();
    assert!(ci[0].as_f64().unwrap() < mean && mean < ci[1].as_f64().unwrap());
    assert!(whole.join("survival.png").is_file());
    // The absorbed fraction is one minus the absorbing target's survival.
    for row in passage_columns(&whole) {
        let v: Vec<f64> = row.split(',').map(|s| s.parse().unwrap()).collect();
        assert!((v[0] + v[2] - 1.0).abs() < 1e-12, "{row}");
    }
    for i in ["0", "1"] {
        ok(&fokker(
            &[
                "run",
                "s.toml",
                "--out",
                &format!("shard{i}"),
                "--progress",
                "none",
                "--shard-index",
                i,
                "--shard-count",
                "2",
            ],
            t,
            None,
        ));
    }
    ok(&fokker(&["merge", "merged", "shard0", "shard1"], t, None));
    let merged = t.join("merged");
    for f in FILES {
        assert!(
            read(&whole, f) == read(&merged, f),
            "{f} differs after merge"
        );
    }
    assert_eq!(passage_columns(&whole), passage_columns(&merged));
    assert_eq!(
        manifest(&whole)["first_passage"]["targets"],
        manifest(&merged)["first_passage"]["targets"]
    );
}

#[test]
fn resume_keeps_absorbed_particles_absorbed() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("s.toml"), SCENARIO).unwrap();
    let layout = ["--progress", "none", "--fused-steps", "25"];
    ok(&fokker(
        &[&["run", "s.toml", "--out", "whole"][..], &layout].concat(),
        t,
        None,
    ));
    // Stopped at the twelfth stop check (past step 250, with particles absorbed), resumed.
    let o = fokker(
        &[&["run", "s.toml", "--out", "cut"][..], &layout].concat(),
        t,
        Some("12"),
    );
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cut = t.join("cut");
    let tags = cut.join("checkpoint/tags.npy");
    assert!(tags.is_file(), "the checkpoint holds no tags");
    let (shape, words) = fokker::output::read_npy_u32(&tags).unwrap();
    // absorbed, 2 windings, 2 targets.
    assert_eq!(shape, vec![3000, 5]);
    assert!(
        words.chunks_exact(5).any(|r| r[0] != 0),
        "no particle was absorbed before the cut: the test would not see resume keep it"
    );
    ok(&fokker(&["resume", "cut", "--progress", "none"], t, None));
    for f in FILES.iter().chain(&["particles/00000400.npy"]) {
        assert!(
            read(&t.join("whole"), f) == read(&cut, f),
            "{f} differs after resume"
        );
    }
    assert_eq!(passage_columns(&t.join("whole")), passage_columns(&cut));
}

/// Every particle absorbed at the first step: the run completes (not a divergence), the
/// moments over no particle are NaN (null in the manifest) and the shards still merge.
#[test]
fn an_ensemble_with_none_left_completes_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let scenario = r#"
[particles]
count = 500
dim = 1
init = { kind = "point", at = [0.0] }
[dynamics]
kind = "langevin"
potential = { expr = "0*x" }
temperature = 1.0
dt = 1e-2
steps = 20
[output]
every = 0.1
histogram = { axes = [0], bins = 10, range = [[-1.0, 1.0]] }
[[observe.first_passage]]
name = "everywhere"
region = { normal = [1.0], offset = -1e9 }
absorb = true
"#;
    std::fs::write(t.join("s.toml"), scenario).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "whole", "--progress", "none"],
        t,
        None,
    ));
    let m = manifest(&t.join("whole"));
    assert_eq!(m["status"], "complete");
    let last = &m["snapshots"][2];
    assert_eq!(last["moments"]["count"], 0);
    assert_eq!(last["histogram"]["in_range"], 0);
    assert_eq!(m["first_passage"]["targets"][0]["never"], 0);
    for i in ["0", "1"] {
        ok(&fokker(
            &[
                "run",
                "s.toml",
                "--out",
                &format!("shard{i}"),
                "--progress",
                "none",
                "--shard-index",
                i,
                "--shard-count",
                "2",
            ],
            t,
            None,
        ));
    }
    ok(&fokker(&["merge", "merged", "shard0", "shard1"], t, None));
    assert!(
        read(&t.join("whole"), "first_passage/everywhere.npy")
            == read(&t.join("merged"), "first_passage/everywhere.npy")
    );
}
