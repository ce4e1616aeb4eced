//! Underdamped Langevin by BAOAB on the GPU: its exact stationary laws in a harmonic well,
//! its f64 CPU twin, Boltzmann positions in a double well, phase-space histograms, and
//! checkpoint/resume and shard/merge through the binary with the velocities.

mod common;

use common::f32err::{NORMAL_ERROR, U};
use common::sim::{largest_difference, noise_word_boundary, run_block, twin_start};
use common::stats;
use fokker::dynamics::init::init_cpu;
use fokker::dynamics::underdamped::{
    InitialVelocity, UnderdampedPlan, initial_velocities_cpu, underdamped_cpu,
};
use fokker::model::{Mixture, Potential};
use fokker::observe::phase_histogram_cpu;
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};
use std::path::Path;
use std::process::{Command, Output};

fn plan(count: u64, init: Init, dynamics: UnderdampedPlan, hist: HistogramSpec) -> Plan {
    Plan {
        name: None,
        seed: 42,
        boundary: Default::default(),
        particles: ParticlesPlan {
            count,
            dim: dynamics.mass.len() as u32,
            init,
        },
        dynamics: DynamicsPlan::Underdamped(dynamics),
        output: OutputPlan {
            every_steps: None,
            histogram: hist,
            heatmap: HeatmapSpec {
                colormap: "viridis".into(),
                scale: Scale::Log,
            },
            particles: ParticlesOutput::None,
            gif: false,
            trajectories: 0,
            reference: None,
            marginals: Vec::new(),
        },
    }
}

/// U = sum_c k_c x_c^2 / 2.
fn harmonic(k: &[f64]) -> Potential {
    let d = k.len();
    Potential::Quadratic {
        matrix: (0..d)
            .map(|i| (0..d).map(|j| if i == j { k[i] } else { 0.0 }).collect())
            .collect(),
        center: vec![0.0; d],
    }
}

fn underdamped(
    potential: Potential,
    temperature: f64,
    gamma: f64,
    mass: &[f64],
    dt: f64,
    steps: u64,
) -> UnderdampedPlan {
    UnderdampedPlan {
        potential,
        temperature,
        gamma,
        mass: mass.to_vec(),
        initial_velocity: InitialVelocity::Maxwell,
        dt,
        steps,
        t_end: steps as f64 * dt,
    }
}

/// Runs `plan` to its end: (positions, velocities).
fn run(plan: &Plan) -> (Vec<f32>, Vec<f32>, fokker::observe::HistogramCounts) {
    run_with(plan, &Layout::default())
}

fn run_with(
    plan: &Plan,
    layout: &Layout,
) -> (Vec<f32>, Vec<f32>, fokker::observe::HistogramCounts) {
    let gpu = common::gpu();
    let mut sim = Simulation::new(&gpu, plan, None, None, 0, plan.particles.count, layout)
        .expect("simulation");
    sim.advance_to(plan.dynamics.steps(), |_| Ok(()), &|| false)
        .expect("advance");
    let obs = sim.observe().expect("observe");
    (
        sim.positions().expect("positions"),
        sim.extra_state().expect("velocities").expect("velocities"),
        obs.histogram,
    )
}

type Mat2 = [[f64; 2]; 2];

fn mul(a: Mat2, b: Mat2) -> Mat2 {
    let mut c = [[0.0; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            c[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    c
}

fn transpose(a: Mat2) -> Mat2 {
    [[a[0][0], a[1][0]], [a[0][1], a[1][1]]]
}

/// One BAOAB step of one axis of a harmonic well (k, m) as a linear Gaussian recursion
/// z' = M z + q xi on z = (x, v): M = B A O A B with B = [[1, 0], [-k dt / 2m, 1]],
/// A = [[1, dt / 2], [0, 1]], O = diag(1, c), and the O step's noise s xi pushed through the
/// closing A and B: q = B A (0, s).
fn baoab_map(k: f64, m: f64, gamma: f64, temperature: f64, dt: f64) -> (Mat2, [f64; 2]) {
    let b = [[1.0, 0.0], [-k * dt / (2.0 * m), 1.0]];
    let a = [[1.0, dt / 2.0], [0.0, 1.0]];
    let c = (-gamma * dt).exp();
    let o = [[1.0, 0.0], [0.0, c]];
    let s = (-(-2.0 * gamma * dt).exp_m1() * temperature / m).sqrt();
    // M = B A O A B, as (B A) O (A B).
    let (ba, ab) = (mul(b, a), mul(a, b));
    let big_m = mul(ba, mul(o, ab));
    let q = [ba[0][1] * s, ba[1][1] * s];
    (big_m, q)
}

/// The mean and covariance of one axis after `steps` BAOAB steps from independent
/// x ~ N(mx, sx^2), v ~ N(0, T / m), in f64: mu' = M mu, S' = M S M^T + q q^T.
fn chain_moments(
    map: &(Mat2, [f64; 2]),
    mx: f64,
    sx: f64,
    v_var: f64,
    steps: u64,
) -> ([f64; 2], Mat2) {
    let (m, q) = *map;
    let mut mu = [mx, 0.0];
    let mut s = [[sx * sx, 0.0], [0.0, v_var]];
    for _ in 0..steps {
        mu = [
            m[0][0] * mu[0] + m[0][1] * mu[1],
            m[1][0] * mu[0] + m[1][1] * mu[1],
        ];
        s = mul(mul(m, s), transpose(m));
        for i in 0..2 {
            for j in 0..2 {
                s[i][j] += q[i] * q[j];
            }
        }
    }
    (mu, s)
}

/// z for a two-sided test whose false alarm is at most stats::FALSE_ALARM (1e-6): the
/// normal tail P(|Z| > 4.9) = 9.6e-7.
const Z: f64 = 4.9;

/// BAOAB in a harmonic well at omega dt near 1 and at two frictions: the chain is linear
/// Gaussian, so its law after the run is the exact mean and covariance of
/// [`chain_moments`], which at this length is its fixed point to 1e-12, and that fixed
/// point has position variance exactly T / k and end-of-step velocity variance
/// (T / m)(1 - omega^2 dt^2 / 4) (checked in f64 here: Euler–Maruyama's variances are off
/// by tens of percent at omega dt = 0.9). The ensemble's sample mean, variances and x-v
/// covariance must lie within Z standard errors (n particles of a Gaussian: sd of a mean
/// sqrt(S / n), of a variance S sqrt(2 / (n - 1)), of a covariance sqrt((Sxx Svv + Sxv^2)
/// / n)); f32 rounding moves these by about 1e-6 relative, far below the 1e-2 sampling
/// error. The phase-space histogram (axes x0 and v1) from the GPU equals the f64 binning of
/// the read-back positions and velocities, but for values within 1e-5 of a bin edge.
#[test]
fn harmonic_well_has_baoab_exact_stationary_laws() {
    let n = 100_000u64;
    let (k, mass, temperature, dt, steps) = ([1.0, 4.0], [1.0, 2.0], 0.7, 0.9, 400u64);
    let (mean, std) = ([1.0, -0.5], [0.5, 0.5]);
    let spec = HistogramSpec {
        axes: vec![0, 3],
        bins: vec![24, 20],
        range: vec![[-3.0, 3.0], [-2.0, 2.0]],
    };
    for gamma in [0.3, 3.0] {
        let p = plan(
            n,
            Init::Gaussian {
                mean: mean.to_vec(),
                std: std.to_vec(),
            },
            underdamped(harmonic(&k), temperature, gamma, &mass, dt, steps),
            spec.clone(),
        );
        let (x, v, hist) = run(&p);
        for axis in 0..2 {
            let (kk, m) = (k[axis], mass[axis]);
            let omega_dt = (kk / m).sqrt() * dt;
            let map = baoab_map(kk, m, gamma, temperature, dt);
            let (mu, s) = chain_moments(&map, mean[axis], std[axis], temperature / m, steps);
            let (_, fixed) = chain_moments(&map, 0.0, 0.0, 0.0, 20 * steps);
            let exact_xx = temperature / kk;
            let exact_vv = temperature / m * (1.0 - omega_dt * omega_dt / 4.0);
            assert!(
                (fixed[0][0] / exact_xx - 1.0).abs() < 1e-12
                    && (fixed[1][1] / exact_vv - 1.0).abs() < 1e-12,
                "axis {axis}, gamma {gamma}: fixed point {fixed:?}, expected x {exact_xx}, v {exact_vv}"
            );
            for i in 0..2 {
                for j in 0..2 {
                    assert!(
                        (s[i][j] - fixed[i][j]).abs() < 1e-12,
                        "stationary by the end"
                    );
                }
            }
            let col =
                |z: &[f32]| -> Vec<f64> { z.chunks_exact(2).map(|r| f64::from(r[axis])).collect() };
            let (xs, vs) = (col(&x), col(&v));
            let nf = n as f64;
            let avg = |a: &[f64]| a.iter().sum::<f64>() / nf;
            let (mx, mv) = (avg(&xs), avg(&vs));
            let cov = |a: &[f64], ma: f64, b: &[f64], mb: f64| {
                a.iter()
                    .zip(b)
                    .map(|(p, q)| (p - ma) * (q - mb))
                    .sum::<f64>()
                    / (nf - 1.0)
            };
            let (sxx, svv, sxv) = (
                cov(&xs, mx, &xs, mx),
                cov(&vs, mv, &vs, mv),
                cov(&xs, mx, &vs, mv),
            );
            println!(
                "gamma {gamma} axis {axis} (omega dt {omega_dt:.2}): var x {sxx:.4} (exact {exact_xx:.4}), \
                 var v {svv:.4} (exact {exact_vv:.4}, Maxwell {:.4}), cov xv {sxv:.4} (exact {:.4})",
                temperature / m,
                s[0][1]
            );
            let se_var = |var: f64| var * (2.0 / (nf - 1.0)).sqrt();
            let checks = [
                ("mean x", mx, mu[0], (s[0][0] / nf).sqrt()),
                ("mean v", mv, mu[1], (s[1][1] / nf).sqrt()),
                ("var x", sxx, s[0][0], se_var(s[0][0])),
                ("var v", svv, s[1][1], se_var(s[1][1])),
                (
                    "cov xv",
                    sxv,
                    s[0][1],
                    ((s[0][0] * s[1][1] + s[0][1] * s[0][1]) / nf).sqrt(),
                ),
            ];
            for (what, got, want, se) in checks {
                assert!(
                    (got - want).abs() <= Z * se,
                    "gamma {gamma}, axis {axis}: {what} {got} vs exact {want} (allowed {})",
                    Z * se
                );
            }
            // The Maxwellian T / m is far outside for the stored (end-of-step) velocity.
            assert!((temperature / m - s[1][1]).abs() > 10.0 * Z * se_var(s[1][1]));
        }
        // The phase-space histogram: axis 0 = x0, axis 3 = v1.
        let x64: Vec<f64> = x.iter().map(|&a| f64::from(a)).collect();
        let v64: Vec<f64> = v.iter().map(|&a| f64::from(a)).collect();
        let cpu = phase_histogram_cpu(&x64, Some(&v64), 2, &spec);
        let moved = stats::counts_moved(&hist.counts, &cpu.counts);
        let near = (0..n as usize)
            .filter(|&i| {
                [(x64[2 * i], 0), (v64[2 * i + 1], 1)]
                    .iter()
                    .any(|&(val, a)| {
                        let [lo, hi] = spec.range[a];
                        let w = (hi - lo) / f64::from(spec.bins[a]);
                        let r = (val - lo) / w;
                        (r - r.round()).abs() * w < 1e-5
                    })
            })
            .count() as u64;
        assert_eq!(hist.in_range() + hist.outside, n);
        assert!(
            moved <= 2 * near,
            "{moved} counts differ between the GPU and the CPU binning; {near} values near an edge"
        );
    }
}

/// GPU against the f64 twin in a harmonic well (dim 2, masses per axis), particle by
/// particle: both start from the same point with the same Maxwell–Boltzmann velocities
/// (stream STREAM_VELOCITY) and take the same noise. The bound is carried along each
/// particle's twin trajectory, first order in u = 2^-24 (the second-order terms are below
/// 1e-6 of it), through each sub-step as the shader computes it in f32:
/// - initial velocity mean + scale xi: scale's rounding and the product, 2 u |v|, plus
///   scale * NORMAL_ERROR for the f32 Box–Muller normal;
/// - B: v - hm g with hm = dt / 2m rounded (u), g = k x from x off by bx plus its own
///   rounding (the quadratic's (d + 1) u |k x|, as tests/langevin_gpu.rs bounds it): the
///   product 2 u |hm g| + hm (k bx + gerr), the difference u |v'|;
/// - A: x + h v with h = dt / 2 (dt rounded): bx + h bv + 2 u |h v| + u |x'|;
/// - O: c v + s xi: c bv + 2 u |c v| + 2 u |s xi| + s NORMAL_ERROR + u |v'|.
///
/// Within a step these local errors go through the sub-steps' absolute values; across steps
/// through the exact step map's powers (see the comment in the test).
#[test]
fn gpu_agrees_with_the_cpu_twin() {
    let (n, dt, steps, gamma, temperature) = (2000u64, 0.5, 60u64, 1.0, 0.8);
    let (k, mass) = ([1.0, 3.0], [1.0, 2.0]);
    let init = Init::Point {
        at: vec![0.5, -1.0],
    };
    let spec = HistogramSpec {
        axes: vec![0, 2],
        bins: vec![16, 16],
        range: vec![[-3.0, 3.0], [-3.0, 3.0]],
    };
    let dynamics = underdamped(harmonic(&k), temperature, gamma, &mass, dt, steps);
    let p = plan(n, init.clone(), dynamics.clone(), spec);
    let (gx, gv, _) = run(&p);
    let mut x = init_cpu(&init, None, 2, 0, n, n, p.seed);
    let mut v = initial_velocities_cpu(&dynamics, p.seed, 0, x.len());
    // Per coordinate bounds, starting with the initial velocities'.
    let law = dynamics.initial_velocity_law();
    let bv_init: Vec<f64> = v
        .iter()
        .enumerate()
        .map(|(j, vj)| 2.0 * U * vj.abs() + law[j % 2].0 * NORMAL_ERROR)
        .collect();
    {
        let (gv0, _) = {
            let gpu = common::gpu();
            let sim = Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default())
                .expect("simulation");
            (sim.extra_state().expect("read").expect("velocities"), ())
        };
        for (j, (g, c)) in gv0.iter().zip(&v).enumerate() {
            assert!(
                (f64::from(*g) - c).abs() <= bv_init[j],
                "initial velocity {j}: gpu {g} vs twin {c}"
            );
        }
    }
    let (c, s) = dynamics.ou_coefficients();
    let h = 0.5 * dt;
    // Local errors: each step's own rounding, as a bound at the end of that step.
    let mut local: Vec<Vec<[f64; 2]>> = vec![Vec::new(); x.len()];
    // The twin one step at a time.
    for step in 0..steps {
        let (x0, v0) = (x.clone(), v.clone());
        underdamped_cpu(&mut x, &mut v, 0, &dynamics, p.seed, step, 1);
        for j in 0..x.len() {
            let a = j % 2;
            let (kk, hm) = (k[a], h / mass[a]);
            let gerr = |x: f64| 3.0 * U * (kk * x).abs();
            // Intermediate values of this step, rebuilt from the step's start and end:
            // B then A, then O (its noise s xi = v2 - c v1), then A and B.
            let g0 = kk * x0[j];
            let v1 = v0[j] - hm * g0;
            let x1 = x0[j] + h * v1;
            let x2 = x[j];
            let g2 = kk * x2;
            let v2 = v[j] + hm * g2;
            let noise = v2 - c * v1;
            let mut ev = hm * gerr(x0[j]) + 2.0 * U * (hm * g0).abs() + U * v1.abs();
            let mut ex = h * ev + 2.0 * U * (h * v1).abs() + U * x1.abs();
            ev = c * ev
                + 2.0 * U * (c * v1).abs()
                + 2.0 * U * noise.abs()
                + s[a] * NORMAL_ERROR
                + U * v2.abs();
            ex += h * ev + 2.0 * U * (h * v2).abs() + U * x2.abs();
            ev += hm * (kk * ex + gerr(x2)) + 2.0 * U * (hm * g2).abs() + U * v[j].abs();
            local[j].push([ex, ev]);
        }
    }
    // The error's own dynamics is the step's linear map M (the gradient is linear), so
    // e_N = M^N e_0 + sum_n M^(N-1-n) d_n and |e_N| <= |M^N| |e_0| + sum_n |M^(N-1-n)| |d_n|
    // entrywise; M is stable, so its powers stay bounded (unlike the product of the
    // sub-steps' absolute values).
    let powers: Vec<Vec<Mat2>> = (0..2)
        .map(|a| {
            let (m, _) = baoab_map(k[a], mass[a], gamma, temperature, dt);
            let mut p = vec![[[1.0, 0.0], [0.0, 1.0]]];
            for _ in 0..steps {
                p.push(mul(m, *p.last().unwrap()));
            }
            p
        })
        .collect();
    let apply = |p: &Mat2, e: [f64; 2]| {
        [
            p[0][0].abs() * e[0] + p[0][1].abs() * e[1],
            p[1][0].abs() * e[0] + p[1][1].abs() * e[1],
        ]
    };
    let (mut bx, mut bv) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    for j in 0..x.len() {
        let p = &powers[j % 2];
        let mut e = apply(&p[steps as usize], [0.0, bv_init[j]]);
        for (n, d) in local[j].iter().enumerate() {
            let add = apply(&p[steps as usize - 1 - n], *d);
            e = [e[0] + add[0], e[1] + add[1]];
        }
        bx[j] = e[0];
        bv[j] = e[1];
    }
    let mut worst: f64 = 0.0;
    for j in 0..x.len() {
        let (ex, ev) = (
            (f64::from(gx[j]) - x[j]).abs(),
            (f64::from(gv[j]) - v[j]).abs(),
        );
        worst = worst.max(ex / bx[j]).max(ev / bv[j]);
        assert!(
            ex <= bx[j] && ev <= bv[j],
            "coordinate {j}: x gpu {} twin {} (bound {:e}), v gpu {} twin {} (bound {:e})",
            gx[j],
            x[j],
            bx[j],
            gv[j],
            v[j],
            bv[j]
        );
    }
    println!(
        "largest error / bound {worst:.3}; largest bounds x {:e}, v {:e}",
        bx.iter().copied().fold(0.0, f64::max),
        bv.iter().copied().fold(0.0, f64::max)
    );
}

/// Positions in a 1D double well U = (x^2 - 1)^2 relax to Boltzmann's exp(-U / T): TV
/// between the histogram and Boltzmann's bin probabilities (Simpson) within the sampling
/// floor of tests/common/stats.rs plus an allowance delta for the chain's bias. The start is
/// symmetric (equal Gaussians at -1 and 1), so the well masses are 1/2 at every time, as
/// Boltzmann's, and what is left to relax is within the wells, at rate about gamma / 2 = 1
/// (omega^2 = U''(1) = 8 > gamma^2 / 4): after t = 15 it is e^-15. BAOAB's configurational
/// bias is O(dt^2) (Leimkuhler & Matthews 2013; zero for a harmonic well, see above); delta
/// = dt^2 = 4e-4 takes its constant as 1, an estimate rather than a proof (the measured TV
/// is printed beside the floor).
#[test]
fn double_well_positions_are_boltzmann() {
    let (n, dt, steps, temperature, gamma) = (200_000u64, 0.02, 750u64, 0.5, 2.0);
    let bins = 40usize;
    let spec = HistogramSpec {
        axes: vec![0],
        bins: vec![bins as u32],
        range: vec![[-2.0, 2.0]],
    };
    let init = Init::Mixture(Mixture {
        weights: vec![0.5, 0.5],
        means: vec![vec![-1.0], vec![1.0]],
        stds: vec![vec![0.25], vec![0.25]],
    });
    let p = plan(
        n,
        init,
        underdamped(Potential::DoubleWell, temperature, gamma, &[1.0], dt, steps),
        spec,
    );
    let (_, _, hist) = run(&p);
    let density = |x: f64| (-(x * x - 1.0).powi(2) / temperature).exp();
    let simpson = |a: f64, b: f64| {
        let k = 64;
        let h = (b - a) / k as f64;
        (0..=k)
            .map(|i| {
                let w = if i == 0 || i == k {
                    1.0
                } else if i % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                density(a + i as f64 * h) * w
            })
            .sum::<f64>()
            * h
            / 3.0
    };
    let z = simpson(-4.0, 4.0);
    let w = 4.0 / bins as f64;
    let boltzmann: Vec<f64> = (0..bins)
        .map(|b| simpson(-2.0 + w * b as f64, -2.0 + w * (b + 1) as f64) / z)
        .collect();
    let tv = stats::tv(&hist.counts, &boltzmann, n);
    let delta = dt * dt;
    let upper = stats::tv_upper(&boltzmann, n, delta);
    println!(
        "TV(positions, Boltzmann) {tv:.4}; floor {:.4}, allowed {upper:.4}",
        stats::tv_expected(&boltzmann, n)
    );
    assert!(tv <= upper, "TV {tv} > {upper}");
}

/// The default range of a velocity axis holds Maxwell–Boltzmann's ± 4 sqrt(T / m), and
/// velocity axes are refused for other kinds with a message that names them.
#[test]
fn velocity_axes_are_phase_space_for_underdamped_only() {
    let scenario = |kind: &str, extra: &str| {
        format!(
            "[particles]\ncount = 16\ndim = 1\ninit = {{ kind = \"point\", at = [0.0] }}\n\
             [dynamics]\nkind = \"{kind}\"\npotential = {{ kind = \"double_well\" }}\n\
             dt = 0.01\nsteps = 3\n{extra}\n[output]\nhistogram = {{ axes = [0, 1] }}\n"
        )
    };
    let r = resolve_str(
        &scenario("underdamped", "temperature = 0.5\nmass = 2.0"),
        "t.toml",
        Path::new(""),
        &[],
        None,
    )
    .expect("resolves");
    let h = &r.plan.output.histogram;
    assert_eq!(h.axes, vec![0, 1]);
    assert_eq!(h.range[1], [-2.0, 2.0], "4 sqrt(T / m), T = 0.5, m = 2");
    assert_eq!(r.plan.dynamics.velocity_box(0), None);
    let err = resolve_str(
        &scenario("langevin", ""),
        "t.toml",
        Path::new(""),
        &[],
        None,
    )
    .expect_err("no velocity axis for langevin");
    let message = err.to_string();
    assert!(
        message.contains("output.histogram.axes") && message.contains("underdamped"),
        "{message}"
    );
}

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the fokker binary runs")
}

fn fokker_stopped(args: &[&str], cwd: &Path, stop_at: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .env("FOKKER_TEST_STOP_AT", stop_at)
        .output()
        .expect("the fokker binary runs")
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"))
        .expect("json")
}

/// Every density, heatmap, particle and velocity file a run lists.
fn data_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for s in manifest(dir)["snapshots"].as_array().expect("snapshots") {
        for key in ["density", "heatmap", "particles", "velocities"] {
            if let Some(f) = s[key].as_str() {
                files.push(f.to_string());
            }
        }
    }
    files
}

fn assert_same_files(a: &Path, b: &Path) {
    let files = data_files(a);
    assert_eq!(files, data_files(b));
    assert!(
        files
            .iter()
            .filter(|f| f.starts_with("velocities/"))
            .count()
            >= 3
    );
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

const SCENARIO: &str = r#"
seed = 3
[particles]
count = 10_003
dim = 2
init = { kind = "gaussian", mean = [-1.0, 0.0], std = 0.3 }
[dynamics]
kind = "underdamped"
potential = { kind = "double_well" }
temperature = 0.6
gamma = 1.5
mass = [1.0, 2.0]
dt = 0.05
t_end = 1.5
[output]
every = 0.5
histogram = { axes = [0, 2], bins = [40, 30] }
particles = "snapshots"
"#;

/// Interrupted inside the first block (after three submissions of 500 particles: some
/// particles advanced, their velocities with them) and inside the second: the checkpoint
/// holds the velocities, and resume ends with the bytes of the uninterrupted run, the
/// phase-space densities and velocities/ included. Four shards merged equal it too.
#[test]
fn resume_and_merge_are_exact_with_velocities() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SCENARIO).unwrap();
    let slices = ["--slice-particles", "500"];
    let base = ["run", "s.toml", "--progress", "none"];
    let whole = [&base[..], &["--out", "whole"], &slices].concat();
    let o = fokker(&whole, tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (name, stop_at) in [("cut-a", "3"), ("cut-b", "30")] {
        let args = [&base[..], &["--out", name], &slices].concat();
        let o = fokker_stopped(&args, tmp.path(), stop_at);
        assert_eq!(
            o.status.code(),
            Some(75),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let cut = tmp.path().join(name);
        assert!(cut.join("checkpoint/velocity.npy").is_file());
        let o = fokker(&["resume", name, "--progress", "none"], tmp.path());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_same_files(&cut, &tmp.path().join("whole"));
        // The energy observables too (the same particles reduced in the same groups).
        let energy = |dir: &Path| -> Vec<serde_json::Value> {
            manifest(dir)["snapshots"]
                .as_array()
                .expect("snapshots")
                .iter()
                .map(|s| s["energy"].clone())
                .collect()
        };
        assert_eq!(energy(&cut), energy(&tmp.path().join("whole")));
        assert_eq!(
            std::fs::read(cut.join("metrics.csv")).unwrap(),
            std::fs::read(tmp.path().join("whole/metrics.csv")).unwrap()
        );
    }
    let mut shards = Vec::new();
    for i in 0..4 {
        let out = format!("shard-{i}");
        let index = i.to_string();
        let args = [
            &base[..],
            &["--out", &out, "--shard-index", &index, "--shard-count", "4"],
        ]
        .concat();
        let o = fokker(&args, tmp.path());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        shards.push(out);
    }
    let merge: Vec<&str> = ["merge", "merged"]
        .into_iter()
        .chain(shards.iter().map(String::as_str))
        .collect();
    let o = fokker(&merge, tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same_files(&tmp.path().join("merged"), &tmp.path().join("whole"));
    // The shards' energy sums pool to the whole run's, up to the f32 partial sums' grouping:
    // each within (ITEMS + log2 WG) ULP of the sum of |q| on both sides (|grad U|^2 and
    // m v^2 are nonnegative; |U| and |Delta U| are bounded by U + 4 and 12 x^2 + 4 + 1 on
    // the double well, within 100 per particle on this ensemble).
    let u = f64::from(f32::EPSILON) / 2.0;
    let grouping = 2.0 * (f64::from(fokker::observe::energy::ITEMS) + 8.0) * u;
    let (whole, merged) = (
        manifest(&tmp.path().join("whole")),
        manifest(&tmp.path().join("merged")),
    );
    for (w, m) in whole["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .zip(merged["snapshots"].as_array().unwrap())
    {
        let (w, m) = (&w["energy"]["sums"], &m["energy"]["sums"]);
        assert_eq!(w["count"], m["count"]);
        let n = w["count"].as_f64().unwrap();
        for key in ["gradient2", "kinetic", "potential", "laplacian"] {
            let (a, b) = (w[key].as_f64().unwrap(), m[key].as_f64().unwrap());
            let scale = if key == "gradient2" || key == "kinetic" {
                a.abs()
            } else {
                100.0 * n
            };
            assert!(
                (a - b).abs() <= grouping * scale,
                "{key}: {a} whole, {b} merged"
            );
        }
    }
    let csv = std::fs::read_to_string(tmp.path().join("merged/metrics.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",mean_potential,kinetic_temperature,configurational_temperature"),
        "{csv}"
    );
}

/// The kernel steps whole rounds of Philox blocks (every lane known at compile time) between
/// single steps at either end of a dispatch (common/noise.wgsl): in dim 1, 2 and 3 (rounds of
/// 4, 2 and 4 steps) a run of single-step dispatches and one of 7-step dispatches (a head, a
/// body of rounds and a tail, off the round boundaries) give bit-identical positions and
/// velocities.
#[test]
fn whole_rounds_equal_single_steps_bit_for_bit() {
    for k in [vec![1.5], vec![1.0, 3.0], vec![1.0, 2.0, 0.5]] {
        let dim = k.len();
        let mass: Vec<f64> = (0..dim).map(|a| 1.0 + 0.5 * a as f64).collect();
        let dynamics = underdamped(harmonic(&k), 0.8, 1.0, &mass, 0.05, 23);
        let init = Init::Point {
            at: (0..dim).map(|a| 0.5 - 0.4 * a as f64).collect(),
        };
        let spec = HistogramSpec {
            axes: vec![0],
            bins: vec![16],
            range: vec![[-3.0, 3.0]],
        };
        let p = plan(1000, init, dynamics, spec);
        let layout = |fused| Layout {
            fused_steps: Some(fused),
            ..Layout::default()
        };
        let (x1, v1, _) = run_with(&p, &layout(1));
        let (x7, v7, _) = run_with(&p, &layout(7));
        assert_eq!(x1.len(), 1000 * dim);
        let bits = |a: &[f32]| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&x1), bits(&x7), "positions, dim {dim}");
        assert_eq!(bits(&v1), bits(&v7), "velocities, dim {dim}");
        assert!(x1.iter().all(|x| x.is_finite()) && x1.iter().any(|x| *x != x1[0]));
    }
}

/// Free underdamped motion (U = 0, T = m = gamma = 1) between reflecting walls, x in [0, 1]
/// and y in [-1, 2], from the point (0.3, 0.5) with Maxwell velocities, dt = 0.05.
///
/// The law is exact: with U = 0 the B steps do nothing, and the walled chain is, in law, the
/// fold of the free chain (the fold map F is invariant under the reflections about the walls,
/// so F(y) + s h w = F(y + h w) with s = ±1 the parity of the reflections so far, which is
/// also the sign the velocity carries; the O step's noise is symmetric, so s xi is again
/// standard normal). The free chain is Gaussian: x' = x + h (1 + c) v + h s_o xi,
/// v' = c v + s_o xi (h = dt / 2, c = e^{-gamma dt}, s_o^2 = (1 - c^2) T / m), whose
/// variance we follow exactly; the position's bin masses are the image sums of normal masses
/// over the reflections (2 m L shifts and mirror images, |m| <= 40 leave out nothing at
/// these widths). Velocities keep the Maxwell law N(0, T / m) exactly. Positions stay inside
/// the walls. So the only bias is f32 rounding (EPS32 |x| <= 2 EPS32 moves a particle across
/// one of the inner edges only within that distance of it, where the density is below 3 / L:
/// bins * 3 / L * 4 EPS32 < 1e-4 per axis). TV within tests/common/stats.rs's limits at
/// t = 1 (not yet uniform: the mode of wavelength 2 L_y = 6 has decayed by about
/// e^{-(pi/3)^2 t} ~ 0.33) and t = 20 (uniform to ~1e-9).
#[test]
fn reflecting_walls_keep_free_underdamped_motion_inside_with_its_exact_folded_law() {
    let (n, dt, bins) = (20_000u64, 0.05, 20usize);
    let walls = [(0.0, 1.0), (-1.0, 2.0)];
    let spec = HistogramSpec {
        axes: vec![0],
        bins: vec![bins as u32],
        range: vec![[0.0, 1.0]],
    };
    let mut p = plan(
        n,
        Init::Point { at: vec![0.3, 0.5] },
        underdamped(harmonic(&[0.0, 0.0]), 1.0, 1.0, &[1.0, 1.0], dt, 400),
        spec,
    );
    p.boundary.walls = walls
        .iter()
        .map(|&(low, high)| fokker::scenario::boundary::Wall::Reflecting { low, high })
        .collect();
    let gpu = common::gpu();
    let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("sim");
    let (h, c) = (0.5 * dt, (-dt).exp());
    let so2 = 1.0 - c * c;
    let (mut vx, mut cxv, mut vv) = (0.0, 0.0, 1.0);
    let mut done = 0u64;
    for steps in [20u64, 400] {
        for _ in done..steps {
            let a = h * (1.0 + c);
            let nvx = vx + a * a * vv + h * h * so2 + 2.0 * a * cxv;
            cxv = c * cxv + a * c * vv + h * so2;
            vx = nvx;
            vv = c * c * vv + so2;
        }
        done = steps;
        sim.advance_to(steps, |_| Ok(()), &|| false)
            .expect("advance");
        let x = sim.positions().expect("positions");
        let v = sim.extra_state().expect("velocities").expect("velocities");
        for (k, &(low, high)) in walls.iter().enumerate() {
            let (x0, width) = ([0.3, 0.5][k], high - low);
            let w = width / bins as f64;
            let folded: Vec<f64> = (0..bins)
                .map(|b| {
                    let (a, e) = (low + w * b as f64, low + w * (b + 1) as f64);
                    (-40..=40)
                        .map(|m| {
                            let shift = 2.0 * m as f64 * width;
                            normal_mass(a + shift, e + shift, x0, vx.sqrt())
                                + normal_mass(
                                    2.0 * low - e + shift,
                                    2.0 * low - a + shift,
                                    x0,
                                    vx.sqrt(),
                                )
                        })
                        .sum()
                })
                .collect();
            let mut counts = vec![0u64; bins];
            for i in 0..n as usize {
                let xi = f64::from(x[2 * i + k]);
                assert!(
                    (low..=high).contains(&xi),
                    "step {steps}: particle {i} axis {k} at {xi} outside [{low}, {high}]"
                );
                counts[(((xi - low) / w) as usize).min(bins - 1)] += 1;
            }
            let bias = bins as f64 * 3.0 / width * 4.0 * stats::EPS32;
            let tv = stats::tv(&counts, &folded, n);
            let upper = stats::tv_upper(&folded, n, bias);
            let lower = stats::tv_lower(&folded, n, bias);
            println!("step {steps} axis {k}: TV {tv:.4} in [{lower:.4}, {upper:.4}]");
            assert!(tv <= upper && tv >= lower, "step {steps} axis {k}: TV {tv}");
            // Maxwell N(0, 1): the sample variance within Z_LIMIT sqrt(2 / (n - 1)).
            let var = (0..n as usize)
                .map(|i| f64::from(v[2 * i + k]).powi(2))
                .sum::<f64>()
                / n as f64;
            let tol = stats::Z_LIMIT * (2.0 / (n - 1) as f64).sqrt();
            assert!(
                (var - 1.0).abs() < tol,
                "step {steps} axis {k}: var v {var}"
            );
        }
    }
}

fn normal_mass(a: f64, b: f64, mean: f64, std: f64) -> f64 {
    fokker::reference::law::normal_mass(a, b, mean, std)
}

/// The BAOAB kernel's whole rounds keep their noise block's high word through a dispatch
/// (shaders/common/philox.wgsl, `block_in_word`) and the host cuts blocks where it changes
/// (`dispatch_plan`): blocks of 12 steps that start just before the step whose normals reach
/// number 2^34 (a multiple of 2^32 Philox blocks) and run across it follow the twin particle by
/// particle, in dimensions whose rounds straddle the boundary (3) and whose do not (2, 8), and
/// from starts that put it in the single-step head or in a round. Without the cut the steps
/// past the boundary draw the noise of one lap earlier.
#[test]
fn noise_carries_across_the_32_bit_block_boundary() {
    let (n, dt, steps, gamma, temperature) = (256u64, 1e-2, 12u64, 1.0, 0.8);
    // Per coordinate, eps = 2^-24 (U): positions and velocities stay below 4 (Maxwell
    // velocities of variance T = 0.8 and a start of std 0.5, 256 particles, in a unit
    // harmonic well). A BAOAB step rounds about a dozen operations on values below 4 + 4 dt
    // (B, A, O, A, B: <= 12 * 2 U * 4.1 < 100 U), and its O step adds s xi with
    // s = sqrt((1 - c^2) T) < 0.13, so the f32 normal's absolute error NORMAL_ERROR adds
    // 0.13 NORMAL_ERROR. The step map of a unit well at dt = 0.01 has norm at most 1 + dt,
    // so over 12 steps the errors add up to at most 1.01^12 < 1.13 times their sum. A wrong
    // noise block is off by about s |xi| ~ 0.1, a thousand times more.
    let tolerance = steps as f64 * 1.13 * (100.0 * U + 0.13 * NORMAL_ERROR);
    let gpu = common::gpu();
    for dim in [2u32, 3, 8] {
        let d = dim as usize;
        let dynamics = underdamped(
            harmonic(&vec![1.0; d]),
            temperature,
            gamma,
            &vec![1.0; d],
            dt,
            steps,
        );
        let (init, spec) = twin_start(dim);
        let p = plan(n, init, dynamics.clone(), spec);
        let layout = Layout {
            fused_steps: Some(steps as u32),
            ..Layout::default()
        };
        let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &layout).expect("simulation");
        let x0 = sim.positions().expect("positions");
        let v0 = sim.extra_state().expect("read").expect("velocities");
        for back in [0u64, 1, 5] {
            let step0 = noise_word_boundary(dim) - back;
            let (gx, gv) = run_block(&mut sim, &x0, Some(&v0), step0, steps);
            let gv = gv.expect("velocities");
            let mut x: Vec<f64> = x0.iter().map(|&v| f64::from(v)).collect();
            let mut v: Vec<f64> = v0.iter().map(|&v| f64::from(v)).collect();
            underdamped_cpu(&mut x, &mut v, 0, &dynamics, p.seed, step0, steps);
            let worst = largest_difference(&gx, &x).max(largest_difference(&gv, &v));
            assert!(
                worst < tolerance,
                "dim {dim}, from step {step0}: largest difference from the twin {worst} (tolerance {tolerance})"
            );
        }
    }
}
