//! `[boundary]` with the kinds beyond plain Langevin: interacting particles (walls, periodic
//! axes with the minimum image in the pair sums, recording targets and basins) against their
//! f64 twin and against translation invariance; the general SDE against the wrapped Gaussian;
//! MALA with reflecting walls against the exact truncated Gaussian. Every tolerance is
//! derived beside its check.

mod common;

use common::sim::{advance, plan, simulation};
use common::stats::chi_square;

use common::f32err::{NORMAL_ERROR, U};
use common::stats::Z_LIMIT;
use fokker::dynamics::kernel_flows::interaction_cpu_in;
use fokker::gpu::abi::{BASIN_NONE, PASSAGE_NEVER};
use fokker::observe::first_passage::apply_walls;
use fokker::scenario::{DynamicsPlan, Plan};
use std::path::Path;

/// Interacting particles in the box x periodic on [-2, 2), y between reflecting walls at
/// +-0.6, V = y^2 / 2, W a repulsive Gaussian (strength 0.5, width 0.4) or an attractive
/// quadratic (strength 1), N = 64, T = 0.5, dt = 0.01, 20 steps, from a cluster straddling
/// the seam x = +-2 (std 0.2 in x, 0.4 in y: some start past the walls and are folded in at
/// the first step).
fn box_scenario(n: u64, center: f64, interaction: &str, extra: &str) -> String {
    format!(
        r#"
seed = 21
[particles]
count = {n}
dim = 2
init = {{ kind = "gaussian", mean = [{center}, 0.0], std = [0.2, 0.4] }}
[dynamics]
kind = "interaction"
potential = {{ expr = "0.5*y^2" }}
interaction = {interaction}
temperature = 0.5
dt = 0.01
steps = 20
[output]
histogram = {{ axes = [0], bins = 8, range = [[-2.0, 2.0]] }}
[boundary]
x = {{ kind = "periodic", low = -2.0, high = 2.0 }}
y = {{ kind = "reflecting", low = -0.6, high = 0.6 }}
{extra}
"#
    )
}

/// A global f32 error bound for `steps` steps of the box scenarios, from a per-step local
/// error `delta` carried by the drift's Lipschitz constant `lip` (max norm):
/// e_{k+1} <= (1 + lip dt) e_k + delta, so e_K <= e_0 g + delta (g - 1) / (lip dt) with
/// g = (1 + lip dt)^K. The walls do not grow it: reflection is 1-Lipschitz, and the
/// periodic axis is compared unwrapped (x + L w), on which the wrap is the identity.
fn global_bound(e0: f64, delta: f64, lip: f64, dt: f64, steps: u64) -> f64 {
    let g = (1.0 + lip * dt).powi(steps as i32);
    e0 * g + delta * (g - 1.0) / (lip * dt)
}

/// The local f32 error of one step of the box scenarios, per coordinate: the noise
/// sqrt(2 T dt) xi with the normal's error (NORMAL_ERROR) and 3 u of its size (|xi| <= 5.8);
/// 3 u of |x| <= L (the update's additions and the store); the reflection or wrap, a few
/// roundings of numbers up to L: 4 u L; dt times the force error: grad V = y is exact to
/// u |y|; the pair force (kappa / N) sum_j w_ij d_ij, each minimum image d_ij rounded at the
/// scale of L (2 u L: the difference and the image's subtraction) and the weights within
/// (16 + 12 a) u relative (exp2 of the shifted exponent, a <= (L / 2)^2 / (2 w^2)), summed
/// within N u of the sum of |terms| (sequential sums of at most 256 terms), each term at most
/// kappa max|d w| <= kappa L: kappa ((2 + 16 + 12 a + N) u L) overall.
fn local_bound(kappa: f64, a_max: f64, n: f64, l: f64, temperature: f64, dt: f64) -> f64 {
    let s = (2.0 * temperature * dt).sqrt();
    let pair = kappa * (2.0 + 16.0 + 12.0 * a_max + n) * U * l;
    s * NORMAL_ERROR + 3.0 * U * (l + 6.0 * s) + 4.0 * U * l + dt * (U * l + pair)
}

/// Unwrapped coordinates (x + L w on the periodic axis 0) from positions and tags (stride
/// `stride`, windings from word 1).
fn unwrapped(x: &[f32], tags: &[u32], stride: usize, l: f64) -> Vec<f64> {
    x.chunks_exact(2)
        .zip(tags.chunks_exact(stride))
        .flat_map(|(p, t)| {
            [
                f64::from(p[0]) + l * f64::from(t[1] as i32),
                f64::from(p[1]),
            ]
        })
        .collect()
}

/// A region of the bookkeeping checks: (axis, low, high), a closed interval on one axis.
type Slab = (usize, f64, f64);

/// Whether the twin's point is in the slab grown (`by` > 0) or shrunk (`by` < 0) by `by`.
fn in_slab(x: &[f64], (axis, lo, hi): Slab, by: f64) -> bool {
    x[axis] >= lo - by && x[axis] <= hi + by
}

/// The GPU's first-passage step of `target` (tag word 3) and last basin of `basins` (tag
/// word 4) for every particle, against the twin's wrapped positions after each step
/// (`path[k]`, row-major, after step k + 1), each within `bound` of the GPU's: the
/// recorded step k has the twin within `bound` of the target, and no earlier step had it
/// deeper than `bound` inside (never: not at any step); the last basin b was within `bound`
/// of the twin at some step after the last one at which the twin was deeper than `bound`
/// inside the other basin (none: the twin was never deeper than `bound` inside either).
/// No particle is left out: every decision that f32 could take either way is allowed both
/// ways and only those.
fn check_bookkeeping(
    path: &[Vec<f64>],
    tags: &[u32],
    stride: usize,
    bound: f64,
    target: Slab,
    basins: [Slab; 2],
) {
    for (i, row) in tags.chunks_exact(stride).enumerate() {
        let at = |k: usize| &path[k][2 * i..2 * i + 2];
        let first = row[3];
        let before = if first == PASSAGE_NEVER {
            path.len()
        } else {
            let k = first as usize - 1;
            assert!(
                in_slab(at(k), target, bound),
                "particle {i}: passage {first}"
            );
            k
        };
        assert!(
            (0..before).all(|k| !in_slab(at(k), target, -bound)),
            "particle {i}: inside the target before its passage step {first}"
        );
        let last = row[4];
        if last == BASIN_NONE {
            assert!(
                (0..path.len()).all(|k| basins.iter().all(|&b| !in_slab(at(k), b, -bound))),
                "particle {i}: inside a basin, yet none recorded"
            );
        } else {
            let (own, other) = (basins[last as usize], basins[1 - last as usize]);
            let left = (0..path.len())
                .rev()
                .find(|&k| in_slab(at(k), other, -bound))
                .map_or(0, |k| k + 1);
            assert!(
                (left..path.len()).any(|k| in_slab(at(k), own, bound)),
                "particle {i}: last basin {last} not visited after the other"
            );
        }
    }
}

/// Interacting particles with a periodic axis and reflecting walls against the f64 twin
/// (minimum image in the pair forces, the wall maps after each step), for the built-in
/// Gaussian W and the quadratic W (whose shared-mean shortcut is off with a periodic axis:
/// each particle sums the images nearest it). The cluster straddles the seam, so the pair
/// sums cross it; with a recording target and two basins, whose first-passage steps and
/// last basins must agree with the twin's path ([`check_bookkeeping`]).
///
/// Bound: [`local_bound`] carried by [`global_bound`] with the drift's Lipschitz constant in
/// the max norm over both coordinates: 1 (V) + 2 * 2 kappa (the pair force's derivative in
/// the particle itself and, summed, in the others, kappa max|d/dd (d e^{-d^2 / 2 w^2})| =
/// kappa for the Gaussian, kappa = strength for the quadratic; two coordinates). The initial
/// positions are the GPU's own (e0 = 0). The minimum image is discontinuous at |d| = L / 2:
/// the twin asserts no pair comes within twice the bound of L / 2 on the periodic axis, so
/// both sides take the same image. Every y stays within the walls.
#[test]
fn interaction_in_a_periodic_box_matches_its_twin() {
    let gpu = common::gpu();
    let (n, steps, l, dt, temperature) = (64u64, 20u64, 4.0f64, 0.01, 0.5);
    let regions = r#"
[[observe.first_passage]]
name = "top"
region = { y = [0.3, 1.0] }
[[observe.basins]]
name = "low"
region = { y = [-1.0, -0.2] }
[[observe.basins]]
name = "high"
region = { y = [0.2, 1.0] }
"#;
    for (interaction, kappa, a_max) in [
        (
            "{ kind = \"gaussian\", strength = 0.5, width = 0.4 }",
            0.5 / 0.16,
            (l / 2.0).powi(2) / (2.0 * 0.16),
        ),
        ("{ kind = \"quadratic\", strength = 1.0 }", 1.0, 0.0),
    ] {
        let p = plan(&box_scenario(n, 2.0, interaction, regions));
        let DynamicsPlan::Interaction(ip) = &p.dynamics else {
            panic!("not interaction")
        };
        let mut sim = simulation(&gpu, &p);
        let x0 = sim.positions().unwrap();
        advance(&mut sim, steps);
        let stride = 1 + 2 + 1 + 1;
        let (x, tags) = (sim.positions().unwrap(), sim.tags().unwrap());
        // The twin, with its own first passages and last basins.
        let mut twin: Vec<f64> = x0.iter().map(|&v| f64::from(v)).collect();
        let mut wind = vec![0i64; 2 * n as usize];
        let mut path = Vec::new();
        let bound = global_bound(
            0.0,
            local_bound(kappa, a_max, n as f64, l, temperature, dt),
            1.0 + 4.0 * kappa,
            dt,
            steps,
        );
        for k in 0..steps {
            interaction_cpu_in(
                &mut twin,
                2,
                &ip.potential,
                &ip.interaction,
                temperature,
                dt,
                p.seed,
                k,
                &[l, 0.0],
            );
            for i in 0..n as usize {
                let (row, w) = (&mut twin[2 * i..2 * i + 2], &mut wind[2 * i..2 * i + 2]);
                apply_walls(row, w, &p.boundary);
            }
            path.push(twin.clone());
            for i in 0..n as usize {
                for j in 0..n as usize {
                    let d = twin[2 * i] - twin[2 * j];
                    let d = d - l * (d / l).round();
                    assert!(
                        (d.abs() - l / 2.0).abs() > 2.0 * bound,
                        "step {k}: pair {i} {j} at {d}, within the bound of L / 2"
                    );
                }
            }
        }
        let gpu_x = unwrapped(&x, &tags, stride, l);
        let mut worst = 0.0f64;
        for i in 0..n as usize {
            let twin_x = twin[2 * i] + l * wind[2 * i] as f64;
            let twin_y = twin[2 * i + 1];
            for (g, t) in [(gpu_x[2 * i], twin_x), (gpu_x[2 * i + 1], twin_y)] {
                assert!(
                    (g - t).abs() <= bound,
                    "{interaction}: particle {i}: {g} vs {t}"
                );
                worst = worst.max((g - t).abs() / bound);
            }
            assert!((-0.6..=0.6).contains(&x[2 * i + 1]), "{}", x[2 * i + 1]);
            assert!((-2.0..2.0).contains(&x[2 * i]), "{}", x[2 * i]);
        }
        check_bookkeeping(
            &path,
            &tags,
            stride,
            bound,
            (1, 0.3, 1.0),
            [(1, -1.0, -0.2), (1, 0.2, 1.0)],
        );
        assert!(tags.chunks_exact(stride).any(|r| r[3] != PASSAGE_NEVER));
        assert!(tags.chunks_exact(stride).any(|r| r[4] != BASIN_NONE));
        assert!(wind.iter().any(|&w| w != 0), "no particle crossed the seam");
        println!("{interaction}: error / bound {worst:.3}, bound {bound:e}");
    }
}

/// Translation invariance: a cluster straddling the seam x = +-2 (centre 2) evolves as the
/// same cluster centred at 0 in the interior, shifted by 2 (same seed: the same initial
/// normals and step noise), with W written as an expression (the pair sum's minimum image).
/// V = y^2 / 2 does not read x, and the minimum image makes the pair forces invariant under
/// a shift along the periodic axis, so the exact trajectories differ by exactly 2 in the
/// unwrapped x. Each run is within [`global_bound`] of its exact trajectory (the initial
/// values' rounding: e0 = u |x0| <= 2 u L), so the two differ by at most twice that.
#[test]
fn a_cluster_across_the_seam_moves_like_one_inside() {
    let gpu = common::gpu();
    let (n, steps, l, dt, temperature) = (64u64, 20u64, 4.0f64, 0.01, 0.5);
    let w = "{ expr = \"eps*exp(-r^2/(2*w^2))\", params = { eps = 0.5, w = 0.4 } }";
    let run = |center: f64| {
        let p = plan(&box_scenario(n, center, w, ""));
        let mut sim = simulation(&gpu, &p);
        advance(&mut sim, steps);
        unwrapped(&sim.positions().unwrap(), &sim.tags().unwrap(), 3, l)
    };
    let (seam, inside) = (run(2.0), run(0.0));
    let kappa = 0.5 / 0.16;
    let a_max = (l / 2.0).powi(2) / (2.0 * 0.16);
    let bound = 2.0
        * global_bound(
            2.0 * U * l,
            local_bound(kappa, a_max, n as f64, l, temperature, dt),
            1.0 + 4.0 * kappa,
            dt,
            steps,
        );
    let mut crossed = false;
    for i in 0..n as usize {
        let (a, b) = (seam[2 * i] - 2.0, inside[2 * i]);
        crossed |= seam[2 * i] > 2.0;
        assert!((a - b).abs() <= bound, "particle {i} x: {a} vs {b}");
        let (a, b) = (seam[2 * i + 1], inside[2 * i + 1]);
        assert!((a - b).abs() <= bound, "particle {i} y: {a} vs {b}");
    }
    assert!(
        crossed,
        "no particle of the seam cluster lies past the seam"
    );
}

/// The SDE scenarios below: x on the circle [0, SDE_L) with constant drift 1.5, y an
/// Ornstein–Uhlenbeck drift -2 y between reflecting walls at +-0.5, D = SDE_D, from (1, 0),
/// SDE_STEPS steps of SDE_DT.
const SDE_STEPS: u64 = 100;
const SDE_DT: f64 = 5e-3;
const SDE_D: f64 = 0.5;
const SDE_L: f64 = 2.0 * std::f64::consts::PI;

/// The circle scenario with `n` particles, `seed`, and the `observers` TOML (targets,
/// basins) appended.
fn sde_circle_plan(n: u64, seed: u64, observers: &str) -> Plan {
    let (steps, dt, d, l) = (SDE_STEPS, SDE_DT, SDE_D, SDE_L);
    plan(&format!(
        r#"
seed = {seed}
[particles]
count = {n}
dim = 2
init = {{ kind = "point", at = [1.0, 0.0] }}
[dynamics]
kind = "sde"
drift = ["1.5", "-2*y"]
diffusion = "{d}"
dt = {dt}
steps = {steps}
[output]
histogram = {{ axes = [0], bins = 32, range = [[0.0, {l}]] }}
[boundary]
x = {{ kind = "periodic", low = 0.0, high = {l} }}
y = {{ kind = "reflecting", low = -0.5, high = 0.5 }}
{observers}"#
    ))
}

/// The f64 twin of a circle scenario's `n` particles (sde_cpu step by step with the wall
/// maps, nothing absorbed): the bound a GPU particle stays within ([`global_bound`]: the
/// local error as in [`local_bound`] without pair forces, the drift 1.5 and -2 y exact to
/// 2 u of their size, the Lipschitz constant 2), and after each step k + 1 the positions
/// wrapped (`[k]` of the first path) and unwrapped by the windings (of the second).
fn sde_circle_twin(p: &Plan, n: u64) -> (f64, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let (steps, dt, d, l) = (SDE_STEPS, SDE_DT, SDE_D, SDE_L);
    let DynamicsPlan::Sde(sp) = &p.dynamics else {
        panic!("not sde")
    };
    let fokker::dynamics::sde::SdeForm::Expr(model) = &sp.model else {
        panic!("an expression model")
    };
    let s = (2.0 * d * dt).sqrt();
    let delta = s * NORMAL_ERROR + 3.0 * U * (l + 6.0 * s) + 4.0 * U * l + dt * 2.0 * U * 2.0;
    let bound = global_bound(0.0, delta, 2.0, dt, steps);
    let mut twin = [1.0, 0.0].repeat(n as usize);
    let mut wind = vec![0i64; 2 * n as usize];
    let (mut wrapped, mut unwrapped) = (Vec::new(), Vec::new());
    for k in 0..steps {
        fokker::dynamics::sde::sde_cpu(&mut twin, 2, 0, model, dt, p.seed, k, 1);
        for i in 0..n as usize {
            let (row, w) = (&mut twin[2 * i..2 * i + 2], &mut wind[2 * i..2 * i + 2]);
            apply_walls(row, w, &p.boundary);
        }
        unwrapped.push(
            (0..n as usize)
                .flat_map(|i| [twin[2 * i] + l * wind[2 * i] as f64, twin[2 * i + 1]])
                .collect(),
        );
        wrapped.push(twin.clone());
    }
    (bound, wrapped, unwrapped)
}

/// The general SDE in a box: x on the circle [0, 2 pi) with constant drift 1.5 and D = 0.5,
/// y an Ornstein–Uhlenbeck drift -2 y between reflecting walls at +-0.5, from (1, 0) for
/// 100 steps of 5e-3. Exact answer: Euler–Maruyama is exact for constant coefficients, so
/// the unwrapped x is N(1 + 1.5 t, 2 D t) at t = 0.5 and the wrapped x the wrapped Gaussian
/// (chi-square over 32 bins below the 1e-6 false-alarm limit; images |m| <= 4 leave out less
/// than 1e-40), its mean within Z_LIMIT / sqrt(N) standard deviations and its variance
/// within Z_LIMIT sqrt(2 / N) relative. The f64 twin (sde_cpu step by step with the wall
/// maps) matches every particle within [`global_bound`]: the local error as in
/// [`local_bound`] without pair forces (kappa = 0), the drift 1.5 and -2 y exact to 2 u of
/// their size, and the Lipschitz constant 2; with a recording target (y in [0.3, 0.5]) and
/// two basins on the periodic axis, whose first-passage steps and last basins agree with
/// the twin's path ([`check_bookkeeping`]).
#[test]
fn sde_on_a_circle_with_walls_is_the_wrapped_gaussian_and_its_twin() {
    let gpu = common::gpu();
    let n = 4000u64;
    let (steps, dt, d, l) = (SDE_STEPS, SDE_DT, SDE_D, SDE_L);
    let p = sde_circle_plan(
        n,
        23,
        r#"
[[observe.first_passage]]
name = "top"
region = { y = [0.3, 0.5] }
[[observe.basins]]
name = "a"
region = { x = [2.0, 2.5] }
[[observe.basins]]
name = "b"
region = { x = [4.0, 5.0] }
"#,
    );
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, steps);
    let obs = sim.observe().unwrap();
    assert_eq!(obs.histogram.in_range(), n);
    let t = steps as f64 * dt;
    let (mean, var) = (1.0 + 1.5 * t, 2.0 * d * t);
    let cdf = |x: f64| 0.5 * libm::erfc(-(x - mean) / (2.0 * var).sqrt());
    let probs: Vec<f64> = (0..32)
        .map(|b| {
            let (a, c) = (l * b as f64 / 32.0, l * (b + 1) as f64 / 32.0);
            (-4..=4)
                .map(|m| cdf(c + l * f64::from(m)) - cdf(a + l * f64::from(m)))
                .sum()
        })
        .collect();
    let chi = chi_square(&obs.histogram.counts, &probs, n);
    assert!(chi < common::stats::chi_square_limit(31), "chi^2 = {chi}");
    let (x, tags) = (sim.positions().unwrap(), sim.tags().unwrap());
    let stride = 1 + 2 + 1 + 1;
    let gpu_x = unwrapped(&x, &tags, stride, l);
    let ux: Vec<f64> = gpu_x.iter().step_by(2).copied().collect();
    let m = ux.iter().sum::<f64>() / n as f64;
    let v = ux.iter().map(|u| (u - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    assert!(
        (m - mean).abs() < Z_LIMIT * (var / n as f64).sqrt(),
        "{m} vs {mean}"
    );
    assert!(
        (v - var).abs() < Z_LIMIT * var * (2.0 / n as f64).sqrt(),
        "{v} vs {var}"
    );
    // The twin.
    let (bound, path, unwrapped_path) = sde_circle_twin(&p, n);
    let end = &unwrapped_path[unwrapped_path.len() - 1];
    for i in 0..n as usize {
        for (g, t) in [
            (gpu_x[2 * i], end[2 * i]),
            (gpu_x[2 * i + 1], end[2 * i + 1]),
        ] {
            assert!(
                (g - t).abs() <= bound,
                "particle {i}: {g} vs {t} (bound {bound:e})"
            );
        }
        assert!((-0.5..=0.5).contains(&x[2 * i + 1]));
    }
    check_bookkeeping(
        &path,
        &tags,
        stride,
        bound,
        (1, 0.3, 0.5),
        [(0, 2.0, 2.5), (0, 4.0, 5.0)],
    );
    assert!(tags.chunks_exact(stride).any(|r| r[3] != PASSAGE_NEVER));
    assert!(tags.chunks_exact(stride).any(|r| r[4] != BASIN_NONE));
}

/// The SDE of the test above with the target y in [0.3, 0.5] absorbing instead of recording.
/// An absorbed walk's steps are still computed to the end of its dispatch, and a select
/// keeps its old position (common/boundary.wgsl, `Walk.dead`); what the kernel stores must
/// be where the target took it.
/// Against the f64 twin's unwrapped path (step by step with the wall maps, no absorption),
/// within the same [`global_bound`] as above: a particle absorbed after step a (tag word 0)
/// has the twin within `bound` of the target after step a and no deeper than `bound` inside
/// it before, its first passage (word 3) is a, and its stored position (unwrapped by the
/// windings it had then) is the twin's after step a; a particle never absorbed never had the
/// twin deeper than `bound` inside and ends where the twin ends. All 100 steps run in one
/// dispatch, so most absorbed walks go on stepping inside it: storing where they went on to
/// would miss the twin's position by about sqrt(2 D dt (100 - a)) = 0.05 sqrt(100 - a).
#[test]
fn sde_absorbed_walks_are_stored_where_the_target_took_them() {
    let gpu = common::gpu();
    let n = 2000u64;
    let p = sde_circle_plan(
        n,
        29,
        r#"
[[observe.first_passage]]
name = "top"
region = { y = [0.3, 0.5] }
absorb = true
"#,
    );
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, SDE_STEPS);
    let (x, tags) = (sim.positions().unwrap(), sim.tags().unwrap());
    let stride = 1 + 2 + 1;
    let gpu_x = unwrapped(&x, &tags, stride, SDE_L);
    let (bound, path, unwrapped_path) = sde_circle_twin(&p, n);
    let target = (1, 0.3, 0.5);
    let mut absorbed = 0;
    for (i, row) in tags.chunks_exact(stride).enumerate() {
        let wrapped = |k: usize| &path[k][2 * i..2 * i + 2];
        let (a, first) = (row[0], row[3]);
        let (at, before) = if a == 0 {
            assert_eq!(
                first, PASSAGE_NEVER,
                "particle {i}: passage without absorption"
            );
            (path.len() - 1, path.len())
        } else {
            absorbed += 1;
            assert_eq!(
                first, a,
                "particle {i}: absorbed after step {a}, passage {first}"
            );
            let k = a as usize - 1;
            assert!(
                in_slab(wrapped(k), target, bound),
                "particle {i}: absorbed after step {a} outside the target"
            );
            (k, k)
        };
        assert!(
            (0..before).all(|k| !in_slab(wrapped(k), target, -bound)),
            "particle {i}: inside the target before step {a}"
        );
        let expect = &unwrapped_path[at][2 * i..2 * i + 2];
        for (g, t) in gpu_x[2 * i..2 * i + 2].iter().zip(expect) {
            assert!(
                (g - t).abs() <= bound,
                "particle {i} (absorbed after step {a}): stored {g}, the twin {t} (bound {bound:e})"
            );
        }
    }
    // Most absorptions happen well before the last step, so the check above bites.
    assert!(absorbed > n / 10, "only {absorbed} of {n} absorbed");
}

/// Standard normal density and distribution function.
fn phi(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn big_phi(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// MALA between reflecting walls: U = x^2 / 2, T = 1, walls at +-a = +-1.5, dt = 1. A
/// proposal outside is rejected, so the chain is Metropolis–Hastings for the standard normal
/// truncated to [-a, a], whose moments are exact: with Z = 2 Phi(a) - 1 and c = 2 phi(a) / Z,
/// E X^2 = 1 - a c and E X^4 = 3 E X^2 - a^3 c (integration by parts). At dt = 1 the proposal
/// x - x dt + sqrt(2 dt) xi = sqrt(2) xi ignores x: an independence sampler with proposal
/// density q = N(0, 2), whose distance to its law after n steps is at most (1 - w)^n with
/// w = min over the box of q / pi = Z exp(x^2 / 4) / sqrt(2) >= Z / sqrt(2) (Mengersen and
/// Tweedie 1996): after 40 steps from x = 0 below 1e-16, so the sample second moment of the
/// N = 20000 independent chains is within Z_LIMIT sqrt((E X^4 - (E X^2)^2) / N) of E X^2 (plus
/// that bias times a^2, and the f32 acceptance ratio, off by a few u relative: far below).
///
/// Euler–Maruyama at the same dt is visibly biased: x' = reflect(sqrt(2) xi) whatever x, so
/// its law after a step is N(0, 2) folded into the box by the reflections, whose second
/// moment (the image sum, by quadrature) the plain run must match within the same kind of
/// bound, and which differs from the truncated normal's by many standard errors: the test
/// tells the two apart. Every particle stays inside and the acceptance count is reported.
#[test]
fn mala_between_reflecting_walls_samples_the_truncated_gaussian() {
    let gpu = common::gpu();
    let (n, a, steps) = (20_000u64, 1.5f64, 40u64);
    let run = |mala: bool| {
        let p = plan(&format!(
            r#"
seed = 31
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0.5*x^2" }}
temperature = 1.0
dt = 1.0
steps = {steps}
mala = {mala}
[output]
histogram = {{ axes = [0], bins = 10, range = [[-{a}, {a}]] }}
[boundary]
x = {{ kind = "reflecting", low = -{a}, high = {a} }}
"#
        ));
        let mut sim = simulation(&gpu, &p);
        advance(&mut sim, steps);
        let x = sim.positions().unwrap();
        assert!(x.iter().all(|v| (-a..=a).contains(&f64::from(*v))));
        x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n as f64
    };
    let z = 2.0 * big_phi(a) - 1.0;
    let c = 2.0 * phi(a) / z;
    let m2 = 1.0 - a * c;
    let m4 = 3.0 * m2 - a.powi(3) * c;
    let se = ((m4 - m2 * m2) / n as f64).sqrt();
    let w = z / std::f64::consts::SQRT_2;
    let mixing = (1.0 - w).powi(steps as i32) * a * a;
    let mala = run(true);
    assert!(
        (mala - m2).abs() < Z_LIMIT * se + mixing,
        "MALA: E X^2 = {mala}, truncated normal {m2} (se {se:e})"
    );
    // Euler–Maruyama: the second and fourth moments of N(0, 2) folded into [-a, a], by the
    // midpoint rule on 20000 cells of the image sum (images |m| <= 6; the rule's error is
    // below 1e-9, the left-out images' mass below 1e-30).
    let cells = 20_000;
    let h = 2.0 * a / cells as f64;
    let (mut e2, mut e4) = (0.0, 0.0);
    for k in 0..cells {
        let y = -a + (k as f64 + 0.5) * h;
        // Reflection at +-a has period 4 a: images 4 a m + y and 4 a m + 2 a - y.
        let density: f64 = (-6..=6)
            .map(|m| {
                let s = 4.0 * a * f64::from(m);
                (phi((s + y) / 2f64.sqrt()) + phi((s + 2.0 * a - y) / 2f64.sqrt())) / 2f64.sqrt()
            })
            .sum();
        e2 += y * y * density * h;
        e4 += y.powi(4) * density * h;
    }
    let se_em = ((e4 - e2 * e2) / n as f64).sqrt();
    let em = run(false);
    assert!(
        (em - e2).abs() < Z_LIMIT * se_em + 1e-8,
        "Euler–Maruyama: E X^2 = {em}, folded N(0, 2) {e2}"
    );
    assert!(
        (e2 - m2).abs() > 2.0 * Z_LIMIT * (se + se_em),
        "the folded and the truncated laws are too close to tell apart: {e2} {m2}"
    );
    println!("MALA {mala}, truncated {m2}; EM {em}, folded {e2}; se {se:e}");
}

/// MALA's bookkeeping in the box: with an absorbing target x >= 1.2 (a half-space) and
/// basins x <= -1 and x >= 1, every absorbed particle is frozen finite inside the target
/// with its first-passage step equal to its absorbed step and "right" as its last basin (it
/// entered the target inside that basin); every live one never reached the target, stays
/// between the walls, and when it sits in a basin, that is its last basin. Both kinds occur.
#[test]
fn mala_records_targets_and_basins_between_walls() {
    let gpu = common::gpu();
    let n = 2000u64;
    let p = plan(&format!(
        r#"
seed = 37
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0.5*x^2" }}
temperature = 1.0
dt = 0.3
steps = 30
mala = true
[output]
histogram = {{ axes = [0], bins = 10, range = [[-1.5, 1.5]] }}
[boundary]
x = {{ kind = "reflecting", low = -1.5, high = 1.5 }}
[[observe.first_passage]]
name = "edge"
region = {{ normal = [1.0], offset = 1.2 }}
absorb = true
[[observe.basins]]
name = "left"
region = {{ x = [-2.0, -1.0] }}
[[observe.basins]]
name = "right"
region = {{ x = [1.0, 2.0] }}
"#
    ));
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, 30);
    let (x, tags) = (sim.positions().unwrap(), sim.tags().unwrap());
    let mut absorbed = 0;
    for (v, t) in x.iter().map(|&v| f64::from(v)).zip(tags.chunks_exact(4)) {
        assert!((-1.5..=1.5).contains(&v), "{v}");
        if t[0] != 0 {
            absorbed += 1;
            assert!(v >= 1.2 && t[2] == t[0] && t[3] == 1, "{v} {t:?}");
        } else {
            assert_eq!(t[2], PASSAGE_NEVER, "{v} {t:?}");
            if v <= -1.0 {
                assert_eq!(t[3], 0, "{v} {t:?}");
            } else if v >= 1.0 {
                assert_eq!(t[3], 1, "{v} {t:?}");
            }
        }
    }
    assert!(absorbed > 0 && absorbed < n, "{absorbed} absorbed");
}

fn fokker(args: &[&str], cwd: &Path, stop_at: Option<&str>) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_fokker"));
    c.args(args).current_dir(cwd).env("FOKKER_TEST", "1");
    if let Some(s) = stop_at {
        c.env("FOKKER_TEST_STOP_AT", s);
    }
    c.output().expect("the fokker binary runs")
}

/// Interacting particles in the periodic box with a recording target and basins, stopped
/// mid-run and resumed: the windings, first-passage steps, final particles, histogram,
/// metrics and basin counts are byte-identical to the uninterrupted run's (the checkpoint
/// carries the tags and the basin counters).
#[test]
fn interaction_in_a_box_resumes_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let scenario = box_scenario(
        96,
        2.0,
        "{ kind = \"gaussian\", strength = 0.5, width = 0.4 }",
        r#"
[[observe.first_passage]]
name = "top"
region = { y = [0.3, 1.0] }
[[observe.basins]]
name = "low"
region = { y = [-1.0, -0.2] }
[[observe.basins]]
name = "high"
region = { y = [0.2, 1.0] }
"#,
    )
    .replace(
        "[output]\n",
        "[output]\nevery = 0.05\nparticles = \"final\"\n",
    );
    std::fs::write(t.join("s.toml"), scenario).unwrap();
    let run = |out: &str, stop: Option<&str>| {
        fokker(
            &["run", "s.toml", "--out", out, "--progress", "none"],
            t,
            stop,
        )
    };
    let o = run("whole", None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run("cut", Some("9"));
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(t.join("cut/checkpoint/tags.npy").is_file());
    let o = fokker(&["resume", "cut", "--progress", "none"], t, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "winding.npy",
        "first_passage/top.npy",
        "particles/00000020.npy",
        "density/00000020.npy",
        "metrics.csv",
    ] {
        let read = |d: &str| std::fs::read(t.join(d).join(f)).unwrap_or_default();
        assert!(!read("whole").is_empty(), "{f} missing");
        assert!(read("whole") == read("cut"), "{f} differs after resume");
    }
    let basins = |d: &str| {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.join(d).join("manifest.json")).unwrap())
                .unwrap();
        m["first_passage"]["basins"].clone()
    };
    assert!(!basins("whole").is_null());
    assert_eq!(basins("whole"), basins("cut"));
}
