//! Diffusion dynamics and gradient flows on the GPU against exact answers and their CPU twins:
//! forward marginals of a mixture, reverse SDE / probability flow recovering it, the
//! empirical score, gradient descent and the heavy ball.

mod common;

use fokker::dynamics::diffusion::{Diffusion, diffusion_cpu};
use fokker::dynamics::gradient_flow::heavy_ball_cpu;
use fokker::dynamics::init::init_cpu;
use fokker::dynamics::{TwinContext, TwinState};
use fokker::model::{Mixture, Potential, Process};
use fokker::scenario::data::SampleTable;
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};

fn plan(dim: u32, count: u64, init: Init, dynamics: DynamicsPlan, hist: HistogramSpec) -> Plan {
    Plan {
        name: None,
        seed: 11,
        particles: ParticlesPlan { count, dim, init },
        dynamics,
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

fn hist2(bins: u32, lo: f64, hi: f64) -> HistogramSpec {
    HistogramSpec {
        axes: vec![0, 1],
        bins: vec![bins, bins],
        range: vec![[lo, hi], [lo, hi]],
    }
}

/// Three components that barely overlap (so a particle's component is its nearest mean).
fn separated() -> Mixture {
    Mixture {
        weights: vec![0.5, 0.3, 0.2],
        means: vec![vec![-2.0, -1.0], vec![2.0, -1.0], vec![0.0, 2.0]],
        stds: vec![vec![0.3, 0.3], vec![0.4, 0.25], vec![0.3, 0.3]],
    }
}

/// Overlapping components, anisotropic.
fn blobs() -> Mixture {
    Mixture {
        weights: vec![0.5, 0.3, 0.2],
        means: vec![vec![-1.5, -1.0], vec![1.5, -0.5], vec![0.0, 1.5]],
        stds: vec![vec![0.3, 0.3], vec![0.5, 0.2], vec![0.25, 0.25]],
    }
}

fn vp() -> Process {
    Process::Vp {
        beta_min: 0.1,
        beta_max: 20.0,
    }
}

fn prior(process: &Process, dim: usize) -> Init {
    Init::Gaussian {
        mean: vec![0.0; dim],
        std: vec![process.prior_variance().sqrt(); dim],
    }
}

/// Total variation between a histogram (over `n` particles) and bin probabilities.
fn tv(counts: &[u64], p: &[f64], n: u64) -> f64 {
    let inside: f64 = 0.5
        * counts
            .iter()
            .zip(p)
            .map(|(&c, &q)| (c as f64 / n as f64 - q).abs())
            .sum::<f64>();
    // Mass outside the range counts too.
    let out_emp = 1.0 - counts.iter().sum::<u64>() as f64 / n as f64;
    let out_ref = 1.0 - p.iter().sum::<f64>();
    inside + 0.5 * (out_emp - out_ref).abs()
}

/// Expected TV of n exact samples: sum_b E|p^_b - p_b| / 2 = sum_b sqrt(p_b (1 - p_b) / (2 pi n)).
fn tv_floor(p: &[f64], n: u64) -> f64 {
    p.iter()
        .map(|&q| (q * (1.0 - q) / (2.0 * std::f64::consts::PI * n as f64)).sqrt())
        .sum()
}

/// Runs to each of `checkpoints` (steps) and returns the histogram counts there, and the
/// final positions.
fn run(plan: &Plan, data: Option<&SampleTable>, checkpoints: &[u64]) -> (Vec<Vec<u64>>, Vec<f32>) {
    let gpu = common::gpu();
    let mut sim = Simulation::new(
        &gpu,
        plan,
        None,
        data,
        0,
        plan.particles.count,
        &Layout::default(),
    )
    .expect("simulation");
    let mut hists = Vec::new();
    for &c in checkpoints {
        sim.advance_to(c, |_| Ok(()), &|| false).expect("advance");
        let obs = sim.observe().expect("observe");
        assert_eq!(obs.histogram.nonfinite, 0);
        hists.push(obs.histogram.counts);
    }
    (hists, sim.positions().expect("positions"))
}

#[test]
fn forward_marginals_are_the_pushed_mixture() {
    let n = 200_000;
    let data = blobs();
    let processes = [
        (vp(), 4.0),
        (
            Process::Ve {
                sigma_min: 0.05,
                sigma_max: 3.0,
            },
            12.0,
        ),
        (
            Process::Ou {
                theta: 1.0,
                diffusion: 0.5,
            },
            4.0,
        ),
    ];
    for (process, half) in processes {
        for (integrator, dt, allowance) in [
            (ForwardIntegrator::Exact, 0.01, 0.004),
            // Euler–Maruyama's O(dt) bias in the variance is visible at this N.
            (ForwardIntegrator::EulerMaruyama, 0.002, 0.015),
        ] {
            let steps = (1.0 / dt) as u64;
            let dynamics = DynamicsPlan::Forward(fokker::dynamics::forward::ForwardPlan {
                process,
                integrator,
                dt,
                steps,
                t_end: 1.0,
            });
            let spec = hist2(40, -half, half);
            let p = plan(
                2,
                n,
                Init::Mixture(data.clone()),
                dynamics.clone(),
                spec.clone(),
            );
            let checks = [steps / 10, steps / 3, steps];
            let (hists, _) = run(&p, None, &checks);
            for (counts, step) in hists.iter().zip(checks) {
                let t = dynamics.time_at(step);
                let probs = process.marginal(&data, t).bin_probabilities(
                    &spec.axes,
                    &spec.bins,
                    &spec.range,
                );
                let (d, floor) = (tv(counts, &probs, n), tv_floor(&probs, n));
                assert!(
                    d < 1.5 * floor + allowance,
                    "{process:?} {integrator:?} t = {t}: TV {d} vs floor {floor}"
                );
            }
        }
    }
}

/// Fraction of particles nearest to each component mean.
fn component_fractions(positions: &[f32], m: &Mixture) -> Vec<f64> {
    let mut counts = vec![0u64; m.components()];
    for x in positions.chunks_exact(2) {
        let k = (0..m.components())
            .min_by(|&a, &b| {
                let d = |k: usize| {
                    (f64::from(x[0]) - m.means[k][0]).powi(2)
                        + (f64::from(x[1]) - m.means[k][1]).powi(2)
                };
                d(a).total_cmp(&d(b))
            })
            .expect("components");
        counts[k] += 1;
    }
    let n = (positions.len() / 2) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

fn reverse(score: Score, flow: Option<FlowIntegrator>, steps: u64, t_min: f64) -> DynamicsPlan {
    match flow {
        None => DynamicsPlan::ReverseSde(fokker::dynamics::reverse_sde::ReverseSdePlan {
            process: vp(),
            score,
            t_end: 1.0,
            t_min,
            steps,
            grid: TimeGrid::Uniform,
        }),
        Some(integrator) => {
            DynamicsPlan::ProbabilityFlow(fokker::dynamics::probability_flow::ProbabilityFlowPlan {
                process: vp(),
                score,
                integrator,
                t_end: 1.0,
                t_min,
                steps,
                grid: TimeGrid::Uniform,
            })
        }
    }
}

#[test]
fn reverse_sde_and_probability_flow_recover_the_mixture() {
    let n = 100_000;
    let data = separated();
    let spec = hist2(40, -3.5, 3.5);
    for (flow, steps) in [(None, 500), (Some(FlowIntegrator::Heun), 100)] {
        let dynamics = reverse(Score::Mixture(data.clone()), flow, steps, 1e-3);
        let p = plan(2, n, prior(&vp(), 2), dynamics, spec.clone());
        let (hists, positions) = run(&p, None, &[steps]);
        let fractions = component_fractions(&positions, &data);
        for (f, w) in fractions.iter().zip(&data.weights) {
            let se = (w * (1.0 - w) / n as f64).sqrt();
            assert!(
                (f - w).abs() < 5.0 * se,
                "{flow:?}: weight {f} vs {w} (se {se})"
            );
        }
        let probs =
            vp().marginal(&data, 1e-3)
                .bin_probabilities(&spec.axes, &spec.bins, &spec.range);
        let (d, floor) = (tv(&hists[0], &probs, n), tv_floor(&probs, n));
        assert!(d < 1.5 * floor + 0.01, "{flow:?}: TV {d}, floor {floor}");
    }
}

#[test]
fn heun_beats_euler_at_equal_steps() {
    let n = 100_000;
    let data = blobs();
    let spec = hist2(40, -3.5, 3.5);
    let probs = vp()
        .marginal(&data, 1e-2)
        .bin_probabilities(&spec.axes, &spec.bins, &spec.range);
    let mut tvs = Vec::new();
    for integrator in [FlowIntegrator::Euler, FlowIntegrator::Heun] {
        let dynamics = reverse(Score::Mixture(data.clone()), Some(integrator), 16, 1e-2);
        let p = plan(2, n, prior(&vp(), 2), dynamics, spec.clone());
        let (hists, _) = run(&p, None, &[16]);
        tvs.push(tv(&hists[0], &probs, n));
    }
    let floor = tv_floor(&probs, n);
    // Measured on lavapipe: Euler 0.060, Heun 0.038 (the floor is about 0.01).
    assert!(
        tvs[1] < 0.75 * tvs[0],
        "Heun TV {} vs Euler TV {}",
        tvs[1],
        tvs[0]
    );
    assert!(
        tvs[0] > 3.0 * floor,
        "16 Euler steps should show their bias: {tvs:?}, floor {floor}"
    );
}

/// GPU positions after `steps` vs the f64 twin, particle by particle.
fn assert_twin(plan: &Plan, data: Option<&SampleTable>, steps: u64, tol: f64) {
    let count = plan.particles.count;
    let (_, gpu) = run(plan, data, &[steps]);
    let dim = plan.particles.dim;
    let cpu = init_cpu(&plan.particles.init, None, dim, 0, count, count, plan.seed);
    let mut state = TwinState {
        positions: cpu,
        extra: Vec::new(),
    };
    let cx = TwinContext {
        dim,
        seed: plan.seed,
        data,
        step0: 0,
        steps,
    };
    plan.dynamics.twin(&mut state, &cx).expect("twin");
    let cpu = state.positions;
    let mut worst = 0.0f64;
    for (g, c) in gpu.iter().zip(&cpu) {
        assert!(g.is_finite(), "{:?}: non-finite", plan.dynamics.kind_name());
        worst = worst.max((f64::from(*g) - c).abs() / (1.0 + c.abs()));
    }
    assert!(
        worst < tol,
        "{} dim {dim}: worst relative error {worst}",
        plan.dynamics.kind_name()
    );
}

fn mixture_nd(dim: usize) -> Mixture {
    Mixture {
        weights: vec![0.6, 0.4],
        means: vec![
            (0..dim).map(|i| 1.0 + 0.1 * i as f64).collect(),
            (0..dim).map(|i| -1.0 + 0.2 * i as f64).collect(),
        ],
        stds: vec![
            (0..dim).map(|i| 0.3 + 0.05 * i as f64).collect(),
            vec![0.5; dim],
        ],
    }
}

#[test]
fn fused_kernels_match_the_twin_in_every_dimension() {
    for dim in [1u32, 2, 3, 4, 5, 8] {
        let d = dim as usize;
        let m = mixture_nd(d);
        let hist = HistogramSpec {
            axes: vec![0],
            bins: vec![8],
            range: vec![[-3.0, 3.0]],
        };
        // 37 steps: partial rounds of noise at both ends.
        let kinds = [
            DynamicsPlan::Forward(fokker::dynamics::forward::ForwardPlan {
                process: vp(),
                integrator: ForwardIntegrator::EulerMaruyama,
                dt: 0.01,
                steps: 37,
                t_end: 0.37,
            }),
            DynamicsPlan::ReverseSde(fokker::dynamics::reverse_sde::ReverseSdePlan {
                process: vp(),
                score: Score::Mixture(m.clone()),
                t_end: 1.0,
                t_min: 0.01,
                steps: 37,
                grid: TimeGrid::Uniform,
            }),
            DynamicsPlan::ProbabilityFlow(
                fokker::dynamics::probability_flow::ProbabilityFlowPlan {
                    process: Process::Ve {
                        sigma_min: 0.01,
                        sigma_max: 5.0,
                    },
                    score: Score::Mixture(m.clone()),
                    integrator: FlowIntegrator::Heun,
                    t_end: 1.0,
                    t_min: 0.01,
                    steps: 37,
                    grid: TimeGrid::Uniform,
                },
            ),
        ];
        for dynamics in kinds {
            let p = plan(dim, 300, Init::Mixture(m.clone()), dynamics, hist.clone());
            assert_twin(&p, None, 37, 2e-4);
        }
    }
}

fn table(rows: &[[f32; 2]]) -> SampleTable {
    SampleTable {
        rows: rows.len(),
        dim: 2,
        values: rows.iter().flatten().copied().collect(),
    }
}

fn samples_score(t: &SampleTable) -> Score {
    Score::Samples {
        path: "data.npy".into(),
        rows: t.rows as u64,
        sha256: String::new(),
    }
}

/// 50 points on a spiral.
fn spiral() -> SampleTable {
    let rows: Vec<[f32; 2]> = (0..50)
        .map(|i| {
            let a = 0.3 * i as f32;
            let r = 0.2 + 0.05 * i as f32;
            [r * a.cos(), r * a.sin()]
        })
        .collect();
    table(&rows)
}

#[test]
fn empirical_score_matches_the_twin_for_tiny_variances_and_far_points() {
    let data = spiral();
    let hist = hist2(8, -3.0, 3.0);
    // VE to t_min = 1e-3: s^2 falls to ~1e-6; the particles start 40 units from the data,
    // where every kernel weight underflows without the log-sum-exp shift.
    let ve = Process::Ve {
        sigma_min: 0.001,
        sigma_max: 2.0,
    };
    let far = Init::Gaussian {
        mean: vec![40.0, -40.0],
        std: vec![1.0, 1.0],
    };
    for flow in [None, Some(FlowIntegrator::Heun)] {
        let dynamics = match flow {
            None => DynamicsPlan::ReverseSde(fokker::dynamics::reverse_sde::ReverseSdePlan {
                process: ve,
                score: samples_score(&data),
                t_end: 0.3,
                t_min: 1e-3,
                steps: 9,
                grid: TimeGrid::Uniform,
            }),
            Some(integrator) => DynamicsPlan::ProbabilityFlow(
                fokker::dynamics::probability_flow::ProbabilityFlowPlan {
                    process: ve,
                    score: samples_score(&data),
                    integrator,
                    t_end: 0.3,
                    t_min: 1e-3,
                    steps: 9,
                    grid: TimeGrid::Uniform,
                },
            ),
        };
        // 300 particles: not a multiple of the kernel's tile.
        let p = plan(2, 300, far.clone(), dynamics, hist.clone());
        assert_twin(&p, Some(&data), 9, 1e-3);
    }
}

#[test]
fn empirical_reverse_sde_lands_on_the_data_blurred_by_t_min() {
    let n = 50_000;
    let data = table(&[
        [-2.0, -2.0],
        [2.0, -2.0],
        [0.0, 0.0],
        [-2.0, 2.0],
        [2.0, 2.0],
    ]);
    let t_min = 0.05;
    let dynamics = reverse(samples_score(&data), None, 400, t_min);
    let spec = hist2(48, -3.0, 3.0);
    let p = plan(2, n, prior(&vp(), 2), dynamics, spec.clone());
    let (hists, _) = run(&p, Some(&data), &[400]);
    // The exact law at t_min: equal-weight Gaussians at alpha y_j with variance s^2.
    let (a, s) = (vp().alpha(t_min), vp().s2(t_min).sqrt());
    let blurred = Mixture {
        weights: vec![0.2; 5],
        means: data
            .values
            .chunks_exact(2)
            .map(|y| vec![a * f64::from(y[0]), a * f64::from(y[1])])
            .collect(),
        stds: vec![vec![s, s]; 5],
    };
    let probs = blurred.bin_probabilities(&spec.axes, &spec.bins, &spec.range);
    let (d, floor) = (tv(&hists[0], &probs, n), tv_floor(&probs, n));
    assert!(d < 1.5 * floor + 0.02, "TV {d}, floor {floor}");
}

#[test]
fn probability_flow_is_deterministic() {
    let dynamics = reverse(
        Score::Mixture(blobs()),
        Some(FlowIntegrator::Heun),
        50,
        1e-3,
    );
    let p = plan(2, 20_000, prior(&vp(), 2), dynamics, hist2(32, -3.0, 3.0));
    let (h1, x1) = run(&p, None, &[25, 50]);
    let (h2, x2) = run(&p, None, &[25, 50]);
    assert_eq!(h1, h2);
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&x1), bits(&x2));
}

fn quadratic(a: [[f64; 2]; 2]) -> Potential {
    Potential::Quadratic {
        matrix: a.iter().map(|r| r.to_vec()).collect(),
        center: vec![0.0, 0.0],
    }
}

#[test]
fn gradient_descent_iterates_are_powers_of_i_minus_dt_a() {
    let a = [[2.0, 0.5], [0.5, 1.0]];
    let (dt, steps, count) = (0.05, 120u64, 4096u64);
    let init = Init::Uniform {
        low: vec![-3.0, -3.0],
        high: vec![3.0, 3.0],
    };
    let dynamics = DynamicsPlan::GradientFlow(fokker::dynamics::gradient_flow::GradientFlowPlan {
        potential: quadratic(a),
        dt,
        steps,
        t_end: steps as f64 * dt,
        friction: None,
    });
    let p = plan(2, count, init.clone(), dynamics, hist2(16, -3.0, 3.0));
    let (_, gpu) = run(&p, None, &[steps]);
    let x0 = init_cpu(&init, None, 2, 0, count, count, p.seed);
    // M = (I - dt A)^k by repeated multiplication in f64.
    let mut m = [[1.0, 0.0], [0.0, 1.0]];
    for _ in 0..steps {
        let mut next = [[0.0; 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                next[i][j] = (0..2)
                    .map(|k| (if i == k { 1.0 } else { 0.0 } - dt * a[i][k]) * m[k][j])
                    .sum();
            }
        }
        m = next;
    }
    for (g, x) in gpu.chunks_exact(2).zip(x0.chunks_exact(2)) {
        for i in 0..2 {
            let want = m[i][0] * x[0] + m[i][1] * x[1];
            assert!((f64::from(g[i]) - want).abs() < 1e-5 * (1.0 + x[0].abs() + x[1].abs()));
        }
    }
}

#[test]
fn heavy_ball_matches_its_closed_form_on_a_diagonal_quadratic() {
    let (l1, l2, friction) = (1.0, 4.0, 0.5);
    let (dt, steps, count) = (0.01, 500u64, 1000u64);
    let init = Init::Gaussian {
        mean: vec![1.0, -1.0],
        std: vec![0.5, 0.5],
    };
    let potential = quadratic([[l1, 0.0], [0.0, l2]]);
    let dynamics = DynamicsPlan::GradientFlow(fokker::dynamics::gradient_flow::GradientFlowPlan {
        potential: potential.clone(),
        dt,
        steps,
        t_end: steps as f64 * dt,
        friction: Some(friction),
    });
    let p = plan(2, count, init.clone(), dynamics, hist2(16, -3.0, 3.0));
    let (_, gpu) = run(&p, None, &[steps]);
    let x0 = init_cpu(&init, None, 2, 0, count, count, p.seed);
    // The twin: the same recurrence in f64.
    let mut twin = x0.clone();
    let mut v = vec![0.0; twin.len()];
    heavy_ball_cpu(&mut twin, &mut v, 2, &potential, dt, friction, steps);
    // The continuous solution from rest: x'' + b x' + l x = 0, underdamped (b^2 < 4 l).
    let t = steps as f64 * dt;
    let exact = |x: f64, l: f64| {
        let w = (l - friction * friction / 4.0).sqrt();
        let decay = (-friction * t / 2.0).exp();
        x * decay * ((w * t).cos() + friction / (2.0 * w) * (w * t).sin())
    };
    for ((g, c), x) in gpu
        .chunks_exact(2)
        .zip(twin.chunks_exact(2))
        .zip(x0.chunks_exact(2))
    {
        for (i, l) in [(0, l1), (1, l2)] {
            let g = f64::from(g[i]);
            assert!(
                (g - c[i]).abs() < 1e-5 * (1.0 + x[i].abs()),
                "twin {g} vs {}",
                c[i]
            );
            // Semi-implicit Euler is first order: O(dt) against the ODE.
            assert!(
                (g - exact(x[i], l)).abs() < 0.05 * x[i].abs() + 1e-4,
                "ODE {g} vs {}",
                exact(x[i], l)
            );
        }
    }
}

#[test]
fn heavy_ball_resumes_bit_exactly_with_its_velocities() {
    let dynamics = DynamicsPlan::GradientFlow(fokker::dynamics::gradient_flow::GradientFlowPlan {
        potential: Potential::DoubleWell,
        dt: 0.01,
        steps: 300,
        t_end: 3.0,
        friction: Some(0.3),
    });
    let init = Init::Gaussian {
        mean: vec![0.5, 0.0],
        std: vec![1.0, 1.0],
    };
    let p = plan(2, 50_000, init, dynamics, hist2(16, -3.0, 3.0));
    let (_, straight) = run(&p, None, &[300]);
    // Stop at the first chance, then continue in a new simulation from the saved state.
    let gpu = common::gpu();
    let layout = Layout {
        slice_particles: Some(20_000),
        ..Layout::default()
    };
    let mut sim = Simulation::new(&gpu, &p, None, None, 0, 50_000, &layout).expect("sim");
    let point = match sim.advance_to(300, |_| Ok(()), &|| true).expect("advance") {
        fokker::simulation::Advance::Stopped(point) => point,
        other => panic!("expected a stop, got {other:?}"),
    };
    let (x, v) = (
        sim.positions().expect("positions"),
        sim.extra_state()
            .expect("velocities")
            .expect("heavy ball has velocities"),
    );
    drop(sim);
    let mut resumed = Simulation::new(&gpu, &p, None, None, 0, 50_000, &layout).expect("sim");
    resumed.restore(&x, Some(&v), point).expect("restore");
    resumed
        .advance_to(300, |_| Ok(()), &|| false)
        .expect("advance");
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&resumed.positions().expect("positions")),
        bits(&straight)
    );
    // Without the velocities a resume would be wrong: it is refused.
    let mut bad = Simulation::new(&gpu, &p, None, None, 0, 50_000, &layout).expect("sim");
    assert!(bad.restore(&x, None, point).is_err());
}

/// Reverse dynamics stopped inside a block (some particles advanced, the rest not) resume
/// to the same bytes: the empirical score (one kernel sum per step) and the fused mixture
/// path, whose coefficient tables are uploaded per block.
#[test]
fn reverse_dynamics_resume_bit_exactly_from_inside_a_block() {
    let data = spiral();
    let cases = [
        (reverse(samples_score(&data), None, 24, 0.05), Some(&data)),
        (
            reverse(
                Score::Mixture(blobs()),
                Some(FlowIntegrator::Heun),
                40,
                1e-3,
            ),
            None,
        ),
    ];
    let gpu = common::gpu();
    let layout = Layout {
        slice_particles: Some(16_384),
        fused_steps: Some(8),
        ..Layout::default()
    };
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (dynamics, data) in cases {
        let steps = dynamics.steps();
        let p = plan(2, 40_000, prior(&vp(), 2), dynamics, hist2(16, -3.0, 3.0));
        let mut straight = Simulation::new(&gpu, &p, None, data, 0, 40_000, &layout).unwrap();
        straight.advance_to(steps, |_| Ok(()), &|| false).unwrap();
        let want = bits(&straight.positions().unwrap());
        let mut cut = Simulation::new(&gpu, &p, None, data, 0, 40_000, &layout).unwrap();
        // Let two submissions through, then stop: inside the first block.
        let calls = std::cell::Cell::new(0);
        let stop = || {
            calls.set(calls.get() + 1);
            calls.get() > 1
        };
        let point = match cut.advance_to(steps, |_| Ok(()), &stop).unwrap() {
            fokker::simulation::Advance::Stopped(point) => point,
            other => panic!("expected a stop, got {other:?}"),
        };
        assert!(point.pending.is_some(), "stopped inside a block: {point:?}");
        let x = cut.positions().unwrap();
        let mut resumed = Simulation::new(&gpu, &p, None, data, 0, 40_000, &layout).unwrap();
        resumed.restore(&x, None, point).unwrap();
        resumed.advance_to(steps, |_| Ok(()), &|| false).unwrap();
        assert_eq!(
            bits(&resumed.positions().unwrap()),
            want,
            "{}",
            p.dynamics.kind_name()
        );
    }
}

/// The empirical score down to t_min = 1e-3 (data blurred by s ~ 0.01): a uniform grid's
/// last steps are too coarse to resolve that, a geometric grid's are not.
#[test]
fn a_geometric_grid_lands_on_sharply_blurred_data() {
    let n = 20_000;
    let data = table(&[
        [-2.0, -2.0],
        [2.0, -2.0],
        [0.0, 0.0],
        [-2.0, 2.0],
        [2.0, 2.0],
    ]);
    let spec = hist2(96, -3.0, 3.0);
    let t_min = 1e-3;
    let mut tvs = Vec::new();
    for grid in [TimeGrid::Uniform, TimeGrid::Geometric] {
        let dynamics = DynamicsPlan::ReverseSde(fokker::dynamics::reverse_sde::ReverseSdePlan {
            process: vp(),
            score: samples_score(&data),
            t_end: 1.0,
            t_min,
            steps: 200,
            grid,
        });
        let p = plan(2, n, prior(&vp(), 2), dynamics.clone(), spec.clone());
        let (hists, _) = run(&p, Some(&data), &[200]);
        let law = dynamics
            .exact_law(&p.particles.init, Some(&data), t_min)
            .expect("a closed form");
        let probs = law.bin_probabilities(&spec.axes, &spec.bins, &spec.range);
        tvs.push((tv(&hists[0], &probs, n), tv_floor(&probs, n)));
    }
    let ((uniform, _), (geometric, floor)) = (tvs[0], tvs[1]);
    assert!(
        geometric < 1.3 * floor + 0.005,
        "geometric TV {geometric}, floor {floor}"
    );
    assert!(
        uniform > 2.0 * geometric,
        "uniform TV {uniform} vs geometric {geometric}"
    );
}

/// Near t_min on a geometric grid a reverse step's A - 1 is below 1e-5, where A itself in
/// f32 is off by up to 2^-24: the drift (A - 1) x would be quantised to 2^-24 x, the same
/// amount every particle (a bias of the ensemble mean). The host uploads A - 1 instead; one
/// step from particles around x = 100 then moves the mean exactly as the f64 twin does.
#[test]
fn drift_near_t_min_is_not_quantised_by_f32_coefficients() {
    let n = 16_384u64;
    let data = Mixture {
        weights: vec![1.0],
        means: vec![vec![100.0]],
        stds: vec![vec![1.0]],
    };
    let reverse = fokker::dynamics::reverse_sde::ReverseSdePlan {
        process: vp(),
        score: Score::Mixture(data.clone()),
        t_end: 1.0,
        t_min: 1e-5,
        steps: 1000,
        grid: TimeGrid::Geometric,
    };
    // Among the steps with A - 1 below 1e-5, the one whose A f32 rounds worst.
    let f32_error = |a: f64| (f64::from(a as f32) - a).abs();
    let step = (0..1000)
        .filter(|&k| reverse.coefficients(k).a - 1.0 < 1e-5)
        .max_by(|&i, &j| {
            let (a, b) = (reverse.coefficients(i).a, reverse.coefficients(j).a);
            f32_error(a).total_cmp(&f32_error(b))
        })
        .expect("steps near t_min");
    let c = reverse.coefficients(step);
    let init = Init::Gaussian {
        mean: vec![100.0],
        std: vec![1.0],
    };
    let p = plan(
        1,
        n,
        init,
        DynamicsPlan::ReverseSde(reverse.clone()),
        hist2(4, 90.0, 110.0),
    );
    let gpu = common::gpu();
    let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).unwrap();
    let start = sim.positions().unwrap();
    let point = fokker::simulation::ResumePoint {
        step,
        pending: None,
    };
    sim.restore(&start, None, point).unwrap();
    sim.advance_to(step + 1, |_| Ok(()), &|| false).unwrap();
    let moved = sim.positions().unwrap();
    let mut cpu: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
    diffusion_cpu(&mut cpu, 1, 0, &reverse, None, p.seed, step, 1);
    let bias = moved
        .iter()
        .zip(&cpu)
        .map(|(g, c)| f64::from(*g) - c)
        .sum::<f64>()
        / n as f64;

    // Bound on |bias| with exact A - 1 (eps = 2^-24, positions within [64, 128), so one ulp
    // of x is 2^-17):
    // - the f32 state rounds x + increment to nearest; the increment holds B xi >> ulp, so
    //   the rounding errors are unbiased, uniform over one ulp: the mean of n has standard
    //   deviation ulp / sqrt(12 n); allow 5 of them;
    // - the increment's own f32 arithmetic (a few operations, < 8 eps of its size);
    // - Box–Muller in f32 (log, sqrt, cos/sin at an angle up to 2 pi, each a few ulp): a
    //   normal is off by at most 16 eps r_max, r_max = sqrt(48 ln 2) since u >= 2^-24;
    // - the score's mean alpha mu uploaded in f32 (off by half an ulp of x) shifts every
    //   score by ulp / 2 / (alpha^2 sigma^2 + s^2), times C.
    let eps = f64::from(f32::EPSILON) / 2.0;
    let ulp = 2f64.powi(-17);
    let x_max = start.iter().map(|&v| f64::from(v)).fold(0.0, f64::max);
    assert!(
        start.iter().all(|&v| (64.0..128.0).contains(&v)),
        "positions outside [64, 128)"
    );
    let r_max = (48.0 * std::f64::consts::LN_2).sqrt();
    let variance = c.alpha * c.alpha + c.s2;
    let score_max = start
        .iter()
        .map(|&v| (c.alpha * 100.0 - f64::from(v)).abs() / variance)
        .fold(0.0, f64::max);
    let increment_max = (c.a - 1.0).abs() * x_max + c.c * score_max + c.b * r_max;
    let tolerance = 5.0 * ulp / (12.0 * n as f64).sqrt()
        + 8.0 * eps * increment_max
        + 16.0 * eps * r_max * c.b
        + c.c * 0.5 * ulp / variance;
    // What an f32 A would cost: every particle's drift off by (A_f32 - A) x.
    let quantised = f32_error(c.a) * start.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    assert!(
        quantised > 10.0 * tolerance,
        "step {step}: A = 1 + {:e} rounds too well in f32 for this test to bite",
        c.a - 1.0
    );
    assert!(
        bias.abs() < tolerance,
        "step {step}, A - 1 = {:e}: mean GPU - twin {bias:e} (tolerance {tolerance:e}; an f32 A \
         would give {quantised:e}, of a mean drift {:e})",
        c.a - 1.0,
        (c.a - 1.0) * 100.0
    );
}

/// The diffusion kernels take the noise's 64-bit block from their step uniform: a forward
/// OU block (constant coefficients, so any step index is a valid time) that starts just
/// before block 2^32 and crosses it matches the twin particle by particle, in dimensions
/// whose rounds straddle the boundary (3) and whose steps do (8), and from starts that put
/// the boundary in the single-step head or in a round.
#[test]
fn forward_noise_carries_across_the_32_bit_block_boundary() {
    let (n, dt, steps) = (256u64, 1e-3, 12u64);
    let process = Process::Ou {
        theta: 1.0,
        diffusion: 0.5,
    };
    // Per coordinate, eps = 2^-24, |x| <= 4 (init std 1, 256 particles), B = sqrt(2 D dt)
    // = 0.03, Box–Muller radius r <= sqrt(48 ln 2) = 5.8: a step rounds three operations
    // on values below 5 (<= 15 eps) and its f32 normal is off by at most 16 eps r (log,
    // sqrt, cos/sin at angles up to 2 pi, a few ulp each), times B (< 3 eps); A = 1 -
    // theta dt contracts, so errors add up over the steps: <= 32 eps a step. A wrong noise
    // block is off by about B |xi| ~ 0.03.
    let tolerance = 32.0 * f64::from(f32::EPSILON) / 2.0 * steps as f64;
    let gpu = common::gpu();
    for dim in [3u32, 8] {
        let d = dim as usize;
        let forward = fokker::dynamics::forward::ForwardPlan {
            process,
            integrator: ForwardIntegrator::EulerMaruyama,
            dt,
            steps,
            t_end: steps as f64 * dt,
        };
        let dynamics = DynamicsPlan::Forward(forward.clone());
        let init = Init::Gaussian {
            mean: vec![0.0; d],
            std: vec![1.0; d],
        };
        let p = plan(dim, n, init, dynamics.clone(), hist2(4, -3.0, 3.0));
        let layout = Layout {
            fused_steps: Some(steps as u32),
            ..Layout::default()
        };
        let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &layout).unwrap();
        let start = sim.positions().unwrap();
        let boundary = (1u64 << 34) / u64::from(dim);
        for back in [0u64, 1, 5] {
            let step0 = boundary - back;
            let point = fokker::simulation::ResumePoint {
                step: step0,
                pending: None,
            };
            sim.restore(&start, None, point).unwrap();
            sim.advance_to(step0 + steps, |_| Ok(()), &|| false)
                .unwrap();
            let moved = sim.positions().unwrap();
            let mut cpu: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
            diffusion_cpu(&mut cpu, dim, 0, &forward, None, p.seed, step0, steps);
            let worst = moved
                .iter()
                .zip(&cpu)
                .map(|(g, c)| (f64::from(*g) - c).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < tolerance,
                "dim {dim}, from step {step0}: largest difference from the twin {worst}"
            );
        }
    }
}
