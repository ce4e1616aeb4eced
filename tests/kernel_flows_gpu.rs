//! Kernel flows (sd_flow, mmd_flow, svgd) and interacting particles on the GPU: against their
//! f64 CPU twins step by step, and against what they must converge to.

mod common;

use fokker::dynamics::kernel_flows::{
    interaction_cpu, mmd_flow_cpu, sd_flow_cpu, sd_flow_exact_cpu, svgd_cpu, target_samples,
};
use fokker::gpu::Gpu;
use fokker::model::{Mixture, Potential};
use fokker::observe::{median_bandwidth, mmd2_cpu};
use fokker::scenario::data::SampleTable;
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};

fn plan(count: u64, dim: u32, init: Init, dynamics: DynamicsPlan) -> Plan {
    Plan {
        name: None,
        seed: 11,
        particles: ParticlesPlan { count, dim, init },
        dynamics,
        output: OutputPlan {
            every_steps: None,
            histogram: HistogramSpec {
                axes: vec![0],
                bins: vec![16],
                range: vec![[-5.0, 5.0]],
            },
            heatmap: HeatmapSpec {
                colormap: "viridis".into(),
                scale: Scale::Linear,
            },
            particles: ParticlesOutput::None,
            gif: false,
            trajectories: 0,
            reference: None,
            marginals: Vec::new(),
        },
    }
}

fn gaussian(dim: usize, mean: f64, std: f64) -> Init {
    Init::Gaussian {
        mean: vec![mean; dim],
        std: vec![std; dim],
    }
}

fn mixture(means: Vec<Vec<f64>>, stds: Vec<Vec<f64>>) -> Mixture {
    let k = means.len();
    Mixture {
        weights: vec![1.0 / k as f64; k],
        means,
        stds,
    }
}

fn start<'g>(gpu: &'g Gpu, plan: &Plan, data: Option<&SampleTable>) -> Simulation<'g> {
    Simulation::new(
        gpu,
        plan,
        None,
        data,
        0,
        plan.particles.count,
        &Layout::default(),
    )
    .expect("simulation")
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn advance(s: &mut Simulation<'_>, step: u64) {
    s.advance_to(step, |_| Ok(()), &|| false).expect("advance");
}

/// Runs `steps` steps on the GPU and with `twin` (one step at a time from the same start);
/// returns the largest coordinate difference.
fn gpu_vs_twin(plan: &Plan, steps: u64, twin: &dyn Fn(&mut [f64], u64)) -> f64 {
    let gpu = common::gpu();
    let mut s = start(&gpu, plan, None);
    let mut x = to_f64(&s.positions().expect("positions"));
    advance(&mut s, steps);
    for k in 0..steps {
        twin(&mut x, k);
    }
    let g = to_f64(&s.positions().expect("positions"));
    g.iter()
        .zip(&x)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

fn mixture_target(count: u64, m: Mixture) -> Target {
    Target::Mixture { mixture: m, count }
}

fn targets_of(plan: &Plan) -> Vec<f64> {
    let t = target_samples(
        plan.dynamics.kernel_target().expect("target"),
        None,
        plan.seed,
    )
    .expect("targets");
    to_f64(&t.values)
}

#[test]
fn every_kernel_flow_matches_its_twin_step_by_step() {
    let two = mixture(
        vec![vec![-1.0, 0.5], vec![1.5, -0.5]],
        vec![vec![0.4, 0.3], vec![0.3, 0.5]],
    );
    // sd_flow, exact and approximate source denoiser, in 2 and 3 dimensions.
    for (dim, approximate) in [(2u32, false), (2, true), (3, false)] {
        let m = mixture(vec![vec![1.0; dim as usize]], vec![vec![0.5; dim as usize]]);
        let p = plan(
            300,
            dim,
            gaussian(dim as usize, 0.0, 1.0),
            DynamicsPlan::SdFlow {
                target: mixture_target(257, m),
                sigma: SigmaSchedule::Geometric {
                    start: 0.5,
                    end: 0.2,
                },
                eta: 0.7,
                steps: 4,
                approximate,
                exact_score: false,
            },
        );
        let y = targets_of(&p);
        let worst = gpu_vs_twin(&p, 4, &|x, k| {
            let sigma = SigmaSchedule::Geometric {
                start: 0.5,
                end: 0.2,
            }
            .at(k, 4);
            sd_flow_cpu(x, dim, &y, sigma, 0.7, approximate, 11, k)
        });
        assert!(
            worst < 2e-4,
            "sd_flow dim {dim} approx {approximate}: {worst:e}"
        );
    }
    // sd_flow with the target mixture's exact noised score in place of its samples.
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow {
            target: mixture_target(64, two.clone()),
            sigma: SigmaSchedule::Geometric {
                start: 0.5,
                end: 0.2,
            },
            eta: 0.7,
            steps: 4,
            approximate: false,
            exact_score: true,
        },
    );
    let worst = gpu_vs_twin(&p, 4, &|x, k| {
        let sigma = SigmaSchedule::Geometric {
            start: 0.5,
            end: 0.2,
        }
        .at(k, 4);
        sd_flow_exact_cpu(x, 2, &two, sigma, 0.7, false, 11, k)
    });
    assert!(worst < 2e-4, "sd_flow exact score: {worst:e}");
    // mmd_flow with noise injection.
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::MmdFlow {
            target: mixture_target(200, two.clone()),
            eta: 2.0,
            steps: 4,
            bandwidth: Some(0.8),
            noise: 0.1,
        },
    );
    let y = targets_of(&p);
    let worst = gpu_vs_twin(&p, 4, &|x, k| mmd_flow_cpu(x, 2, &y, 2.0, 0.8, 0.1, 11, k));
    assert!(worst < 2e-4, "mmd_flow: {worst:e}");
    // svgd with the mixture's exact score and a fixed bandwidth.
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::Svgd {
            target: mixture_target(64, two.clone()),
            eta: 0.2,
            steps: 4,
            bandwidth: Some(0.5),
            score_bandwidth: None,
        },
    );
    let worst = gpu_vs_twin(&p, 4, &|x, _| svgd_cpu(x, 2, &|q| two.score(q), 0.2, 0.5));
    assert!(worst < 2e-4, "svgd: {worst:e}");
    // interaction: double well, repulsive Gaussian W, with noise.
    let w = Interaction::Gaussian {
        strength: 0.5,
        width: 0.7,
    };
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::Interaction {
            potential: Potential::DoubleWell,
            interaction: w,
            temperature: 0.3,
            dt: 0.01,
            steps: 4,
            t_end: 0.04,
        },
    );
    let worst = gpu_vs_twin(&p, 4, &|x, k| {
        interaction_cpu(x, 2, &Potential::DoubleWell, w, 0.3, 0.01, 11, k)
    });
    assert!(worst < 2e-4, "interaction: {worst:e}");
}

/// Population mean and covariance (row-major) of rows of `x`.
fn moments(x: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / d) as f64;
    let mut mean = vec![0.0; d];
    for r in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    let mut cov = vec![0.0; d * d];
    for r in x.chunks_exact(d) {
        for a in 0..d {
            for b in 0..d {
                cov[a * d + b] += (r[a] - mean[a]) * (r[b] - mean[b]) / n;
            }
        }
    }
    (mean, cov)
}

#[test]
fn sd_flow_takes_a_gaussian_to_a_gaussian() {
    // N(0, I) -> N(m, diag(s^2)), m = (1.5, -1), s = (0.5, 1.2), from M = 2048 target samples.
    // The flow carries the particles onto the target's sample law: their moments match the
    // samples' to 1e-2 (observed 1e-3), and the samples' match m and S within 4 standard
    // errors (mean s / sqrt M, variance s^2 sqrt(2 / M), covariance s_0 s_1 / sqrt M).
    let (m, s) = ([1.5, -1.0], [0.5, 1.2]);
    let rows = 2048.0f64;
    let gpu = common::gpu();
    let p = plan(
        2048,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow {
            target: mixture_target(2048, mixture(vec![m.to_vec()], vec![s.to_vec()])),
            sigma: SigmaSchedule::Geometric {
                start: 1.0,
                end: 0.3,
            },
            eta: 0.7,
            steps: 100,
            approximate: false,
            exact_score: false,
        },
    );
    let mut sim = start(&gpu, &p, None);
    advance(&mut sim, 100);
    let (mean, cov) = moments(&to_f64(&sim.positions().expect("positions")), 2);
    let (t_mean, t_cov) = moments(&targets_of(&p), 2);
    for k in 0..2 {
        assert!(
            (mean[k] - t_mean[k]).abs() < 1e-2,
            "mean {mean:?} vs samples {t_mean:?}"
        );
        assert!(
            (mean[k] - m[k]).abs() < 4.0 * s[k] / rows.sqrt(),
            "mean {mean:?} vs {m:?}"
        );
        let var = cov[k * 2 + k];
        assert!(
            (var - t_cov[k * 2 + k]).abs() < 1e-2 * var,
            "cov {cov:?} vs samples {t_cov:?}"
        );
        let se = s[k] * s[k] * (2.0 / rows).sqrt();
        assert!(
            (var - s[k] * s[k]).abs() < 4.0 * se,
            "variance {cov:?} vs {s:?}"
        );
    }
    assert!(
        (cov[1] - t_cov[1]).abs() < 1e-2,
        "cov {cov:?} vs samples {t_cov:?}"
    );
    assert!(
        cov[1].abs() < 4.0 * s[0] * s[1] / rows.sqrt(),
        "covariance {cov:?}"
    );
}

fn ring(m: usize) -> SampleTable {
    // Radius 2, radial std 0.1, angles evenly spread with a jitter (deterministic).
    let mut values = Vec::with_capacity(2 * m);
    for j in 0..m {
        let u = (j as f64 * 0.618_033_988_75).fract();
        let angle = std::f64::consts::TAU * u;
        let r = 2.0 + 0.1 * ((j as f64 * 0.754_877_666).fract() * 2.0 - 1.0) * 1.7;
        values.push((r * angle.cos()) as f32);
        values.push((r * angle.sin()) as f32);
    }
    SampleTable {
        rows: m,
        dim: 2,
        values,
    }
}

fn samples_target(rows: u64) -> Target {
    Target::Samples {
        path: "ring (made by the test)".into(),
        rows,
        sha256: String::new(),
    }
}

#[test]
fn sd_flow_reaches_the_ring_and_mmd_falls_tenfold() {
    let gpu = common::gpu();
    let data = ring(2048);
    let p = plan(
        2048,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow {
            target: samples_target(2048),
            sigma: SigmaSchedule::Constant { sigma: 0.3 },
            eta: 0.5,
            steps: 40,
            approximate: false,
            exact_score: false,
        },
    );
    let mut sim = start(&gpu, &p, Some(&data));
    let first = sim.observe().expect("observe").mmd2.expect("mmd2");
    // The GPU diagnostic agrees with its twin.
    let x0 = to_f64(&sim.positions().expect("positions"));
    let h = median_bandwidth(&data);
    let twin = mmd2_cpu(&x0, &to_f64(&data.values), 2, h);
    assert!(
        (first - twin).abs() < 1e-4 * twin.max(1e-3),
        "mmd2 {first} vs twin {twin}"
    );
    advance(&mut sim, 40);
    let last = sim.observe().expect("observe").mmd2.expect("mmd2");
    let y = to_f64(&sim.positions().expect("positions"));
    let radius: f64 = y.chunks_exact(2).map(|p| p[0].hypot(p[1])).sum::<f64>() / 2048.0;
    assert!((radius - 2.0).abs() < 0.05, "mean radius {radius}");
    assert!(last < first / 10.0, "MMD^2 {first} -> {last}");
}

#[test]
fn small_sigma_far_from_the_target_stays_finite_and_arrives() {
    // Source N((30, -30), 0.5^2 I), target the ring: every target weight underflows in a
    // plain sum (|z - y|^2 / (2 sigma^2) ~ 1e5).
    let gpu = common::gpu();
    let data = ring(1024);
    let p = plan(
        1024,
        2,
        Init::Gaussian {
            mean: vec![30.0, -30.0],
            std: vec![0.5, 0.5],
        },
        DynamicsPlan::SdFlow {
            target: samples_target(1024),
            sigma: SigmaSchedule::Constant { sigma: 0.1 },
            eta: 0.5,
            steps: 60,
            approximate: false,
            exact_score: false,
        },
    );
    let mut sim = start(&gpu, &p, Some(&data));
    advance(&mut sim, 60);
    let y = to_f64(&sim.positions().expect("positions"));
    assert!(y.iter().all(|v| v.is_finite()));
    let radius: f64 = y.chunks_exact(2).map(|p| p[0].hypot(p[1])).sum::<f64>() / 1024.0;
    assert!((radius - 2.0).abs() < 0.2, "mean radius {radius}");
}

#[test]
fn svgd_reaches_a_gaussian_target_and_mmd_flow_lowers_mmd() {
    let gpu = common::gpu();
    let (m, s) = ([1.0, -0.5], [0.6, 0.9]);
    let target = mixture(vec![m.to_vec()], vec![s.to_vec()]);
    let p = plan(
        512,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::Svgd {
            target: mixture_target(2048, target.clone()),
            eta: 0.3,
            steps: 300,
            bandwidth: None,
            score_bandwidth: None,
        },
    );
    let mut sim = start(&gpu, &p, None);
    advance(&mut sim, 300);
    let (mean, cov) = moments(&to_f64(&sim.positions().expect("positions")), 2);
    for k in 0..2 {
        assert!((mean[k] - m[k]).abs() < 0.05, "svgd mean {mean:?} vs {m:?}");
        let rel = cov[k * 2 + k] / (s[k] * s[k]) - 1.0;
        assert!(rel.abs() < 0.15, "svgd variance {cov:?} vs {s:?}");
    }

    let p = plan(
        1024,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::MmdFlow {
            target: mixture_target(1024, target),
            eta: 5.0,
            steps: 100,
            bandwidth: None,
            noise: 0.0,
        },
    );
    let mut sim = start(&gpu, &p, None);
    let first = sim.observe().expect("observe").mmd2.expect("mmd2");
    advance(&mut sim, 100);
    let last = sim.observe().expect("observe").mmd2.expect("mmd2");
    assert!(last < first / 10.0, "mmd_flow MMD^2 {first} -> {last}");
}

#[test]
fn quadratic_interaction_matches_the_mean_field_gaussian() {
    // V = (a/2)|x|^2, W = (b/2)|x|^2, Euler–Maruyama with step dt. Per coordinate the
    // deviations from the ensemble mean are an OU chain with rate a + b and the mean one with
    // rate a (noise variance 2 T dt / N): stationary, the EM chain x' = (1 - l dt) x +
    // sqrt(2 T dt) xi has variance T / (l (1 - l dt / 2)), so
    //   E[population variance about the mean] = (1 - 1/N) T / ((a + b)(1 - (a + b) dt / 2)),
    //   Var(mean) = T / (N a (1 - a dt / 2)).
    let (a, b, t, dt, n) = (1.0, 1.0, 0.5, 0.05, 64u64);
    let gpu = common::gpu();
    let p = plan(
        n,
        2,
        gaussian(2, 0.0, 0.5),
        DynamicsPlan::Interaction {
            potential: Potential::Quadratic {
                matrix: vec![vec![a, 0.0], vec![0.0, a]],
                center: vec![0.0, 0.0],
            },
            interaction: Interaction::Quadratic { strength: b },
            temperature: t,
            dt,
            steps: 12_000,
            t_end: 600.0,
        },
    );
    let mut sim = start(&gpu, &p, None);
    // Burn in 10 time units, then sample every 2 (about two correlation times of the mean).
    let every = (2.0 / dt) as u64;
    advance(&mut sim, (10.0 / dt) as u64);
    let (mut spread, mut mean_sq, mut samples) = (0.0, 0.0, 0usize);
    let mut step = (10.0 / dt) as u64;
    while step + every <= 12_000 {
        step += every;
        advance(&mut sim, step);
        let obs = sim.observe().expect("observe");
        for k in 0..2 {
            spread += obs.moments.cov[k * 2 + k];
            mean_sq += obs.moments.mean[k].powi(2);
            samples += 1;
        }
    }
    let spread = spread / samples as f64;
    let var_mean = mean_sq / samples as f64;
    let l = a + b;
    let expect_spread = (1.0 - 1.0 / n as f64) * t / (l * (1.0 - l * dt / 2.0));
    let expect_var_mean = t / (n as f64 * a * (1.0 - a * dt / 2.0));
    // Each snapshot's spread averages 64 particles (relative sd ~ 0.18 per sample, ~1% over
    // the run); the mean's variance from ~580 samples with lag-1 correlation e^-2 has a
    // relative standard error of about 7%: allow 4 of them.
    assert!(
        (spread / expect_spread - 1.0).abs() < 0.05,
        "spread {spread} vs {expect_spread}"
    );
    assert!(
        (var_mean / expect_var_mean - 1.0).abs() < 0.28,
        "Var(mean) {var_mean} vs {expect_var_mean}"
    );
}

/// A step cut short between its submissions leaves the positions as before it, and doing it
/// again gives the same bytes as never stopping. At N = M = 16384 one SD-flow step holds
/// 2 x 2.7e8 interactions, more than one submission's share on a software adapter, so the
/// first stop request lands inside the step.
#[test]
fn a_step_stopped_between_submissions_is_abandoned_and_redone_exactly() {
    let n = 16384;
    let p = plan(
        n,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow {
            target: mixture_target(
                n,
                mixture(
                    vec![vec![1.0, 1.0], vec![-1.0, 1.0]],
                    vec![vec![0.3, 0.3]; 2],
                ),
            ),
            sigma: SigmaSchedule::Constant { sigma: 0.4 },
            eta: 0.5,
            steps: 2,
            approximate: false,
            exact_score: false,
        },
    );
    let gpu = common::gpu();
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut straight = start(&gpu, &p, None);
    let x0 = straight.positions().expect("positions");
    advance(&mut straight, 2);
    let want = bits(&straight.positions().expect("positions"));
    drop(straight);

    let mut cut = start(&gpu, &p, None);
    let asked = std::cell::Cell::new(0);
    let stop = || {
        asked.set(asked.get() + 1);
        true
    };
    let point = match cut.advance_to(2, |_| Ok(()), &stop).expect("advance") {
        fokker::simulation::Advance::Stopped(point) => point,
        other => panic!("expected a stop, got {other:?}"),
    };
    assert_eq!(asked.get(), 1);
    if gpu.adapter.is_software() {
        // Stopped inside step 0: nothing moved.
        assert_eq!(point.step, 0);
        assert_eq!(bits(&cut.positions().expect("positions")), bits(&x0));
    }
    let x = cut.positions().expect("positions");
    let mut resumed = start(&gpu, &p, None);
    resumed.restore(&x, None, point).expect("restore");
    advance(&mut resumed, 2);
    assert_eq!(bits(&resumed.positions().expect("positions")), want);
}
