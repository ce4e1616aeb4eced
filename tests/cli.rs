//! The `fokker` binary end to end: run directories, manifests, exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .env("FOKKER_TEST", "1")
        .output()
        .expect("the fokker binary runs")
}

const SMALL: &str = r#"
name = "cli test"
seed = 5

[particles]
count = 20_000
dim = 2
init = { kind = "gaussian", mean = [-1.0, 0.0], std = 0.2 }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.5
dt = 1e-3
t_end = 0.05

[output]
every = 0.02
histogram = { axes = [0, 1], bins = [32, 24], range = [[-2.0, 2.0], [-1.5, 1.5]] }
particles = "snapshots"
"#;

fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json exists");
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_run_directory_is_complete_and_self_describing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SMALL).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tmp.path().join("run");
    let m = manifest(&run);
    assert_eq!(m["status"], "complete");
    assert_eq!(m["plan"]["particles"]["count"], 20_000);
    assert_eq!(m["seed"], 5);
    assert!(m["plan_hash"].as_str().unwrap().len() == 64);
    assert!(m["adapter"]["name"].as_str().is_some());
    assert!(m["timings"]["particle_steps_per_second"].as_f64().unwrap() > 0.0);
    // GPU time by timestamp queries: Mesa's software adapters have them (Vulkan and GL).
    // The bracketed submissions run one after another on one queue within the process's
    // life, so their sum cannot exceed the wall time.
    let t = &m["timings"];
    let (gpu_step, gpu_obs) = (
        t["gpu_stepping_seconds"].as_f64(),
        t["gpu_observe_seconds"].as_f64(),
    );
    if m["adapter"]["name"].as_str().unwrap().contains("llvmpipe") {
        let (s, o) = (gpu_step.expect("gpu_stepping_seconds"), gpu_obs.unwrap());
        assert!(s > 0.0 && o > 0.0, "{t}");
        assert!(s + o <= t["wall_seconds"].as_f64().unwrap(), "{t}");
    }
    // Snapshots at t = 0, 0.02, 0.04 and the end (step 50).
    let snaps = m["snapshots"].as_array().unwrap();
    let steps: Vec<u64> = snaps.iter().map(|s| s["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 20, 40, 50]);
    for s in snaps {
        for key in ["density", "heatmap", "particles"] {
            let rel = s[key].as_str().unwrap();
            assert!(run.join(rel).is_file(), "{rel} listed but missing");
        }
        let h = &s["histogram"];
        let total = h["in_range"].as_u64().unwrap()
            + h["outside"].as_u64().unwrap()
            + h["nonfinite"].as_u64().unwrap();
        assert_eq!(total, 20_000);
    }
    // The density array: u64 counts in numpy histogram2d shape, summing to in_range.
    let bytes = std::fs::read(run.join("density/00000050.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[32, 24]);
    let counts: Vec<u64> = npy.into_vec().unwrap();
    assert_eq!(
        counts.iter().sum::<u64>(),
        snaps[3]["histogram"]["in_range"].as_u64().unwrap()
    );
    // Particles: f32 (N, 2).
    let bytes = std::fs::read(run.join("particles/00000050.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[20_000, 2]);
    // Nothing else in density/ than the snapshot files.
    let mut names: Vec<String> = std::fs::read_dir(run.join("density"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "{names:?}");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 5);
    assert!(metrics.starts_with(
        "step,time,mean_0,mean_1,cov_0_0,cov_0_1,cov_1_1,mean_potential,\
         configurational_temperature\n"
    ));
    // The energy observables, in metrics.csv and the manifest alike.
    for (line, s) in metrics.lines().skip(1).zip(snaps) {
        let cols: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let e = &s["energy"];
        assert_eq!(cols[7], e["mean_potential"].as_f64().unwrap());
        assert_eq!(cols[8], e["configurational_temperature"].as_f64().unwrap());
        assert!(e.get("kinetic_temperature").is_none());
        assert!(cols[7] > 0.0 && cols[8] > 0.0);
    }
    assert!(run.join("density.gif").is_file());
}

#[test]
fn same_seed_gives_identical_bytes_and_overrides_take_effect() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SMALL).unwrap();
    for out in ["a", "b"] {
        let o = fokker(
            &["run", "s.toml", "--out", out, "--progress", "none"],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let read = |p: &str| std::fs::read(tmp.path().join(p)).unwrap();
    assert_eq!(
        read("a/density/00000050.npy"),
        read("b/density/00000050.npy")
    );
    assert_eq!(
        read("a/particles/00000050.npy"),
        read("b/particles/00000050.npy")
    );
    assert_eq!(
        read("a/density/00000050.png"),
        read("b/density/00000050.png")
    );

    let o = fokker(
        &[
            "run",
            "s.toml",
            "--out",
            "c",
            "--progress",
            "none",
            "--seed",
            "9",
            "--set",
            "dynamics.temperature=0.3",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (ma, mc) = (
        manifest(&tmp.path().join("a")),
        manifest(&tmp.path().join("c")),
    );
    assert_eq!(mc["seed"], 9);
    assert_eq!(mc["plan"]["dynamics"]["temperature"], 0.3);
    assert_ne!(ma["plan_hash"], mc["plan_hash"]);
    assert_ne!(
        read("a/particles/00000050.npy"),
        read("c/particles/00000050.npy")
    );
}

#[test]
fn bad_scenarios_exit_65_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = SMALL
        .replace("dim = 2", "dim = 9")
        .replace("temperature = 0.5", "temprature = 0.5");
    std::fs::write(tmp.path().join("bad.toml"), bad).unwrap();
    let o = fokker(&["run", "bad.toml", "--out", "run"], tmp.path());
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("particles.dim"), "{err}");
    assert!(
        err.contains("temprature") && err.contains("temperature"),
        "{err}"
    );
    assert!(!tmp.path().join("run").exists());

    let o = fokker(&["run", "missing.toml", "--out", "run"], tmp.path());
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));
    let o = fokker(&["run", "--bogus"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn existing_output_is_refused_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("s.toml"),
        SMALL.replace("t_end = 0.05", "t_end = 0.002"),
    )
    .unwrap();
    let args = ["run", "s.toml", "--out", "run", "--progress", "none"];
    assert!(fokker(&args, tmp.path()).status.success());
    let o = fokker(&args, tmp.path());
    assert_eq!(o.status.code(), Some(74));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(fokker(&forced, tmp.path()).status.success());
    assert_eq!(manifest(&tmp.path().join("run"))["status"], "complete");
}

#[test]
fn dry_run_prints_the_plan_and_memory_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SMALL).unwrap();
    let o = fokker(
        &[
            "run",
            "s.toml",
            "--out",
            "run",
            "--dry-run",
            "--set",
            "dynamics.dt=1000.0",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("GPU memory") && text.contains("\"dt\": 1000.0"),
        "{text}"
    );
    assert!(!tmp.path().join("run").exists());
}

#[test]
fn adapters_lists_at_least_one() {
    let tmp = tempfile::tempdir().unwrap();
    let o = fokker(&["adapters", "--json"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        !list.as_array().unwrap().is_empty(),
        "no adapter: GPU tests need one"
    );
}

#[test]
fn a_diverging_run_exits_3_and_keeps_the_last_good_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let s = SMALL
        .replace("dt = 1e-3", "dt = 0.5")
        .replace("every = 0.02", "every = 1.0")
        .replace("t_end = 0.05", "t_end = 20.0");
    std::fs::write(tmp.path().join("s.toml"), s).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let m = manifest(&tmp.path().join("run"));
    assert_eq!(m["status"], "diverged");
    assert!(m["error"].as_str().unwrap().contains("NaN"));
    assert!(tmp.path().join("run/density/00000000.npy").is_file());
}

#[test]
fn a_reverse_sde_from_a_data_file_records_its_input_and_traces_particles() {
    let tmp = tempfile::tempdir().unwrap();
    // A 4 x 2 data set as CSV.
    std::fs::write(tmp.path().join("data.csv"), "-1,-1\n1,-1\n-1,1\n1,1\n").unwrap();
    let scenario = r#"
name = "empirical reverse SDE"
[particles]
count = 3000
dim = 2
init = { kind = "prior" }

[dynamics]
kind = "reverse_sde"
process = { kind = "vp" }
score = { kind = "samples", path = "data.csv" }
t_min = 0.01
steps = 50

[output]
every = 0.25
trajectories = 5
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tmp.path().join("run");
    let m = manifest(&run);
    assert_eq!(m["status"], "complete");
    // The prior was resolved into the plan; the data file is an input with its hash.
    assert_eq!(m["plan"]["particles"]["init"]["kind"], "gaussian");
    assert_eq!(m["inputs"].as_array().unwrap().len(), 1);
    assert!(
        m["inputs"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("data.csv")
    );
    assert_eq!(m["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    // Process time runs from 1 down to t_min: snapshots at t = 1, 0.75, ..., 0.01.
    let times: Vec<f64> = m["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_f64().unwrap())
        .collect();
    assert_eq!(times.first(), Some(&1.0));
    assert_eq!(times.last(), Some(&0.01));
    assert!(times.windows(2).all(|w| w[1] < w[0]), "{times:?}");
    assert_eq!(m["trajectories"], "trajectories.npy");
    assert!(run.join("trajectories.png").is_file());
    let bytes = std::fs::read(run.join("trajectories.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[times.len() as u64, 5, 2]);
    let traced: Vec<f32> = npy.into_vec().unwrap();
    // The traced particles end near a data point (blurred by s(t_min) ~ 0.03).
    for p in traced[traced.len() - 10..].chunks_exact(2) {
        let near = (p[0].abs() - 1.0).abs() < 0.3 && (p[1].abs() - 1.0).abs() < 0.3;
        assert!(near, "traced particle ended at {p:?}");
    }
    // Changing the data file changes the hash; a run refuses sharding only for coupled
    // dynamics, so a reverse SDE shards.
    let o = fokker(
        &[
            "run",
            "s.toml",
            "--out",
            "shard",
            "--progress",
            "none",
            "--shard-index",
            "1",
            "--shard-count",
            "2",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

const KERNEL_FLOW: &str = r#"
seed = 2

[particles]
count = 512
dim = 2
init = { kind = "gaussian", mean = [0.0, 0.0], std = 1.0 }

[dynamics]
kind = "KIND"
target = { kind = "image", path = "t.png", range = [[-2.0, 2.0], [-2.0, 2.0]], count = 512 }
steps = 20

[output]
every = 10
histogram = { axes = [0, 1], bins = [16, 16], range = [[-2.5, 2.5], [-2.5, 2.5]] }
"#;

/// A 4 x 4 grey PNG lit in its top-left quarter only (the image crate writes it).
fn quarter_png() -> Vec<u8> {
    let img = image::GrayImage::from_fn(4, 4, |x, y| {
        image::Luma([if x < 2 && y < 2 { 255 } else { 0 }])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn kernel_flows_report_mmd_and_compare_in_one_plot() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.png"), quarter_png()).unwrap();
    for kind in ["sd_flow", "mmd_flow", "svgd"] {
        let extra = if kind == "sd_flow" {
            "sigma = 0.3\n"
        } else {
            ""
        };
        let text = KERNEL_FLOW
            .replace("KIND", kind)
            .replace("steps = 20", &format!("{extra}steps = 20"));
        std::fs::write(tmp.path().join(format!("{kind}.toml")), text).unwrap();
        let o = fokker(
            &[
                "run",
                &format!("{kind}.toml"),
                "--out",
                kind,
                "--progress",
                "none",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{kind}: {}", stderr(&o));
        let run = tmp.path().join(kind);
        let m = manifest(&run);
        assert!(m["mmd_bandwidth"].as_f64().unwrap() > 0.0);
        assert_eq!(m["mmd_plot"], "mmd.png");
        assert!(run.join("mmd.png").is_file());
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].ends_with(",mmd2"), "{}", lines[0]);
        assert_eq!(lines.len(), 4, "snapshots at steps 0, 10, 20");
        let mmd: Vec<f64> = lines[1..]
            .iter()
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(mmd[2] < mmd[0], "{kind}: MMD^2 {mmd:?} did not fall");
        // The target lies in the image's lit quarter: x < 0, y > 0.
        let mean_x: f64 = lines[3].split(',').nth(2).unwrap().parse().unwrap();
        assert!(mean_x < 0.0, "{kind}: mean x {mean_x}");
    }
    let o = fokker(
        &["mmd-plot", "all.png", "sd_flow", "mmd_flow", "svgd"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tmp.path().join("all.png").is_file());
    // A run without MMD is refused by name.
    std::fs::write(tmp.path().join("s.toml"), SMALL).unwrap();
    assert!(
        fokker(
            &["run", "s.toml", "--out", "lv", "--progress", "none"],
            tmp.path()
        )
        .status
        .success()
    );
    let o = fokker(&["mmd-plot", "x.png", "sd_flow", "lv"], tmp.path());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("carry no MMD^2"), "{}", stderr(&o));
    assert!(!tmp.path().join("x.png").exists());
}

/// Without XDG_RUNTIME_DIR fokker makes /tmp/fokker-runtime-<pid> for Mesa; every way out
/// removes it, including the ones clap takes (help, version, a usage error).
#[test]
fn help_version_and_usage_errors_leave_no_runtime_directory() {
    for (args, code) in [
        (&["--help"][..], 0),
        (&["--version"][..], 0),
        (&["run"][..], 2),
        (&["run", "--no-such-flag", "x.toml"][..], 2),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fokker"))
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start fokker");
        let runtime = std::env::temp_dir().join(format!("fokker-runtime-{}", child.id()));
        let status = child.wait().expect("wait for fokker");
        assert_eq!(status.code(), Some(code), "fokker {args:?}");
        assert!(
            !runtime.exists(),
            "fokker {args:?} left {}",
            runtime.display()
        );
    }
}

/// Euler–Maruyama in U = x^2 / 2 at T = 1 is the AR(1) chain x' = (1 - dt) x + sqrt(2 dt) xi:
/// stationary variance 1 / (1 - dt / 2) and, thinned to every 10th step, rho = 0.99^10.
const OU_CHAINS: &str = r#"
seed = 3
[particles]
count = 64
dim = 1
init = { kind = "point", at = [0.0] }
[dynamics]
kind = "langevin"
potential = { expr = "x^2/2" }
temperature = 1.0
dt = 0.01
steps = 4000
"#;

/// `fokker sample` end to end on the OU chain: samples.npy is (count, dim) f32, ess.json
/// reports each observable. Tolerances: for x, tau_int = (1 + rho) / (1 - rho) (rho = 0.99^10,
/// tau = 19.9 draws) with Sokal's standard deviation tau sqrt(2 (2M + 1) / N) (N = 19200
/// draws, M the reported window), 4 of them allowed; the mean within 5 standard errors
/// sqrt(var tau / N); the variance 1 / (1 - dt / 2) within 5 standard deviations of the sample
/// variance, sqrt(2 var^2 tau_x2 / N), tau_x2 = (1 + rho^2) / (1 - rho^2) the AR(1) law of x^2.
/// The burn-in (1000 steps, t = 10) leaves e^-20 of the point start.
#[test]
fn sample_writes_samples_and_an_ess_report() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), OU_CHAINS).unwrap();
    let args = [
        "sample",
        "s.toml",
        "--count",
        "19200",
        "--out",
        "out",
        "--burn-in",
        "1000",
        "--observables",
        "x,x^2",
    ];
    let o = fokker(&args, tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("tau_int") && stdout.contains("x^2"),
        "{stdout}"
    );
    let out = tmp.path().join("out");
    let npy = std::fs::read(out.join("samples.npy")).unwrap();
    let header = String::from_utf8_lossy(&npy[10..80]);
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'shape': (19200, 1, )"), "{header}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ess.json")).unwrap()).unwrap();
    assert_eq!(report["chains"], 64);
    assert_eq!(report["draws_per_chain"], 300);
    assert_eq!(report["thin_steps"], 10);
    let x = &report["observables"][0];
    assert_eq!(x["name"], "x");
    let n = 19_200.0;
    let rho: f64 = 0.99f64.powi(10);
    let tau_want = (1.0 + rho) / (1.0 - rho);
    let var_want = 1.0 / (1.0 - 0.005);
    let tau = x["tau_int"].as_f64().unwrap();
    let window = x["window"].as_f64().unwrap();
    let sd = tau_want * (2.0 * (2.0 * window + 1.0) / n).sqrt();
    assert!(
        (tau - tau_want).abs() < 4.0 * sd,
        "tau {tau} vs {tau_want} (sd {sd})"
    );
    let mean = x["mean"].as_f64().unwrap();
    assert!(
        mean.abs() < 5.0 * (var_want * tau_want / n).sqrt(),
        "mean {mean}"
    );
    let var = x["variance"].as_f64().unwrap();
    let tau2 = (1.0 + rho * rho) / (1.0 - rho * rho);
    let var_sd = (2.0 * var_want * var_want * tau2 / n).sqrt();
    assert!(
        (var - var_want).abs() < 5.0 * var_sd,
        "var {var} vs {var_want}"
    );
    let ess = x["ess"].as_f64().unwrap();
    assert!((ess - n / tau).abs() < 1e-6 * ess);
    assert!(out.join("summary.txt").exists());

    // A second run into the same directory needs --force.
    let o = fokker(&args, tmp.path());
    assert_eq!(o.status.code(), Some(74), "{}", stderr(&o));
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(fokker(&forced, tmp.path()).status.success());

    // More draws than steps after the burn-in, a bad observable: usage errors (exit 2).
    let o = fokker(
        &["sample", "s.toml", "--count", "1000000", "--out", "o2"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("draws per chain"), "{}", stderr(&o));
    let o = fokker(
        &[
            "sample",
            "s.toml",
            "--count",
            "64",
            "--out",
            "o2",
            "--observables",
            "q+1",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!tmp.path().join("o2").exists());

    // Not a Langevin chain: exit 65.
    let gf = OU_CHAINS
        .replace("\"langevin\"", "\"gradient_flow\"")
        .replace("temperature = 1.0\n", "");
    std::fs::write(tmp.path().join("gf.toml"), gf).unwrap();
    let o = fokker(
        &["sample", "gf.toml", "--count", "64", "--out", "o3"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    assert!(stderr(&o).contains("langevin"), "{}", stderr(&o));
}
