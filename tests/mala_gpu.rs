//! MALA (`mala = true` on overdamped Langevin) on the GPU: the stationary variance exact at
//! a dt where Euler–Maruyama's is far off, the acceptance rate, the accept/reject decisions
//! against the f64 twin on the same noise, and the acceptance column through a run that is
//! interrupted and resumed.

mod common;

use common::f32err::{NORMAL_ERROR, U};
use fokker::dynamics::langevin::{MalaStep, mala_cpu, mala_step};
use fokker::model::{Potential, Temperature};
use fokker::rng::{self, NoiseStream};
use fokker::scenario::*;
use fokker::simulation::{Layout, ResumePoint, Simulation};
use std::path::Path;
use std::process::{Command, Output};

#[allow(clippy::too_many_arguments)]
fn plan(
    dim: u32,
    count: u64,
    init: Init,
    potential: Potential,
    temperature: f64,
    dt: f64,
    steps: u64,
    mala: bool,
) -> Plan {
    Plan {
        name: None,
        seed: 7,
        boundary: Default::default(),
        particles: ParticlesPlan { count, dim, init },
        dynamics: DynamicsPlan::Langevin(fokker::dynamics::langevin::LangevinPlan {
            potential,
            temperature: Temperature::Constant(temperature),
            dt: fokker::model::StepSize::Constant(dt),
            steps,
            t_end: steps as f64 * dt,
            mala,
        }),
        output: OutputPlan {
            every_steps: None,
            histogram: HistogramSpec {
                axes: vec![0],
                bins: vec![4],
                range: vec![[-2.0, 2.0]],
            },
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

fn isotropic(dim: usize, k: f64) -> Potential {
    Potential::Quadratic {
        matrix: (0..dim)
            .map(|i| (0..dim).map(|j| if i == j { k } else { 0.0 }).collect())
            .collect(),
        center: vec![0.0; dim],
    }
}

/// The Boltzmann law of U = k |x|^2 / 2 at T: N(0, T/k) per coordinate.
fn boltzmann(dim: usize, k: f64, temperature: f64) -> Init {
    Init::Gaussian {
        mean: vec![0.0; dim],
        std: vec![(temperature / k).sqrt(); dim],
    }
}

/// At dt = 0.5 in U = |x|^2 / 2 (k = 1, T = 1), Euler–Maruyama's chain
/// x' = (1 - k dt) x + sqrt(2 T dt) xi has stationary variance T / (k (1 - k dt / 2)) = 4/3,
/// and from a Boltzmann start (variance 1) it gets there as v_n = 4/3 - (1/3) 0.25^n (at
/// n = 40, 4/3 to 1e-24). MALA keeps N(0, T/k) exactly at any dt. The particles are
/// independent and, at stationarity, so are their coordinates, so the pooled variance
/// v = (cov_00 + cov_11) / 2 of N particles has standard error sigma^2 / sqrt(N - 1)
/// (the Gaussian's var(s^2) = 2 sigma^4 / (N - 1), halved by pooling two coordinates;
/// fourth moments of the EM chain's Gaussian law alike). Pass: within 5 standard errors;
/// EM's 4/3 is 1/3 away, about 85 standard errors at N = 65536.
#[test]
fn mala_keeps_the_boltzmann_variance_where_euler_maruyama_is_biased() {
    let gpu = common::gpu();
    let (n, dt, steps) = (65_536u64, 0.5, 40u64);
    let run = |mala: bool| {
        let p = plan(
            2,
            n,
            boltzmann(2, 1.0, 1.0),
            isotropic(2, 1.0),
            1.0,
            dt,
            steps,
            mala,
        );
        let mut sim =
            Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("simulation");
        sim.advance_to(steps, |_| Ok(()), &|| false)
            .expect("advance");
        let obs = sim.observe().expect("observe");
        let m = &obs.moments;
        assert_eq!(m.count, n);
        (0.5 * (m.cov[0] + m.cov[3]), m.mean.clone(), obs.accepted)
    };
    let (v_em, _, none) = run(false);
    assert_eq!(none, None, "plain Langevin counts no proposals");
    let em_exact = 1.0 / (1.0 - dt / 2.0);
    let se = |sigma2: f64| sigma2 / ((n - 1) as f64).sqrt();
    assert!(
        (v_em - em_exact).abs() < 5.0 * se(em_exact),
        "EM variance {v_em}, its own stationary value {em_exact}"
    );
    assert!(
        v_em - 1.0 > 50.0 * se(1.0),
        "EM's bias must be visible: variance {v_em} against T/k = 1"
    );
    let (v_mala, mean, accepted) = run(true);
    assert!(
        (v_mala - 1.0).abs() < 5.0 * se(1.0),
        "MALA variance {v_mala} against T/k = 1 (standard error {})",
        se(1.0)
    );
    // Each mean coordinate has standard error sqrt(T/k / N).
    for m in mean {
        assert!(m.abs() < 5.0 / (n as f64).sqrt(), "MALA mean {m}");
    }
    let rate = accepted.expect("MALA counts proposals") as f64 / (n * steps) as f64;
    eprintln!("variance: EM {v_em}, MALA {v_mala} (acceptance {rate})");
    assert!(rate > 0.0 && rate < 1.0, "acceptance {rate}");
}

/// The acceptance rate is a fraction in (0, 1) that falls as dt grows (the proposal's
/// Euler–Maruyama error grows with dt). At stationarity in U = |x|^2 / 2, N = 16384
/// particles and 16 steps, the rate's standard error is at most
/// sqrt(1/4 / (N * 16)) = 1e-3 even with every particle's 16 decisions fully correlated
/// (sqrt(1/4 / N) = 4e-3); consecutive rates here differ by more than 0.05, over 10 of those.
#[test]
fn acceptance_is_a_fraction_that_falls_with_dt() {
    let gpu = common::gpu();
    let (n, steps) = (16_384u64, 16u64);
    let mut rates = Vec::new();
    for dt in [0.05, 0.3, 0.8, 1.5] {
        let p = plan(
            2,
            n,
            boltzmann(2, 1.0, 1.0),
            isotropic(2, 1.0),
            1.0,
            dt,
            steps,
            true,
        );
        let mut sim =
            Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("simulation");
        sim.advance_to(steps, |_| Ok(()), &|| false)
            .expect("advance");
        let accepted = sim.observe().expect("observe").accepted.expect("counted");
        // The count restarts at each snapshot.
        assert_eq!(sim.accepted().expect("read"), Some(0));
        rates.push((dt, accepted as f64 / (n * steps) as f64));
    }
    eprintln!("acceptance by dt: {rates:?}");
    for &(dt, r) in &rates {
        assert!(r > 0.0 && r < 1.0, "dt {dt}: acceptance {r}");
    }
    for w in rates.windows(2) {
        assert!(
            w[0].1 - w[1].1 > 0.04,
            "acceptance must fall with dt: {rates:?}"
        );
    }
    assert!(
        rates[0].1 > 0.95,
        "small dt accepts almost always: {rates:?}"
    );
}

/// Error of the f32 gradient at x, max norm, as tests/langevin_gpu.rs derives it: a
/// quadratic's coordinates are dot products of dim terms, (dim + 1) u sum |A_ij x_j|; the
/// double well's 4 x (x^2 - 1) takes four operations, 4 u (4 |x|^3 + 4 |x|).
fn gradient_error(potential: &Potential, x: &[f64]) -> f64 {
    let d = x.len() as f64;
    match potential {
        Potential::Quadratic { matrix, .. } => {
            let row = |r: &Vec<f64>| -> f64 { r.iter().zip(x).map(|(a, x)| (a * x).abs()).sum() };
            (d + 1.0) * U * matrix.iter().map(row).fold(0.0, f64::max)
        }
        Potential::DoubleWell => {
            4.0 * U * (4.0 * x[0].abs().powi(3) + 4.0 * x[0].abs())
                + U * x[1..].iter().fold(0.0f64, |m, v| m.max(v.abs()))
        }
        _ => unimplemented!("quadratic and double well only"),
    }
}

/// Error of the f32 value at x: the quadratic's d (A d) in dot products of dim and 2 dim
/// terms, (2 dim + 2) u times sum |d_i A_ij d_j| / 2; the double well's
/// (x_0^2 - 1)^2 + (1/2) sum x_i^2 in at most 2 dim + 4 operations on terms no larger than
/// (x_0^2 + 1)^2 + (1/2) |x|^2.
fn value_error(potential: &Potential, x: &[f64]) -> f64 {
    let d = x.len() as f64;
    match potential {
        Potential::Quadratic { matrix, .. } => {
            let mut s = 0.0;
            for (i, row) in matrix.iter().enumerate() {
                for (j, a) in row.iter().enumerate() {
                    s += (x[i] * a * x[j]).abs();
                }
            }
            (2.0 * d + 2.0) * U * 0.5 * s
        }
        Potential::DoubleWell => {
            let r2: f64 = x.iter().map(|v| v * v).sum();
            (2.0 * d + 4.0) * U * ((x[0] * x[0] + 1.0).powi(2) + 0.5 * r2)
        }
        _ => unimplemented!("quadratic and double well only"),
    }
}

/// How far the GPU's log alpha and log u can be from the twin's for the same start x (both
/// from the GPU's f32 positions), to first order in u = 2^-24, doubled for the second-order
/// terms. The shader computes log alpha = (-(U(y) - U(x)) + s xi.h / 2 - dt |h|^2 / 4) / T,
/// h = grad U(x) + grad U(y):
/// - its normals are off by NORMAL_ERROR each (tests/common/f32err.rs), and its proposal
///   y = x - g dt + s xi rounds three operations, 3 u (|x| + |g| dt + s |xi|) per coordinate,
///   the same as moving xi by that over s: both act through |d log alpha / d xi|_1, taken by
///   central differences of the twin's own log alpha (exact for a quadratic U, whose
///   log alpha is quadratic in xi);
/// - U at x and y is off by `value_error` each, /T;
/// - each coordinate of h is off by the two gradients' `gradient_error`, through
///   |d log alpha / d h| <= (s |xi| / 2 + dt |h| / 2) / T per coordinate;
/// - the final combination rounds about eight operations on terms of size
///   (|U(x)| + |U(y)| + s |xi.h| / 2 + dt |h|^2 / 4) / T;
/// - log u: WGSL's log is within 2^-21 absolute on [0.5, 2] and 3 ulp elsewhere.
#[allow(clippy::too_many_arguments)]
fn decision_margin(
    potential: &Potential,
    temperature: f64,
    dt: f64,
    x: &[f64],
    xi: &[f64],
    u: f64,
    step: &MalaStep,
) -> f64 {
    let d = x.len();
    let s = (2.0 * temperature * dt).sqrt();
    let g = potential.gradient(x);
    let y = &step.proposal;
    let gy = potential.gradient(y);
    let mut sensitivity = 0.0;
    let h = 1e-4;
    for c in 0..d {
        let mut plus = xi.to_vec();
        let mut minus = xi.to_vec();
        plus[c] += h;
        minus[c] -= h;
        let fp = mala_step(potential, temperature, dt, x, &plus, u, 0.0).log_alpha;
        let fm = mala_step(potential, temperature, dt, x, &minus, u, 0.0).log_alpha;
        let slope = ((fp - fm) / (2.0 * h)).abs();
        let moved = NORMAL_ERROR + 3.0 * U * (x[c].abs() + g[c].abs() * dt + s * xi[c].abs()) / s;
        sensitivity += slope * moved;
    }
    let hv: Vec<f64> = g.iter().zip(&gy).map(|(a, b)| a + b).collect();
    let h_norm = hv.iter().map(|v| v * v).sum::<f64>().sqrt();
    let xi_norm = xi.iter().map(|v| v * v).sum::<f64>().sqrt();
    let gradients = (gradient_error(potential, x) + gradient_error(potential, y))
        * d as f64
        * (s * xi_norm / 2.0 + dt * h_norm / 2.0)
        / temperature;
    let values = (value_error(potential, x) + value_error(potential, y)) / temperature;
    let cross: f64 = xi.iter().zip(&hv).map(|(a, b)| (a * b).abs()).sum();
    let terms = potential.value(x).abs()
        + potential.value(y).abs()
        + s * cross / 2.0
        + dt * h_norm * h_norm / 4.0;
    let rounding = 8.0 * U * terms / temperature;
    let log_u = 2f64.powi(-21) + 6.0 * U * u.ln().abs();
    2.0 * (sensitivity + gradients + values + rounding + log_u)
}

/// The proposal the GPU may land on when it accepts: the twin's y within the rounding of
/// y = x - g dt + s xi (three operations, the gradient's own error times dt) and s times
/// the normals' error.
fn proposal_tolerance(potential: &Potential, dt: f64, s: f64, x: &[f64], xi: &[f64]) -> f64 {
    let g = potential.gradient(x);
    (0..x.len())
        .map(|c| {
            3.0 * U * (x[c].abs() + g[c].abs() * dt + s * xi[c].abs())
                + dt * gradient_error(potential, x)
                + s * NORMAL_ERROR
        })
        .fold(0.0, f64::max)
        * 2.0
}

/// GPU against the f64 twin, one step at a time from the GPU's own positions (so f32
/// rounding never accumulates): every decision is the twin's (a rejected particle keeps
/// its bits, an accepted one lands on the twin's proposal) except where |log u - log alpha|
/// is within [`decision_margin`]. In 2D (two steps per Philox round) and 3D (four), through
/// 16 steps, so every lane of the uniforms' blocks is used, and at dt where both decisions
/// are common.
#[test]
fn gpu_decisions_match_the_twin_outside_the_f32_margin() {
    let gpu = common::gpu();
    let n = 4096u64;
    let cases = [
        (
            2u32,
            Potential::Quadratic {
                matrix: vec![vec![1.0, 0.3], vec![0.3, 4.0]],
                center: vec![0.0, 0.0],
            },
            1.0,
            0.4,
        ),
        (3u32, Potential::DoubleWell, 0.7, 0.25),
    ];
    for (dim, potential, temperature, dt) in cases {
        let d = dim as usize;
        let steps = 16u64;
        let init = Init::Gaussian {
            mean: vec![0.0; d],
            std: vec![0.8; d],
        };
        let p = plan(
            dim,
            n,
            init,
            potential.clone(),
            temperature,
            dt,
            steps,
            true,
        );
        let layout = Layout {
            fused_steps: Some(1),
            ..Layout::default()
        };
        let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &layout).expect("simulation");
        let key = rng::key_from_seed(p.seed);
        let s = (2.0 * temperature * dt).sqrt();
        let (mut decided, mut marginal, mut accepted) = (0u64, 0u64, 0u64);
        let mut start = sim.positions().expect("positions");
        for k in 0..steps {
            let point = ResumePoint {
                step: k,
                pending: None,
            };
            sim.restore(&start, None, point).expect("restore");
            sim.set_accepted(0);
            sim.advance_to(k + 1, |_| Ok(()), &|| false)
                .expect("advance");
            let after = sim.positions().expect("positions");
            let gpu_accepted = sim.accepted().expect("read").expect("counted");
            let mut twin_accepted = 0u64;
            for i in 0..n as usize {
                let x: Vec<f64> = start[i * d..(i + 1) * d]
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect();
                let mut noise = NoiseStream::new(key, i as u64, k, dim);
                let xi: Vec<f64> = (0..d).map(|_| noise.next_normal()).collect();
                let u = rng::mala_uniform(key, i as u64, k);
                let step = mala_step(&potential, temperature, dt, &x, &xi, u, k as f64 * dt);
                let moved = after[i * d..(i + 1) * d] != start[i * d..(i + 1) * d];
                let margin = decision_margin(&potential, temperature, dt, &x, &xi, u, &step);
                twin_accepted += u64::from(step.accepted);
                if (step.log_u - step.log_alpha).abs() <= margin {
                    marginal += 1;
                    continue;
                }
                decided += 1;
                accepted += u64::from(step.accepted);
                assert_eq!(
                    moved,
                    step.accepted,
                    "dim {dim}, particle {i}, step {k}: GPU {} but log u = {} and log alpha = {} \
                     (margin {margin})",
                    if moved { "accepted" } else { "rejected" },
                    step.log_u,
                    step.log_alpha
                );
                if moved {
                    let tol = proposal_tolerance(&potential, dt, s, &x, &xi);
                    for c in 0..d {
                        let diff = (f64::from(after[i * d + c]) - step.proposal[c]).abs();
                        assert!(
                            diff <= tol,
                            "dim {dim}, particle {i}, step {k}: coordinate {c} off the twin's \
                             proposal by {diff} (tolerance {tol})"
                        );
                    }
                }
            }
            // The GPU's count is its own decisions; they differ from the twin's only at
            // marginal ones.
            assert!(
                gpu_accepted.abs_diff(twin_accepted) <= marginal,
                "dim {dim}, step {k}: GPU accepted {gpu_accepted}, twin {twin_accepted}"
            );
            start = after;
        }
        // The test decides nearly everything and sees both outcomes often.
        assert!(
            marginal * 1000 <= decided,
            "dim {dim}: {marginal} marginal decisions of {}",
            decided + marginal
        );
        let rate = accepted as f64 / decided as f64;
        eprintln!("dim {dim}: {decided} decided, {marginal} marginal, acceptance {rate}");
        assert!(
            rate > 0.2 && rate < 0.95,
            "dim {dim}: acceptance {rate} tests too few of one outcome"
        );
    }
}

/// Fused dispatches (a single-step head, whole quads of steps from a multiple of 4, a
/// tail) take the same normals and uniforms as the twin: from step 1 through 8 steps (head
/// 3, one quad, tail 1), in every round layout (1, 2 or 4 steps per round of normals, and
/// DIM > 4), each particle's whole trajectory is the twin's, wherever no step of the twin's
/// was within 4 times the decision margin (the f32 trajectory drifts from the twin's by a
/// few ulp a step, which moves log alpha by far less than the margin's own size), within 8
/// times one step's proposal tolerance.
/// The chain's U and grad U taken over from each accepted proposal (`MALA_CARRY` = 1, the
/// default but for the double well) or evaluated at its position at every step (0, the
/// double well's default) are the same function of the same bits: the positions and the
/// accepted count agree to the bit, in fused quads and in single steps (fused_steps 7 ends
/// blocks mid-quad), for the double well, a quadratic and an expression. The twin tests
/// above hold both defaults against f64 (the quadratic carries, the double well does not).
#[test]
fn carried_and_recomputed_potentials_give_the_same_bits() {
    let gpu = common::gpu();
    let (n, temperature, dt, steps) = (1000u64, 0.7, 0.2, 20u64);
    let expr = {
        let source = fokker::model::expr::PotentialSource {
            expr: "0.5*k*(x^2 + y^2) + 0.1*x^4".into(),
            params: [("k".to_string(), 2.0)].into_iter().collect(),
            dim: 2,
        };
        match fokker::model::expr::ExprPotential::new(source) {
            Ok(p) => Potential::Expr(p),
            Err(e) => panic!("the expression does not compile: {}", e.error),
        }
    };
    let cases = [
        (1u32, Potential::DoubleWell),
        (2, Potential::DoubleWell),
        (6, Potential::DoubleWell),
        (
            2,
            Potential::Quadratic {
                matrix: vec![vec![1.0, 0.3], vec![0.3, 4.0]],
                center: vec![0.5, 0.0],
            },
        ),
        (2, expr),
    ];
    for (dim, potential) in cases {
        let init = Init::Gaussian {
            mean: vec![0.0; dim as usize],
            std: vec![0.8; dim as usize],
        };
        let p = plan(dim, n, init, potential, temperature, dt, steps, true);
        let run = |carry: bool, fused: Option<u32>| {
            let layout = Layout {
                fused_steps: fused,
                mala_carry: Some(carry),
                ..Layout::default()
            };
            let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &layout).expect("simulation");
            sim.advance_to(steps, |_| Ok(()), &|| false)
                .expect("advance");
            let x: Vec<u32> = sim
                .positions()
                .expect("positions")
                .iter()
                .map(|v| v.to_bits())
                .collect();
            (x, sim.accepted().expect("read").expect("counted"))
        };
        for fused in [None, Some(7)] {
            let (carried, recomputed) = (run(true, fused), run(false, fused));
            assert!(
                carried.1 > 0 && carried.1 < n * steps,
                "dim {dim}: accepted {} of {}",
                carried.1,
                n * steps
            );
            assert_eq!(
                carried.1, recomputed.1,
                "dim {dim}, fused {fused:?}: accepted"
            );
            assert!(
                carried.0 == recomputed.0,
                "dim {dim}, fused {fused:?}: positions differ"
            );
        }
    }
}

#[test]
fn fused_quads_follow_the_twin() {
    quads_follow_the_twin(&[1u32, 2, 3, 4, 6], |_| 1, 8);
}

/// The whole-quad kernel keeps the high words of its noise blocks and of its steps fixed
/// through a dispatch (shaders/common/philox.wgsl, `block_in_word`), and the host cuts
/// blocks there (`dispatch_plan`): blocks of 8 steps from 4 steps before step 2^32 (MALA's
/// uniforms are indexed by the step) and from the quad before the first one whose normals
/// start at or past number 2^34 (in dimensions 3 and 6 that quad straddles 2^34) follow
/// the twin as blocks from step 1 do. Without the cut the steps after the boundary draw the
/// noise and uniforms of one lap earlier and leave the twin by the size of a step.
#[test]
fn fused_quads_follow_the_twin_across_the_high_words() {
    // Two whole quads from a multiple of 4, the second starting past the boundary, so the
    // boundary falls in the rounds' part of the block.
    quads_follow_the_twin(&[2u32, 3, 6], |_| (1 << 32) - 4, 8);
    quads_follow_the_twin(
        &[1u32, 2, 3, 6],
        |dim| (common::sim::noise_word_boundary(dim) - 1) / 4 * 4,
        8,
    );
}

/// `steps` MALA steps from step `start(dim)` per dimension, on the GPU (fused) and in the
/// per-particle twin.
fn quads_follow_the_twin(dims: &[u32], start: impl Fn(u32) -> u64, steps: u64) {
    let gpu = common::gpu();
    let (n, temperature, dt) = (1024u64, 0.7, 0.25);
    let potential = Potential::DoubleWell;
    for &dim in dims {
        let s0 = start(dim);
        let d = dim as usize;
        let init = Init::Gaussian {
            mean: vec![0.0; d],
            std: vec![0.8; d],
        };
        let p = plan(
            dim,
            n,
            init,
            potential.clone(),
            temperature,
            dt,
            s0 + steps,
            true,
        );
        let mut sim =
            Simulation::new(&gpu, &p, None, None, 0, n, &Layout::default()).expect("simulation");
        let start = sim.positions().expect("positions");
        sim.restore(
            &start,
            None,
            ResumePoint {
                step: s0,
                pending: None,
            },
        )
        .expect("restore");
        sim.advance_to(s0 + steps, |_| Ok(()), &|| false)
            .expect("advance");
        let after = sim.positions().expect("positions");
        let gpu_accepted = sim.accepted().expect("read").expect("counted");
        let key = rng::key_from_seed(p.seed);
        let s = (2.0 * temperature * dt).sqrt();
        let (mut compared, mut twin_total) = (0u64, 0u64);
        for i in 0..n as usize {
            let mut x: Vec<f64> = start[i * d..(i + 1) * d]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let mut clear = true;
            let mut tol: f64 = 0.0;
            let mut noise = NoiseStream::new(key, i as u64, s0, dim);
            for k in s0..s0 + steps {
                let xi: Vec<f64> = (0..d).map(|_| noise.next_normal()).collect();
                let u = rng::mala_uniform(key, i as u64, k);
                let step = mala_step(&potential, temperature, dt, &x, &xi, u, k as f64 * dt);
                let margin = decision_margin(&potential, temperature, dt, &x, &xi, u, &step);
                clear &= (step.log_u - step.log_alpha).abs() > 4.0 * margin;
                tol = tol.max(proposal_tolerance(&potential, dt, s, &x, &xi));
                if step.accepted {
                    x = step.proposal;
                    twin_total += 1;
                }
            }
            if !clear {
                continue;
            }
            compared += 1;
            for c in 0..d {
                let diff = (f64::from(after[i * d + c]) - x[c]).abs();
                assert!(
                    diff <= 8.0 * tol,
                    "dim {dim}, particle {i}: coordinate {c} off the twin by {diff} (tolerance {})",
                    8.0 * tol
                );
            }
        }
        eprintln!(
            "fused from step {s0}, dim {dim}: {compared} of {n} compared, GPU accepted {gpu_accepted}"
        );
        assert!(
            compared * 100 >= 99 * n,
            "dim {dim}: only {compared} of {n} compared"
        );
        // The whole-ensemble twin agrees with the per-particle one, and the GPU's count with
        // both up to the particles not compared (at most `steps` decisions each).
        let mut cpu: Vec<f64> = start.iter().map(|&v| f64::from(v)).collect();
        let twin = mala_cpu(
            &mut cpu,
            dim,
            0,
            &potential,
            temperature,
            dt,
            p.seed,
            s0,
            steps,
        );
        assert_eq!(twin, twin_total);
        assert!(gpu_accepted.abs_diff(twin) <= (n - compared) * steps);
    }
}

fn fokker(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the fokker binary runs")
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"))
        .expect("json")
}

const SCENARIO: &str = r#"
seed = 3
[particles]
count = 4000
dim = 2
init = { kind = "gaussian", mean = [0.0, 0.0], std = 0.5 }
[dynamics]
kind = "langevin"
potential = { expr = "0.5*k*(x^2 + y^2) + 0.1*x^4", params = { k = 2.0 } }
temperature = 0.5
dt = 0.05
steps = 40
mala = true
[output]
every = 0.5
histogram = { bins = [16, 16], range = [[-2.0, 2.0], [-2.0, 2.0]] }
"#;

/// metrics.csv has `acceptance_rate` (empty at step 0, a fraction after), the manifest's
/// snapshots the same rates and the integer counts, the plan records `mala`; a run stopped
/// inside the first interval (after 3 of 8 slices of 500 particles) and resumed writes the
/// same bytes, because the checkpoint carries the proposals accepted since the snapshot.
#[test]
fn acceptance_rate_is_reported_and_survives_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SCENARIO).unwrap();
    let slices = ["--slice-particles", "500"];
    let o = fokker(
        &[
            &["run", "s.toml", "--out", "whole", "--progress", "none"][..],
            &slices,
        ]
        .concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = tmp.path().join("whole");
    let csv = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",acceptance_rate"), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + 5);
    assert!(lines[1].ends_with(','), "step 0 has no rate: {}", lines[1]);
    let m = manifest(&whole);
    assert_eq!(m["plan"]["dynamics"]["mala"], true);
    let snaps = m["snapshots"].as_array().unwrap();
    assert!(snaps[0].get("acceptance_rate").is_none());
    for (line, snap) in lines[2..].iter().zip(&snaps[1..]) {
        let rate: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert!(rate > 0.5 && rate < 1.0, "{line}");
        assert_eq!(snap["acceptance_rate"].as_f64(), Some(rate));
        let accepted = snap["accepted"].as_u64().unwrap();
        assert_eq!(rate, accepted as f64 / (4000.0 * 10.0));
    }

    let o = Command::new(env!("CARGO_BIN_EXE_fokker"))
        .args(
            [
                &["run", "s.toml", "--out", "cut", "--progress", "none"][..],
                &slices,
            ]
            .concat(),
        )
        .current_dir(tmp.path())
        .env("FOKKER_TEST_STOP_AT", "3")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let cut = tmp.path().join("cut");
    let point: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("checkpoint/point.json")).unwrap())
            .unwrap();
    assert_eq!(point["point"]["step"], 0, "{point}");
    assert!(
        point["accepted"].as_u64().unwrap() > 0,
        "the checkpoint carries the count: {point}"
    );
    let o = fokker(&["resume", "cut", "--progress", "none"], tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(cut.join("metrics.csv")).unwrap(),
        std::fs::read(whole.join("metrics.csv")).unwrap()
    );
    assert_eq!(manifest(&cut)["snapshots"], m["snapshots"]);
}

/// A MALA run sharded into 3 and merged is the unsharded run: the same density bytes, the
/// same integer `accepted` counts per snapshot (the shards' counts summed) and so exactly the
/// same acceptance rates, in the manifest and in metrics.csv.
#[test]
fn merged_mala_shards_sum_their_accepted_counts() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), SCENARIO).unwrap();
    let o = fokker(
        &["run", "s.toml", "--out", "whole", "--progress", "none"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut shards = Vec::new();
    for i in 0..3 {
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
                "3",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        shards.push(out);
    }
    let o = fokker(
        &["merge", "merged", &shards[1], &shards[0], &shards[2]],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (whole, merged) = (tmp.path().join("whole"), tmp.path().join("merged"));
    let (mw, mm) = (manifest(&whole), manifest(&merged));
    let (sw, sm) = (
        mw["snapshots"].as_array().unwrap(),
        mm["snapshots"].as_array().unwrap(),
    );
    assert_eq!(sw.len(), 5);
    assert_eq!(sw.len(), sm.len());
    for (k, (a, b)) in sw.iter().zip(sm).enumerate() {
        let file = a["density"].as_str().unwrap();
        assert_eq!(b["density"].as_str(), Some(file));
        assert!(
            std::fs::read(whole.join(file)).unwrap() == std::fs::read(merged.join(file)).unwrap(),
            "{file} differs"
        );
        assert_eq!(a["accepted"], b["accepted"], "snapshot {k}");
        assert_eq!(a["acceptance_rate"], b["acceptance_rate"], "snapshot {k}");
        if k > 0 {
            // The shards' own counts add up to the whole run's.
            let sum: u64 = shards
                .iter()
                .map(|d| {
                    manifest(&tmp.path().join(d))["snapshots"][k]["accepted"]
                        .as_u64()
                        .unwrap()
                })
                .sum();
            assert_eq!(a["accepted"].as_u64(), Some(sum), "snapshot {k}");
            assert!(sum > 0);
        }
    }
    let rates = |dir: &Path| -> Vec<String> {
        let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        let header = csv.lines().next().unwrap().split(',').collect::<Vec<_>>();
        let col = header.iter().position(|h| *h == "acceptance_rate").unwrap();
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(col).unwrap_or("").to_string())
            .collect()
    };
    let (rw, rm) = (rates(&whole), rates(&merged));
    assert_eq!(rw.len(), 5);
    assert_eq!(rw, rm, "metrics.csv acceptance rates");
}
