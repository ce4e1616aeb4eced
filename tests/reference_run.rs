//! References end to end: particles against the grid Fokker–Planck solution and the
//! OU closed form within the sampling-noise floor, the files of the output contract,
//! marginals, `fokker render` reproducing the run's bytes, `fokker compare`, and merging.

mod common;

use common::chain::{chain_law, chain_law_sde};
use common::linear_chain::{Scheme, reverse_bias};
use common::stats::{self, EPS32};
use std::path::Path;
use std::process::{Command, Output};

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the fokker binary runs")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// metrics.csv as (header, rows of fields).
fn metrics(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let i = header.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].parse().unwrap()).collect()
}

/// 2D double well from the left well, T = 0.6.
const DOUBLE_WELL: &str = r#"
name = "reference test"
seed = 11

[particles]
count = 100_000
dim = 2
init = { kind = "point", at = [-1.0, 0.1] }

[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.6
dt = 1e-3
t_end = 1.0

[output]
every = 0.25
histogram = { axes = [0, 1], bins = [48, 48], range = [[-2.4, 2.4], [-2.4, 2.4]] }
reference = "fokker_planck"
"#;

/// The double well's Euler–Maruyama chain from (x0, y0), on `bins` x `bins` bins of
/// [-2.4, 2.4]^2, after each of `steps`. It separates: x by its transition operator
/// (tests/common/chain.rs, cells of a twenty-fifth of a bin), y an OU chain with rate 1,
/// exactly N(M^k y0, 2 T dt (1 - M^2k) / (1 - M^2)), M = 1 - dt.
fn double_well_chain(
    temperature: f64,
    dt: f64,
    (x0, y0): (f64, f64),
    bins: usize,
    steps: &[u64],
) -> Vec<Vec<f64>> {
    let (lo, hi) = (-2.4, 2.4);
    let h = (hi - lo) / bins as f64 / 25.0;
    let law = chain_law(
        &|x| 4.0 * x * (x * x - 1.0),
        temperature,
        dt,
        x0,
        lo - 200.0 * h,
        hi + 200.0 * h,
        h,
        steps,
    );
    assert!(law.lost.abs() < 1e-12, "the grid holds the law");
    let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    let m = 1.0 - dt;
    steps
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let px = law.bins(i, bins, lo, hi);
            let mean = m.powi(k as i32) * y0;
            let sd = (2.0 * temperature * dt * (1.0 - m.powi(2 * k as i32)) / (1.0 - m * m)).sqrt();
            let w = (hi - lo) / bins as f64;
            let py: Vec<f64> = (0..bins)
                .map(|b| {
                    let a = lo + w * b as f64;
                    cdf((a + w - mean) / sd) - cdf((a - mean) / sd)
                })
                .collect();
            px.iter()
                .flat_map(|a| py.iter().map(move |b| a * b))
                .collect()
        })
        .collect()
}

/// (mean, covariance) of the linear chain x <- (I - dt A) x + sqrt(2 T dt) xi after `k`
/// steps from N(m0, S0) (2 x 2), and of the continuous OU process at t = k dt:
/// e^{-At} m0 and e^{-At} S0 e^{-At} + T A^-1 (I - e^{-2At}), by A's eigenvectors.
type Gauss2 = ([f64; 2], [[f64; 2]; 2]);
fn ou_chain_and_exact(
    a: [[f64; 2]; 2],
    temperature: f64,
    dt: f64,
    k: u64,
    (m0, s0): Gauss2,
) -> (Gauss2, Gauss2) {
    let mul = |p: [[f64; 2]; 2], q: [[f64; 2]; 2]| {
        let mut r = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                r[i][j] = p[i][0] * q[0][j] + p[i][1] * q[1][j];
            }
        }
        r
    };
    let tr = |p: [[f64; 2]; 2]| [[p[0][0], p[1][0]], [p[0][1], p[1][1]]];
    let apply = |p: [[f64; 2]; 2], v: [f64; 2]| {
        [
            p[0][0] * v[0] + p[0][1] * v[1],
            p[1][0] * v[0] + p[1][1] * v[1],
        ]
    };
    let step = [
        [1.0 - dt * a[0][0], -dt * a[0][1]],
        [-dt * a[1][0], 1.0 - dt * a[1][1]],
    ];
    let (mut m, mut s) = (m0, s0);
    for _ in 0..k {
        m = apply(step, m);
        s = mul(mul(step, s), tr(step));
        for (i, row) in s.iter_mut().enumerate() {
            row[i] += 2.0 * temperature * dt;
        }
    }
    // Symmetric A = R diag(l) R^T, R the rotation by theta.
    let theta = 0.5 * (2.0 * a[0][1]).atan2(a[0][0] - a[1][1]);
    let (c, sn) = (theta.cos(), theta.sin());
    let r = [[c, -sn], [sn, c]];
    let l = [
        a[0][0] * c * c + 2.0 * a[0][1] * c * sn + a[1][1] * sn * sn,
        a[0][0] * sn * sn - 2.0 * a[0][1] * c * sn + a[1][1] * c * c,
    ];
    let t = k as f64 * dt;
    let diag = |f: &dyn Fn(f64) -> f64| mul(mul(r, [[f(l[0]), 0.0], [0.0, f(l[1])]]), tr(r));
    let decay = diag(&|l| (-l * t).exp());
    let stationary = diag(&|l| temperature / l * (1.0 - (-2.0 * l * t).exp()));
    let mut se = mul(mul(decay, s0), decay);
    for i in 0..2 {
        for j in 0..2 {
            se[i][j] += stationary[i][j];
        }
    }
    ((m, s), (apply(decay, m0), se))
}

/// Pinsker's bound sqrt(KL / 2) on the TV between two 2D Gaussians (binning only lowers it).
fn gauss2_tv_bound((m1, s1): Gauss2, (m2, s2): Gauss2) -> f64 {
    let det = |s: [[f64; 2]; 2]| s[0][0] * s[1][1] - s[0][1] * s[1][0];
    let d2 = det(s2);
    let inv2 = [
        [s2[1][1] / d2, -s2[0][1] / d2],
        [-s2[1][0] / d2, s2[0][0] / d2],
    ];
    let trace: f64 = (0..2)
        .map(|i| (0..2).map(|j| inv2[i][j] * s1[j][i]).sum::<f64>())
        .sum();
    let dm = [m2[0] - m1[0], m2[1] - m1[1]];
    let quad: f64 = (0..2)
        .map(|i| (0..2).map(|j| dm[i] * inv2[i][j] * dm[j]).sum::<f64>())
        .sum();
    let kl = 0.5 * (trace - 2.0 + quad + (d2 / det(s1)).ln());
    (0.5 * kl).sqrt().min(1.0)
}

/// Bin probabilities (the first axis slowest) of the 2D Gaussian N(m, S) on `bins` of
/// `range`: per bin of x, the integral of x's density times the conditional probability of
/// y's bin, Simpson's rule on 64 intervals (the integrand is smooth; the narrowest standard
/// deviation here is several intervals wide).
fn gauss2_bins((m, s): Gauss2, (bins, range): ([usize; 2], [[f64; 2]; 2])) -> Vec<f64> {
    let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    let (sx, slope) = (s[0][0].sqrt(), s[0][1] / s[0][0]);
    let sc = (s[1][1] - s[0][1] * s[0][1] / s[0][0]).sqrt();
    let (wx, wy) = (
        (range[0][1] - range[0][0]) / bins[0] as f64,
        (range[1][1] - range[1][0]) / bins[1] as f64,
    );
    let mut out = vec![0.0; bins[0] * bins[1]];
    let intervals = 64;
    for i in 0..bins[0] {
        let h = wx / intervals as f64;
        for q in 0..=intervals {
            let x = range[0][0] + wx * i as f64 + h * q as f64;
            let weight = if q == 0 || q == intervals {
                1.0
            } else if q % 2 == 1 {
                4.0
            } else {
                2.0
            } * h
                / 3.0;
            let z = (x - m[0]) / sx;
            let density = (-0.5 * z * z).exp() / (sx * (2.0 * std::f64::consts::PI).sqrt());
            let mu = m[1] + slope * (x - m[0]);
            for j in 0..bins[1] {
                let c = range[1][0] + wy * j as f64;
                out[i * bins[1] + j] +=
                    weight * density * (cdf((c + wy - mu) / sc) - cdf((c - mu) / sc));
            }
        }
    }
    out
}

/// The snapshots' steps and reference probabilities (reference/*.npy) of a run.
fn reference_snapshots(run: &Path) -> Vec<(u64, Vec<f64>)> {
    manifest(run)["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let rel = s["reference"]["density"].as_str().unwrap();
            let (_, q) = fokker::output::read_npy_f64(&run.join(rel)).unwrap();
            (s["step"].as_u64().unwrap(), q)
        })
        .collect()
}

#[test]
fn particles_match_the_grid_solver_within_the_noise_floor_and_render_reproduces_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), DOUBLE_WELL).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let run = tmp.path().join("run");
    let (header, rows) = metrics(&run);
    for c in [
        "tv",
        "hellinger",
        "kl",
        "tv_floor",
        "free_energy",
        "free_energy_reference",
    ] {
        assert!(header.iter().any(|h| h == c), "metrics.csv lacks {c}");
    }
    let time = column(&header, &rows, "time");
    let tv = column(&header, &rows, "tv");
    let floor = column(&header, &rows, "tv_floor");
    assert_eq!(time, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    // At t = 0 both are the point mass in one bin.
    assert!(tv[0] < 1e-12, "{tv:?}");
    // tv_floor is E0, the exact expected tv of N samples of the reference itself
    // (tests/common/stats.rs). The particles' law is the Euler–Maruyama chain's, computed
    // here exactly; its distance delta to the grid solver's reference (time step and grid
    // together) is the only bias: E0 - delta - eps <= tv <= E0 + delta + eps.
    let snapshots = reference_snapshots(&run);
    let steps: Vec<u64> = time[1..]
        .iter()
        .map(|t| (t / 1e-3).round() as u64)
        .collect();
    let chain = double_well_chain(0.6, 1e-3, (-1.0, 0.1), 48, &steps);
    let eps = stats::tv_deviation(100_000);
    for k in 1..tv.len() {
        let delta = stats::binned_tv(&chain[k - 1], &snapshots[k].1);
        println!(
            "t = {}: tv {} floor {} delta {delta:.2e} eps {eps:.2e}",
            time[k], tv[k], floor[k]
        );
        assert!(
            tv[k] <= floor[k] + delta + eps,
            "t = {}: tv {} above the noise floor {} + delta {delta} + eps {eps}",
            time[k],
            tv[k],
            floor[k]
        );
        // And not suspiciously far below it either: the floor is the expected noise.
        assert!(
            tv[k] >= floor[k] - delta - eps,
            "t = {}: tv {} below the noise floor {} - delta {delta} - eps {eps}",
            time[k],
            tv[k],
            floor[k]
        );
    }
    // The reference's free energy falls.
    let f_ref = column(&header, &rows, "free_energy_reference");
    for w in f_ref.windows(2) {
        assert!(w[1] <= w[0] + 1e-12, "{f_ref:?}");
    }

    // The output contract: reference/, compare/, plots, all in the manifest.
    let m = manifest(&run);
    let snaps = m["snapshots"].as_array().unwrap();
    for s in snaps {
        let r = &s["reference"];
        assert_eq!(r["kind"], "fokker_planck");
        for key in ["density", "heatmap", "compare"] {
            let rel = r[key].as_str().unwrap();
            assert!(run.join(rel).is_file(), "{rel}");
        }
        assert!(r["density"].as_str().unwrap().starts_with("reference/"));
        assert!(r["compare"].as_str().unwrap().starts_with("compare/"));
    }
    assert_eq!(
        m["plots"],
        serde_json::json!(["distances.png", "free_energy.png"])
    );
    let density: Vec<String> = std::fs::read_dir(run.join("density"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(density.iter().all(|n| n.len() == 12), "{density:?}");

    // Render: another look changes the pictures, the run's own settings give its bytes back.
    let pictures = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for sub in ["density", "reference", "compare"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "png") {
                    v.push((p.display().to_string(), std::fs::read(&p).unwrap()));
                }
            }
        }
        for f in ["density.gif", "distances.png", "free_energy.png"] {
            v.push((f.into(), std::fs::read(dir.join(f)).unwrap()));
        }
        v.sort();
        v
    };
    let original = pictures(&run);
    ok(&fokker(
        &[
            "render",
            "run",
            "--colormap",
            "magma",
            "--scale",
            "linear",
            "--range=-2,0,-1,1",
        ],
        tmp.path(),
    ));
    let changed = pictures(&run);
    assert_ne!(original[0].1, changed[0].1);
    ok(&fokker(&["render", "run"], tmp.path()));
    assert!(
        pictures(&run) == original,
        "render did not reproduce the run's bytes"
    );

    // Compare with a second run of other bins: refused, nothing written.
    let other = DOUBLE_WELL
        .replace("bins = [48, 48]", "bins = [32, 32]")
        .replace("count = 100_000", "count = 2000");
    std::fs::write(tmp.path().join("o.toml"), other).unwrap();
    ok(&fokker(
        &["run", "o.toml", "--out", "other", "--progress", "none"],
        tmp.path(),
    ));
    let o = fokker(&["compare", "run", "other"], tmp.path());
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bins [48, 48] vs [32, 32]"), "{err}");
    assert!(!tmp.path().join("other/compare/vs_run.csv").exists());
}

#[test]
fn compare_two_runs_and_plot_a_table() {
    let tmp = tempfile::tempdir().unwrap();
    let small = DOUBLE_WELL
        .replace("count = 100_000", "count = 20_000")
        .replace("reference = \"fokker_planck\"\n", "");
    std::fs::write(tmp.path().join("a.toml"), &small).unwrap();
    std::fs::write(
        tmp.path().join("b.toml"),
        small.replace("dt = 1e-3", "dt = 5e-4"),
    )
    .unwrap();
    ok(&fokker(
        &["run", "a.toml", "--out", "a", "--progress", "none"],
        tmp.path(),
    ));
    ok(&fokker(
        &[
            "run",
            "b.toml",
            "--out",
            "b",
            "--progress",
            "none",
            "--seed",
            "2",
        ],
        tmp.path(),
    ));
    let o = fokker(&["compare", "a", "b"], tmp.path());
    ok(&o);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("tv_floor"), "{table}");
    let csv = std::fs::read_to_string(tmp.path().join("b/compare/vs_a.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "time,step_a,step_b,tv,hellinger,tv_floor,time_b,offset"
    );
    // Matched by time: step 250 of a (dt 1e-3) is step 500 of b (dt 5e-4).
    assert!(lines[2].starts_with("0.25,250,500,"), "{csv}");
    // Two independent samples of two chains' laws, each computed exactly: run a's law q_a,
    // and b's within TV(q_a, q_b) of it (stats::two_sample_tv_upper).
    let times = [0.25, 0.5, 0.75, 1.0];
    let steps = |dt: f64| -> Vec<u64> { times.iter().map(|t| (t / dt).round() as u64).collect() };
    let law_a = double_well_chain(0.6, 1e-3, (-1.0, 0.1), 48, &steps(1e-3));
    let law_b = double_well_chain(0.6, 5e-4, (-1.0, 0.1), 48, &steps(5e-4));
    for (k, l) in lines[2..].iter().enumerate() {
        let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
        assert_eq!(f[0], times[k]);
        let bias = stats::binned_tv(&law_a[k], &law_b[k]);
        let limit = stats::two_sample_tv_upper(&law_a[k], 20_000, 20_000, bias);
        println!("{l}: limit {limit:.4} (dt bias {bias:.1e})");
        assert!(f[3] <= limit, "{l}: tv above {limit}");
    }
    assert!(tmp.path().join("b/compare/vs_a.png").is_file());
    let o = fokker(
        &[
            "plot",
            "b/compare/vs_a.csv",
            "--x",
            "time",
            "--y",
            "tv,tv_floor",
            "--log-y",
            "--out",
            "p.png",
        ],
        tmp.path(),
    );
    ok(&o);
    assert!(tmp.path().join("p.png").is_file());
    let o = fokker(
        &[
            "plot",
            "b/compare/vs_a.csv",
            "--x",
            "time",
            "--y",
            "nope",
            "--out",
            "q.png",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(65));
    assert!(!tmp.path().join("q.png").exists());
}

#[test]
fn ou_analytic_reference_and_marginals_in_three_dimensions() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"
seed = 3
[particles]
count = 60_000
dim = 3
init = { kind = "gaussian", mean = [1.5, -1.0, 0.5], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "quadratic", matrix = [[1.0, 0.4, 0.0], [0.4, 2.0, 0.0], [0.0, 0.0, 0.5]] }
temperature = 0.5
dt = 1e-3
t_end = 0.6
[output]
every = 0.3
histogram = { axes = [2], bins = 40, range = [[-2.0, 2.5]] }
marginals = [[0, 2]]
reference = "analytic"
gif = false
"#;
    // Axes [0, 2] are coupled through axis 1: refused, naming the marginal.
    std::fs::write(tmp.path().join("bad.toml"), scenario).unwrap();
    let o = fokker(
        &["run", "bad.toml", "--out", "bad", "--progress", "none"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("output.marginals[0]"), "{err}");
    assert!(!tmp.path().join("bad").exists());

    let good = scenario.replace(
        "marginals = [[0, 2]]",
        "marginals = [{ axes = [0, 1], bins = 32 }]",
    );
    std::fs::write(tmp.path().join("s.toml"), good).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let run = tmp.path().join("run");
    let (header, rows) = metrics(&run);
    let tv = column(&header, &rows, "tv");
    let floor = column(&header, &rows, "tv_floor");
    let time = column(&header, &rows, "time");
    // The reference is the continuous OU law; the particles' is the Euler–Maruyama chain's,
    // Gaussian and exact: the bias is their distance (Pinsker on their KL). Axis 2 is its
    // own OU with rate 0.5 from N(0.5, 0.3^2).
    let eps = stats::tv_deviation(60_000);
    let (dt, temperature) = (1e-3, 0.5);
    for k in 0..tv.len() {
        let steps = (time[k] / dt).round() as u64;
        let m = 1.0 - 0.5 * dt;
        let chain_m = m.powi(steps as i32) * 0.5;
        let chain_v = m.powi(2 * steps as i32) * 0.09
            + 2.0 * temperature * dt * (1.0 - m.powi(2 * steps as i32)) / (1.0 - m * m);
        let t = time[k];
        let exact_m = (-0.5 * t).exp() * 0.5;
        let exact_v = (-t).exp() * 0.09 + temperature / 0.5 * (1.0 - (-t).exp());
        let delta = stats::gaussian_tv_bound(&[chain_m], &[chain_v], &[exact_m], &[exact_v]);
        assert!(
            tv[k] <= floor[k] + delta + eps,
            "t = {t}: tv {} vs floor {} + delta {delta} + eps {eps}",
            tv[k],
            floor[k]
        );
    }
    let m = manifest(&run);
    let last = m["snapshots"].as_array().unwrap().last().unwrap().clone();
    let marginals = last["marginals"].as_array().unwrap();
    assert_eq!(marginals.len(), 1);
    let rel = marginals[0]["density"].as_str().unwrap();
    assert_eq!(rel, "density/0_1/00000600.npy");
    assert!(run.join(rel).is_file());
    assert!(run.join("density/0_1/00000600.png").is_file());
    let r = &marginals[0]["reference"];
    assert_eq!(r["density"], "reference/0_1/00000600.npy");
    assert!(run.join("compare/0_1/00000600.png").is_file());
    let (tv, floor) = (r["tv"].as_f64().unwrap(), r["tv_floor"].as_f64().unwrap());
    // Axes 0 and 1 are coupled: the chain's and the process's 2D Gaussians at t = 0.6.
    let (chain, exact) = ou_chain_and_exact(
        [[1.0, 0.4], [0.4, 2.0]],
        0.5,
        1e-3,
        600,
        ([1.5, -1.0], [[0.09, 0.0], [0.0, 0.09]]),
    );
    let delta = gauss2_tv_bound(chain, exact);
    assert!(
        tv <= floor + delta + eps,
        "marginal tv {tv} vs floor {floor} + delta {delta} + eps {eps}"
    );
}

#[test]
fn merged_shards_have_the_unsharded_references_distances_and_marginals() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"
seed = 4
[particles]
count = 6000
dim = 3
init = { kind = "gaussian", mean = [-1.0, 0.0, 0.5], std = 0.3 }
[dynamics]
kind = "langevin"
potential = { kind = "double_well" }
temperature = 0.7
dt = 2e-3
t_end = 0.2
[output]
every = 0.1
histogram = { axes = [0], bins = 30, range = [[-2.5, 2.5]] }
marginals = [{ axes = [0, 2], bins = 16 }]
reference = "fokker_planck"
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    let args = |out: &'static str| vec!["run", "s.toml", "--out", out, "--progress", "none"];
    ok(&fokker(&args("whole"), tmp.path()));
    for (i, out) in ["shard0", "shard1"].iter().enumerate() {
        let index = i.to_string();
        let mut a = args(out);
        a.extend(["--shard-index", &index, "--shard-count", "2"]);
        ok(&fokker(&a, tmp.path()));
    }
    ok(&fokker(
        &["merge", "merged", "shard1", "shard0"],
        tmp.path(),
    ));
    let (whole, merged) = (tmp.path().join("whole"), tmp.path().join("merged"));
    // The reference columns are exact (the moments are pooled, equal to round-off).
    let (hw, rw) = metrics(&whole);
    let (hm, rm) = metrics(&merged);
    assert_eq!(hw, hm);
    for c in [
        "tv",
        "hellinger",
        "kl",
        "tv_floor",
        "free_energy",
        "free_energy_reference",
    ] {
        assert_eq!(column(&hw, &rw, c), column(&hm, &rm, c), "{c}");
    }
    for rel in [
        "reference/00000100.npy",
        "reference/0_2/00000100.npy",
        "density/0_2/00000100.npy",
        "compare/00000100.png",
        "compare/0_2/00000100.png",
        "distances.png",
    ] {
        assert_eq!(
            std::fs::read(whole.join(rel)).unwrap(),
            std::fs::read(merged.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

/// Reverse dynamics with the analytic reference: the data law pushed to process time t.
const REVERSE: &str = r#"
seed = 3
[particles]
count = 100_000
dim = 2
init = { kind = "prior" }

[dynamics]
kind = "reverse_sde"
process = { kind = "vp" }
score = { kind = "mixture", weights = [0.6, 0.4], means = [[-1.0, 0.5], [1.5, -0.5]], stds = [0.3, [0.4, 0.2]] }
steps = 400

[output]
every = 0.25
histogram = { bins = [40, 40], range = [[-3.0, 3.0], [-3.0, 3.0]] }
reference = "analytic"
"#;

#[test]
fn diffusion_dynamics_sit_on_the_noise_floor_of_their_exact_law() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), REVERSE).unwrap();
    for (out, kind) in [("sde", "reverse_sde"), ("flow", "probability_flow")] {
        let kind_arg = format!("dynamics.kind=\"{kind}\"");
        ok(&fokker(
            &[
                "run",
                "s.toml",
                "--out",
                out,
                "--progress",
                "none",
                "--set",
                &kind_arg,
            ],
            tmp.path(),
        ));
        let run = tmp.path().join(out);
        let (header, rows) = metrics(&run);
        let tv = column(&header, &rows, "tv");
        let floor = column(&header, &rows, "tv_floor");
        assert_eq!(tv.len(), 5, "snapshots at t = 1, 0.75, 0.5, 0.25, 0.001");
        // The bias: the linear-chain model of the scheme (tests/common/linear_chain.rs),
        // from the plan's own time grid and process, against each snapshot's reference.
        let plan = fokker::scenario::resolve_str(REVERSE, "s.toml", tmp.path(), &[kind_arg], None)
            .expect("the scenario resolves")
            .plan;
        let json = serde_json::to_value(&plan.dynamics).expect("a plan serialises");
        let process: fokker::model::Process =
            serde_json::from_value(json["process"].clone()).expect("a process");
        // probability_flow's default integrator is Heun.
        let scheme = match kind {
            "reverse_sde" => Scheme::ReverseSde,
            _ => Scheme::FlowHeun,
        };
        let data = fokker::model::Mixture {
            weights: vec![0.6, 0.4],
            means: vec![vec![-1.0, 0.5], vec![1.5, -0.5]],
            stds: vec![vec![0.3, 0.3], vec![0.4, 0.2]],
        };
        let eps = stats::tv_deviation(100_000);
        for (k, (step, probs)) in reference_snapshots(&run).iter().enumerate() {
            let delta = reverse_bias(
                scheme,
                &process,
                &|n| plan.dynamics.time_at(n),
                &data,
                *step,
                &plan.output.histogram,
                probs,
            );
            let (t, f) = (tv[k], floor[k]);
            println!("{kind} step {step}: tv {t:.4} floor {f:.4} delta {delta:.1e}");
            assert!(
                t <= f + delta + eps,
                "{kind}: tv {t} vs floor {f} + delta {delta} + eps {eps}"
            );
            assert!(
                t >= f - delta - eps,
                "{kind}: tv {t} vs floor {f} - delta {delta} - eps {eps}"
            );
        }
        let m = manifest(&run);
        let last = m["snapshots"].as_array().unwrap().last().unwrap().clone();
        for key in ["density", "heatmap", "compare"] {
            let rel = last["reference"][key].as_str().unwrap();
            assert!(run.join(rel).is_file(), "{rel}");
        }
        // No potential, so no free energy and no free-energy plot.
        assert!(last["reference"]["free_energy"].is_null());
        assert!(run.join("distances.png").is_file());
        assert!(!run.join("free_energy.png").exists());
    }
}

/// Gradient descent against the continuous flow exp(-A t): the gap is first order in dt.
#[test]
fn gradient_descent_approaches_the_continuous_flow_as_dt_falls() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"
[particles]
count = 200_000
dim = 2
init = { kind = "gaussian", mean = [2.0, -2.0], std = 0.2 }

[dynamics]
kind = "gradient_flow"
potential = { kind = "quadratic", matrix = [[3.0, 1.0], [1.0, 1.0]] }
dt = 0.02
t_end = 0.5

[output]
histogram = { bins = [48, 48], range = [[-1.0, 3.0], [-3.0, 1.0]] }
reference = "analytic"
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    // The iterates are x_k = M^k x_0, M = I - dt A: from N(m0, S0) exactly N(M^k m0,
    // M^k S0 M^kT), against the flow's N(e^{-At} m0, e^{-At} S0 e^{-At}); their binned TV
    // delta is the bias, computed (2D Gaussian bins by quadrature). f32 moves an iterate by
    // at most 3 u |x| per step (a product, a sum, the store; |x| < 3): over k steps
    // 9 k u, a fraction 9 k u / sd of the narrowest standard deviation sd, which Pinsker
    // turns into at most that over 2 of TV.
    let a = [[3.0, 1.0], [1.0, 1.0]];
    let start = ([2.0, -2.0], [[0.04, 0.0], [0.0, 0.04]]);
    let spec = ([48, 48], [[-1.0, 3.0], [-3.0, 1.0]]);
    let (n, eps) = (200_000, stats::tv_deviation(200_000));
    let mut deltas = Vec::new();
    for (out, dt) in [("coarse", "0.02"), ("fine", "0.005")] {
        let set = format!("dynamics.dt={dt}");
        ok(&fokker(
            &[
                "run",
                "s.toml",
                "--out",
                out,
                "--progress",
                "none",
                "--set",
                &set,
            ],
            tmp.path(),
        ));
        let (header, rows) = metrics(&tmp.path().join(out));
        let tv = column(&header, &rows, "tv");
        let energy = column(&header, &rows, "free_energy");
        // The mean loss (F at T = 0) falls.
        assert!(energy[1] < energy[0]);
        let dt: f64 = dt.parse().unwrap();
        let k = (0.5 / dt).round() as u64;
        let (chain, exact) = ou_chain_and_exact(a, 0.0, dt, k, start);
        // The reference the run compares with (the flow's law, binned by src/reference's
        // midpoint rule) and the chain's, binned here: delta includes the reference's own
        // quadrature error (printed: the flow's law binned both ways).
        let p = reference_snapshots(&tmp.path().join(out)).pop().unwrap().1;
        let q = gauss2_bins(chain, spec);
        let own = stats::binned_tv(&gauss2_bins(exact, spec), &p);
        let s = chain.1;
        let tr = s[0][0] + s[1][1];
        let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
        let sd_min = (0.5 * (tr - (tr * tr - 4.0 * det).sqrt())).sqrt();
        let f32_bias = 9.0 * k as f64 * EPS32 / 2.0 / sd_min / 2.0;
        let delta = stats::binned_tv(&q, &p) + f32_bias;
        let (e0p, e0q) = (stats::tv_expected(&p, n), stats::tv_expected(&q, n));
        // E0(p) - delta <= E tv <= E0(p) + delta (coupling), and tv >= delta - TV(hist, q),
        // with TV(hist, q) <= E0(q) + eps.
        let (lo, hi) = ((e0p - delta).max(delta - e0q) - eps, e0p + delta + eps);
        println!(
            "dt {dt}: tv {} in [{lo:.4}, {hi:.4}], delta {delta:.4} (quadrature {own:.1e})",
            tv[1]
        );
        assert!(
            lo <= tv[1] && tv[1] <= hi,
            "dt {dt}: tv {} not in [{lo}, {hi}]",
            tv[1]
        );
        deltas.push((delta, e0p));
    }
    // The coarse run's bias is clear of the noise: its tv exceeds what an unbiased run
    // reaches (E0 + eps) by construction of the bounds above when delta - E0(q) - eps does;
    // and 4x smaller steps shrink it below half (first order: about a quarter).
    let ((coarse, e0), (fine, _)) = (deltas[0], deltas[1]);
    assert!(
        coarse - e0 - eps > e0 + eps,
        "coarse bias {coarse} not clear of the noise"
    );
    assert!(fine < 0.5 * coarse, "bias {coarse} -> {fine}");
}

/// Bin probabilities of N(mean, var) on `bins` equal bins of [lo, hi].
fn normal_bins(mean: f64, var: f64, bins: usize, lo: f64, hi: f64) -> Vec<f64> {
    let w = (hi - lo) / bins as f64;
    (0..bins)
        .map(|b| {
            let a = lo + w * b as f64;
            fokker::reference::law::normal_mass(a, a + w, mean, var.sqrt())
        })
        .collect()
}

/// Checks every snapshot's tv against the noise floor: the particles' law is the
/// Euler–Maruyama chain's (`chain`, one per snapshot), computed exactly, whose binned TV
/// delta to the reference is the only bias, so E0 - delta - eps <= tv <= E0 + delta + eps
/// (tests/common/stats.rs: E0 = tv_floor, the binomial counts' exact mean deviation, eps
/// McDiarmid's at a 1e-6 false alarm).
fn within_noise_floor(run: &Path, chain: &[Vec<f64>], n: u64) {
    let (header, rows) = metrics(run);
    let time = column(&header, &rows, "time");
    let tv = column(&header, &rows, "tv");
    let floor = column(&header, &rows, "tv_floor");
    let snapshots = reference_snapshots(run);
    let eps = stats::tv_deviation(n);
    assert_eq!(chain.len(), tv.len());
    for k in 0..tv.len() {
        let delta = stats::binned_tv(&chain[k], &snapshots[k].1);
        println!(
            "t = {}: tv {:.4} floor {:.4} delta {delta:.2e} eps {eps:.2e}",
            time[k], tv[k], floor[k]
        );
        assert!(
            tv[k] <= floor[k] + delta + eps && tv[k] >= floor[k] - delta - eps,
            "t = {}: tv {} outside the noise floor {} +- (delta {delta} + eps {eps})",
            time[k],
            tv[k],
            floor[k]
        );
    }
}

/// kind = "sde" in 1D with a position-dependent diffusion D = 0.5 + 0.4 tanh(x) (Itô, drift
/// -x): the grid reference solves d rho/dt = d/dx (x rho) + d^2/dx^2 (D rho), and the
/// stationary one is exp(-∫ x/D) / D. Both against the particles. (D is written with a
/// param: an sde with no params at all does not bind its shader's unused params array on
/// lavapipe at present.)
#[test]
fn an_sde_with_position_dependent_diffusion_sits_on_the_noise_floor_of_its_references() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"
seed = 5
[particles]
count = 100_000
dim = 1
init = { kind = "point", at = [1.0] }
[dynamics]
kind = "sde"
drift = ["-x"]
diffusion = "0.5 + a*tanh(x)"
params = { a = 0.4 }
dt = 1e-3
t_end = 1.0
[output]
every = 0.25
histogram = { bins = 64, range = [[-4.0, 4.0]] }
reference = "fokker_planck"
gif = false
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "fp", "--progress", "none"],
        tmp.path(),
    ));
    // The chain's law on cells of a 25th of a bin, on [-6, 8] (the law's tails fall like
    // e^{-x^2 / (2 D)}, D -> 0.1 on the left and 0.9 on the right: e^{-27} at both ends):
    // 2 D dt >= 2e-4 exceeds h^2/12 = 2e-6 everywhere.
    let (lo, hi, bins) = (-4.0, 4.0, 64);
    let h = (hi - lo) / bins as f64 / 25.0;
    let drift = |x: f64| -x;
    let diffusion = |x: f64| 0.5 + 0.4 * x.tanh();
    let steps = [250, 500, 750, 1000];
    let law = chain_law_sde(&drift, &diffusion, 1e-3, 1.0, lo - 2.0, hi + 4.0, h, &steps);
    assert!(law.lost.abs() < 1e-12, "the grid holds the law");
    // At t = 0 both are the point's bin.
    let mut chain = vec![{
        let mut p = vec![0.0; bins];
        p[(1.0 - lo) as usize * bins / 8] = 1.0;
        p
    }];
    chain.extend((0..steps.len()).map(|k| law.bins(k, bins, lo, hi)));
    let run = tmp.path().join("fp");
    within_noise_floor(&run, &chain, 100_000);
    // No potential: no free energy, and no free-energy plot.
    let (header, rows) = metrics(&run);
    let i = header
        .iter()
        .position(|h| h == "free_energy_reference")
        .unwrap();
    assert!(rows.iter().all(|r| r[i].is_empty()));
    assert_eq!(
        manifest(&run)["plots"],
        serde_json::json!(["distances.png"])
    );

    // The stationary density, against the chain at t = 0 and t = 5 (5000 steps): delta is
    // the chain's own distance to the stationary density (the transient left, the time step
    // and the grid together), computed, so no estimate of the relaxation is needed.
    ok(&fokker(
        &[
            "run",
            "s.toml",
            "--out",
            "stationary",
            "--progress",
            "none",
            "--set",
            "output.reference=\"boltzmann\"",
            "--set",
            "dynamics.t_end=5.0",
            "--set",
            "output.every=5.0",
        ],
        tmp.path(),
    ));
    let law = chain_law_sde(
        &drift,
        &diffusion,
        1e-3,
        1.0,
        lo - 2.0,
        hi + 4.0,
        h,
        &[5000],
    );
    assert!(law.lost.abs() < 1e-12, "the grid holds the law");
    let chain = vec![chain[0].clone(), law.bins(0, bins, lo, hi)];
    within_noise_floor(&tmp.path().join("stationary"), &chain, 100_000);
}

/// Langevin dynamics with a moving potential U = (x - c t)^2 / 2 and an annealing schedule
/// T(t) = 0.3 + 0.7 e^{-3t}: the grid reference rebuilds its rates at every step. The
/// particles' chain x' = x - dt (x - c t_k) + sqrt(2 T(t_k) dt) xi is Gaussian from a
/// Gaussian start: mean m' = (1 - dt) m + dt c t_k, variance v' = (1 - dt)^2 v + 2 T(t_k) dt,
/// exactly.
#[test]
fn langevin_with_a_moving_potential_and_a_schedule_sits_on_the_noise_floor() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = r#"
seed = 6
[particles]
count = 100_000
dim = 1
init = { kind = "gaussian", mean = [1.0], std = 0.2 }
[dynamics]
kind = "langevin"
potential = { expr = "0.5*(x - c*t)^2", params = { c = 0.5 } }
temperature = { expr = "0.3 + 0.7*exp(-3*t)" }
dt = 1e-3
t_end = 1.0
[output]
every = 0.25
histogram = { bins = 64, range = [[-3.0, 4.0]] }
reference = "fokker_planck"
gif = false
"#;
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    ok(&fokker(
        &["run", "s.toml", "--out", "run", "--progress", "none"],
        tmp.path(),
    ));
    let (dt, c) = (1e-3, 0.5);
    let schedule = |t: f64| 0.3 + 0.7 * (-3.0 * t).exp();
    let (mut m, mut v) = (1.0, 0.04);
    let mut chain = Vec::new();
    for k in 0..=1000u64 {
        if k % 250 == 0 {
            chain.push(normal_bins(m, v, 64, -3.0, 4.0));
        }
        let t = k as f64 * dt;
        m = (1.0 - dt) * m + dt * c * t;
        v = (1.0 - dt) * (1.0 - dt) * v + 2.0 * schedule(t) * dt;
    }
    let run = tmp.path().join("run");
    within_noise_floor(&run, &chain, 100_000);
    // The free energies are taken at U(t) and T(t): present and finite at every snapshot.
    let (header, rows) = metrics(&run);
    for name in ["free_energy", "free_energy_reference"] {
        assert!(
            column(&header, &rows, name).iter().all(|f| f.is_finite()),
            "{name}"
        );
    }
}
