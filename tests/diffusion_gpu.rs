//! Diffusion dynamics and gradient flows on the GPU against exact answers and their CPU twins:
//! forward marginals of a mixture, reverse SDE / probability flow recovering it, the
//! empirical score, gradient descent and the heavy ball.

mod common;

use common::f32err::{NORMAL_ERROR, U, mixture_score_error};
use common::kernel_bounds::kernel_sum_bounds;
use common::linear_chain::{Scheme, reverse_bias, scheme_law};
use common::sim::{largest_difference, noise_word_boundary, run_block};
use common::stats;
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
        boundary: Default::default(),
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

/// The scheme of reverse dynamics with `flow` (None: the SDE).
fn scheme(flow: Option<FlowIntegrator>) -> Scheme {
    match flow {
        None => Scheme::ReverseSde,
        Some(FlowIntegrator::Euler) => Scheme::FlowEuler,
        Some(FlowIntegrator::Heun) => Scheme::FlowHeun,
    }
}

/// A data table as a mixture of point masses (the empirical score's law at t = 0).
fn points(t: &SampleTable) -> Mixture {
    Mixture {
        weights: vec![1.0 / t.rows as f64; t.rows],
        means: t
            .values
            .chunks_exact(t.dim)
            .map(|y| y.iter().map(|&v| f64::from(v)).collect())
            .collect(),
        stds: vec![vec![0.0; t.dim]; t.rows],
    }
}

/// Asserts E0 - bias - eps <= tv <= E0 + bias + eps (tests/common/stats.rs).
fn assert_tv(counts: &[u64], probs: &[f64], n: u64, bias: f64, what: &str) -> f64 {
    let d = stats::tv(counts, probs, n);
    let (lo, hi) = (
        stats::tv_lower(probs, n, bias),
        stats::tv_upper(probs, n, bias),
    );
    println!("{what}: TV {d:.5} in [{lo:.5}, {hi:.5}] (bias {bias:.2e})");
    assert!(
        lo <= d && d <= hi,
        "{what}: TV {d} outside [{lo}, {hi}]: E0 {}, bias {bias}, deviation {}",
        stats::tv_expected(probs, n),
        stats::tv_deviation(n)
    );
    d
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
        assert_forward_marginals(&process, half, n);
    }
}

/// A vp process whose beta(t) is written as an expression: not linear, with a kink at
/// t = 0.5 (B(t) by quadrature on the host).
fn vp_expression() -> Process {
    let beta = fokker::model::expr::TimeExpr::new(fokker::model::expr::TimeSource {
        expr: "lo + (hi - lo)*t^2 + 2*abs(t - 0.5)".into(),
        params: [("lo".to_string(), 0.1), ("hi".to_string(), 20.0)].into(),
    })
    .expect("a valid schedule");
    Process::VpSchedule(fokker::model::process::BetaSchedule::from(beta))
}

/// A forward run with an expression beta: its histograms follow the chain's and the
/// process's law as the built-in processes' do, and the final moments are the exact law's
/// within their sampling error.
#[test]
fn forward_marginals_with_an_expression_beta_are_the_pushed_mixture() {
    let n = 200_000;
    let process = vp_expression();
    assert_forward_marginals(&process, 4.0, n);
    // Exact transitions to t = 1: mean and variance per axis against the pushed mixture's.
    let dynamics = DynamicsPlan::Forward(fokker::dynamics::forward::ForwardPlan {
        process: process.clone(),
        integrator: ForwardIntegrator::Exact,
        dt: 0.01,
        steps: 100,
        t_end: 1.0,
    });
    let p = plan(2, n, Init::Mixture(blobs()), dynamics, hist2(8, -4.0, 4.0));
    let (_, x) = run(&p, None, &[100]);
    let law = process.marginal(&blobs(), 1.0);
    for axis in 0..2 {
        let v: Vec<f64> = x.chunks_exact(2).map(|r| f64::from(r[axis])).collect();
        let count = v.len() as f64;
        let mean = v.iter().sum::<f64>() / count;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / count;
        let m4 = v.iter().map(|a| (a - mean).powi(4)).sum::<f64>() / count;
        let want_mean: f64 = (0..law.components())
            .map(|k| law.weights[k] * law.means[k][axis])
            .sum();
        let want_var: f64 = (0..law.components())
            .map(|k| law.weights[k] * (law.stds[k][axis].powi(2) + law.means[k][axis].powi(2)))
            .sum::<f64>()
            - want_mean * want_mean;
        // Five standard errors.
        let (mean_tol, var_tol) = (
            5.0 * (var / count).sqrt(),
            5.0 * ((m4 - var * var) / count).sqrt(),
        );
        assert!(
            (mean - want_mean).abs() < mean_tol,
            "axis {axis}: mean {mean} vs {want_mean} (tolerance {mean_tol:e})"
        );
        assert!(
            (var - want_var).abs() < var_tol,
            "axis {axis}: variance {var} vs {want_var} (tolerance {var_tol:e})"
        );
    }
}

/// Reverse dynamics with an expression beta: the GPU follows the twin particle by particle
/// (the coefficients, alpha and s^2 of every step come from the schedule's quadrature).
#[test]
fn reverse_dynamics_with_an_expression_beta_match_the_twin() {
    let m = mixture_nd(2);
    let hist = hist2(8, -3.0, 3.0);
    let kinds = [
        (
            DynamicsPlan::ReverseSde(fokker::dynamics::reverse_sde::ReverseSdePlan {
                process: vp_expression(),
                score: Score::Mixture(m.clone()),
                t_end: 1.0,
                t_min: 0.01,
                steps: 37,
                grid: TimeGrid::Uniform,
            }),
            false,
        ),
        (
            DynamicsPlan::ProbabilityFlow(
                fokker::dynamics::probability_flow::ProbabilityFlowPlan {
                    process: vp_expression(),
                    score: Score::Mixture(m.clone()),
                    integrator: FlowIntegrator::Heun,
                    t_end: 1.0,
                    t_min: 0.01,
                    steps: 37,
                    grid: TimeGrid::Geometric,
                },
            ),
            true,
        ),
    ];
    for (dynamics, heun) in kinds {
        let p = plan(2, 300, Init::Mixture(m.clone()), dynamics, hist.clone());
        let score = TwinScore::Mixture(vp_expression(), &m);
        assert_twin(&p, None, 37, score, heun, 0.5);
    }
}

/// Forward runs of `process` (exact transitions and Euler–Maruyama) from [`blobs`]: the
/// histograms at three times against the chain's own law (and, for exact transitions, that
/// law is the process's marginal), on [-half, half]^2.
fn assert_forward_marginals(process: &Process, half: f64, n: u64) {
    let data = blobs();
    for (integrator, dt) in [
        (ForwardIntegrator::Exact, 0.01),
        (ForwardIntegrator::EulerMaruyama, 0.002),
    ] {
        let steps = (1.0 / dt) as u64;
        let dynamics = DynamicsPlan::Forward(fokker::dynamics::forward::ForwardPlan {
            process: process.clone(),
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
            // Against the chain's own law: no time-step allowance, only f32's.
            let scheme = match integrator {
                ForwardIntegrator::Exact => Scheme::ForwardExact,
                ForwardIntegrator::EulerMaruyama => Scheme::ForwardEm,
            };
            let time_at = |k| dynamics.time_at(k);
            let (law, f32_bias) = scheme_law(scheme, process, &time_at, &data, &data, step);
            if integrator == ForwardIntegrator::Exact {
                // Exact transitions compose to the process's marginal.
                let exact = process.marginal(&data, t);
                for (a, b) in law.stds.iter().flatten().zip(exact.stds.iter().flatten()) {
                    assert!((a - b).abs() < 1e-12 * b, "{a} vs {b}");
                }
            }
            let probs = law.bin_probabilities(&spec.axes, &spec.bins, &spec.range);
            assert_tv(
                counts,
                &probs,
                n,
                f32_bias,
                &format!("{process:?} {integrator:?} t = {t}"),
            );
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
        let p = plan(2, n, prior(&vp(), 2), dynamics.clone(), spec.clone());
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
        let bias = reverse_bias(
            scheme(flow),
            &vp(),
            &|k| dynamics.time_at(k),
            &data,
            steps,
            &spec,
            &probs,
        );
        assert_tv(&hists[0], &probs, n, bias, &format!("{flow:?}"));
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
        let p = plan(2, n, prior(&vp(), 2), dynamics.clone(), spec.clone());
        let (hists, _) = run(&p, None, &[16]);
        // Each on its own within its modelled bias of the exact law.
        let bias = reverse_bias(
            scheme(Some(integrator)),
            &vp(),
            &|k| dynamics.time_at(k),
            &data,
            16,
            &spec,
            &probs,
        );
        tvs.push(assert_tv(
            &hists[0],
            &probs,
            n,
            bias,
            &format!("{integrator:?}"),
        ));
    }
    // Each TV lies within eps = tv_deviation(n) of its mean E0 + (its bias) but for
    // probability FALSE_ALARM (McDiarmid), and E0 is the same for both: if Heun's bias were
    // not below Euler's, tvs[0] - tvs[1] would exceed 2 eps with probability at most
    // 2 FALSE_ALARM. Likewise an unbiased Euler would not exceed E0 + eps.
    let (e0, eps) = (stats::tv_expected(&probs, n), stats::tv_deviation(n));
    assert!(
        tvs[0] - tvs[1] > 2.0 * eps,
        "Heun TV {} vs Euler TV {}: not apart by 2 eps = {}",
        tvs[1],
        tvs[0],
        2.0 * eps
    );
    assert!(
        tvs[0] > e0 + eps,
        "16 Euler steps should show their bias: {tvs:?}, E0 {e0}, eps {eps}"
    );
}

/// What the twin's score is, for its f32 error: none (forward), a mixture's pushed through
/// `process`, or the empirical score of the data set.
enum TwinScore<'a> {
    None,
    Mixture(Process, &'a Mixture),
    Samples(Process, &'a SampleTable),
}

impl TwinScore<'_> {
    /// (score, bound on the f32 score's error, max norm) at x and process time t. The
    /// mixture's: tests/common/f32err.rs on the pushed mixture. The empirical one,
    /// (alpha E[x0 | x] - x) / s^2 with E the kernel mean of the data at variance
    /// s^2 / alpha^2 around x / alpha: alpha / s^2 times the kernel sum's bound
    /// (tests/common/kernel_bounds.rs, whose query product rounding covers x / alpha), and
    /// 3 u of the score for the product, difference and division.
    fn at(&self, x: &[f64], t: f64) -> (Vec<f64>, f64) {
        let norm = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        match self {
            TwinScore::None => (vec![0.0; x.len()], 0.0),
            TwinScore::Mixture(process, m) => {
                let law = process.marginal(m, t);
                (law.score(x), mixture_score_error(&law, x))
            }
            TwinScore::Samples(process, data) => {
                let (alpha, s2) = (process.alpha(t), process.s2(t));
                let d = x.len();
                let q: Vec<f64> = x.iter().map(|v| v / alpha).collect();
                let rows: Vec<f64> = data.values.iter().map(|&v| f64::from(v)).collect();
                let v = s2 / (alpha * alpha);
                let w: Vec<f64> = rows
                    .chunks_exact(d)
                    .map(|y| {
                        -q.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / (2.0 * v)
                    })
                    .collect();
                let top = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = w.iter().map(|e| (e - top).exp()).collect();
                let total: f64 = w.iter().sum();
                let score: Vec<f64> = (0..d)
                    .map(|i| {
                        let mean = rows
                            .chunks_exact(d)
                            .zip(&w)
                            .map(|(y, w)| w * y[i])
                            .sum::<f64>()
                            / total;
                        (alpha * mean - x[i]) / s2
                    })
                    .collect();
                let (mean_err, _) = kernel_sum_bounds(d, &q, &rows, None, v);
                let err = alpha / s2 * norm(&mean_err) + 3.0 * U * norm(&score);
                (score, err)
            }
        }
    }
}

/// GPU positions after `steps` vs the f64 twin, particle by particle, each within its own
/// bound: the error e (max norm) carried by each step's Jacobian J (differences of the
/// twin's step in f64) plus the step's own f32 error at the twin's state. A step
/// x <- a x + c s(x, t) + b xi costs u on a, b, c, three products and two sums (3 u of
/// each term, |xi| <= 5.8), the store (u |x'|), c times the score's error and b times the
/// normal's; Heun's corrector adds c2 times the score's error at the predictor p, and the
/// predictor's own error (c times the score's error, 3 u |p|) carried by at most |J|.
/// The start: init_cpu's mixture or Gaussian in f32, 3 u |x| and `init_std` times the
/// normal's error.
/// The diffusion family's view of a plan whose kind is forward, reverse_sde or
/// probability_flow.
fn as_diffusion(dynamics: &DynamicsPlan) -> &dyn Diffusion {
    match dynamics {
        DynamicsPlan::Forward(p) => p,
        DynamicsPlan::ReverseSde(p) => p,
        DynamicsPlan::ProbabilityFlow(p) => p,
        other => panic!("{} is not a diffusion kind", other.kind_name()),
    }
}

fn assert_twin(
    plan: &Plan,
    data: Option<&SampleTable>,
    steps: u64,
    score: TwinScore<'_>,
    heun: bool,
    init_std: f64,
) {
    let count = plan.particles.count;
    let (_, gpu) = run(plan, data, &[steps]);
    let dim = plan.particles.dim;
    let d = dim as usize;
    let cpu = init_cpu(&plan.particles.init, None, dim, 0, count, count, plan.seed);
    // The registered twin (the whole ensemble at once) is the one the per-step bound
    // below follows one particle at a time.
    let mut whole = TwinState {
        positions: cpu.clone(),
        extra: Vec::new(),
    };
    let cx = TwinContext {
        dim,
        seed: plan.seed,
        data,
        step0: 0,
        steps,
    };
    plan.dynamics.twin(&mut whole, &cx).expect("twin");
    let diffusion = as_diffusion(&plan.dynamics);
    let norm = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut worst = 0.0f64;
    for (p, (g, x0)) in gpu.chunks_exact(d).zip(cpu.chunks_exact(d)).enumerate() {
        let mut x = x0.to_vec();
        let mut e = 3.0 * U * norm(&x) + init_std * NORMAL_ERROR;
        for n in 0..steps {
            let step =
                |y: &mut [f64]| diffusion_cpu(y, dim, p as u64, diffusion, data, plan.seed, n, 1);
            let mut next = x.clone();
            step(&mut next);
            let mut jac = 0.0f64;
            let mut cols = vec![0.0; d];
            for j in 0..d {
                let h = 1e-6 * (1.0 + x[j].abs());
                let mut y = x.clone();
                y[j] += h;
                step(&mut y);
                for i in 0..d {
                    cols[i] += ((y[i] - next[i]) / h).abs();
                }
            }
            for c in &cols {
                jac = jac.max(*c);
            }
            let c = diffusion.coefficients(n);
            let (t, t2) = (plan.dynamics.time_at(n), plan.dynamics.time_at(n + 1));
            let (s1, err1) = score.at(&x, t);
            let terms = c.a.abs() * norm(&x) + c.c.abs() * norm(&s1) + 5.8 * c.b.abs();
            let mut local =
                3.0 * U * terms + U * norm(&next) + c.c.abs() * err1 + c.b.abs() * NORMAL_ERROR;
            if heun {
                let pred: Vec<f64> = (0..d).map(|i| c.a * x[i] + c.c * s1[i]).collect();
                let (s2, err2) = score.at(&pred, t2);
                let pred_err = c.c.abs() * err1 + 3.0 * U * norm(&pred);
                local += c.c2.abs() * err2
                    + 3.0 * U * (c.a2.abs() * norm(&pred) + c.c2.abs() * norm(&s2))
                    + jac * pred_err;
            }
            e = jac * e + local;
            x = next;
        }
        assert_eq!(&whole.positions[p * d..(p + 1) * d], &x[..], "particle {p}");
        let diff = (0..d)
            .map(|i| (f64::from(g[i]) - x[i]).abs())
            .fold(0.0, f64::max);
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{}: non-finite",
            plan.dynamics.kind_name()
        );
        assert!(
            diff <= e,
            "{} dim {dim}: particle {p}: gpu {g:?} vs twin {x:?}: {diff:e} > bound {e:e}",
            plan.dynamics.kind_name()
        );
        worst = worst.max(diff / e);
    }
    println!(
        "{} dim {dim}: largest error / bound {worst:.3}",
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
        let scores = [
            (TwinScore::None, false),
            (TwinScore::Mixture(vp(), &m), false),
            (
                TwinScore::Mixture(
                    Process::Ve {
                        sigma_min: 0.01,
                        sigma_max: 5.0,
                    },
                    &m,
                ),
                true,
            ),
        ];
        for (dynamics, (score, heun)) in kinds.into_iter().zip(scores) {
            let p = plan(dim, 300, Init::Mixture(m.clone()), dynamics, hist.clone());
            // The mixture init's largest standard deviation is 0.5.
            assert_twin(&p, None, 37, score, heun, 0.5);
        }
    }
}

/// A mixture too large for the 64 KiB uniform window (one step of its table is 2 times x 410
/// components x 80 bytes): the fused kernels read it from storage instead.
#[test]
fn many_component_mixture_reads_its_table_from_storage_and_matches_the_twin() {
    let k = 410;
    let m = Mixture {
        weights: vec![1.0 / k as f64; k],
        means: (0..k)
            .map(|i| {
                vec![
                    -2.0 + 4.0 * i as f64 / (k - 1) as f64,
                    0.5 - (i % 7) as f64 / 7.0,
                ]
            })
            .collect(),
        stds: (0..k)
            .map(|i| vec![0.2 + 0.01 * (i % 5) as f64, 0.3])
            .collect(),
    };
    let hist = HistogramSpec {
        axes: vec![0],
        bins: vec![8],
        range: vec![[-3.0, 3.0]],
    };
    let steps = 9;
    let dynamics = DynamicsPlan::ReverseSde(fokker::dynamics::reverse_sde::ReverseSdePlan {
        process: vp(),
        score: Score::Mixture(m.clone()),
        t_end: 1.0,
        t_min: 0.01,
        steps,
        grid: TimeGrid::Uniform,
    });
    let p = plan(2, 200, Init::Mixture(m.clone()), dynamics, hist);
    // The mixture init's largest standard deviation is 0.3.
    assert_twin(&p, None, steps, TwinScore::Mixture(vp(), &m), false, 0.3);
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
                process: ve.clone(),
                score: samples_score(&data),
                t_end: 0.3,
                t_min: 1e-3,
                steps: 9,
                grid: TimeGrid::Uniform,
            }),
            Some(integrator) => DynamicsPlan::ProbabilityFlow(
                fokker::dynamics::probability_flow::ProbabilityFlowPlan {
                    process: ve.clone(),
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
        assert_twin(
            &p,
            Some(&data),
            9,
            TwinScore::Samples(ve.clone(), &data),
            flow.is_some(),
            1.0,
        );
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
    let p = plan(2, n, prior(&vp(), 2), dynamics.clone(), spec.clone());
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
    let bias = reverse_bias(
        Scheme::ReverseSde,
        &vp(),
        &|k| dynamics.time_at(k),
        &points(&data),
        dynamics.steps(),
        &spec,
        &probs,
    );
    assert_tv(&hists[0], &probs, n, bias, "empirical reverse SDE");
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
    // f32 bound per particle (max norm): the uniform start within 3 u (|x| + 3 + 6)
    // (lo + (hi - lo) v); each step x - dt A x costs 3 u of |x| and dt |A x| (the product
    // A x in two terms, the scaling, the difference) and the store u |x'|, and carries the
    // error by ||I - dt A||_inf.
    let norm = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let step_norm = (0..2)
        .map(|i| {
            (0..2)
                .map(|k| ((i == k) as u8 as f64 - dt * a[i][k]).abs())
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    for (g, x) in gpu.chunks_exact(2).zip(x0.chunks_exact(2)) {
        let mut y = x.to_vec();
        let mut e = 3.0 * U * (norm(&y) + 9.0);
        for _ in 0..steps {
            let ay: Vec<f64> = (0..2).map(|i| a[i][0] * y[0] + a[i][1] * y[1]).collect();
            let next: Vec<f64> = (0..2).map(|i| y[i] - dt * ay[i]).collect();
            e = step_norm * e + 3.0 * U * (norm(&y) + dt * norm(&ay)) + U * norm(&next);
            y = next;
        }
        for i in 0..2 {
            let want = m[i][0] * x[0] + m[i][1] * x[1];
            assert!((y[i] - want).abs() < 1e-12, "{} vs {want}", y[i]);
            assert!(
                (f64::from(g[i]) - want).abs() <= e,
                "{g:?} vs {want}: bound {e:e}"
            );
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
    heavy_ball_cpu(&mut twin, &mut v, 2, &potential, dt, friction, 0, steps);
    // The recurrence's own exact solution. Per coordinate (x, v) <- M (x, v) with
    //   M = [[1 - l dt^2, dt (1 - b dt)], [-l dt, 1 - b dt]]   (b the friction),
    // so by Cayley–Hamilton x_{k+1} = tr x_k - det x_{k-1}, tr = 2 - q, q = b dt + l dt^2,
    // det = 1 - b dt, from x_0 and x_1 = (1 - l dt^2) x_0 (from rest). Underdamped
    // (4 l dt^2 > q^2, i.e. b < 2 sqrt(l) - l dt) its roots are r e^(+-i theta),
    // r = sqrt(det), theta = atan2(sqrt(4 l dt^2 - q^2), 2 - q) (4 det - tr^2 written without
    // cancellation), so x_k = r^k (x_0 cos k theta + B sin k theta) with
    // B = (x_1 / r - x_0 cos theta) / sin theta. (r^(1/dt) -> e^(-b/2) and theta / dt ->
    // sqrt(l - b^2 / 4) as dt -> 0: the ODE x'' + b x' + l x = 0's, to first order.)
    let t_steps = steps as f64;
    let closed = |x0: f64, l: f64| -> (f64, f64) {
        let q = friction * dt + l * dt * dt;
        let disc = 4.0 * l * dt * dt - q * q;
        assert!(disc > 0.0, "underdamped");
        let r = (1.0 - friction * dt).sqrt();
        let theta = disc.sqrt().atan2(2.0 - q);
        let x1 = (1.0 - l * dt * dt) * x0;
        let big_b = (x1 / r - x0 * theta.cos()) / theta.sin();
        let rk = r.powi(steps as i32);
        let x = rk * (x0 * (t_steps * theta).cos() + big_b * (t_steps * theta).sin());
        // f64 error (eps = 2^-52): r^k within k ulps relative, the angle k theta within
        // 2 k eps (theta < 1) absolute, so cos and sin within (2 k + 2) eps; B's numerator
        // within 4 eps |x_0| absolute and its quotient over sin theta a few ulps.
        let eps = f64::EPSILON;
        let err = rk * eps * (3.0 * t_steps + 8.0 + 8.0 / theta.sin()) * (x0.abs() + big_b.abs());
        (x, err)
    };
    // Error bound of the recurrence computed with unit round-off u from a start within
    // `start`, carried through v <- v - (b v + l x) dt, x <- x + v dt: the velocity update
    // 4 u of |v'| and dt (b |v| + l |x|) (two products, the sum, the scaling, the
    // difference), the position update 3 u of |x'| and dt |v'|. For the GPU u = 2^-24 and
    // the start within 3 u |x| + 0.5 NORMAL_ERROR (v starts at 0); for the f64 twin
    // u = 2^-53 from the same start.
    let recurrence_bound = |x0: f64, l: f64, u: f64, start: f64| {
        let (mut x, mut v) = (x0, 0.0f64);
        let (mut ex, mut ev) = (start, 0.0);
        for _ in 0..steps {
            let v2 = v - (friction * v + l * x) * dt;
            ev = (1.0 - friction * dt).abs() * ev
                + l * dt * ex
                + 4.0 * u * (v2.abs() + dt * (friction * v.abs() + l * x.abs()));
            let x2 = x + v2 * dt;
            ex = ex + dt * ev + 3.0 * u * (x2.abs() + dt * v2.abs());
            (x, v) = (x2, v2);
        }
        ex
    };
    let f32_bound =
        |x0: f64, l: f64| recurrence_bound(x0, l, U, 3.0 * U * x0.abs() + 0.5 * NORMAL_ERROR);
    for ((g, c), x) in gpu
        .chunks_exact(2)
        .zip(twin.chunks_exact(2))
        .zip(x0.chunks_exact(2))
    {
        for (i, l) in [(0, l1), (1, l2)] {
            let g = f64::from(g[i]);
            let bound = f32_bound(x[i], l);
            assert!(
                (g - c[i]).abs() <= bound,
                "twin {g} vs {}: bound {bound:e}",
                c[i]
            );
            let (want, closed_err) = closed(x[i], l);
            let twin_bound = recurrence_bound(x[i], l, f64::EPSILON / 2.0, 0.0) + closed_err;
            assert!(
                (c[i] - want).abs() <= twin_bound,
                "twin {} vs closed form {want}: bound {twin_bound:e}",
                c[i]
            );
            assert!(
                (g - want).abs() <= bound + closed_err,
                "gpu {g} vs closed form {want}: bound {:e}",
                bound + closed_err
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
        let bias = reverse_bias(
            Scheme::ReverseSde,
            &vp(),
            &|k| dynamics.time_at(k),
            &points(&data),
            dynamics.steps(),
            &spec,
            &probs,
        );
        let d = assert_tv(&hists[0], &probs, n, bias, &format!("{grid:?}"));
        tvs.push((d, probs));
    }
    // The uniform grid's bias shows: its TV is above what an unbiased run reaches, and
    // above the geometric grid's by more than the two TVs' deviations (as in
    // heun_beats_euler_at_equal_steps).
    let ((uniform, probs), (geometric, _)) = (&tvs[0], &tvs[1]);
    let eps = stats::tv_deviation(n);
    assert!(
        *uniform > stats::tv_upper(probs, n, 0.0),
        "uniform TV {uniform} should show the grid's bias"
    );
    assert!(
        uniform - geometric > 2.0 * eps,
        "uniform TV {uniform} vs geometric {geometric}: not apart by 2 eps = {}",
        2.0 * eps
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
            process: process.clone(),
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
        for back in [0u64, 1, 5] {
            let step0 = noise_word_boundary(dim) - back;
            let (moved, _) = run_block(&mut sim, &start, None, step0, steps);
            let mut cpu: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
            diffusion_cpu(&mut cpu, dim, 0, &forward, None, p.seed, step0, steps);
            let worst = largest_difference(&moved, &cpu);
            assert!(
                worst < tolerance,
                "dim {dim}, from step {step0}: largest difference from the twin {worst}"
            );
        }
    }
}
