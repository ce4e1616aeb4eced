//! Kernel flows (sd_flow, mmd_flow, svgd) and interacting particles on the GPU: against their
//! f64 CPU twins step by step, and against what they must converge to.

mod common;

use common::f32err::{NORMAL_ERROR, U, mixture_score_error};
use common::kernel_bounds::kernel_sum_bounds;
use common::linear_chain::STEP_ROUNDING;
use common::stats;
use fokker::dynamics::kernel_flows::{
    interaction_cpu, mmd_flow_cpu, sd_flow_cpu, sd_flow_exact_cpu, svgd_cpu, target_samples,
};
use fokker::gpu::Gpu;
use fokker::model::expr::{PairPotential, TimeSource};
use fokker::model::{Mixture, Potential};
use fokker::observe::{median_bandwidth, mmd2_cpu};
use fokker::scenario::data::SampleTable;
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};

fn plan(count: u64, dim: u32, init: Init, dynamics: DynamicsPlan) -> Plan {
    Plan {
        name: None,
        seed: 11,
        boundary: Default::default(),
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

/// One step's f32 error at the twin's state x (flattened rows), per coordinate: `input`, an
/// error of the step's noised queries z = x + s xi (carried through the step like an error
/// of x), and `output`, the error the step itself adds (kernel sums, products, the store).
struct LocalError {
    input: Vec<f64>,
    output: Vec<f64>,
}

/// Runs `steps` steps on the GPU and with `twin` (one step at a time from the same start)
/// and asserts every coordinate within its bound: the error e carried by each step's
/// Jacobian J (differences of the f64 twin at steps of 1e-6 relative, all particles: the
/// flows couple them; the first-order bound is insensitive to J's O(h) error),
/// e <- |J| (e + input) + output, `local` giving the step's own error ([`LocalError`]).
/// Returns the largest error / bound.
fn gpu_vs_twin(
    plan: &Plan,
    steps: u64,
    twin: &dyn Fn(&mut [f64], u64),
    local: &dyn Fn(&[f64], u64) -> LocalError,
) -> f64 {
    gpu_and_twin(plan, steps, twin, local).worst
}

/// What [`gpu_and_twin`] ran and checked: the GPU's and the twin's positions after the
/// steps, each coordinate's bound, and the largest error / bound.
struct Compared {
    gpu: Vec<f64>,
    twin: Vec<f64>,
    bounds: Vec<f64>,
    worst: f64,
}

/// [`gpu_vs_twin`], returning the positions and bounds as well.
fn gpu_and_twin(
    plan: &Plan,
    steps: u64,
    twin: &dyn Fn(&mut [f64], u64),
    local: &dyn Fn(&[f64], u64) -> LocalError,
) -> Compared {
    let gpu = common::gpu();
    let mut s = start(&gpu, plan, None);
    let mut x = to_f64(&s.positions().expect("positions"));
    advance(&mut s, steps);
    let mut e = vec![0.0; x.len()];
    for k in 0..steps {
        let LocalError { input, output } = local(&x, k);
        let mut next: Vec<f64> = output;
        let mut base = x.clone();
        twin(&mut base, k);
        for j in 0..x.len() {
            let h = 1e-6 * (1.0 + x[j].abs());
            let mut a = x.clone();
            a[j] += h;
            twin(&mut a, k);
            for (n, (pa, pb)) in next.iter_mut().zip(a.iter().zip(&base)) {
                *n += ((pa - pb) / h).abs() * (e[j] + input[j]);
            }
        }
        e = next;
        twin(&mut x, k);
    }
    let g = to_f64(&s.positions().expect("positions"));
    let mut worst = 0.0f64;
    for (i, ((a, b), bound)) in g.iter().zip(&x).zip(&e).enumerate() {
        let diff = (a - b).abs();
        assert!(
            diff <= *bound,
            "coordinate {i}: gpu {a} vs twin {b}: {diff:e} > {bound:e}"
        );
        worst = worst.max(diff / bound);
    }
    println!("bounds up to {:e}", e.iter().copied().fold(0.0, f64::max));
    Compared {
        gpu: g,
        twin: x,
        bounds: e,
        worst,
    }
}

/// The queries z = x + scale xi of a step (proxy noise), and their f32 error.
fn noised(x: &[f64], d: usize, scale: f64, seed: u64, step: u64) -> (Vec<f64>, Vec<f64>) {
    let key = fokker::rng::key_from_seed(seed);
    let (mut z, mut err) = (x.to_vec(), vec![0.0; x.len()]);
    for (k, (z, err)) in z.iter_mut().zip(err.iter_mut()).enumerate() {
        let (i, c) = ((k / d) as u64, (k % d) as u64);
        let xi =
            scale * fokker::rng::normal(key, i, fokker::rng::STREAM_PROXY, step * d as u64 + c);
        *z += xi;
        *err = scale * NORMAL_ERROR + U * (xi.abs() + z.abs());
    }
    (z, err)
}

/// Local error of an SD-flow step y <- y + eta (D_p(z) - D_q(z)): the kernel sums' bounds,
/// times eta, with 2 u of each term for the products and sums; `dp` is D_p and its bound
/// (kernel sum over the targets, or the exact noised score's).
fn sd_flow_local(
    x: &[f64],
    d: usize,
    z: (Vec<f64>, Vec<f64>),
    dp: (Vec<f64>, Vec<f64>),
    sigma: f64,
    eta: f64,
    approximate: bool,
) -> LocalError {
    let (z, z_err) = z;
    let (dq, dq_err) = if approximate {
        (x.to_vec(), vec![0.0; x.len()])
    } else {
        let (mean, _) = kernel_means(&z, x, None, d, sigma * sigma);
        (mean, kernel_sum_bounds(d, &z, x, None, sigma * sigma).0)
    };
    let output = (0..x.len())
        .map(|k| {
            let step = eta * (dp.0[k] - dq[k]);
            eta * (dp.1[k] + dq_err[k])
                + 2.0 * U * ((x[k] + step).abs() + eta * (dp.0[k].abs() + dq[k].abs()))
        })
        .collect();
    LocalError {
        input: z_err,
        output,
    }
}

/// Kernel means and log sums in f64 (the twin's), for the local error models.
fn kernel_means(
    z: &[f64],
    sources: &[f64],
    payload: Option<&[f64]>,
    d: usize,
    variance: f64,
) -> (Vec<f64>, Vec<f64>) {
    let payload = payload.unwrap_or(sources);
    let (mut means, mut logs) = (Vec::new(), Vec::new());
    for q in z.chunks_exact(d) {
        let e: Vec<f64> = sources
            .chunks_exact(d)
            .map(|y| -q.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / (2.0 * variance))
            .collect();
        let top = e.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = e.iter().map(|v| (v - top).exp()).collect();
        let total: f64 = w.iter().sum();
        for c in 0..d {
            let acc: f64 = w
                .iter()
                .zip(payload.chunks_exact(d))
                .map(|(w, p)| w * p[c])
                .sum();
            means.push(acc / total);
        }
        logs.push(top + total.ln());
    }
    (means, logs)
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
            DynamicsPlan::SdFlow(fokker::dynamics::sd_flow::SdFlowPlan {
                target: mixture_target(257, m),
                sigma: SigmaSchedule::Geometric {
                    start: 0.5,
                    end: 0.2,
                },
                eta: 0.7,
                steps: 4,
                approximate,
                exact_score: false,
            }),
        );
        let y = targets_of(&p);
        let d = dim as usize;
        let sigma_at = |k| {
            SigmaSchedule::Geometric {
                start: 0.5,
                end: 0.2,
            }
            .at(k, 4)
        };
        let worst = gpu_vs_twin(
            &p,
            4,
            &|x, k| sd_flow_cpu(x, dim, &y, sigma_at(k), 0.7, approximate, 11, k),
            &|x, k| {
                let sigma = sigma_at(k);
                let z = noised(x, d, sigma, 11, k);
                let dp = (
                    kernel_means(&z.0, &y, None, d, sigma * sigma).0,
                    kernel_sum_bounds(d, &z.0, &y, None, sigma * sigma).0,
                );
                sd_flow_local(x, d, z, dp, sigma, 0.7, approximate)
            },
        );
        println!("sd_flow dim {dim} approx {approximate}: error / bound {worst:.3}");
    }
    // sd_flow with the target mixture's exact noised score in place of its samples.
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow(fokker::dynamics::sd_flow::SdFlowPlan {
            target: mixture_target(64, two.clone()),
            sigma: SigmaSchedule::Geometric {
                start: 0.5,
                end: 0.2,
            },
            eta: 0.7,
            steps: 4,
            approximate: false,
            exact_score: true,
        }),
    );
    let sigma_at = |k| {
        SigmaSchedule::Geometric {
            start: 0.5,
            end: 0.2,
        }
        .at(k, 4)
    };
    let worst = gpu_vs_twin(
        &p,
        4,
        &|x, k| sd_flow_exact_cpu(x, 2, &two, sigma_at(k), 0.7, false, 11, k),
        &|x, k| {
            // D_p(z) = z + sigma^2 score(z): the f32 score's error times sigma^2, and z's.
            let sigma = sigma_at(k);
            let z = noised(x, 2, sigma, 11, k);
            let noisy = fokker::dynamics::kernel_flows::noised_mixture(&two, sigma);
            let (mut dp, mut dp_err) = (Vec::new(), Vec::new());
            for q in z.0.chunks_exact(2) {
                let score = noisy.score(q);
                let err = sigma * sigma * mixture_score_error(&noisy, q);
                for c in 0..2 {
                    dp.push(q[c] + sigma * sigma * score[c]);
                    dp_err.push(err + U * (q[c].abs() + sigma * sigma * score[c].abs()));
                }
            }
            sd_flow_local(x, 2, z, (dp, dp_err), sigma, 0.7, false)
        },
    );
    println!("sd_flow exact score: error / bound {worst:.3}");
    // mmd_flow with noise injection.
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::MmdFlow(fokker::dynamics::mmd_flow::MmdFlowPlan {
            target: mixture_target(200, two.clone()),
            eta: 2.0,
            steps: 4,
            bandwidth: Some(0.8),
            noise: 0.1,
        }),
    );
    let y = targets_of(&p);
    let (eta, h) = (2.0, 0.8f64);
    let worst = gpu_vs_twin(
        &p,
        4,
        &|x, k| mmd_flow_cpu(x, 2, &y, eta, h, 0.1, 11, k),
        &|x, k| {
            // y += eta / h^2 (S_q (z - m_q) - S_p (z - m_p)), S = exp(log) / count: each
            // kernel sum's mean and log bounds (exp adds 8 u, the division u).
            let (z, z_err) = noised(x, 2, 0.1, 11, k);
            let v = h * h;
            let sides = [(&y, y.len() / 2), (&x.to_vec(), x.len() / 2)];
            let mut output = vec![0.0; x.len()];
            let mut step = vec![0.0; x.len()];
            for (side, (sources, count)) in sides.iter().enumerate() {
                let (mean, log) = kernel_means(&z, sources, None, 2, v);
                let (mean_err, log_err) = kernel_sum_bounds(2, &z, sources, None, v);
                let sign = if side == 0 { -1.0 } else { 1.0 };
                for i in 0..x.len() / 2 {
                    let weight = log[i].exp() / *count as f64;
                    for c in 0..2 {
                        let k = 2 * i + c;
                        let gap = z[k] - mean[k];
                        step[k] += sign * eta / v * weight * gap;
                        output[k] += eta / v
                            * weight
                            * (mean_err[k] + U * gap.abs() + (log_err[i] + 9.0 * U) * gap.abs());
                    }
                }
            }
            for k in 0..x.len() {
                output[k] += 2.0 * U * ((x[k] + step[k]).abs() + step[k].abs());
            }
            LocalError {
                input: z_err,
                output,
            }
        },
    );
    println!("mmd_flow: error / bound {worst:.3}");
    // svgd with the mixture's exact score and a fixed bandwidth.
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::Svgd(fokker::dynamics::svgd::SvgdPlan {
            target: mixture_target(64, two.clone()),
            eta: 0.2,
            steps: 4,
            bandwidth: Some(0.5),
            score_bandwidth: None,
        }),
    );
    let (eta, h) = (0.2, 0.5);
    let worst = gpu_vs_twin(
        &p,
        4,
        &|x, _| svgd_cpu(x, 2, &|q| two.score(q), eta, h),
        &|x, _| {
            // y += eta / n S (m_s + 2 / h (y - m)), S = exp(log): the score payloads' f32
            // error moves m_s by at most its largest; the kernel sums' bounds for the rest.
            let n = x.len() / 2;
            let scores: Vec<f64> = x.chunks_exact(2).flat_map(|q| two.score(q)).collect();
            let score_err = x
                .chunks_exact(2)
                .map(|q| mixture_score_error(&two, q))
                .fold(0.0, f64::max);
            let (ms, log) = kernel_means(x, x, Some(&scores), 2, h / 2.0);
            let (ms_err, log_err) = kernel_sum_bounds(2, x, x, Some(&scores), h / 2.0);
            let (m, _) = kernel_means(x, x, None, 2, h / 2.0);
            let (m_err, _) = kernel_sum_bounds(2, x, x, None, h / 2.0);
            let output = (0..x.len())
                .map(|k| {
                    let s = log[k / 2].exp();
                    let inner = ms[k] + 2.0 / h * (x[k] - m[k]);
                    let step = eta / n as f64 * s * inner;
                    eta / n as f64
                        * s
                        * (ms_err[k]
                            + score_err
                            + 2.0 / h * (m_err[k] + U * (x[k] - m[k]).abs())
                            + (log_err[k / 2] + 9.0 * U) * inner.abs()
                            + 3.0 * U * inner.abs())
                        + 2.0 * U * ((x[k] + step).abs() + step.abs())
                })
                .collect();
            LocalError {
                input: vec![0.0; x.len()],
                output,
            }
        },
    );
    println!("svgd: error / bound {worst:.3}");
    // interaction: double well, repulsive Gaussian W, with noise.
    let w = Interaction::Gaussian {
        strength: 0.5,
        width: 0.7,
    };
    let p = plan(
        300,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::Interaction(fokker::dynamics::interaction::InteractionPlan {
            potential: Potential::DoubleWell,
            interaction: w.clone(),
            temperature: 0.3,
            dt: 0.01,
            steps: 4,
            t_end: 0.04,
        }),
    );
    let (temperature, dt, strength, width) = (0.3, 0.01, 0.5f64, 0.7f64);
    let worst = gpu_vs_twin(
        &p,
        4,
        &|x, k| interaction_cpu(x, 2, &Potential::DoubleWell, &w, temperature, dt, 11, k),
        &|x, _| gaussian_interaction_error(x, strength, width, temperature, dt),
    );
    println!("interaction: error / bound {worst:.3}");
}

/// The double well's gradient's f32 error at x (2D): 4 u (4 |x|^3 + 4 |x|) on axis 0, u |x|
/// on axis 1.
fn double_well_gradient_error(x: f64, axis: usize) -> f64 {
    if axis == 0 {
        4.0 * U * (4.0 * x.abs().powi(3) + 4.0 * x.abs())
    } else {
        U * x.abs()
    }
}

/// One interaction step's f32 error in the double well (2D) with the built-in Gaussian W.
fn gaussian_interaction_error(
    x: &[f64],
    strength: f64,
    width: f64,
    temperature: f64,
    dt: f64,
) -> LocalError {
    // y += -(grad V + kappa / n S (y - m)) dt + sqrt(2 T dt) xi: the double well's
    // gradient in f32, the kernel sum's bounds, the normal's error, 3 u of each term for the
    // products, sums and the store (|xi| <= 5.8).
    let n = x.len() / 2;
    let kappa = strength / (width * width);
    let (m, log) = kernel_means(x, x, None, 2, width * width);
    let (m_err, log_err) = kernel_sum_bounds(2, x, x, None, width * width);
    let noise = (2.0 * temperature * dt).sqrt();
    let output = (0..x.len())
        .map(|k| {
            let (i, c) = (k / 2, k % 2);
            let s = log[i].exp();
            let gap = x[k] - m[k];
            let grad = Potential::DoubleWell.gradient(&x[2 * i..2 * i + 2])[c];
            let grad_err = double_well_gradient_error(x[k], c);
            let pair = kappa / n as f64 * s * gap;
            let pair_err = kappa / n as f64
                * s
                * (m_err[k] + U * gap.abs() + (log_err[i] + 12.0 * U) * gap.abs());
            dt * (grad_err + pair_err)
                + noise * NORMAL_ERROR
                + 3.0 * U * (x[k].abs() + dt * (grad + pair).abs() + 6.0 * noise)
        })
        .collect();
    LocalError {
        input: vec![0.0; x.len()],
        output,
    }
}

/// One interaction step's f32 error in the double well (2D) with W = strength exp(-r^2 /
/// (2 width^2)) written as an expression: the pair sum P_i = sum_j c_ij (y_i - y_j) with
/// c_ij = 2 W'(s_ij) = -(strength / width^2) exp(-a_ij), a_ij = s_ij / (2 width^2), from the
/// generated code (src/model/expr; params rounded to f32). Per pair: s within
/// (dim + 2) u = 4 u relative (the f32 differences, their squares, the fma sum); a then
/// within (4 + 4) u a more (width^2 rounded, the division), exp within (8 + 4 a) u (a few
/// ulp, and the WGSL allowance growing with |a|), 1 / (2 width^2) and the two products
/// 7 u: |dc| <= |c| (12 a + 15) u; the term c (y_i - y_j) adds u. The sum: sequential fma
/// sums of tiles of at most 256 terms, each partial sum rounded (256 u of the sum of
/// |terms|), tiles combined with Kahan compensation (2 u |P|). The update y - (grad V + P /
/// N) dt + sqrt(2 T dt) xi: 1 / N and its product 2 u |P| / N, then as the built-in's.
fn expression_interaction_error(
    x: &[f64],
    strength: f64,
    width: f64,
    temperature: f64,
    dt: f64,
) -> LocalError {
    let n = x.len() / 2;
    let tile = n.min(256) as f64;
    let noise = (2.0 * temperature * dt).sqrt();
    let mut output = vec![0.0; x.len()];
    for i in 0..n {
        let (mut p, mut abs_sum, mut term_err) = ([0.0; 2], [0.0; 2], [0.0; 2]);
        for j in 0..n {
            let d = [x[2 * i] - x[2 * j], x[2 * i + 1] - x[2 * j + 1]];
            let s = d[0] * d[0] + d[1] * d[1];
            if s == 0.0 {
                continue;
            }
            let a = s / (2.0 * width * width);
            let c = -(strength / (width * width)) * (-a).exp();
            let rel = (12.0 * a + 16.0) * U;
            for axis in 0..2 {
                let t = c * d[axis];
                p[axis] += t;
                abs_sum[axis] += t.abs();
                term_err[axis] += t.abs() * rel;
            }
        }
        for axis in 0..2 {
            let k = 2 * i + axis;
            let sum_err = term_err[axis] + tile * U * abs_sum[axis] + 2.0 * U * p[axis].abs();
            let pair = p[axis] / n as f64;
            let pair_err = (sum_err + 2.0 * U * p[axis].abs()) / n as f64;
            let grad = Potential::DoubleWell.gradient(&x[2 * i..2 * i + 2])[axis];
            output[k] = dt * (double_well_gradient_error(x[k], axis) + pair_err)
                + noise * NORMAL_ERROR
                + 3.0 * U * (x[k].abs() + dt * (grad + pair).abs() + 6.0 * noise);
        }
    }
    LocalError {
        input: vec![0.0; x.len()],
        output,
    }
}

/// A Gaussian W written as an expression (`user_pair` generated into the kernel sum, its
/// params in a buffer): the GPU against its f64 twin step by step within bounds from f32's
/// unit round-off and the number of terms summed ([`expression_interaction_error`]), and
/// against the built-in Gaussian interaction from the same start: the two runs differ by no
/// more than the sum of their bounds to their twins, which agree to f64 round-off.
#[test]
fn pair_potential_expression_matches_its_twin_and_the_built_in() {
    let (n, steps) = (300u64, 4u64);
    let (strength, width, temperature, dt) = (0.5f64, 0.7f64, 0.3, 0.01);
    let expr = Interaction::Expr(
        PairPotential::new(TimeSource {
            expr: "eps*exp(-r^2/(2*w^2))".into(),
            params: [("eps".to_string(), strength), ("w".to_string(), width)].into(),
        })
        .expect("a valid pair potential"),
    );
    let built_in = Interaction::Gaussian { strength, width };
    let run = |w: &Interaction, local: &dyn Fn(&[f64], u64) -> LocalError| {
        let p = plan(
            n,
            2,
            gaussian(2, 0.0, 1.0),
            DynamicsPlan::Interaction(fokker::dynamics::interaction::InteractionPlan {
                potential: Potential::DoubleWell,
                interaction: w.clone(),
                temperature,
                dt,
                steps,
                t_end: steps as f64 * dt,
            }),
        );
        let twin = |x: &mut [f64], k: u64| {
            interaction_cpu(x, 2, &Potential::DoubleWell, w, temperature, dt, p.seed, k)
        };
        gpu_and_twin(&p, steps, &twin, local)
    };
    let e = run(&expr, &|x, _| {
        expression_interaction_error(x, strength, width, temperature, dt)
    });
    println!("expression interaction: error / bound {:.3}", e.worst);
    let b = run(&built_in, &|x, _| {
        gaussian_interaction_error(x, strength, width, temperature, dt)
    });
    let mut worst = 0.0f64;
    for k in 0..e.gpu.len() {
        let twins = (e.twin[k] - b.twin[k]).abs();
        assert!(
            twins < 1e-12,
            "coordinate {k}: the twins differ by {twins:e}"
        );
        let bound = e.bounds[k] + b.bounds[k] + twins;
        let diff = (e.gpu[k] - b.gpu[k]).abs();
        assert!(
            diff <= bound,
            "coordinate {k}: expression {} vs built-in {}: {diff:e} > {bound:e}",
            e.gpu[k],
            b.gpu[k]
        );
        worst = worst.max(diff / bound);
    }
    println!("expression vs built-in: difference / bound {worst:.3}");
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

/// Standard errors, for n independent draws of N(m, diag(s^2)), of the moments [`moments`]
/// returns: the mean s_k / sqrt(n); the population variance (n v / s_k^2 is chi-square
/// with n - 1 degrees of freedom: mean (1 - 1/n) s_k^2, standard deviation
/// s_k^2 sqrt(2 (n - 1)) / n); the covariance of independent coordinates s_0 s_1 / sqrt(n).
struct MomentErrors {
    mean: [f64; 2],
    var: [f64; 2],
    cov: f64,
}

fn moment_errors(s: [f64; 2], n: f64) -> MomentErrors {
    MomentErrors {
        mean: [s[0] / n.sqrt(), s[1] / n.sqrt()],
        var: [0, 1].map(|k| s[k] * s[k] * (2.0 * (n - 1.0)).sqrt() / n),
        cov: s[0] * s[1] / n.sqrt(),
    }
}

/// Asserts the moments of rows `x` (n of them, 2 per row) are those of n independent
/// draws of N(m, diag(s^2)): within Z_LIMIT standard errors of the exact moments.
fn assert_gaussian_moments(x: &[f64], m: [f64; 2], s: [f64; 2], what: &str) {
    let n = (x.len() / 2) as f64;
    let (mean, cov) = moments(x, 2);
    let se = moment_errors(s, n);
    for k in 0..2 {
        assert!(
            (mean[k] - m[k]).abs() < stats::Z_LIMIT * se.mean[k],
            "{what}: mean {mean:?} vs {m:?}"
        );
        let expect = (1.0 - 1.0 / n) * s[k] * s[k];
        assert!(
            (cov[k * 2 + k] - expect).abs() < stats::Z_LIMIT * se.var[k],
            "{what}: variance {cov:?} vs {s:?}"
        );
    }
    assert!(
        cov[1].abs() < stats::Z_LIMIT * se.cov,
        "{what}: covariance {cov:?}"
    );
}

/// MMD^2 of the rows `x` against the target rows `y` at the diagnostic's bandwidth (the
/// median of the targets' distances), in f64.
fn mmd2_of(x: &[f64], y: &[f64]) -> (f64, f64) {
    let table = SampleTable {
        rows: y.len() / 2,
        dim: 2,
        values: y.iter().map(|&v| v as f32).collect(),
    };
    let h = median_bandwidth(&table);
    (mmd2_cpu(x, y, 2, h), h)
}

#[test]
fn sd_flow_takes_a_gaussian_to_a_gaussian() {
    // N(0, I) -> N(m, diag(s^2)), m = (1.5, -1), s = (0.5, 1.2), from M = 2048 target
    // samples. The samples are M independent draws: their moments within Z_LIMIT (4.9,
    // two-sided 1e-6) standard errors of m and S ([`moment_errors`]). The flow carries the
    // particles onto the samples' law: at least as close as N independent draws of the
    // target would be, which for the moments is within Z_LIMIT standard errors of the
    // difference of two independent samples' moments (sqrt(se_N^2 + se_M^2); the
    // variances' means differ by (1/M - 1/N) s^2), and for the MMD^2 against the samples
    // the noise floor of tests/common/mmd.rs.
    let (m, s) = ([1.5, -1.0], [0.5, 1.2]);
    let (n, rows) = (2048u64, 2048u64);
    let gpu = common::gpu();
    let p = plan(
        n,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow(fokker::dynamics::sd_flow::SdFlowPlan {
            target: mixture_target(rows, mixture(vec![m.to_vec()], vec![s.to_vec()])),
            sigma: SigmaSchedule::Geometric {
                start: 1.0,
                end: 0.3,
            },
            eta: 0.7,
            steps: 100,
            approximate: false,
            exact_score: false,
        }),
    );
    let mut sim = start(&gpu, &p, None);
    let x0 = to_f64(&sim.positions().expect("positions"));
    advance(&mut sim, 100);
    let x = to_f64(&sim.positions().expect("positions"));
    let y = targets_of(&p);
    assert_gaussian_moments(&y, m, s, "target samples");
    let (mean, cov) = moments(&x, 2);
    let (t_mean, t_cov) = moments(&y, 2);
    let (se_n, se_m) = (moment_errors(s, n as f64), moment_errors(s, rows as f64));
    let both = |a: f64, b: f64| stats::Z_LIMIT * (a * a + b * b).sqrt();
    for k in 0..2 {
        assert!(
            (mean[k] - t_mean[k]).abs() < both(se_n.mean[k], se_m.mean[k]),
            "mean {mean:?} vs samples {t_mean:?}"
        );
        let shift = (1.0 / rows as f64 - 1.0 / n as f64) * s[k] * s[k];
        assert!(
            (cov[k * 2 + k] - t_cov[k * 2 + k] - shift).abs() < both(se_n.var[k], se_m.var[k]),
            "cov {cov:?} vs samples {t_cov:?}"
        );
    }
    assert!(
        (cov[1] - t_cov[1]).abs() < both(se_n.cov, se_m.cov),
        "cov {cov:?} vs samples {t_cov:?}"
    );
    let (first, h) = mmd2_of(&x0, &y);
    let (last, _) = mmd2_of(&x, &y);
    let floor = common::mmd::floor_gaussian(n, &m, &s, &y, h);
    println!("sd_flow gaussian: MMD^2 {first:e} -> {last:e}, floor {floor:e}");
    assert!(
        first > floor,
        "the start is within the floor: {first} <= {floor}"
    );
    assert!(last <= floor, "MMD^2 {first} -> {last}: floor {floor}");
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
fn sd_flow_reaches_the_ring_within_the_noise_floor() {
    let gpu = common::gpu();
    let data = ring(2048);
    let p = plan(
        2048,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::SdFlow(fokker::dynamics::sd_flow::SdFlowPlan {
            target: samples_target(2048),
            sigma: SigmaSchedule::Constant { sigma: 0.3 },
            eta: 0.5,
            steps: 40,
            approximate: false,
            exact_score: false,
        }),
    );
    let mut sim = start(&gpu, &p, Some(&data));
    let first = sim.observe().expect("observe").mmd2.expect("mmd2");
    // The GPU diagnostic agrees with its twin.
    let x0 = to_f64(&sim.positions().expect("positions"));
    let h = median_bandwidth(&data);
    let y0 = to_f64(&data.values);
    let twin = mmd2_cpu(&x0, &y0, 2, h);
    // The GPU's MMD^2 is xx / n^2 + (target term, f64) - 2 xy / (n m), xx and xy the sums
    // over queries of exp(out_log): each row sum S_i within its log's bound b_i relative
    // (tests/common/kernel_bounds.rs), so MMD^2 within (sum_i S^xx_i b^xx_i) / n^2 +
    // 2 (sum_i S^xy_i b^xy_i) / (n m).
    let (n, m) = ((x0.len() / 2) as f64, (y0.len() / 2) as f64);
    let spread = |sources: &[f64]| -> f64 {
        let (_, log_bound) = kernel_sum_bounds(2, &x0, sources, None, h * h);
        x0.chunks_exact(2)
            .zip(&log_bound)
            .map(|(q, b)| {
                let s: f64 = sources
                    .chunks_exact(2)
                    .map(|y| {
                        (-((q[0] - y[0]).powi(2) + (q[1] - y[1]).powi(2)) / (2.0 * h * h)).exp()
                    })
                    .sum();
                s * b
            })
            .sum()
    };
    let bound = spread(&x0) / (n * n) + 2.0 * spread(&y0) / (n * m);
    assert!(
        (first - twin).abs() <= bound,
        "mmd2 {first} vs twin {twin}: bound {bound:e}"
    );
    advance(&mut sim, 40);
    let y = to_f64(&sim.positions().expect("positions"));
    assert_reaches_the_table(&x0, &y, &y0, h, "ring");
}

/// For a sample-table target the target law is the table's own empirical law P_M: N
/// independent draws of it have a mean radius within Z_LIMIT sd_r / sqrt(N) of the
/// table's (sd_r the table's radius spread: the standard error of a mean of N draws), and
/// an MMD^2 against the table below the noise floor (tests/common/mmd.rs). A flow that
/// reaches P_M ends at least that close, from a start `x0` the diagnostic tells apart.
fn assert_reaches_the_table(x0: &[f64], x: &[f64], table: &[f64], h: f64, what: &str) {
    let radii = |x: &[f64]| -> Vec<f64> { x.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect() };
    let (n, m) = ((x.len() / 2) as f64, (table.len() / 2) as f64);
    let target = radii(table);
    let r_mean = target.iter().sum::<f64>() / m;
    let r_sd = (target.iter().map(|r| (r - r_mean).powi(2)).sum::<f64>() / m).sqrt();
    let radius = radii(x).iter().sum::<f64>() / n;
    let allowed = stats::Z_LIMIT * r_sd / n.sqrt();
    println!("{what}: mean radius {radius} vs {r_mean} (allowed {allowed:e})");
    assert!(
        (radius - r_mean).abs() < allowed,
        "{what}: mean radius {radius} vs the table's {r_mean}: allowed {allowed:e}"
    );
    let (first, last) = (mmd2_cpu(x0, table, 2, h), mmd2_cpu(x, table, 2, h));
    let floor = common::mmd::floor_empirical(n as u64, table, 2, h);
    println!("{what}: MMD^2 {first:e} -> {last:e}, floor {floor:e}");
    assert!(
        first > floor,
        "{what}: the start is within the floor: {first} <= {floor}"
    );
    assert!(
        last <= floor,
        "{what}: MMD^2 {first} -> {last}: floor {floor}"
    );
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
        DynamicsPlan::SdFlow(fokker::dynamics::sd_flow::SdFlowPlan {
            target: samples_target(1024),
            sigma: SigmaSchedule::Constant { sigma: 0.1 },
            eta: 0.5,
            steps: 60,
            approximate: false,
            exact_score: false,
        }),
    );
    let mut sim = start(&gpu, &p, Some(&data));
    advance(&mut sim, 60);
    let x = to_f64(&sim.positions().expect("positions"));
    assert!(x.iter().all(|v| v.is_finite()));
    // Arrived on the ring, not on its law: at sigma = 0.1 the flow moves mass only locally,
    // so in 60 steps the particles cover the arc nearest their start (the MMD^2 to the
    // table stays far above its noise floor). In ring() radius and angle come from
    // independent sequences, so the radii of the targets reached, whichever arc, are draws
    // of the table's radial law: the particles' mean radius is a weighted mean of
    // K_eff = 1 / sum_c w_c^2 such draws (w_c the fraction of particles nearest target c),
    // within Z_LIMIT sd_r / sqrt(K_eff) of the table's mean radius; their offsets from
    // those targets get no allowance.
    let table = to_f64(&data.values);
    let mut share = vec![0.0f64; table.len() / 2];
    for p in x.chunks_exact(2) {
        let nearest = table
            .chunks_exact(2)
            .map(|q| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2))
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("targets")
            .0;
        share[nearest] += 1.0 / 1024.0;
    }
    let k_eff = 1.0 / share.iter().map(|w| w * w).sum::<f64>();
    let radii: Vec<f64> = table.chunks_exact(2).map(|p| p[0].hypot(p[1])).collect();
    let r_mean = radii.iter().sum::<f64>() / radii.len() as f64;
    let r_sd =
        (radii.iter().map(|r| (r - r_mean).powi(2)).sum::<f64>() / radii.len() as f64).sqrt();
    let radius: f64 = x.chunks_exact(2).map(|p| p[0].hypot(p[1])).sum::<f64>() / 1024.0;
    let allowed = stats::Z_LIMIT * r_sd / k_eff.sqrt();
    println!("far start: mean radius {radius} vs {r_mean}, K_eff {k_eff:.1}, allowed {allowed:e}");
    assert!(
        (radius - r_mean).abs() < allowed,
        "mean radius {radius} vs the table's {r_mean}: allowed {allowed:e}"
    );
}

#[test]
fn svgd_and_mmd_flow_reach_a_gaussian_target_within_the_noise_floor() {
    let gpu = common::gpu();
    let (m, s) = ([1.0, -0.5], [0.6, 0.9]);
    let target = mixture(vec![m.to_vec()], vec![s.to_vec()]);
    let p = plan(
        512,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::Svgd(fokker::dynamics::svgd::SvgdPlan {
            target: mixture_target(2048, target.clone()),
            eta: 0.3,
            steps: 300,
            bandwidth: None,
            score_bandwidth: None,
        }),
    );
    let mut sim = start(&gpu, &p, None);
    let x0 = to_f64(&sim.positions().expect("positions"));
    advance(&mut sim, 300);
    // SVGD targets the law itself (its exact score): the particles' moments as those of N
    // independent draws of it, and their MMD^2 against the target samples below the floor.
    let x = to_f64(&sim.positions().expect("positions"));
    let (mean, cov) = moments(&x, 2);
    println!("svgd: mean {mean:?} cov {cov:?}");
    assert_gaussian_moments(&x, m, s, "svgd");
    let y = targets_of(&p);
    let (first, h) = mmd2_of(&x0, &y);
    let (last, _) = mmd2_of(&x, &y);
    let floor = common::mmd::floor_gaussian(512, &m, &s, &y, h);
    println!("svgd: MMD^2 {first:e} -> {last:e}, floor {floor:e}");
    assert!(
        first > floor,
        "svgd start within the floor: {first} <= {floor}"
    );
    assert!(last <= floor, "svgd MMD^2 {first} -> {last}: floor {floor}");

    let p = plan(
        1024,
        2,
        gaussian(2, 0.0, 1.0),
        DynamicsPlan::MmdFlow(fokker::dynamics::mmd_flow::MmdFlowPlan {
            target: mixture_target(1024, target),
            eta: 5.0,
            steps: 100,
            bandwidth: None,
            noise: 0.0,
        }),
    );
    let mut sim = start(&gpu, &p, None);
    let x0 = to_f64(&sim.positions().expect("positions"));
    advance(&mut sim, 100);
    // The MMD flow descends the MMD^2 to its target samples: it must end below the noise
    // floor of an independent sample of the target law, from a start above it.
    let x = to_f64(&sim.positions().expect("positions"));
    let y = targets_of(&p);
    let (first, h) = mmd2_of(&x0, &y);
    let (last, _) = mmd2_of(&x, &y);
    let floor = common::mmd::floor_gaussian(1024, &m, &s, &y, h);
    println!("mmd_flow: MMD^2 {first:e} -> {last:e}, floor {floor:e}");
    assert!(
        first > floor,
        "mmd_flow start within the floor: {first} <= {floor}"
    );
    assert!(
        last <= floor,
        "mmd_flow MMD^2 {first} -> {last}: floor {floor}"
    );
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
        DynamicsPlan::Interaction(fokker::dynamics::interaction::InteractionPlan {
            potential: Potential::Quadratic {
                matrix: vec![vec![a, 0.0], vec![0.0, a]],
                center: vec![0.0, 0.0],
            },
            interaction: Interaction::Quadratic { strength: b },
            temperature: t,
            dt,
            steps: 12_000,
            t_end: 600.0,
        }),
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
    let nf = n as f64;
    let l = a + b;
    let expect_spread = (1.0 - 1.0 / nf) * t / (l * (1.0 - l * dt / 2.0));
    let expect_var_mean = t / (nf * a * (1.0 - a * dt / 2.0));
    // Standard errors, from the chain's exact (linear, Gaussian) law. Per coordinate and
    // snapshot, N spread / v_dev is chi-square with N - 1 degrees of freedom (v_dev the
    // per-mode stationary variance), so the spread's relative sd is sqrt(2 / (N - 1)); the
    // mean is N(0, v_mean), so mean^2's relative sd is sqrt(2). The two coordinates are
    // independent; successive snapshots (`every` steps apart) of a mode with rate lambda
    // correlate by rho = (1 - lambda dt)^every, their squares by rho^2, so averaging S
    // samples divides the variance by S / ((1 + rho^2) / (1 - rho^2)) at most.
    let inflation = |rate: f64| {
        let rho2 = (1.0 - rate * dt).powi(2 * every as i32);
        ((1.0 + rho2) / (1.0 - rho2)).sqrt()
    };
    let s = samples as f64;
    let se_spread = (2.0 / (nf - 1.0) / s).sqrt() * inflation(l);
    let se_var_mean = (2.0 / s).sqrt() * inflation(a);
    // Biases, relative. Burn-in: the start's variance (0.25 per coordinate, the mean's
    // 0.25 / N) relaxes to the stationary one by (1 - lambda dt)^(2 k) after k steps, k at
    // least the burn-in. f32 (tests/common/linear_chain.rs's model): each step moves a
    // coordinate by at most r (|x| + sd), r = STEP_ROUNDING plus the ensemble mean summed
    // in f32 over N (N u) entering times b dt; carried by 1 - lambda dt per step, that
    // shifts a standard deviation by at most r sd / (lambda dt), a variance by twice that
    // (and its square). The moments' f32 reduction: the sum of squares within N u relative
    // (the spread 2 N u with the f64 shift); the mean's sum within N u E|x - c| <= 2 N u sd
    // (c the previous mean), which moves mean^2 by at most 4 N^(3/2) u of v_mean.
    let burn_k = (10.0 / dt) as i32;
    let burn =
        |rate: f64, v0: f64, v: f64| ((v0 - v) / v).abs() * (1.0 - rate * dt).powi(2 * burn_k);
    let r = STEP_ROUNDING + b * dt * nf * U;
    let f32_bias = |rate: f64| {
        let e = r / (rate * dt);
        2.0 * e + e * e
    };
    let bias_spread = burn(l, 0.25, expect_spread / (1.0 - 1.0 / nf)) + f32_bias(l) + 2.0 * nf * U;
    let bias_var_mean = burn(a, 0.25 / nf, expect_var_mean) + f32_bias(a) + 4.0 * nf.powf(1.5) * U;
    let (tol_spread, tol_var_mean) = (
        stats::Z_LIMIT * se_spread + bias_spread,
        stats::Z_LIMIT * se_var_mean + bias_var_mean,
    );
    println!(
        "interaction: spread {spread} vs {expect_spread} (relative {tol_spread:e}), \
         Var(mean) {var_mean} vs {expect_var_mean} (relative {tol_var_mean:e})"
    );
    assert!(
        (spread / expect_spread - 1.0).abs() < tol_spread,
        "spread {spread} vs {expect_spread}: relative {tol_spread:e}"
    );
    assert!(
        (var_mean / expect_var_mean - 1.0).abs() < tol_var_mean,
        "Var(mean) {var_mean} vs {expect_var_mean}: relative {tol_var_mean:e}"
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
        DynamicsPlan::SdFlow(fokker::dynamics::sd_flow::SdFlowPlan {
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
        }),
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

/// The kernel-flow kernels take the noise's 64-bit block from their step uniform:
/// interacting particles stepped across block 2^32 (dimension 3, so a step's normals
/// straddle it) get exactly the twin's noise.
#[test]
fn interaction_noise_carries_across_the_32_bit_block_boundary() {
    let (n, dim, dt, temperature, steps) = (300u64, 3u32, 0.01, 0.3, 3u64);
    let w = Interaction::Quadratic { strength: 0.5 };
    let potential = Potential::Quadratic {
        matrix: vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ],
        center: vec![0.0; 3],
    };
    let p = plan(
        n,
        dim,
        gaussian(3, 0.0, 1.0),
        DynamicsPlan::Interaction(fokker::dynamics::interaction::InteractionPlan {
            potential: potential.clone(),
            interaction: w.clone(),
            temperature,
            dt,
            steps,
            t_end: steps as f64 * dt,
        }),
    );
    // Per coordinate, eps = 2^-24, |x| <= 4 (init std 1, 300 particles; the flow
    // contracts): the update's own rounding (< 8 eps |x|), the ensemble mean summed in f32
    // over n particles (< n eps |x|) entering times dt kappa, and the f32 normal (off by at
    // most 16 eps r, r <= sqrt(48 ln 2), times sqrt(2 T dt)); errors add up over the steps.
    let eps = f64::from(f32::EPSILON) / 2.0;
    let r_max = (48.0 * std::f64::consts::LN_2).sqrt();
    let per_step = 8.0 * eps * 4.0
        + dt * 0.5 * n as f64 * eps * 4.0
        + (2.0 * temperature * dt).sqrt() * 16.0 * eps * r_max;
    let tolerance = per_step * steps as f64;
    let gpu = common::gpu();
    let mut s = start(&gpu, &p, None);
    let x0 = s.positions().expect("positions");
    let step0 = (1u64 << 34) / u64::from(dim) - 1;
    let point = fokker::simulation::ResumePoint {
        step: step0,
        pending: None,
    };
    s.restore(&x0, None, point).expect("restore");
    advance(&mut s, step0 + steps);
    let mut x = to_f64(&x0);
    for k in step0..step0 + steps {
        interaction_cpu(&mut x, dim, &potential, &w, temperature, dt, p.seed, k);
    }
    let worst = to_f64(&s.positions().expect("positions"))
        .iter()
        .zip(&x)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < tolerance,
        "largest difference from the twin {worst:e}"
    );
}
