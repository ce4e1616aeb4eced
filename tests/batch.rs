//! Batch runs: shards merged exactly, interruption and resume byte-identical.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the fokker binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"))
        .expect("json")
}

const SCENARIO: &str = r#"
seed = 11
[particles]
count = 10_003
dim = 2
init = { kind = "gaussian", mean = [0.0, 0.0], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.8
dt = 2e-3
t_end = 0.1
[output]
every = 0.03
histogram = { bins = [40, 30], range = [[-2.0, 2.0], [-1.5, 1.5]] }
particles = "snapshots"
"#;

/// Relative paths of every density array and particle file a run lists.
fn data_files(dir: &Path) -> Vec<String> {
    let m = manifest(dir);
    let mut files = Vec::new();
    for s in m["snapshots"].as_array().expect("snapshots") {
        files.push(s["density"].as_str().expect("density").to_string());
        files.push(s["heatmap"].as_str().expect("heatmap").to_string());
        if let Some(p) = s["particles"].as_str() {
            files.push(p.to_string());
        }
    }
    files
}

fn assert_same_files(a: &Path, b: &Path) {
    let files = data_files(a);
    assert_eq!(files, data_files(b));
    assert!(files.len() >= 6);
    for f in files {
        let (x, y) = (
            std::fs::read(a.join(&f)).expect("a"),
            std::fs::read(b.join(&f)).expect("b"),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SCENARIO).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "whole", "--progress", "none"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut shard_dirs = Vec::new();
    for i in 0..4 {
        let out = format!("shard-{i}");
        let o = fokker(
            &[
                "run",
                "s.toml",
                "--out",
                &out,
                "--progress",
                "none",
                "--shard-index",
                &i.to_string(),
                "--shard-count",
                "4",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let m = manifest(&tmp.path().join(&out));
        assert_eq!(
            m["plan_hash"],
            manifest(&tmp.path().join("whole"))["plan_hash"],
            "the plan hash leaves the shard out"
        );
        assert_eq!(m["shard"]["index"], i);
        shard_dirs.push(out);
    }
    let particles: u64 = shard_dirs
        .iter()
        .map(|d| {
            manifest(&tmp.path().join(d))["shard"]["particles"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(particles, 10_003);

    // Missing and foreign shards are refused, and nothing is written.
    let o = fokker(
        &["merge", "bad", "shard-0", "shard-1", "shard-3"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shards 2 of 4 are missing"),
        "{}",
        stderr(&o)
    );
    let o = fokker(
        &["merge", "bad", "shard-0", "shard-1", "shard-2", "whole"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(!tmp.path().join("bad").exists());

    // Shard order on the command line does not matter.
    let o = fokker(
        &[
            "merge", "merged", "shard-2", "shard-0", "shard-3", "shard-1",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (merged, whole) = (tmp.path().join("merged"), tmp.path().join("whole"));
    assert_same_files(&merged, &whole);
    let (mm, mw) = (manifest(&merged), manifest(&whole));
    assert_eq!(mm["status"], "complete");
    assert_eq!(mm["plan_hash"], mw["plan_hash"]);
    assert_eq!(mm["merged_from"].as_array().unwrap().len(), 4);
    for (a, b) in mm["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .zip(mw["snapshots"].as_array().unwrap())
    {
        assert_eq!(a["histogram"], b["histogram"]);
        for k in 0..4 {
            let (x, y) = (
                a["moments"]["cov"][k].as_f64().unwrap(),
                b["moments"]["cov"][k].as_f64().unwrap(),
            );
            assert!((x - y).abs() < 1e-6, "pooled covariance {x} vs {y}");
        }
    }
    assert!(merged.join("metrics.csv").is_file() && merged.join("density.gif").is_file());
}

#[test]
fn shard_defaults_come_from_a_slurm_array() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("s.toml"),
        SCENARIO.replace("t_end = 0.1", "t_end = 0.004"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(["run", "s.toml", "--out", "task", "--progress", "none"])
        .env("SLURM_ARRAY_TASK_ID", "7")
        .env("SLURM_ARRAY_TASK_MIN", "5")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest(&tmp.path().join("task"));
    assert_eq!(m["shard"]["index"], 2);
    assert_eq!(m["shard"]["count"], 3);
}

/// Writes a run long enough to be interrupted and runs it once uninterrupted into `whole`;
/// returns the flags that keep it long. Many small submissions (a hidden layout flag that
/// never changes results) keep it going for seconds even on a fast device.
fn long_run_with_reference(dir: &Path, t_end: &str) -> [&'static str; 2] {
    let long = SCENARIO
        .replace("count = 10_003", "count = 40_000")
        .replace("t_end = 0.1", &format!("t_end = {t_end}"))
        .replace("every = 0.03", "every = 0.1");
    std::fs::write(dir.join("s.toml"), long).unwrap();
    let slices = ["--slice-particles", "500"];
    let o = fokker(
        &[
            &["run", "s.toml", "--out", "whole", "--progress", "none"][..],
            &slices,
        ]
        .concat(),
        dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    slices
}

/// The `pending` part of a checkpoint's resume point.
fn checkpoint_point(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("checkpoint/point.json")).expect("point.json");
    serde_json::from_str::<serde_json::Value>(&text).expect("json")["point"].clone()
}

/// SIGTERM mid-run: exit 75 with a checkpoint; `fokker resume` then finishes with the same
/// bytes as a run that was never interrupted. The test hook holds the run at its third stop
/// check (after the third submission of 500 particles) until the signal comes, so the
/// signal lands there on any adapter, however fast.
#[test]
fn interrupt_and_resume_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let slices = long_run_with_reference(tmp.path(), "0.4");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(
            [
                &["run", "s.toml", "--out", "cut", "--progress", "jsonl"][..],
                &slices,
            ]
            .concat(),
        )
        .current_dir(tmp.path())
        .env("FOKKER_TEST_STOP_AT", "3:signal")
        // Without XDG_RUNTIME_DIR fokker makes its own runtime directory: checked below.
        .env_remove("XDG_RUNTIME_DIR")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = std::env::temp_dir().join(format!("fokker-runtime-{}", child.id()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let waiting = line.contains(fokker::run::StopAt::WAITING);
        seen.push(line);
        if waiting {
            break;
        }
    }
    // What Slurm sends before a time limit.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    seen.extend(lines.map_while(|l| l.ok()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(75), "{seen:?}");
    assert!(
        !runtime.exists(),
        "an interrupted run left {} behind",
        runtime.display()
    );
    let cut = tmp.path().join("cut");
    assert_eq!(manifest(&cut)["status"], "interrupted");
    assert!(
        cut.join("checkpoint/state.npy").is_file() && cut.join("checkpoint/point.json").is_file()
    );
    // Stopped exactly there: inside the first block, three slices of 500 done.
    let point = checkpoint_point(&cut);
    assert_eq!(point["step"], 0, "{point}");
    assert_eq!(point["pending"]["done"], 1500, "{point}");

    let o = fokker(&["resume", "cut", "--progress", "none"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(manifest(&cut)["status"], "complete");
    assert!(!cut.join("checkpoint").exists());
    assert_same_files(&cut, &tmp.path().join("whole"));
    assert_eq!(
        std::fs::read(cut.join("metrics.csv")).unwrap(),
        std::fs::read(tmp.path().join("whole/metrics.csv")).unwrap()
    );

    // A complete run has nothing to resume.
    let o = fokker(&["resume", "cut"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// A hard kill (no chance to checkpoint) loses only the work since the last periodic
/// checkpoint: resume from it still gives the uninterrupted bytes. Checkpoints are asked
/// for at every stop check, and the test hook holds the run at its 120th check (in the
/// second block, past the first snapshot) until it is killed, so the kill lands there and
/// the last checkpoint is the 119th check's on any adapter.
#[test]
fn periodic_checkpoints_survive_a_hard_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let slices = long_run_with_reference(tmp.path(), "1.0");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(
            [
                &[
                    "run",
                    "s.toml",
                    "--out",
                    "killed",
                    "--progress",
                    "none",
                    "--checkpoint-every",
                    "1e-9",
                ][..],
                &slices,
            ]
            .concat(),
        )
        .current_dir(tmp.path())
        .env("FOKKER_TEST_STOP_AT", "120:signal")
        // A killed run cannot remove its runtime directory: give it one that goes with tmp.
        .env("XDG_RUNTIME_DIR", tmp.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let waiting = line.contains(fokker::run::StopAt::WAITING);
        seen.push(line);
        if waiting {
            break;
        }
    }
    // Kill without warning.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "{seen:?}");
    let killed = tmp.path().join("killed");
    assert_eq!(manifest(&killed)["status"], "running");
    assert!(
        killed.join("checkpoint/point.json").is_file(),
        "no checkpoint was written: {seen:?}"
    );
    let o = fokker(&["resume", "killed", "--progress", "none"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&killed, &tmp.path().join("whole"));
}

/// A kernel flow's step is several submissions (kernel sums in query slices of about a
/// quarter second each): an interrupt between them abandons the step, the checkpoint holds
/// the state before it, and resume gives the uninterrupted bytes.
#[test]
fn a_kernel_flow_stops_inside_a_step_and_resumes_byte_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"
seed = 5
[particles]
count = 16384
dim = 2
init = { kind = "gaussian", mean = [0.0, -2.0], std = [0.5, 0.5] }
[dynamics]
kind = "sd_flow"
target = { kind = "mixture", weights = [0.5, 0.5], means = [[-1.5, 1.0], [1.5, 1.0]], stds = [0.4, 0.4], count = 16384 }
sigma = 0.5
eta = 0.5
steps = 8
[output]
every = 4
histogram = { bins = [32, 32], range = [[-3.5, 3.5], [-3.5, 3.5]] }
particles = "snapshots"
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "whole", "--progress", "none"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The run asks whether to stop between the submissions of a step's kernel sums (on a
    // software adapter a sum is two submissions) and after every step: the hook raises the
    // interrupt flag at the fourth time it asks, inside the second step on a software
    // adapter, after the fifth step (past the snapshot) where a step is one submission.
    let child = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(["run", "s.toml", "--out", "cut", "--progress", "jsonl"])
        .current_dir(tmp.path())
        .env("FOKKER_TEST_STOP_AT", "4")
        // Without XDG_RUNTIME_DIR fokker makes its own runtime directory: checked below.
        .env_remove("XDG_RUNTIME_DIR")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = std::env::temp_dir().join(format!("fokker-runtime-{}", child.id()));
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(
        !runtime.exists(),
        "an interrupted run left {} behind",
        runtime.display()
    );
    let cut = tmp.path().join("cut");
    assert_eq!(manifest(&cut)["status"], "interrupted");
    let o = fokker(&["resume", "cut", "--progress", "none"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&cut, &tmp.path().join("whole"));
    assert_eq!(
        std::fs::read(cut.join("metrics.csv")).unwrap(),
        std::fs::read(tmp.path().join("whole/metrics.csv")).unwrap()
    );
}

/// A user-written `sde` (time-dependent drift, position-dependent D, no params) stopped by
/// the test hook at its third stop check, inside the first block (after three slices of
/// 500 particles), then resumed: the same bytes as the run that was never stopped. The
/// generated kernel, its params binding and the per-dispatch time t0 all survive the
/// checkpoint. A checkpoint of an older plan-hash format is refused.
#[test]
fn an_interrupted_sde_resumes_byte_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"seed = 2
[particles]
count = 2000
dim = 2
init = { kind = "gaussian", mean = [1.0, 0.0], std = [0.3, 0.3] }
[dynamics]
kind = "sde"
drift = ["-x + 2*y*cos(t)", "-y - 2*x"]
diffusion = "0.5 + 0.4*tanh(x)"
dt = 1e-2
steps = 40
[output]
every = 0.2
histogram = { bins = [16, 16], range = [[-3.0, 3.0], [-3.0, 3.0]] }
particles = "snapshots"
gif = false
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    let slices = ["--slice-particles", "500"];
    let run = |out: &str, stop: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fokker"));
        c.args(
            [
                &["run", "s.toml", "--out", out, "--progress", "none"][..],
                &slices,
            ]
            .concat(),
        )
        .current_dir(tmp.path());
        if let Some(at) = stop {
            c.env("FOKKER_TEST_STOP_AT", at);
        }
        c.output().unwrap()
    };
    let o = run("whole", None);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("cut", Some("3"));
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    let cut = tmp.path().join("cut");
    assert_eq!(manifest(&cut)["status"], "interrupted");
    assert_eq!(checkpoint_point(&cut)["pending"]["done"], 1500);
    // The same checkpoint as an older fokker wrote it (no plan_hash_format: format 1, whose
    // plan hash covered file bytes) is refused by name, and nothing is changed.
    let point = cut.join("checkpoint/point.json");
    let current = std::fs::read_to_string(&point).unwrap();
    let mut old: serde_json::Value = serde_json::from_str(&current).unwrap();
    assert_eq!(old["plan_hash_format"], fokker::scenario::PLAN_HASH_FORMAT);
    old.as_object_mut().unwrap().remove("plan_hash_format");
    std::fs::write(&point, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let o = fokker(&["resume", "cut", "--progress", "none"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("plan hash format 1") && stderr(&o).contains("start the run again"),
        "{}",
        stderr(&o)
    );
    assert_eq!(manifest(&cut)["status"], "interrupted");
    std::fs::write(&point, current).unwrap();
    let o = fokker(&["resume", "cut", "--progress", "none"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_files(&cut, &tmp.path().join("whole"));
}
