//! Overdamped Langevin on the GPU against exact answers, its CPU twin and itself.

mod common;

use common::f32err::{NORMAL_ERROR, U, carry_bounds, mixture_score_error, spectral_norm_bound};
use common::sim::{largest_difference, noise_word_boundary, run_block, twin_start};
use common::stats;
use fokker::dynamics::init::init_cpu;
use fokker::dynamics::langevin::{langevin_cpu, langevin_cpu_scheduled};
use fokker::model::StepSize;
use fokker::model::expr::tape::F32_ULP;
use fokker::model::expr::{ExprPotential, Point, PotentialSource, Tape, Var};
use fokker::model::step_size::{DtSchedule, ScheduleKind};
use fokker::model::{Potential, Temperature};
use fokker::observe::{histogram_cpu, moments_cpu};
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};

#[allow(clippy::too_many_arguments)]
fn plan(
    dim: u32,
    count: u64,
    init: Init,
    potential: Potential,
    temperature: f64,
    dt: f64,
    steps: u64,
    hist: HistogramSpec,
) -> Plan {
    Plan {
        name: None,
        seed: 42,
        boundary: Default::default(),
        particles: ParticlesPlan { count, dim, init },
        dynamics: DynamicsPlan::Langevin(fokker::dynamics::langevin::LangevinPlan {
            potential,
            temperature: Temperature::Constant(temperature),
            dt: dt.into(),
            steps,
            t_end: steps as f64 * dt,
            mala: false,
        }),
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

fn quadratic(a: [[f64; 2]; 2]) -> Potential {
    Potential::Quadratic {
        matrix: a.iter().map(|r| r.to_vec()).collect(),
        center: vec![0.0, 0.0],
    }
}

/// Largest |x| of a row.
fn norm_inf(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Error the f32 gradient of `potential` can have at x (max norm), first order in u.
/// Quadratic: each coordinate a dot product of dim terms, (dim + 1) u sum |A_ij x_j|.
/// Double well: 4 x (x^2 - 1) in four operations, 4 u (4 |x|^3 + 4 |x|); the other
/// coordinates are exact. Mixture: grad U = -score, tests/common/f32err.rs. Expression: the
/// tape's own bound (`Tape::f32_error_bounds`, from the WGSL accuracy table) of each
/// derivative, for potentials that do not depend on t (the GPU's t is itself rounded).
/// Müller–Brown: the built-in shader's operations written as a tape ([`mueller_brown_tape`]).
fn gradient_error(potential: &Potential, x: &[f64]) -> f64 {
    let d = x.len() as f64;
    match potential {
        Potential::Quadratic { matrix, center } => {
            let row = |r: &Vec<f64>| -> f64 {
                r.iter()
                    .zip(x.iter().zip(center))
                    .map(|(a, (x, c))| (a * (x - c)).abs())
                    .sum()
            };
            (d + 1.0) * U * matrix.iter().map(row).fold(0.0, f64::max)
        }
        Potential::DoubleWell => {
            4.0 * U * (4.0 * x[0].abs().powi(3) + 4.0 * x[0].abs()) + U * norm_inf(&x[1..])
        }
        Potential::Mixture(m) => mixture_score_error(m, x),
        Potential::Expr(e) => {
            assert!(!e.is_timed(), "the bound here is for potentials without t");
            let bounds = e.tape().f32_error_bounds(&Point::new(x, 0.0), &e.params());
            bounds[1..].iter().copied().fold(0.0, f64::max)
        }
        Potential::MuellerBrown { scale } => mueller_brown_error(*scale, x),
        Potential::Wgsl(_) => unimplemented!("no test here uses it"),
    }
}

/// The gradient of the built-in Müller–Brown potential as shaders/common/potential.wgsl
/// computes it, lane k of its vec4s one term: dx = x - x0_k, dy = y - y0_k,
/// e_k = A_k exp(((a_k dx) dx + (b_k dx) dy) + (c_k dy) dy), g_k = ((2 a_k) dx + b_k dy,
/// b_k dx + (2 c_k) dy), and grad = scale * dot(e, g) (outputs 0 and 1; the dot product
/// summed left to right here).
fn mueller_brown_tape() -> Tape {
    use fokker::model::expr::tape::Op;
    use fokker::model::expr::tree::Func;
    use fokker::model::potential::{MB_A, MB_AMP, MB_B, MB_C, MB_X0, MB_Y0};
    let mut ops = vec![Op::Var(Var::Axis(0)), Op::Var(Var::Axis(1)), Op::Param(0)];
    let mut push = |op: Op| {
        ops.push(op);
        ops.len() - 1
    };
    let (x, y, scale) = (0, 1, 2);
    let (mut terms_x, mut terms_y) = (Vec::new(), Vec::new());
    for k in 0..4 {
        let x0 = push(Op::Num(MB_X0[k]));
        let y0 = push(Op::Num(MB_Y0[k]));
        let dx = push(Op::Sub(x, x0));
        let dy = push(Op::Sub(y, y0));
        let (a, b, c) = (
            push(Op::Num(MB_A[k])),
            push(Op::Num(MB_B[k])),
            push(Op::Num(MB_C[k])),
        );
        let amp = push(Op::Num(MB_AMP[k]));
        let adx = push(Op::Mul(a, dx));
        let adxdx = push(Op::Mul(adx, dx));
        let bdx = push(Op::Mul(b, dx));
        let bdxdy = push(Op::Mul(bdx, dy));
        let cdy = push(Op::Mul(c, dy));
        let cdydy = push(Op::Mul(cdy, dy));
        let partial = push(Op::Add(adxdx, bdxdy));
        let arg = push(Op::Add(partial, cdydy));
        let exp = push(Op::Call(Func::Exp, arg));
        let e = push(Op::Mul(amp, exp));
        let (a2, c2) = (push(Op::Num(2.0 * MB_A[k])), push(Op::Num(2.0 * MB_C[k])));
        let a2dx = push(Op::Mul(a2, dx));
        let bdy = push(Op::Mul(b, dy));
        let gx = push(Op::Add(a2dx, bdy));
        let c2dy = push(Op::Mul(c2, dy));
        let gy = push(Op::Add(bdx, c2dy));
        terms_x.push(push(Op::Mul(e, gx)));
        terms_y.push(push(Op::Mul(e, gy)));
    }
    let mut outputs = Vec::new();
    for terms in [terms_x, terms_y] {
        let mut sum = terms[0];
        for &t in &terms[1..] {
            sum = push(Op::Add(sum, t));
        }
        outputs.push(push(Op::Mul(scale, sum)));
    }
    Tape { ops, outputs }
}

/// f32 error of the built-in Müller–Brown gradient at x (max norm): [`mueller_brown_tape`]'s
/// bound, plus 3 ULP |scale| sum_k |e_k g_k| per coordinate so that the dot product may add
/// its four terms in any order (every partial sum of any order is at most sum_k |e_k g_k|,
/// and there are three). Coordinates past the second are copied: exact.
fn mueller_brown_error(scale: f64, x: &[f64]) -> f64 {
    use fokker::model::potential::{MB_A, MB_AMP, MB_B, MB_C, MB_X0, MB_Y0};
    let tape = mueller_brown_tape();
    let y = x.get(1).copied().unwrap_or(0.0);
    let bounds = tape.f32_error_bounds(&Point::new(&[x[0], y], 0.0), &[scale]);
    let (mut sx, mut sy) = (0.0, 0.0);
    for k in 0..4 {
        let (dx, dy) = (x[0] - MB_X0[k], y - MB_Y0[k]);
        let e = MB_AMP[k] * (MB_A[k] * dx * dx + MB_B[k] * dx * dy + MB_C[k] * dy * dy).exp();
        sx += (e * (2.0 * MB_A[k] * dx + MB_B[k] * dy)).abs();
        sy += (e * (MB_B[k] * dx + 2.0 * MB_C[k] * dy)).abs();
    }
    let order = 3.0 * F32_ULP * scale.abs();
    (bounds[0] + order * sx).max(bounds[1] + order * sy)
}

/// The step's Jacobian I - dt H(x), H the Hessian of U at x by central differences of the
/// f64 gradient, rows i, columns j.
fn step_jacobian(potential: &Potential, x: &[f64], dt: f64) -> Vec<Vec<f64>> {
    let d = x.len();
    let mut jac = vec![vec![0.0; d]; d];
    for j in 0..d {
        let h = 1e-5 * (1.0 + x[j].abs());
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[j] += h;
        b[j] -= h;
        let (ga, gb) = (potential.gradient(&a), potential.gradient(&b));
        for i in 0..d {
            jac[i][j] = (i == j) as u8 as f64 - dt * (ga[i] - gb[i]) / (2.0 * h);
        }
    }
    jac
}

/// On symmetric matrices the bound is the spectral radius (known eigenvalues); on others it
/// is at least the largest singular value (power iteration on m^T m from below).
#[test]
fn spectral_norm_bound_holds() {
    // Q diag(0.9, -0.2, 0.5) Q^T for a rotation Q in the (0, 1) plane and another in (1, 2).
    let (c, s) = (0.6f64, 0.8f64);
    let q = [
        [c, -s, 0.0],
        [s * 0.28, c * 0.28, -0.96],
        [s * 0.96, c * 0.96, 0.28],
    ];
    let eig = [0.9, -0.2, 0.5];
    let m: Vec<Vec<f64>> = (0..3)
        .map(|i| {
            (0..3)
                .map(|j| (0..3).map(|k| q[i][k] * eig[k] * q[j][k]).sum())
                .collect()
        })
        .collect();
    let b = spectral_norm_bound(&m);
    assert!((b - 0.9).abs() < 1e-10, "{b}");
    let m = vec![
        vec![0.5, -0.4, 0.3],
        vec![0.1, 0.9, -0.2],
        vec![-0.7, 0.2, 0.4],
    ];
    let mut v = vec![1.0, 0.3, -0.5];
    let mut sigma = 0.0;
    for _ in 0..200 {
        let w: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| m[i][j] * v[j]).sum())
            .collect();
        let u: Vec<f64> = (0..3)
            .map(|j| (0..3).map(|i| m[i][j] * w[i]).sum())
            .collect();
        let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        sigma = norm.sqrt();
        v = u.iter().map(|x| x / norm).collect();
    }
    let b = spectral_norm_bound(&m);
    assert!(b >= sigma && b < 2.0 * sigma, "{b} vs {sigma}");
}

/// Runs the f64 twin from `x` (rows of `dim`, particles `first ..`) through `steps` steps
/// one at a time, and with it a first-order bound on how far the f32 GPU particle can be
/// from the twin (max norm), starting from `e` (the initial positions' bound; updated in
/// place). An error e at one step is carried on by the step's Jacobian J = I - dt H(x), H
/// the Hessian of U at the twin's x (central differences of the f64 gradient); the step adds
/// its own rounding r: 3 u on each of |x'|, dt |grad U| and |noise| (two products, two sums,
/// the store), f32's gradient error times dt, and NORMAL_ERROR times sqrt(2 T dt). The error
/// is bounded two ways at once, each valid on its own: per coordinate, e_i <- sum_j |J_ij|
/// e_j + r (keeping the sign of each diagonal entry's departure from 1); and in the 2-norm,
/// e2 <- |J|_2 e2 + sqrt(dim) r (|J|_2 from `spectral_norm_bound`; it does not overstate the
/// growth in a well whose axes are not the coordinates, as sums of |J_ij| do). As
/// |v_i| <= |v|_2 <= |(e_1, .., e_dim)|_2, each step keeps e_i = min(e_i, e2) and
/// e2 = min(e2, |e|_2); the particle's bound is the largest e_i.
#[allow(clippy::too_many_arguments)]
fn twin_with_bounds(
    x: &mut [f64],
    e: &mut [f64],
    dim: u32,
    first: u64,
    potential: &Potential,
    temperature: f64,
    dt: f64,
    seed: u64,
    steps: u64,
) {
    twin_with_bounds_scheduled(
        x,
        e,
        dim,
        first,
        potential,
        temperature,
        &StepSize::Constant(dt),
        steps,
        seed,
        steps,
    );
}

/// [`twin_with_bounds`] under a step-size schedule over a run of `run_steps` steps. The
/// schedule's table rounds dt_k and sqrt(2 T dt_k) to f32 (relative u each), which adds
/// u (dt_k |grad U| + |noise|) to a step's rounding; a constant dt adds nothing here (its
/// kernel's rounding of dt and the scale is within the 3 u already counted).
#[allow(clippy::too_many_arguments)]
fn twin_with_bounds_scheduled(
    x: &mut [f64],
    e: &mut [f64],
    dim: u32,
    first: u64,
    potential: &Potential,
    temperature: f64,
    schedule: &StepSize,
    run_steps: u64,
    seed: u64,
    steps: u64,
) {
    let d = dim as usize;
    let root_d = (d as f64).sqrt();
    let table = if schedule.constant().is_some() {
        0.0
    } else {
        1.0
    };
    for (p, (row, e)) in x.chunks_exact_mut(d).zip(e.iter_mut()).enumerate() {
        let mut each = vec![*e; d];
        let mut e2 = root_d * *e;
        for n in 0..steps {
            let dt = schedule.dt(n, run_steps);
            let scale = (2.0 * temperature * dt).sqrt();
            let g = potential.gradient(row);
            let jac = step_jacobian(potential, row, dt);
            let two = spectral_norm_bound(&jac);
            let before = row.to_vec();
            let grad_error = gradient_error(potential, &before);
            langevin_cpu_scheduled(
                row,
                dim,
                first + p as u64,
                potential,
                &Temperature::Constant(temperature),
                schedule,
                run_steps,
                seed,
                n,
                1,
            );
            let noise: Vec<f64> = (0..d).map(|i| row[i] - before[i] + dt * g[i]).collect();
            let rounding =
                (3.0 + table) * U * (norm_inf(row) + dt * norm_inf(&g) + norm_inf(&noise))
                    + dt * grad_error
                    + scale * NORMAL_ERROR;
            carry_bounds(&jac, two, rounding, &mut each, &mut e2);
        }
        *e = each.iter().copied().fold(0.0, f64::max);
    }
}

/// Bound on how far f32 initial sampling lands from the twin's f64 values, per particle:
/// the f32 normals (NORMAL_ERROR) scaled by the largest standard deviation `std`, and
/// 3 u |x| for the shift, scale and store.
fn init_bounds(x: &[f64], dim: u32, std: f64) -> Vec<f64> {
    x.chunks_exact(dim as usize)
        .map(|r| 3.0 * U * norm_inf(r) + std * NORMAL_ERROR)
        .collect()
}

/// Runs `plan` to its end and returns the final positions.
fn run_positions(plan: &Plan, layout: &Layout) -> Vec<f32> {
    let gpu = common::gpu();
    let mut sim = Simulation::new(&gpu, plan, None, None, 0, plan.particles.count, layout)
        .expect("simulation");
    sim.advance_to(plan.dynamics.steps(), |_| Ok(()), &|| false)
        .expect("advance");
    sim.positions().expect("positions")
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Chi-square of observed counts against expected probabilities over bins with an expected
/// count of at least 5; returns (statistic, degrees of freedom).
fn chi_square(observed: &[u64], probs: &[f64], n: u64) -> (f64, usize) {
    let mut stat = 0.0;
    let mut dof = 0usize;
    for (o, p) in observed.iter().zip(probs) {
        let e = p * n as f64;
        if e >= 5.0 {
            stat += (*o as f64 - e).powi(2) / e;
            dof += 1;
        }
    }
    (stat, dof.saturating_sub(1))
}

/// Pearson's statistic against the right law is chi-square with dof degrees of freedom (for
/// expected counts of 5 and more): it exceeds stats::chi_square_limit(dof) with probability
/// at most FALSE_ALARM (Laurent–Massart); a biased kernel overshoots by far more.
fn assert_chi_square_ok(stat: f64, dof: usize, what: &str) {
    let limit = stats::chi_square_limit(dof);
    assert!(
        stat < limit,
        "{what}: chi-square {stat:.1} over {dof} dof exceeds {limit:.1}"
    );
}

/// OU transient with A = diag(1, 2) from x0 = (1.5, -1): the Euler–Maruyama chain is
/// Gaussian with mean M^k x0 and covariance 2 T dt sum_j M^{2j}, M = I - dt A, exactly; both
/// are within O(dt) of the continuous e^{-At} x0 and T A^{-1}(I - e^{-2At}).
#[test]
fn ou_transient_matches_the_exact_gaussian() {
    let (n, dt, steps, temperature) = (400_000u64, 1e-2, 50u64, 0.5);
    let a = [1.0, 2.0];
    let x0 = [1.5, -1.0];
    let spec = hist2(40, -2.5, 2.5);
    let p = plan(
        2,
        n,
        Init::Point { at: x0.to_vec() },
        quadratic([[a[0], 0.0], [0.0, a[1]]]),
        temperature,
        dt,
        steps,
        spec.clone(),
    );
    let pos = run_positions(&p, &Layout::default());
    let pos64: Vec<f64> = pos.iter().map(|&v| f64::from(v)).collect();
    let m = moments_cpu(&pos64, 2);
    let t = steps as f64 * dt;
    let mut sd = [0.0; 2];
    let mut mu = [0.0; 2];
    for i in 0..2 {
        let mi = 1.0 - dt * a[i];
        mu[i] = mi.powi(steps as i32) * x0[i];
        let var = 2.0 * temperature * dt * (1.0 - mi.powi(2 * steps as i32)) / (1.0 - mi * mi);
        sd[i] = var.sqrt();
        // Mean and variance within Z_LIMIT of their standard errors (the sample variance of
        // n Gaussians has standard error var sqrt(2 / n)).
        let se_mean = sd[i] / (n as f64).sqrt();
        assert!(
            (m.mean[i] - mu[i]).abs() < stats::Z_LIMIT * se_mean,
            "mean {i}: {} vs {}",
            m.mean[i],
            mu[i]
        );
        let se_var = var * (2.0 / n as f64).sqrt();
        assert!(
            (m.cov[i * 2 + i] - var).abs() < stats::Z_LIMIT * se_var,
            "var {i}: {} vs {var}",
            m.cov[i * 3]
        );
        // The continuous-time answer differs from the chain by O(dt). With y = a dt,
        // k ln(1 - y) + a t = -k (y^2 / 2 + y^3 / 3 + ...) lies in [-a^2 t dt / (2 (1 - y)), 0],
        // so M^k = e^{-a t} (1 - r) with 0 <= r <= a^2 t dt / (2 (1 - y)) (and for M^2k,
        // twice that); the chain's variance is T (1 - M^2k) / (a (1 - y / 2)) against
        // T (1 - e^{-2 a t}) / a.
        let y = a[i] * dt;
        let r = a[i] * a[i] * t * dt / (2.0 * (1.0 - y));
        let cont_mean = (-a[i] * t).exp() * x0[i];
        let cont_var = temperature / a[i] * (1.0 - (-2.0 * a[i] * t).exp());
        assert!((mu[i] - cont_mean).abs() <= r * cont_mean.abs());
        let e2 = (-2.0 * a[i] * t).exp();
        let var_bound = (y / 2.0) / (1.0 - y / 2.0) + 2.0 * r * e2 / ((1.0 - e2) * (1.0 - y / 2.0));
        assert!((var - cont_var).abs() <= var_bound * cont_var);
    }
    assert!(
        m.cov[1].abs() < stats::Z_LIMIT * sd[0] * sd[1] / (n as f64).sqrt(),
        "cross covariance {}",
        m.cov[1]
    );

    // Histogram against the exact Gaussian integrated over each bin.
    let gpu = common::gpu();
    let mut sim =
        Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("simulation");
    sim.advance_to(steps, |_| Ok(()), &|| false)
        .expect("advance");
    let obs = sim.observe().expect("observe");
    let edges: Vec<f64> = (0..=40).map(|k| -2.5 + 5.0 * k as f64 / 40.0).collect();
    let bin_p = |i: usize, b: usize| {
        normal_cdf((edges[b + 1] - mu[i]) / sd[i]) - normal_cdf((edges[b] - mu[i]) / sd[i])
    };
    let probs: Vec<f64> = (0..40)
        .flat_map(|i| (0..40).map(move |j| (i, j)))
        .map(|(i, j)| bin_p(0, i) * bin_p(1, j))
        .collect();
    let (stat, dof) = chi_square(&obs.histogram.counts, &probs, n);
    assert!(dof > 100);
    assert_chi_square_ok(stat, dof, "OU histogram");
    // The observer's moments agree with the host's.
    assert_moments_close(&obs.moments, &m, &pos64, &x0, "OU");
}

/// Double well U = (x^2 - 1)^2 + y^2 / 2 relaxes towards exp(-U/T)/Z. The chain separates
/// into independent x and y chains, so its own law after `steps` steps is known without a
/// time-step allowance: y is an OU chain, N(0, 2 T dt (1 - M^2k) / (1 - M^2)) with
/// M = 1 - dt; x is computed by its transition operator (tests/common/chain.rs, cells of
/// 1/250, a twenty-fifth of a bin). The 2D histogram against their product, and the x
/// marginal on its own; the x law's distance to Boltzmann's (O(dt)) is printed.
#[test]
fn double_well_reaches_the_boltzmann_density() {
    let (n, dt, steps, temperature) = (200_000u64, 2e-3, 3000u64, 0.7);
    let (bins_x, bins_y) = (40usize, 30usize);
    let spec = HistogramSpec {
        axes: vec![0, 1],
        bins: vec![bins_x as u32, bins_y as u32],
        range: vec![[-2.0, 2.0], [-3.0, 3.0]],
    };
    let p = plan(
        2,
        n,
        Init::Point { at: vec![0.0, 0.0] },
        Potential::DoubleWell,
        temperature,
        dt,
        steps,
        spec.clone(),
    );
    let gpu = common::gpu();
    let mut sim =
        Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("simulation");
    sim.advance_to(steps, |_| Ok(()), &|| false)
        .expect("advance");
    let obs = sim.observe().expect("observe");
    // The chain's own x law, and Boltzmann's for comparison (Simpson, whole line).
    let law = common::chain::chain_law(
        &|x| 4.0 * x * (x * x - 1.0),
        temperature,
        dt,
        0.0,
        -3.0,
        3.0,
        1.0 / 250.0,
        &[steps],
    );
    assert!(
        law.lost.abs() < 1e-12,
        "the grid holds the law: lost {}",
        law.lost
    );
    let px = law.bins(0, bins_x, -2.0, 2.0);
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
    let wx = 4.0 / bins_x as f64;
    let boltzmann: Vec<f64> = (0..bins_x)
        .map(|b| simpson(-2.0 + wx * b as f64, -2.0 + wx * (b + 1) as f64) / z)
        .collect();
    println!(
        "TV(chain x law, Boltzmann) on the bins: {:.2e}",
        stats::binned_tv(&px, &boltzmann)
    );
    let m = 1.0 - dt;
    let var_y = 2.0 * temperature * dt * (1.0 - m.powi(2 * steps as i32)) / (1.0 - m * m);
    let wy = 6.0 / bins_y as f64;
    let sd = var_y.sqrt();
    let py: Vec<f64> = (0..bins_y)
        .map(|b| {
            normal_cdf((-3.0 + wy * (b + 1) as f64) / sd) - normal_cdf((-3.0 + wy * b as f64) / sd)
        })
        .collect();
    let joint: Vec<f64> = px
        .iter()
        .flat_map(|a| py.iter().map(move |b| a * b))
        .collect();
    let (stat, dof) = chi_square(&obs.histogram.counts, &joint, n);
    assert!(dof > 500);
    assert_chi_square_ok(stat, dof, "double-well 2D histogram");
    let marginal: Vec<u64> = obs
        .histogram
        .counts
        .chunks_exact(bins_y)
        .map(|row| row.iter().sum())
        .collect();
    let (stat, dof) = chi_square(&marginal, &px, n);
    assert_chi_square_ok(stat, dof, "double-well x marginal");
    // Sample variance and mean within Z_LIMIT standard errors of the chain's (var sqrt(2/n)
    // for the Gaussian y; sqrt(var_x / n) for the mean of x).
    let got_var_y = obs.moments.cov[3];
    assert!(
        (got_var_y - var_y).abs() < stats::Z_LIMIT * var_y * (2.0 / n as f64).sqrt(),
        "var y {got_var_y} vs the chain's {var_y}"
    );
    let (mean_x, var_x) = law.moments(0);
    assert!(
        (obs.moments.mean[0] - mean_x).abs() < stats::Z_LIMIT * (var_x / n as f64).sqrt(),
        "mean x {} vs the chain's {mean_x}",
        obs.moments.mean[0]
    );
}

/// Every initial distribution sampled on the GPU equals its CPU twin particle by particle.
#[test]
fn initial_distributions_match_the_twin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rows: Vec<f32> = (0..57)
        .flat_map(|r| [r as f32 * 0.5, -(r as f32)])
        .collect();
    let table = fokker::scenario::data::SampleTable {
        rows: 57,
        dim: 2,
        values: rows,
    };
    let mixture = fokker::model::Mixture {
        weights: vec![0.2, 0.5, 0.3],
        means: vec![vec![-2.0, 0.0], vec![0.0, 1.0], vec![3.0, -1.0]],
        stds: vec![vec![0.3, 0.3], vec![0.5, 0.2], vec![1.0, 1.0]],
    };
    let samples = |count| {
        (
            Init::Samples {
                path: dir.path().join("t.npy"),
                rows: 57,
                sha256: String::new(),
            },
            count,
        )
    };
    let cases = [
        (
            Init::Point {
                at: vec![0.25, -4.0],
            },
            1000,
        ),
        (
            Init::Gaussian {
                mean: vec![1.0, -1.0],
                std: vec![0.5, 2.0],
            },
            1000,
        ),
        (
            Init::Uniform {
                low: vec![-1.0, 2.0],
                high: vec![1.0, 5.0],
            },
            1000,
        ),
        (Init::Mixture(mixture), 1000),
        samples(57),
        samples(1000),
    ];
    // f32 error of each: 3 u of the scale of the operations (|x|, and for the uniform
    // lo + (hi - lo) v also |lo| + |hi - lo| <= 4), plus NORMAL_ERROR times the largest
    // standard deviation for the Gaussian (2) and the mixture (1); points and sample rows
    // are copied (rounded once to f32).
    let errors = [
        (0.0, 0.0),
        (2.0, 0.0),
        (0.0, 4.0),
        (1.0, 0.0),
        (0.0, 0.0),
        (0.0, 0.0),
    ];
    let gpu = common::gpu();
    for ((init, count), (std, extra)) in cases.into_iter().zip(errors) {
        let p = plan(
            2,
            count,
            init.clone(),
            Potential::DoubleWell,
            1.0,
            1e-3,
            1,
            hist2(4, -1.0, 1.0),
        );
        let sim = Simulation::new(
            &gpu,
            &p,
            Some(&table),
            None,
            0,
            count,
            &Layout {
                chunk_particles: Some(300),
                ..Layout::default()
            },
        )
        .expect("simulation");
        let got = sim.positions().expect("positions");
        let want = init_cpu(&init, Some(&table), 2, 0, count, count, p.seed);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let bound = 3.0 * U * (w.abs() + extra) + std * NORMAL_ERROR;
            assert!(
                (f64::from(*g) - w).abs() <= bound,
                "{init:?}: coordinate {k}: gpu {g} vs twin {w}, bound {bound:e}"
            );
        }
        if count == 57 {
            assert_eq!(got, table.values, "count = rows uses the rows in order");
        }
    }
}

/// At T = 0 the scheme is gradient descent: x_k = (I - dt A)^k x0, to f32 precision.
#[test]
fn zero_temperature_is_gradient_descent() {
    let a = [[2.0, 0.5], [0.5, 1.0]];
    let (dt, steps) = (0.01, 137u64);
    let x0 = [1.0, -2.0];
    let p = plan(
        2,
        1000,
        Init::Point { at: x0.to_vec() },
        quadratic(a),
        0.0,
        dt,
        steps,
        hist2(8, -3.0, 3.0),
    );
    let pos = run_positions(
        &p,
        &Layout {
            fused_steps: Some(10),
            ..Layout::default()
        },
    );
    let mut x = x0;
    for _ in 0..steps {
        x = [
            x[0] - dt * (a[0][0] * x[0] + a[0][1] * x[1]),
            x[1] - dt * (a[1][0] * x[0] + a[1][1] * x[1]),
        ];
    }
    // The f32 error bound along the (single) trajectory, from the f32 start (u |x0|).
    let mut twin = x0.to_vec();
    let mut bound = vec![U * norm_inf(&x0)];
    twin_with_bounds(
        &mut twin,
        &mut bound,
        2,
        0,
        &quadratic(a),
        0.0,
        dt,
        p.seed,
        steps,
    );
    assert!((twin[0] - x[0]).abs() < 1e-12 && (twin[1] - x[1]).abs() < 1e-12);
    for row in pos.chunks_exact(2) {
        for i in 0..2 {
            assert!(
                (f64::from(row[i]) - x[i]).abs() <= bound[0],
                "{row:?} vs {x:?}, bound {:e}",
                bound[0]
            );
        }
    }
}

/// The GPU kernel and its f64 CPU twin receive the same Philox noise, so particle by
/// particle they agree to f32 round-off on a contracting potential, and in law on the
/// double well.
#[test]
fn gpu_agrees_with_the_cpu_twin() {
    let (n, dt, steps) = (2000u64, 5e-3, 200u64);
    let potential = Potential::Mixture(fokker::model::Mixture {
        weights: vec![0.3, 0.7],
        means: vec![vec![-1.0, 0.0, 0.5], vec![1.0, 0.5, -0.5]],
        stds: vec![vec![0.5, 0.6, 0.7], vec![0.4, 0.5, 0.8]],
    });
    let init = Init::Gaussian {
        mean: vec![0.0, 0.0, 0.0],
        std: vec![1.0, 1.0, 1.0],
    };
    let spec = HistogramSpec {
        axes: vec![0, 2],
        bins: vec![16, 16],
        range: vec![[-3.0, 3.0], [-3.0, 3.0]],
    };
    let p = plan(
        3,
        n,
        init.clone(),
        potential.clone(),
        1.0,
        dt,
        steps,
        spec.clone(),
    );
    let gpu_pos = run_positions(&p, &Layout::default());
    let mut cpu = init_cpu(&init, None, 3, 0, n, n, p.seed);
    // Per particle, the f32 error bound carried along its own twin trajectory: where a
    // particle crosses between the components the Jacobian amplifies it (non-convex U).
    let mut bound = init_bounds(&cpu, 3, 1.0);
    twin_with_bounds(
        &mut cpu, &mut bound, 3, 0, &potential, 1.0, dt, p.seed, steps,
    );
    let mut worst: f64 = 0.0;
    for (k, (g, c)) in gpu_pos.chunks_exact(3).zip(cpu.chunks_exact(3)).enumerate() {
        let diff = (0..3)
            .map(|i| (f64::from(g[i]) - c[i]).abs())
            .fold(0.0, f64::max);
        worst = worst.max(diff / bound[k]);
        assert!(
            diff <= bound[k],
            "particle {k}: gpu {g:?} vs twin {c:?}, off by {diff:e} > bound {:e}",
            bound[k]
        );
    }
    println!(
        "largest error / bound {worst:.3}; bounds {:e} .. {:e}",
        bound.iter().copied().fold(f64::INFINITY, f64::min),
        bound.iter().copied().fold(0.0, f64::max)
    );
    let gpu64: Vec<f64> = gpu_pos.iter().map(|&v| f64::from(v)).collect();
    let (hg, hc) = (
        histogram_cpu(&gpu64, 3, &spec),
        histogram_cpu(&cpu, 3, &spec),
    );
    let moved = stats::counts_moved(&hg.counts, &hc.counts);
    // A particle can change bin only if its twin position lies within its bound of an edge;
    // each that does moves 2 in the sum of count differences.
    let near = stats::near_edges(&cpu, 3, &spec, &bound);
    assert!(
        moved <= 2 * near,
        "{moved} counts moved between GPU and CPU twin; {near} particles near an edge"
    );
}

fn expr_potential(expr: &str, dim: usize, params: &[(&str, f64)]) -> Potential {
    Potential::Expr(
        ExprPotential::new(PotentialSource {
            expr: expr.into(),
            params: params.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            dim,
        })
        .expect("compiles"),
    )
}

/// Written as expressions, the double well and Müller–Brown give the built-in ensembles:
/// with the same seed every particle of both runs lies within its f32 bound of the f64 twin
/// (the bound carried along its own trajectory: `twin_with_bounds` with each potential's
/// gradient error, the expression's from its tape), so the two runs are within the sum of
/// the bounds plus the distance of the two f64 twins (the same dynamics, its operations in
/// another order); a particle changes bin between the runs only if its twin lies within
/// the larger bound of an edge.
#[test]
fn expression_forms_of_builtins_give_the_same_ensembles() {
    let (n, dt, steps) = (2000u64, 5e-3, 200u64);
    let scale = 0.05;
    // The built-in adds (1/2) z^2 for a third axis.
    let mueller_brown = "s*(-200*exp(-(x - 1)^2 - 10*y^2) - 100*exp(-x^2 - 10*(y - 0.5)^2) \
         - 170*exp(-6.5*(x + 0.5)^2 + 11*(x + 0.5)*(y - 1.5) - 6.5*(y - 1.5)^2) \
         + 15*exp(0.7*(x + 1)^2 + 0.6*(x + 1)*(y - 1) + 0.7*(y - 1)^2)) + 0.5*z^2";
    let cases = [
        (
            "double well",
            Potential::DoubleWell,
            expr_potential("(x^2 - 1)^2 + 0.5*y^2", 2, &[]),
            Init::Gaussian {
                mean: vec![0.0, 0.0],
                std: vec![1.0, 1.0],
            },
            1.0,
            HistogramSpec {
                axes: vec![0, 1],
                bins: vec![16, 16],
                range: vec![[-3.0, 3.0], [-3.0, 3.0]],
            },
        ),
        (
            "Mueller-Brown",
            Potential::MuellerBrown { scale },
            expr_potential(mueller_brown, 3, &[("s", scale)]),
            Init::Gaussian {
                mean: vec![-0.56, 1.44, 0.0],
                std: vec![0.15, 0.15, 0.5],
            },
            0.5,
            HistogramSpec {
                axes: vec![0, 1],
                bins: vec![12, 12],
                range: vec![[-1.8, 1.2], [-0.6, 2.4]],
            },
        ),
    ];
    for (name, builtin, written, init, temperature, spec) in cases {
        let dim = spec_dim(&init);
        let d = dim as usize;
        let run = |potential: &Potential| {
            let p = plan(
                dim,
                n,
                init.clone(),
                potential.clone(),
                temperature,
                dt,
                steps,
                spec.clone(),
            );
            let gpu_pos = run_positions(&p, &Layout::default());
            let mut twin = init_cpu(&init, None, dim, 0, n, n, p.seed);
            let mut bound = init_bounds(&twin, dim, 1.0);
            twin_with_bounds(
                &mut twin,
                &mut bound,
                dim,
                0,
                potential,
                temperature,
                dt,
                p.seed,
                steps,
            );
            for (k, (g, c)) in gpu_pos
                .chunks_exact(d)
                .zip(twin.chunks_exact(d))
                .enumerate()
            {
                let diff = (0..d)
                    .map(|i| (f64::from(g[i]) - c[i]).abs())
                    .fold(0.0, f64::max);
                assert!(
                    diff <= bound[k],
                    "{name}, {potential:?}: particle {k}: gpu {g:?} vs twin {c:?}, off by \
                     {diff:e} > bound {:e}",
                    bound[k]
                );
            }
            (gpu_pos, twin, bound)
        };
        let (gpu_b, twin_b, bound_b) = run(&builtin);
        let (gpu_e, twin_e, bound_e) = run(&written);
        let mut worst: f64 = 0.0;
        for k in 0..n as usize {
            let rows = k * d..(k + 1) * d;
            let twins = norm_inf(
                &twin_b[rows.clone()]
                    .iter()
                    .zip(&twin_e[rows.clone()])
                    .map(|(a, b)| a - b)
                    .collect::<Vec<_>>(),
            );
            let allowed = bound_b[k] + bound_e[k] + twins;
            let diff = rows
                .map(|i| (f64::from(gpu_b[i]) - f64::from(gpu_e[i])).abs())
                .fold(0.0, f64::max);
            worst = worst.max(diff / allowed);
            assert!(
                diff <= allowed,
                "{name}: particle {k}: built-in and expression runs {diff:e} apart > {allowed:e}"
            );
        }
        let f64s = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (hb, he) = (
            histogram_cpu(&f64s(&gpu_b), dim, &spec),
            histogram_cpu(&f64s(&gpu_e), dim, &spec),
        );
        let moved = stats::counts_moved(&hb.counts, &he.counts);
        let reach: Vec<f64> = bound_b
            .iter()
            .zip(&bound_e)
            .map(|(a, b)| a.max(*b))
            .collect();
        let near = stats::near_edges(&twin_b, d, &spec, &reach);
        assert!(
            moved <= 2 * near,
            "{name}: {moved} counts moved between the built-in and expression runs; {near} \
             particles near an edge"
        );
        let largest = |b: &[f64]| b.iter().copied().fold(0.0, f64::max);
        let mut sorted = bound_e.clone();
        sorted.sort_by(f64::total_cmp);
        let identical = gpu_b == gpu_e;
        println!(
            "{name}: largest distance / allowance {worst:.3} (bit-identical: {identical}); \
             bounds: built-in up to {:.1e}, expression median {:.1e}, up to {:.1e}; {moved} \
             counts moved, {near} particles near an edge",
            largest(&bound_b),
            sorted[sorted.len() / 2],
            largest(&bound_e)
        );
    }
}

fn spec_dim(init: &Init) -> u32 {
    match init {
        Init::Gaussian { mean, .. } => mean.len() as u32,
        _ => unreachable!("the cases here start from Gaussians"),
    }
}

/// Every dimension exercises a different round shape (4, 2 or 1 steps per set of Philox
/// blocks) and, with 10 steps per dispatch from odd starts, the single-step kernel too:
/// each particle must still get exactly the twin's noise.
#[test]
fn noise_indexing_matches_the_twin_in_every_dimension() {
    let (n, dt, steps) = (300u64, 5e-3, 37u64);
    for dim in 1..=8u32 {
        let d = dim as usize;
        let (init, spec) = twin_start(dim);
        let p = plan(
            dim,
            n,
            init.clone(),
            Potential::DoubleWell,
            0.8,
            dt,
            steps,
            spec,
        );
        let gpu_pos = run_positions(
            &p,
            &Layout {
                fused_steps: Some(10),
                ..Layout::default()
            },
        );
        let mut cpu = init_cpu(&init, None, dim, 0, n, n, p.seed);
        let mut bound = init_bounds(&cpu, dim, 0.5);
        twin_with_bounds(
            &mut cpu,
            &mut bound,
            dim,
            0,
            &Potential::DoubleWell,
            0.8,
            dt,
            p.seed,
            steps,
        );
        // A particle given another's noise, or noise of another step, is off by O(sqrt(dt)),
        // far beyond its f32 bound.
        for (k, (g, c)) in gpu_pos.chunks_exact(d).zip(cpu.chunks_exact(d)).enumerate() {
            let diff = (0..d)
                .map(|i| (f64::from(g[i]) - c[i]).abs())
                .fold(0.0, f64::max);
            assert!(
                diff <= bound[k],
                "dim {dim}: particle {k} off the twin by {diff:e} > bound {:e}",
                bound[k]
            );
        }
    }
}

/// GPU moments against the f64 twin of the same positions (rows of `positions`), with the
/// sums centred at `center` (the init's mean, the first guess the simulation centres on).
/// Each invocation adds ITEMS centred terms in sequence and the workgroup (at most 256
/// invocations) adds those in a tree of at most 8 levels, in f32; the partials are then
/// combined in f64. An f32 sum of terms t in m - 1 additions is within (m - 1) u sum |t|
/// (first order), so with the centring (u) and a product (2 u) the sums of (x - c) and of
/// (x - c)(x - c)^T are within K1 = ITEMS + 9 and K2 = ITEMS + 11 times u of the sums of
/// |x - c| and |x_a - c_a| |x_b - c_b|. The mean adds the f32 centre (u |c|); the
/// covariance subtracts the product of the shifts s = mean - c, whose errors are K1 u E|x - c|.
fn assert_moments_close(
    gpu: &fokker::observe::Moments,
    cpu: &fokker::observe::Moments,
    positions: &[f64],
    center: &[f64],
    what: &str,
) {
    let d = center.len();
    let n = (positions.len() / d) as f64;
    let items = f64::from(fokker::observe::moments::ITEMS);
    let (k1, k2) = ((items + 9.0) * U, (items + 11.0) * U);
    let abs_dev: Vec<f64> = (0..d)
        .map(|a| {
            positions
                .chunks_exact(d)
                .map(|r| (r[a] - center[a]).abs())
                .sum::<f64>()
                / n
        })
        .collect();
    for a in 0..d {
        let bound = k1 * abs_dev[a] + U * center[a].abs();
        assert!(
            (gpu.mean[a] - cpu.mean[a]).abs() <= bound,
            "{what}: mean {a}: {} vs {} (bound {bound:e})",
            gpu.mean[a],
            cpu.mean[a]
        );
        for b in 0..d {
            let product = positions
                .chunks_exact(d)
                .map(|r| ((r[a] - center[a]) * (r[b] - center[b])).abs())
                .sum::<f64>()
                / n;
            let (sa, sb) = (cpu.mean[a] - center[a], cpu.mean[b] - center[b]);
            let bound = k2 * product + k1 * (abs_dev[a] * sb.abs() + abs_dev[b] * sa.abs());
            let (g, c) = (gpu.cov[a * d + b], cpu.cov[a * d + b]);
            assert!(
                (g - c).abs() <= bound,
                "{what}: cov {a} {b}: {g} vs {c} (bound {bound:e})"
            );
        }
    }
}

fn bit_identical(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The noise a particle receives is indexed absolutely, so workgroup size, chunking and
/// steps per dispatch do not change a single bit; neither does an odd dim (blocks of four
/// normals straddle steps).
#[test]
fn layout_never_changes_results() {
    for dim in [2u32, 3] {
        let init = Init::Gaussian {
            mean: vec![0.0; dim as usize],
            std: vec![1.0; dim as usize],
        };
        let p = plan(
            dim,
            10_007,
            init,
            Potential::DoubleWell,
            1.0,
            1e-3,
            101,
            hist2(8, -2.0, 2.0),
        );
        let reference = run_positions(
            &p,
            &Layout {
                fused_steps: Some(101),
                ..Layout::default()
            },
        );
        let layouts = [
            Layout {
                workgroup_size: 32,
                chunk_particles: None,
                fused_steps: Some(1),
                slice_particles: None,
                mala_carry: None,
            },
            Layout {
                workgroup_size: 128,
                chunk_particles: Some(1000),
                fused_steps: Some(7),
                slice_particles: Some(300),
                mala_carry: None,
            },
            Layout {
                workgroup_size: 64,
                chunk_particles: Some(333),
                fused_steps: None,
                slice_particles: Some(100),
                mala_carry: None,
            },
            Layout {
                workgroup_size: 16,
                chunk_particles: None,
                fused_steps: Some(13),
                slice_particles: Some(4097),
                mala_carry: None,
            },
        ];
        for layout in &layouts {
            let other = run_positions(&p, layout);
            assert!(
                bit_identical(&reference, &other),
                "dim {dim}, {layout:?} changed the result"
            );
        }
        assert!(
            bit_identical(&reference, &run_positions(&p, &Layout::default())),
            "same seed twice"
        );
    }
}

/// Chunked observers equal the host's histogram and moments of the same positions.
#[test]
fn chunked_observers_match_the_cpu_twins() {
    let init = Init::Uniform {
        low: vec![-3.0, -1.0],
        high: vec![3.0, 2.0],
    };
    let spec = HistogramSpec {
        axes: vec![1, 0],
        bins: vec![7, 33],
        range: vec![[-0.5, 1.5], [-2.0, 2.0]],
    };
    let p = plan(
        2,
        50_001,
        init,
        Potential::DoubleWell,
        1.0,
        1e-3,
        3,
        spec.clone(),
    );
    let gpu = common::gpu();
    let mut sim = Simulation::new(
        &gpu,
        &p,
        None,
        None,
        0,
        p.particles.count,
        &Layout {
            chunk_particles: Some(4096),
            ..Layout::default()
        },
    )
    .expect("simulation");
    sim.advance_to(3, |_| Ok(()), &|| false).expect("advance");
    let obs = sim.observe().expect("observe");
    let pos: Vec<f64> = sim
        .positions()
        .expect("positions")
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let cpu = histogram_cpu(&pos, 2, &spec);
    assert_eq!(obs.histogram.outside, cpu.outside);
    assert_eq!(obs.histogram.below, cpu.below);
    assert_eq!(obs.histogram.above, cpu.above);
    assert_eq!(
        obs.histogram.in_range() + obs.histogram.outside,
        p.particles.count
    );
    let moved = stats::counts_moved(&obs.histogram.counts, &cpu.counts);
    // The GPU bins (x - lo) * scale in f32 with lo and scale rounded: the bin it picks is
    // that of a point within 4 u (|x| + |lo| + |hi|) of x. Only particles that near an edge
    // can land elsewhere, each moving 2 in the sum of count differences.
    let reach: Vec<f64> = pos
        .chunks_exact(2)
        .map(|r| 4.0 * U * (norm_inf(r) + 4.0))
        .collect();
    let near = stats::near_edges(&pos, 2, &spec, &reach);
    assert!(
        moved <= 2 * near,
        "{moved} counts moved (f32 vs f64 edges); {near} particles near an edge"
    );
    let m = moments_cpu(&pos, 2);
    assert_moments_close(&obs.moments, &m, &pos, &[0.0, 0.5], "chunked");
}

/// More than 65535 workgroups in one chunk: the dispatch folds into 2D and every particle
/// is still reached exactly once (sampled against the CPU twin at the far end).
#[test]
fn dispatch_folds_into_two_dimensions() {
    let n = 65_536 * 64 + 1234;
    let init = Init::Gaussian {
        mean: vec![0.0],
        std: vec![1.0],
    };
    let spec = HistogramSpec {
        axes: vec![0],
        bins: vec![10],
        range: vec![[-1.0, 1.0]],
    };
    let p = plan(
        1,
        n,
        init.clone(),
        Potential::DoubleWell,
        1.0,
        1e-3,
        1,
        spec,
    );
    let pos = run_positions(&p, &Layout::default());
    let first = n - 500;
    let mut cpu = init_cpu(&init, None, 1, first, 500, n, p.seed);
    let mut bound = init_bounds(&cpu, 1, 1.0);
    twin_with_bounds(
        &mut cpu,
        &mut bound,
        1,
        first,
        &Potential::DoubleWell,
        1.0,
        1e-3,
        p.seed,
        1,
    );
    for ((g, c), b) in pos[first as usize..].iter().zip(&cpu).zip(&bound) {
        assert!((f64::from(*g) - c).abs() <= *b, "{g} vs {c}, bound {b:e}");
    }
}

/// The moment reduction in every dimension (coordinates 4..7 take a separate path in the
/// shader) equals the host's f64 moments of the same positions.
#[test]
fn moments_match_the_twin_in_every_dimension() {
    let gpu = common::gpu();
    for dim in [1u32, 3, 4, 5, 8] {
        let d = dim as usize;
        let mean: Vec<f64> = (0..d).map(|i| 0.5 * i as f64 - 1.0).collect();
        let std: Vec<f64> = (0..d).map(|i| 0.2 + 0.1 * i as f64).collect();
        let init = Init::Gaussian {
            mean: mean.clone(),
            std,
        };
        let spec = HistogramSpec {
            axes: vec![0],
            bins: vec![4],
            range: vec![[-2.0, 2.0]],
        };
        let p = plan(dim, 30_001, init, Potential::DoubleWell, 1.0, 1e-3, 1, spec);
        let mut sim = Simulation::new(
            &gpu,
            &p,
            None,
            None,
            0,
            p.particles.count,
            &Layout {
                chunk_particles: Some(7000),
                ..Layout::default()
            },
        )
        .expect("simulation");
        let obs = sim.observe().expect("observe");
        let pos: Vec<f64> = sim
            .positions()
            .expect("positions")
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let m = moments_cpu(&pos, dim);
        assert_eq!(obs.moments.count, p.particles.count);
        assert_moments_close(&obs.moments, &m, &pos, &mean, &format!("dim {dim}"));
    }
}

/// Noise blocks are 64-bit: a block of steps that starts just before block 2^32 (normal
/// 2^34, one lap of a 32-bit block word) and runs across it gives every particle exactly the
/// twin's noise, whether the boundary falls in the round kernel or the single-step one.
/// A 32-bit block word would repeat the noise of one lap earlier, so for the dimensions
/// that divide 2^34 (the powers of two) the same block started a whole lap later must differ.
#[test]
fn noise_carries_across_the_32_bit_block_boundary() {
    let gpu = common::gpu();
    let (n, temperature, dt, steps) = (256u64, 0.8, 5e-3, 12u64);
    // Error of GPU (f32) against twin (f64), per coordinate, with eps = 2^-24: the twin
    // starts from the GPU's own f32 positions; |x| <= 4 (init std 0.5, 256 particles, and
    // U = |x|^2 / 2 contracts); the noise scale s = sqrt(2 T dt) = 0.09 and Box–Muller's
    // radius r = sqrt(-2 ln u) <= sqrt(48 ln 2) = 5.8 (u >= 2^-24). A step rounds three
    // operations on values below 4 + 4 dt + s r < 5 (<= 3 * 5 eps), and each f32 normal is
    // off by a few ulp of its log, sqrt and of cos/sin at an angle of at most 2 pi (<= 8 eps
    // (r + 2 pi r), times s: <= 30 eps). So <= 45 eps a step, and the contraction (1 - dt)
    // keeps errors from growing: after `steps` steps at most 64 eps * steps. A wrong noise
    // block is off by about s |xi| ~ 0.09, thousands of times more.
    let tolerance = 64.0 * f64::from(f32::EPSILON) / 2.0 * steps as f64;
    for dim in 1..=8u32 {
        let d = dim as usize;
        let mut matrix = vec![vec![0.0; d]; d];
        for (i, row) in matrix.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        let potential = Potential::Quadratic {
            matrix,
            center: vec![0.0; d],
        };
        let (init, spec) = twin_start(dim);
        let p = plan(
            dim,
            n,
            init,
            potential.clone(),
            temperature,
            dt,
            steps,
            spec,
        );
        let mut sim = Simulation::new(
            &gpu,
            &p,
            None,
            None,
            0,
            n,
            &Layout {
                fused_steps: Some(steps as u32),
                ..Layout::default()
            },
        )
        .expect("simulation");
        let start = sim.positions().expect("positions");
        let mut run_from = |step0: u64| run_block(&mut sim, &start, None, step0, steps).0;
        let boundary = noise_word_boundary(dim);
        // Starts that put the boundary in the single-step head, in a whole round and (with
        // the head's rounds of up to 4 steps) at different lanes.
        for back in [0u64, 1, 3, 5] {
            let step0 = boundary - back;
            let gpu_pos = run_from(step0);
            let mut cpu: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
            langevin_cpu(
                &mut cpu,
                dim,
                0,
                &potential,
                &Temperature::Constant(temperature),
                dt,
                p.seed,
                step0,
                steps,
            );
            let worst = largest_difference(&gpu_pos, &cpu);
            assert!(
                worst < tolerance,
                "dim {dim}, from step {step0}: largest difference from the twin {worst}"
            );
            if dim.is_power_of_two() {
                let lap_later = run_from(step0 + boundary);
                assert!(
                    !bit_identical(&gpu_pos, &lap_later),
                    "dim {dim}: the noise from step {step0} repeats one lap later"
                );
            }
        }
    }
}

/// Moments at step 0 of data far from the origin (around 1e4, spread about 1), for the two
/// inits whose centre is not written in the plan: a mixture and a sample table. The f32
/// sums are taken about the init's mean, so the covariance keeps its digits (about 0, the
/// sums of squares are 1e8 per particle and the covariance drowns in their round-off).
#[test]
fn first_moments_of_data_far_from_the_origin_keep_their_digits() {
    use fokker::model::Mixture;
    use fokker::scenario::data::SampleTable;
    let gpu = common::gpu();
    let n = 20_000u64;
    let mixture = Mixture {
        weights: vec![0.3, 0.7],
        means: vec![vec![1e4 - 1.0, 1e4 + 0.5], vec![1e4 + 1.0, 1e4 - 0.5]],
        stds: vec![vec![0.5, 1.0], vec![1.0, 0.5]],
    };
    let mixture_mean: Vec<f64> = (0..2)
        .map(|c| 0.3 * mixture.means[0][c] + 0.7 * mixture.means[1][c])
        .collect();
    let key = fokker::rng::key_from_seed(3);
    let values: Vec<f32> = (0..n)
        .flat_map(|r| (0..2u64).map(move |c| (1e4 + fokker::rng::normal(key, r, 0, c)) as f32))
        .collect();
    let table_mean: Vec<f64> = (0..2)
        .map(|c| {
            values
                .iter()
                .skip(c)
                .step_by(2)
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / n as f64
        })
        .collect();
    let table = SampleTable {
        rows: n as usize,
        dim: 2,
        values,
    };
    let samples = Init::Samples {
        path: "far.npy".into(),
        rows: n,
        sha256: String::new(),
    };
    let cases = [
        ("mixture", Init::Mixture(mixture), None, mixture_mean),
        ("samples", samples, Some(&table), table_mean),
    ];
    // Each invocation adds ITEMS products y_a y_b of y = x - c (c the init's mean in f32;
    // x - c is exact, both being within a factor 2), then a workgroup tree adds log2(64)
    // levels and the host adds in f64. Recursive summation is off by at most
    // K eps sum |y_a y_b| with K = ITEMS + log2(64) + 1, eps = 2^-24, and mean |y_a y_b| <=
    // sqrt(m_a m_b), m_a = mean y_a^2 = cov_aa + (mean_a - c_a)^2. The mean's correction
    // s = mean y is off by K eps sqrt(m_a), so the covariance S2 / n - s_a s_b by at most
    // 3 K eps sqrt(m_a m_b), the mean by K eps sqrt(m_a).
    let k = f64::from(fokker::observe::moments::ITEMS) + 6.0 + 1.0;
    let eps = f64::from(f32::EPSILON) / 2.0;
    for (what, init, samples, center) in cases {
        let p = plan(
            2,
            n,
            init,
            Potential::DoubleWell,
            1.0,
            1e-3,
            1,
            hist2(4, 9990.0, 10010.0),
        );
        let mut sim =
            Simulation::new(&gpu, &p, samples, None, 0, n, &Layout::default()).expect("simulation");
        let obs = sim.observe().expect("observe");
        let pos: Vec<f64> = sim
            .positions()
            .expect("positions")
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let twin = moments_cpu(&pos, 2);
        let m: Vec<f64> = (0..2)
            .map(|a| {
                let c = f64::from(center[a] as f32);
                twin.cov[a * 2 + a] + (twin.mean[a] - c).powi(2)
            })
            .collect();
        for a in 0..2 {
            let err = (obs.moments.mean[a] - twin.mean[a]).abs();
            let tol = k * eps * m[a].sqrt();
            assert!(err <= tol, "{what}: mean[{a}] off by {err:e} > {tol:e}");
            for b in 0..2 {
                let err = (obs.moments.cov[a * 2 + b] - twin.cov[a * 2 + b]).abs();
                let tol = 3.0 * k * eps * (m[a] * m[b]).sqrt();
                assert!(
                    err <= tol,
                    "{what}: cov[{a}][{b}] {} vs twin {} (off by {err:e} > {tol:e})",
                    obs.moments.cov[a * 2 + b],
                    twin.cov[a * 2 + b]
                );
            }
        }
    }
}

fn with_schedule(p: &mut Plan, schedule: StepSize) {
    let DynamicsPlan::Langevin(l) = &mut p.dynamics else {
        unreachable!()
    };
    l.dt = schedule;
    l.t_end = schedule.time(l.steps, l.steps);
}

/// A decreasing geometric step-size schedule on the GPU against the f64 twin, per particle
/// within the f32 bound carried along the twin's trajectory (`twin_with_bounds_scheduled`),
/// in dimension 3 (rounds of 4 steps with a head and a tail) over more steps than one
/// block's table holds (SCHEDULE_TABLE_STEPS = 4096), so the table is rewritten between
/// blocks. The run's time is the sum of the steps taken.
#[test]
fn step_size_schedule_agrees_with_the_twin() {
    let (n, steps) = (256u64, 4500u64);
    let schedule = StepSize::Schedule(DtSchedule {
        start: 0.02,
        end: 1e-3,
        kind: ScheduleKind::Geometric,
    });
    let potential = Potential::Mixture(fokker::model::Mixture {
        weights: vec![0.3, 0.7],
        means: vec![vec![-1.0, 0.0, 0.5], vec![1.0, 0.5, -0.5]],
        stds: vec![vec![0.5, 0.6, 0.7], vec![0.4, 0.5, 0.8]],
    });
    let init = Init::Gaussian {
        mean: vec![0.0, 0.0, 0.0],
        std: vec![1.0, 1.0, 1.0],
    };
    let spec = HistogramSpec {
        axes: vec![0, 2],
        bins: vec![16, 16],
        range: vec![[-3.0, 3.0], [-3.0, 3.0]],
    };
    let mut p = plan(
        3,
        n,
        init.clone(),
        potential.clone(),
        1.0,
        0.02,
        steps,
        spec,
    );
    with_schedule(&mut p, schedule);
    let t_end = schedule.time(steps, steps);
    assert_eq!(p.dynamics.time_at(steps), t_end);
    assert_eq!(p.dynamics.time_at(1), 0.02);
    let gpu_pos = run_positions(&p, &Layout::default());
    let mut cpu = init_cpu(&init, None, 3, 0, n, n, p.seed);
    let mut bound = init_bounds(&cpu, 3, 1.0);
    twin_with_bounds_scheduled(
        &mut cpu, &mut bound, 3, 0, &potential, 1.0, &schedule, steps, p.seed, steps,
    );
    let mut worst: f64 = 0.0;
    for (k, (g, c)) in gpu_pos.chunks_exact(3).zip(cpu.chunks_exact(3)).enumerate() {
        let diff = (0..3)
            .map(|i| (f64::from(g[i]) - c[i]).abs())
            .fold(0.0, f64::max);
        worst = worst.max(diff / bound[k]);
        assert!(
            diff <= bound[k],
            "particle {k}: gpu {g:?} vs twin {c:?}, off by {diff:e} > bound {:e}",
            bound[k]
        );
    }
    println!("largest error / bound {worst:.3}");
}

/// Decreasing-step Langevin Monte Carlo toward a two-component mixture (U = -log p) from a
/// point in the lighter component recovers the weights.
///
/// Assignment: a particle belongs to component 1 (mean -1) when x < 0. Each component
/// leaks q = Phi(-1 / 0.5) = Phi(-2) of its mass across 0, so the target's fraction below 0
/// is f = w1 (1 - q) + w2 q and w1 = (f - q) / (1 - 2 q). With N independent particles the
/// fraction's standard error is sqrt(f (1 - f) / N) and w1's is that over (1 - 2 q).
/// Bias: relaxation between the wells takes a few time units (barrier ~1.65 T); the
/// schedule (0.02 -> 1e-3 geometric over 6000 steps, t_N = 38.1) spends about 18 time units
/// with dt < 0.01, so the O(dt) weight bias of the larger early steps has decayed far below
/// one standard error (0.002 at N = 50000); 5 standard errors is the test's width.
#[test]
fn decreasing_step_lmc_recovers_mixture_weights() {
    let (n, steps) = (50_000u64, 6000u64);
    let (w1, w2) = (0.3, 0.7);
    let potential = Potential::Mixture(fokker::model::Mixture {
        weights: vec![w1, w2],
        means: vec![vec![-1.0], vec![1.0]],
        stds: vec![vec![0.5], vec![0.5]],
    });
    let spec = HistogramSpec {
        axes: vec![0],
        bins: vec![16],
        range: vec![[-3.0, 3.0]],
    };
    let mut p = plan(
        1,
        n,
        Init::Point { at: vec![-1.0] },
        potential,
        1.0,
        0.02,
        steps,
        spec,
    );
    let schedule = StepSize::Schedule(DtSchedule {
        start: 0.02,
        end: 1e-3,
        kind: ScheduleKind::Geometric,
    });
    with_schedule(&mut p, schedule);
    let pos = run_positions(&p, &Layout::default());
    let below = pos.iter().filter(|&&x| x < 0.0).count() as f64;
    let f = below / n as f64;
    let q = normal_cdf(-2.0);
    let w1_hat = (f - q) / (1.0 - 2.0 * q);
    let f_true = w1 * (1.0 - q) + w2 * q;
    let se = (f_true * (1.0 - f_true) / n as f64).sqrt() / (1.0 - 2.0 * q);
    println!(
        "t_N = {:.2}, w1 = {w1_hat:.4} vs {w1} (se {se:.4})",
        schedule.time(steps, steps)
    );
    assert!(
        (w1_hat - w1).abs() < 5.0 * se,
        "w1 = {w1_hat} vs {w1}: {:.2} standard errors",
        (w1_hat - w1).abs() / se
    );
}
