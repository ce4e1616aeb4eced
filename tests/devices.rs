//! One run split across several devices (`--devices`): two devices opened on the one
//! software adapter (the orchestration is that of two GPUs) give the single-device bytes,
//! resume after an interrupt to the same bytes, and survive a device failing mid-run.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs fokker in `cwd` with `envs`; a run that has not ended within two minutes (a hang)
/// is killed and fails the test.
fn fokker_env(args: &[&str], cwd: &Path, envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fokker binary runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("fokker {args:?} did not end within two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn fokker(args: &[&str], cwd: &Path) -> Output {
    fokker_env(args, cwd, &[])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("readable")).expect("json")
}

/// 50 steps, snapshots at steps 0, 15, 30, 45 and 50. MALA, so that the acceptance counts
/// (per range, in checkpoints too) are pooled and checked as well.
const SCENARIO: &str = r#"
seed = 11
[particles]
count = 10_003
dim = 2
init = { kind = "gaussian", mean = [0.5, 0.0], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.8
dt = 2e-3
t_end = 0.1
mala = true
[output]
every = 0.03
histogram = { bins = [40, 30], range = [[-2.0, 2.0], [-1.5, 1.5]] }
particles = "snapshots"
gif = false
"#;

const TWO: [&str; 2] = ["--devices", "software,software"];
const SLICES: [&str; 2] = ["--slice-particles", "500"];

fn run(dir: &Path, out: &str, extra: &[&str], envs: &[(&str, &str)]) -> Output {
    let args = [
        &["run", "s.toml", "--out", out, "--progress", "none"][..],
        extra,
    ]
    .concat();
    fokker_env(&args, dir, envs)
}

fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SCENARIO).unwrap();
    tmp
}

/// Every density array and particle file of run `a` equals run `b`'s byte for byte.
fn assert_same_arrays(a: &Path, b: &Path) {
    let (ma, mb) = (
        json(&a.join("manifest.json")),
        json(&b.join("manifest.json")),
    );
    let (sa, sb) = (
        ma["snapshots"].as_array().unwrap(),
        mb["snapshots"].as_array().unwrap(),
    );
    assert_eq!(sa.len(), 5);
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(sb) {
        for key in ["density", "particles"] {
            let (fa, fb) = (x[key].as_str().unwrap(), y[key].as_str().unwrap());
            assert_eq!(fa, fb);
            assert!(
                std::fs::read(a.join(fa)).unwrap() == std::fs::read(b.join(fb)).unwrap(),
                "{fa} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    }
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn two_devices_on_one_adapter_give_the_single_device_bytes() {
    let tmp = setup();
    let o = run(tmp.path(), "one", &["--adapter", "software"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(tmp.path(), "two", &TWO, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    assert_same_arrays(&one, &two);

    let m1 = json(&one.join("manifest.json"));
    let m2 = json(&two.join("manifest.json"));
    assert!(m1.get("devices").is_none());
    let devices = m2["devices"].as_array().unwrap();
    let ranges: Vec<(u64, u64)> = devices
        .iter()
        .map(|d| {
            (
                d["first"].as_u64().unwrap(),
                d["particles"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [(0, 5001), (5001, 5002)]);
    for d in devices {
        assert_eq!(d["adapter"]["device_type"], "Cpu");
        let reason = d["adapter"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("--devices: --adapter software"),
            "{reason}"
        );
    }
    assert!(m2["adapter"]["index"].is_u64());
    assert!(m2["adapter"].get("pci_bus_id").is_some());

    // Moments: the same f32 positions summed in other groupings. Each run's moment sums
    // are f32 sums of at most ITEMS = 128 terms per invocation followed by a log2(64) = 6
    // level workgroup tree (src/observe/moments.rs), each term rounded once more when
    // shifted by the center: relative error at most g = (128 + 6 + 1) eps32 of the sum of
    // |terms|. Two runs differ by at most twice that: with M = max |x - c| over the
    // particles and axes (c the center, the previous snapshot's mean), the means by
    // 2 g M, and the covariances (s2 / n - shift^2, |shift| <= M) by 2 g M^2 + 2 (2 g M) M.
    let g = (128.0 + 6.0 + 1.0) * f64::from(f32::EPSILON);
    let s1 = m1["snapshots"].as_array().unwrap();
    let s2 = m2["snapshots"].as_array().unwrap();
    let mut center = vec![0.5, 0.0];
    for (x, y) in s1.iter().zip(s2) {
        let (_, p) = fokker::output::read_npy_f32(&one.join(x["particles"].as_str().unwrap()))
            .expect("particles");
        let m = p
            .chunks_exact(2)
            .flat_map(|r| {
                r.iter()
                    .zip(&center)
                    .map(|(v, c)| (f64::from(*v) - c).abs())
            })
            .fold(0.0, f64::max);
        let (mean1, mean2) = (
            numbers(&x["moments"]["mean"]),
            numbers(&y["moments"]["mean"]),
        );
        let (cov1, cov2) = (numbers(&x["moments"]["cov"]), numbers(&y["moments"]["cov"]));
        for (a, b) in mean1.iter().zip(&mean2) {
            assert!((a - b).abs() <= 2.0 * g * m, "mean {a} vs {b} (M {m})");
        }
        for (a, b) in cov1.iter().zip(&cov2) {
            assert!((a - b).abs() <= 6.0 * g * m * m, "cov {a} vs {b} (M {m})");
        }
        assert_eq!(x["moments"]["count"], y["moments"]["count"]);
        assert!(y["accepted"].is_u64(), "{y}");
        assert_eq!(x["accepted"], y["accepted"]);
        assert_eq!(x["acceptance_rate"], y["acceptance_rate"]);
        assert_eq!(x["histogram"], y["histogram"]);
        center = mean1;
    }
}

/// A shard split across devices splits its own range: shard 1 of 2 on two devices writes
/// the bytes of shard 1 on one.
#[test]
fn a_shard_on_two_devices_splits_its_own_range() {
    let tmp = setup();
    let shard = ["--shard-index", "1", "--shard-count", "2"];
    let o = run(
        tmp.path(),
        "one",
        &[&shard[..], &["--adapter", "software"]].concat(),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(tmp.path(), "two", &[&shard[..], &TWO].concat(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_arrays(&tmp.path().join("one"), &tmp.path().join("two"));
    let m = json(&tmp.path().join("two/manifest.json"));
    let ranges: Vec<(u64, u64)> = m["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["first"].as_u64().unwrap(),
                d["particles"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [(5001, 2501), (7502, 2501)]);
}

/// The `ranges` of a checkpoint.
fn checkpoint_ranges(dir: &Path) -> Vec<serde_json::Value> {
    json(&dir.join("checkpoint/point.json"))["ranges"]
        .as_array()
        .expect("ranges")
        .clone()
}

#[test]
fn an_interrupted_two_device_run_resumes_byte_identically() {
    let tmp = setup();
    let whole = [&TWO[..], &SLICES].concat();
    let o = run(tmp.path(), "whole", &whole, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The third stop check, counted over both devices: inside the first block.
    let o = run(tmp.path(), "cut", &whole, &[("FOKKER_TEST_STOP_AT", "3")]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    let cut = tmp.path().join("cut");
    assert_eq!(json(&cut.join("manifest.json"))["status"], "interrupted");
    let ranges = checkpoint_ranges(&cut);
    assert_eq!(ranges.len(), 2);
    assert_eq!(
        (ranges[1]["first"].as_u64(), ranges[1]["particles"].as_u64()),
        (Some(5001), Some(5002))
    );
    // Resumed with both ranges on one device: each keeps its own resume point.
    let o = fokker(
        &[
            "resume",
            "cut",
            "--progress",
            "none",
            "--adapter",
            "software",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_arrays(&cut, &tmp.path().join("whole"));
    assert_eq!(
        std::fs::read(cut.join("metrics.csv")).unwrap(),
        std::fs::read(tmp.path().join("whole/metrics.csv")).unwrap()
    );
}

/// Device 1 fails at its 25th progress report (in the block to step 45, after the
/// snapshots at 0, 15 and 30): exit 75, not a hang, with a checkpoint of both ranges that
/// resumes to the uninterrupted bytes. Without an earlier checkpoint the failed range
/// restarts from its initial state and passes the written snapshots; with periodic
/// checkpoints it continues from the last one.
#[test]
fn a_device_failing_mid_run_leaves_a_checkpoint_that_resumes() {
    let tmp = setup();
    let whole = [&TWO[..], &SLICES].concat();
    let o = run(tmp.path(), "whole", &whole, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (out, periodic) in [("restart", false), ("kept", true)] {
        let mut args = whole.clone();
        if periodic {
            args.extend(["--checkpoint-every", "0.000001"]);
        }
        let o = run(
            tmp.path(),
            out,
            &args,
            &[("FOKKER_TEST_FAIL_DEVICE", "1:25")],
        );
        assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("device 1 of 2 failed"),
            "{}",
            stderr(&o)
        );
        let dir = tmp.path().join(out);
        let m = json(&dir.join("manifest.json"));
        assert_eq!(m["status"], "interrupted");
        assert_eq!(m["snapshots"].as_array().unwrap().len(), 3);
        let ranges = checkpoint_ranges(&dir);
        assert_eq!(
            ranges[1]["restart"].as_bool().unwrap_or(false),
            !periodic,
            "{ranges:?}"
        );
        assert!(ranges[0].get("restart").is_none());
        if periodic {
            // The last checkpoint before the failure: inside the block to step 45.
            assert!(
                ranges[1]["point"]["step"].as_u64().unwrap() >= 30,
                "{ranges:?}"
            );
        }
        let o = fokker(
            &[
                "resume",
                out,
                "--progress",
                "none",
                "--devices",
                "software,software",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_same_arrays(&dir, &tmp.path().join("whole"));
        assert_eq!(json(&dir.join("manifest.json"))["status"], "complete");
        // Moments and acceptance rates too: the restarted range passes the written
        // snapshots restarting its acceptance count there, as the observations did.
        assert_eq!(
            std::fs::read(dir.join("metrics.csv")).unwrap(),
            std::fs::read(tmp.path().join("whole/metrics.csv")).unwrap()
        );
    }
}

#[test]
fn coupled_dynamics_and_unmatched_specs_are_refused() {
    let tmp = setup();
    let svgd = r#"
seed = 3
[particles]
count = 64
dim = 2
init = { kind = "gaussian", mean = [0.0, 0.0], std = 1.0 }
[dynamics]
kind = "svgd"
target = { kind = "mixture", weights = [1.0], means = [[1.0, 0.0]], stds = [0.5], count = 64 }
eta = 0.5
steps = 4
"#;
    std::fs::write(tmp.path().join("k.toml"), svgd).unwrap();
    let o = fokker(
        &[
            "run",
            "k.toml",
            "--out",
            "k",
            "--devices",
            "software,software",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not split across devices"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("k").exists());
    for (flag, spec) in [
        ("--devices", "software,index:99"),
        ("--adapter", "pci:00ff:ff:1f.7"),
    ] {
        let o = fokker(&["run", "s.toml", "--out", "x", flag, spec], tmp.path());
        assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("adapters seen: 0 ") && e.contains("matches nothing"),
            "{e}"
        );
    }
    let o = fokker(
        &["run", "s.toml", "--out", "x", "--adapter", "index:x"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A scheduler variable that names no adapter here is refused, not replaced.
    let o = fokker_env(
        &["run", "s.toml", "--out", "x"],
        tmp.path(),
        &[("CUDA_VISIBLE_DEVICES", "-1")],
    );
    assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("CUDA_VISIBLE_DEVICES=-1"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn adapters_lists_index_and_pci_bus_id() {
    let tmp = setup();
    let o = fokker(&["adapters", "--json"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert!(!list.is_empty(), "no adapter: GPU tests need one");
    for (i, a) in list.iter().enumerate() {
        assert_eq!(a["index"].as_u64(), Some(i as u64));
        assert!(
            a["pci_bus_id"].is_null() || a["pci_bus_id"].is_string(),
            "{a}"
        );
    }
    let o = fokker(&["adapters"], tmp.path());
    let text = String::from_utf8_lossy(&o.stdout);
    let header = text.lines().next().unwrap_or_default();
    for column in ["index", "pci_bus_id", "name", "backend", "memory"] {
        assert!(header.contains(column), "{header}");
    }
}
