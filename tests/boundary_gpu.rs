//! Walls, periodic axes and first passage on the GPU (shaders/common/boundary.wgsl) against
//! exact laws: reflected and wrapped free diffusion, the survival of Brownian motion between
//! absorbing ends, the mean first-passage time of an Ornstein–Uhlenbeck process to a level,
//! the tilted washboard's drift velocity. Every tolerance is derived beside its check.

mod common;

use common::sim::{advance, plan, simulation};
use common::stats::chi_square;

use common::stats::{Z_LIMIT, chi_square_limit};
use fokker::error::Error;
use fokker::gpu::abi::PASSAGE_NEVER;
use fokker::observe::first_passage::passage_steps;
use fokker::scenario::Plan;
use fokker::simulation::{Layout, Simulation};
use std::f64::consts::PI;

/// Broadie–Glasserman–Kou: a walk monitored every dt is absorbed as if continuously by a
/// boundary moved outward by BETA sqrt(2 D dt), BETA = -zeta(1/2) / sqrt(2 pi).
const BETA: f64 = 0.5825971579390106;

/// Free diffusion (U = 0, D = T = 1) in the box [0, 1] with reflecting walls. Gaussian steps
/// folded by the reflection map have exactly the reflected Brownian motion's transition law
/// (the image sum), so at t = 1.2 the law is uniform up to the slowest mode, whose weight
/// 2 |cos(pi x0)| exp(-pi^2 D t) < 1.5e-5 per unit density: 20 bins of 20000 particles give
/// expected counts 1000 +- 0.015, far inside the chi-square limit with 19 degrees of freedom
/// (false alarm 1e-6). Every particle stays in [0, 1].
#[test]
fn reflected_free_diffusion_becomes_uniform() {
    let gpu = common::gpu();
    let n = 20_000u64;
    let p = plan(&format!(
        r#"
seed = 11
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.2] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0*x" }}
temperature = 1.0
dt = 4e-3
steps = 300
[output]
histogram = {{ axes = [0], bins = 20, range = [[0.0, 1.0]] }}
[boundary]
x = {{ kind = "reflecting", low = 0.0, high = 1.0 }}
"#
    ));
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, 300);
    let obs = sim.observe().unwrap();
    assert_eq!(obs.histogram.in_range(), n, "{:?}", obs.histogram);
    let x = sim.positions().unwrap();
    assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    let chi = chi_square(&obs.histogram.counts, &[0.05; 20], n);
    assert!(chi < chi_square_limit(19), "chi^2 = {chi}");
}

/// Free diffusion on the circle [0, 2 pi) from x0 = 1 with D = 1 until t = 0.5: the wrapped
/// coordinate follows the wrapped Gaussian of variance 2 D t = 1 (bin probabilities by the
/// image sum of normal CDFs, images |m| <= 4 leave out less than 1e-40), and the unwrapped
/// coordinate x + 2 pi w is exactly N(1, 1): its mean within Z_LIMIT standard errors
/// (1 / sqrt(N)) and its variance within Z_LIMIT sqrt(2 / N) (the sample variance of a
/// normal has relative sd sqrt(2 / (N - 1))) plus the f32 rounding of x (2^-24 relative,
/// negligible).
#[test]
fn periodic_free_diffusion_is_the_wrapped_gaussian() {
    let gpu = common::gpu();
    let n = 20_000u64;
    let two_pi = 2.0 * PI;
    let p = plan(&format!(
        r#"
seed = 12
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [1.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0*x" }}
temperature = 1.0
dt = 5e-3
steps = 100
[output]
histogram = {{ axes = [0], bins = 32, range = [[0.0, {two_pi}]] }}
[boundary]
x = {{ kind = "periodic", low = 0.0, high = {two_pi} }}
"#
    ));
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, 100);
    let obs = sim.observe().unwrap();
    assert_eq!(obs.histogram.in_range(), n);
    let cdf = |x: f64| 0.5 * libm::erfc(-(x - 1.0) / 2f64.sqrt());
    let bins = 32;
    let probs: Vec<f64> = (0..bins)
        .map(|b| {
            let (a, c) = (
                two_pi * b as f64 / bins as f64,
                two_pi * (b + 1) as f64 / bins as f64,
            );
            (-4..=4)
                .map(|m| cdf(c + two_pi * f64::from(m)) - cdf(a + two_pi * f64::from(m)))
                .sum()
        })
        .collect();
    let chi = chi_square(&obs.histogram.counts, &probs, n);
    assert!(chi < chi_square_limit(bins - 1), "chi^2 = {chi}");
    let x = sim.positions().unwrap();
    let tags = sim.tags().unwrap();
    // Tags per particle: absorbed, winding (dim 1), no targets.
    let unwrapped: Vec<f64> = x
        .iter()
        .zip(tags.chunks_exact(2))
        .map(|(&x, t)| f64::from(x) + two_pi * f64::from(t[1] as i32))
        .collect();
    let mean = unwrapped.iter().sum::<f64>() / n as f64;
    let var = unwrapped.iter().map(|u| (u - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    assert!((mean - 1.0).abs() < Z_LIMIT / (n as f64).sqrt(), "{mean}");
    assert!(
        (var - 1.0).abs() < Z_LIMIT * (2.0 / n as f64).sqrt(),
        "{var}"
    );
    assert!(
        tags.chunks_exact(2).any(|t| t[1] as i32 != 0),
        "no particle wound round"
    );
}

/// Survival of Brownian motion with absorbing ends on [0, 1] (D = 1), from the middle:
/// S(t) = sum over odd n of 4 / (n pi) sin(n pi a / L) exp(-n^2 pi^2 D t / L^2). Monitored
/// every dt the walk survives longer: by Broadie–Glasserman–Kou it is absorbed as by
/// continuous monitoring of the interval widened by BETA sqrt(2 D dt) at each end, up to
/// o(sqrt(dt)); the remainder is a relative O(sqrt(2 D dt) / L) = 4.5% of that first-order
/// shift, so we allow a quarter of it (5x margin) besides Z_LIMIT binomial standard errors.
/// The shift itself (about 0.04 in S) is more than ten standard errors (0.003), so the test
/// also asserts the survival is nearer the shifted series than the unshifted one. Absorbed
/// particles stay frozen where they entered and are left out of the histogram, moments and
/// energy sums.
#[test]
fn survival_between_absorbing_ends_matches_the_series() {
    let gpu = common::gpu();
    let (n, dt, d) = (20_000u64, 1e-3, 1.0);
    let p = plan(&format!(
        r#"
seed = 13
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.5] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0*x" }}
temperature = {d}
dt = {dt}
steps = 150
[output]
histogram = {{ axes = [0], bins = 10, range = [[0.0, 1.0]] }}
[[observe.first_passage]]
name = "left"
region = {{ x = [-1e9, 0.0] }}
absorb = true
[[observe.first_passage]]
name = "right"
region = {{ normal = [1.0], offset = 1.0 }}
absorb = true
"#
    ));
    let series = |t: f64, shift: f64| {
        let l = 1.0 + 2.0 * shift;
        let a = 0.5 + shift;
        (0..200)
            .map(|k| {
                let m = (2 * k + 1) as f64;
                4.0 / (m * PI) * (m * PI * a / l).sin() * (-(m * PI / l).powi(2) * d * t).exp()
            })
            .sum::<f64>()
    };
    let shift = BETA * (2.0 * d * dt).sqrt();
    let mut sim = simulation(&gpu, &p);
    let mut before: Option<(Vec<f32>, Vec<u32>)> = None;
    for step in [50u64, 100, 150] {
        advance(&mut sim, step);
        // Absorbed particles' steps are still computed inside a dispatch, and a select keeps
        // the old position (shaders/common/boundary.wgsl, `Walk.dead`): what is stored must
        // still be the position where the target took them, the same bits at every later
        // snapshot. A walk stored where it went on to would differ after 50 more steps of
        // free diffusion.
        let (x, tags) = (sim.positions().unwrap(), sim.tags().unwrap());
        if let Some((x0, tags0)) = &before {
            let mut held = 0;
            for (k, t) in tags0.chunks_exact(4).enumerate() {
                if t[0] != 0 {
                    assert_eq!(
                        x[k].to_bits(),
                        x0[k].to_bits(),
                        "particle {k} absorbed at step {} moved",
                        t[0]
                    );
                    assert_eq!(
                        &tags[4 * k..4 * k + 4],
                        t,
                        "particle {k}'s tags changed after absorption"
                    );
                    held += 1;
                }
            }
            assert!(held > 0, "no particle was absorbed by step {}", step - 50);
        }
        before = Some((x, tags));
        let obs = sim.observe().unwrap();
        let c = obs.passage.clone().expect("passage counts");
        let alive = c.particles - c.absorbed;
        // Reaching either end absorbs: survival is that of the interval.
        let s = alive as f64 / n as f64;
        let t = step as f64 * dt;
        let (exact, bgk) = (series(t, 0.0), series(t, shift));
        let se = (bgk * (1.0 - bgk) / n as f64).sqrt();
        assert!(
            (s - bgk).abs() < Z_LIMIT * se + 0.25 * (bgk - exact).abs(),
            "t = {t}: S = {s}, shifted series {bgk}, plain {exact}"
        );
        assert!(
            (s - bgk).abs() < (s - exact).abs(),
            "t = {t}: {s} {bgk} {exact}"
        );
        assert_eq!(obs.histogram.in_range() + obs.histogram.outside, alive);
        assert_eq!(obs.moments.count, alive);
        assert_eq!(obs.energy.as_ref().expect("energy sums").count, alive);
    }
    // Frozen, not NaN: every absorbed particle sits in its target.
    let x = sim.positions().unwrap();
    let tags = sim.tags().unwrap();
    for (x, t) in x.iter().zip(tags.chunks_exact(4)) {
        assert!(x.is_finite());
        if t[0] != 0 {
            assert!(
                *x <= 0.0 || *x >= 1.0,
                "absorbed at {x} inside the interval"
            );
            // Held where the target took it: one step from inside, sigma xi with sigma =
            // sqrt(2 D dt) (no drift), |xi| <= 7 but for a chance of 2.6e-12 per draw (3e6
            // draws here). A walk stored where it went on to within its dispatch would be
            // about sigma sqrt(25) away on average.
            let reach = 7.0 * (2.0 * d * dt).sqrt() as f32;
            assert!(
                *x > -reach && *x < 1.0 + reach,
                "absorbed at {x}, beyond one step ({reach}) from the interval"
            );
            assert!(t[2] == t[0] || t[3] == t[0], "{t:?}");
        } else {
            assert!((0.0..1.0).contains(x) && t[2] == PASSAGE_NEVER && t[3] == PASSAGE_NEVER);
        }
    }
}

/// Mean first-passage time of the OU process dX = -X dt + sqrt(2) dW (U = x^2 / 2, T = 1)
/// from 0 to the level b: T(b) = int_0^b dy e^{y^2/2} int_{-inf}^y e^{-z^2/2} dz (Simpson,
/// 4000 panels, error far below 1e-6). Monitoring every dt detects the passage as if the
/// level were b + BETA sqrt(2 dt) (Broadie–Glasserman–Kou), up to a remainder we allow a
/// quarter of that shift's effect for (as above). Euler–Maruyama's weak error in the
/// passage time is O(dt |U''| T(b)) = 2e-3 T(b). The particles that never passed by t_end =
/// 24 (P < e^{-t_end / T(b)} < 1e-3 each) bias the mean down by at most that probability
/// times the conditional excess, bounded by P (t_end + T(b)). Sampling: Z_LIMIT standard
/// errors of the mean (sample sd / sqrt(passed)).
#[test]
fn ou_mean_first_passage_time_matches_the_quadrature() {
    let gpu = common::gpu();
    let (n, dt, b, t_end) = (8_000u64, 2e-3, 1.0, 24.0);
    let steps = (t_end / dt) as u64;
    let p = plan(&format!(
        r#"
seed = 14
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0.5*x^2" }}
temperature = 1.0
dt = {dt}
steps = {steps}
[output]
histogram = {{ axes = [0], bins = 10, range = [[-3.0, 3.0]] }}
[[observe.first_passage]]
name = "level"
region = {{ x = [{b}, 1e9] }}
absorb = true
"#
    ));
    let mfpt = |level: f64| {
        let inner = |y: f64| (PI / 2.0).sqrt() * libm::erfc(-y / 2f64.sqrt());
        let f = |y: f64| (y * y / 2.0).exp() * inner(y);
        let m = 4000;
        let h = level / m as f64;
        let mut s = f(0.0) + f(level);
        for k in 1..m {
            s += f(k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0
    };
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, steps);
    let tags = sim.tags().unwrap();
    let passages = passage_steps(&tags, 3, 1, 0);
    let times: Vec<f64> = passages
        .iter()
        .filter(|&&k| k != PASSAGE_NEVER)
        .map(|&k| f64::from(k) * dt)
        .collect();
    let passed = times.len() as f64;
    let mean = times.iter().sum::<f64>() / passed;
    let sd = (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (passed - 1.0)).sqrt();
    let (exact, bgk) = (mfpt(b), mfpt(b + BETA * (2.0 * dt).sqrt()));
    let never = (-t_end / exact).exp();
    let tol = Z_LIMIT * sd / passed.sqrt()
        + 0.25 * (bgk - exact)
        + 2e-3 * exact
        + never * (t_end + exact);
    assert!(
        (mean - bgk).abs() < tol,
        "MFPT {mean}, shifted quadrature {bgk} (plain {exact}), tolerance {tol}"
    );
    assert!(passed as u64 + 20 >= n, "{passed} of {n} passed");
}

/// The tilted washboard U = V0 cos x - F x on the circle [0, 2 pi) (D = T = 1, V0 = 1,
/// F = 1): the stationary drift velocity is (Stratonovich; Risken, ch. 11)
///   v = L T (1 - e^{-F L / T}) / int_0^L dx int_0^L dy exp((U(x) - U(x - y)) / T),
/// which gives v = F at V0 = 0. Measured from the unwrapped mean displacement between t1 = 6
/// (relaxation time L^2 / (4 pi^2 D) ~ 1 for the slowest mode, so the transient is below
/// e^{-6} L) and t2 = 16. Tolerance: Z_LIMIT standard errors of the mean displacement
/// (sample sd / sqrt(N)) over t2 - t1, plus Euler–Maruyama's O(dt) bias of the stationary
/// law times the largest force, (F + V0) V0 dt, plus the transient e^{-6} L / (t2 - t1).
#[test]
fn tilted_washboard_drift_velocity_matches_the_closed_form() {
    let gpu = common::gpu();
    let (n, dt, v0, f) = (4_096u64, 2e-3, 1.0, 1.0);
    let l = 2.0 * PI;
    let (t1, t2) = (6.0, 16.0);
    let (s1, s2) = ((t1 / dt) as u64, (t2 / dt) as u64);
    let p = plan(&format!(
        r#"
seed = 15
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "{v0}*cos(x) - {f}*x" }}
temperature = 1.0
dt = {dt}
steps = {s2}
[output]
histogram = {{ axes = [0], bins = 16, range = [[0.0, {l}]] }}
[boundary]
x = {{ kind = "periodic", low = 0.0, high = {l} }}
"#
    ));
    let unwrapped = |sim: &Simulation| -> Vec<f64> {
        let x = sim.positions().unwrap();
        let tags = sim.tags().unwrap();
        x.iter()
            .zip(tags.chunks_exact(2))
            .map(|(&x, t)| f64::from(x) + l * f64::from(t[1] as i32))
            .collect()
    };
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, s1);
    let a = unwrapped(&sim);
    advance(&mut sim, s2);
    let bb = unwrapped(&sim);
    let disp: Vec<f64> = a.iter().zip(&bb).map(|(a, b)| b - a).collect();
    let mean = disp.iter().sum::<f64>() / n as f64;
    let sd = (disp.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let v = mean / (t2 - t1);
    let u = |x: f64| v0 * x.cos() - f * x;
    let m = 400;
    let h = l / m as f64;
    let mut double = 0.0;
    for i in 0..m {
        let x = (i as f64 + 0.5) * h;
        for j in 0..m {
            let y = (j as f64 + 0.5) * h;
            double += (u(x) - u(x - y)).exp();
        }
    }
    // Midpoint rule on a smooth periodic-in-x integrand: error far below 1e-4 at m = 400.
    double *= h * h;
    let exact = l * (1.0 - (-f * l).exp()) / double;
    let tol = Z_LIMIT * sd / (n as f64).sqrt() / (t2 - t1)
        + (f + v0) * v0 * dt
        + (-t1).exp() * l / (t2 - t1);
    assert!(
        (v - exact).abs() < tol,
        "drift velocity {v}, closed form {exact}, tolerance {tol}"
    );
}

/// Transitions between the wells of U = (x^2 - 1)^2 at T = 0.25 (Delta U / T = 4), basins
/// x <= -0.9 and x >= 0.9. With "last basin visited" bookkeeping, the time per a -> b
/// transition is the mean first-passage time from the edge of a to the edge of b, so
/// k_ab = 1 / T(-0.9 -> 0.9) exactly in continuous time, with
/// T(a -> b) = (1 / D) int_a^b dy e^{U(y)/T} int_{-inf}^y e^{-U(z)/T} dz (Simpson). Detected at
/// step ends, both edges move outward by BETA sqrt(2 D dt) (Broadie–Glasserman–Kou). The
/// tolerance: Z_LIMIT Poisson standard errors k / sqrt(n), Euler–Maruyama's relative bias
/// O(dt max |U''|) = 8 dt on the rate, a quarter of the BGK shift's effect (as above), and
/// the first sojourn starting at -1 rather than at the edge (its mean differs by the
/// relaxation time within the well, ~ 1 / U''(-1), over the ~ n transitions).
#[test]
fn double_well_transition_rates_match_the_mfpt_quadrature() {
    let gpu = common::gpu();
    let (n, dt, temp) = (2_048u64, 5e-3, 0.25);
    let steps = 20_000u64;
    let p = plan(&format!(
        r#"
seed = 16
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [-1.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "(x^2 - 1)^2" }}
temperature = {temp}
dt = {dt}
steps = {steps}
[output]
histogram = {{ axes = [0], bins = 16, range = [[-2.0, 2.0]] }}
[[observe.basins]]
name = "left"
region = {{ x = [-10.0, -0.9] }}
[[observe.basins]]
name = "right"
region = {{ x = [0.9, 10.0] }}
"#
    ));
    let u = |x: f64| (x * x - 1.0).powi(2);
    let simpson = |f: &dyn Fn(f64) -> f64, a: f64, b: f64, m: usize| {
        let h = (b - a) / m as f64;
        let mut s = f(a) + f(b);
        for k in 1..m {
            s += f(a + k as f64 * h) * if k % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0
    };
    // int_{-inf}^y e^{-U/T}: from -3, where e^{-U/T} < e^{-256}.
    let inner = |y: f64| simpson(&|z| (-u(z) / temp).exp(), -3.0, y, 2000);
    let mfpt = |a: f64, b: f64| simpson(&|y| (u(y) / temp).exp() * inner(y), a, b, 400) / temp;
    let shift = BETA * (2.0 * temp * dt).sqrt();
    let (exact, bgk) = (1.0 / mfpt(-0.9, 0.9), 1.0 / mfpt(-0.9 - shift, 0.9 + shift));
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, steps);
    let counts = sim.transitions().unwrap().expect("basin counts");
    let names = ["left".to_string(), "right".to_string()];
    for r in counts.rates(&names, dt) {
        let k = r.rate.unwrap();
        let transitions = r.transitions as f64;
        let tol = Z_LIMIT * k / transitions.sqrt()
            + 8.0 * dt * bgk
            + 0.25 * (exact - bgk).abs()
            + bgk * (1.0 / 8.0) / (exact.recip() * transitions);
        assert!(
            (k - bgk).abs() < tol,
            "{} -> {}: k = {k} over {transitions} transitions, shifted quadrature {bgk} \
             (plain {exact}), tolerance {tol}",
            r.from,
            r.to
        );
    }
    // Time is counted only from a particle's first basin on: at most every step after the
    // first, and all of them but a particle's first visit.
    let dwell: u64 = counts.dwell_steps.iter().sum();
    assert!(
        dwell <= n * (steps - 1) && dwell > n * (steps - 1) / 2,
        "{dwell}"
    );
}

/// Exact survival of Brownian motion (diffusion `d`) in [0, 1] from the middle, absorbed at
/// both ends: S(t) = sum over odd n of 4 / (n pi) sin(n pi / 2) exp(-n^2 pi^2 d t).
fn interval_survival(t: f64, d: f64) -> f64 {
    (0..200)
        .map(|k| {
            let m = (2 * k + 1) as f64;
            4.0 / (m * PI) * (m * PI / 2.0).sin() * (-(m * PI).powi(2) * d * t).exp()
        })
        .sum()
}

/// The free Brownian motion of `survival_between_absorbing_ends_matches_the_series` watched
/// by four recording targets on the same paths: the ends x <= 0 (a box) and x >= 1 (a
/// half-space), once as plain step-end checks and once with `bridge = true`. The interval's
/// survival to step k is the fraction whose first passage to either end of a pair is after
/// k. For driftless Brownian motion the Euler steps are exact Gaussian increments and
/// exp(-2 d0 d1 / (2 D dt)) is the exact probability that the path between two step ends
/// touched a plane; the pair's two ends are drawn independently, which misses only paths
/// that touch both ends within one step (distance 1 against a step sd of 0.045: below
/// e^-200). f32 positions and 24-bit uniforms perturb S by far less than 1e-5. So the
/// bridged survival must match the UNSHIFTED series within Z_LIMIT binomial standard
/// errors, and the plain one must miss it by more (it is late by BETA sqrt(2 D dt), about
/// 0.04 in S: over ten standard errors).
#[test]
fn bridged_survival_between_absorbing_ends_is_the_exact_series() {
    let gpu = common::gpu();
    let (n, dt, d) = (20_000u64, 1e-3, 1.0);
    let target = |name: &str, region: &str, bridge: bool| {
        format!(
            "[[observe.first_passage]]\nname = \"{name}\"\nregion = {region}\nbridge = {bridge}\n"
        )
    };
    let p = plan(&format!(
        r#"
seed = 13
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [0.5] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0*x" }}
temperature = {d}
dt = {dt}
steps = 150
[output]
histogram = {{ axes = [0], bins = 10, range = [[0.0, 1.0]] }}
{}{}{}{}"#,
        target("left", "{ x = [-1e9, 0.0] }", false),
        target("right", "{ normal = [1.0], offset = 1.0 }", false),
        target("left_bridged", "{ x = [-1e9, 0.0] }", true),
        target("right_bridged", "{ normal = [1.0], offset = 1.0 }", true),
    ));
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, 150);
    let tags = sim.tags().unwrap();
    // Tags per particle: absorbed, winding, then the four targets' first-passage steps.
    let first = |a: usize, b: usize| -> Vec<u32> {
        let (l, r) = (passage_steps(&tags, 6, 1, a), passage_steps(&tags, 6, 1, b));
        l.iter().zip(&r).map(|(x, y)| *x.min(y)).collect()
    };
    let (plain, bridged) = (first(0, 1), first(2, 3));
    for step in [50u32, 100, 150] {
        let alive = |f: &[u32]| f.iter().filter(|&&k| k > step).count() as f64 / n as f64;
        let exact = interval_survival(f64::from(step) * dt, d);
        let se = (exact * (1.0 - exact) / n as f64).sqrt();
        let (s_plain, s_bridge) = (alive(&plain), alive(&bridged));
        assert!(
            (s_bridge - exact).abs() < Z_LIMIT * se,
            "step {step}: bridged S = {s_bridge}, exact {exact}, se {se}"
        );
        assert!(
            s_plain - exact > Z_LIMIT * se,
            "step {step}: plain S = {s_plain} should be late against exact {exact}"
        );
        // A path found at a step end is also found by the bridge, never later.
        assert!(plain.iter().zip(&bridged).all(|(p, b)| b <= p));
    }
}

/// The bridge's decisions on the GPU against the f64 twin: the same Brownian paths (CPU
/// Euler steps on the GPU's normals, `langevin_cpu`) and the same uniforms
/// (`rng::bridge_uniform`) give the same first-passage steps wherever the decision is not
/// within reach of f32 rounding. Positions agree to about 1e-6 after 200 steps (f32 sums
/// of steps of size 0.045), which moves p by at most |dp/dx| 1e-6 with dp/dx = 2 d1 p /
/// var2 <= 4 (|d| < 0.1 where p is not negligible, var2 = 0.05); we skip decisions with
/// |u - p| < 1e-4 or an end within 1e-4 of a plane (two orders of magnitude of margin).
/// About 1 in 1000 decisions is skipped; every particle must agree on all the others.
#[test]
fn bridge_decisions_match_the_f64_twin() {
    use fokker::observe::first_passage::bridge_probability;
    use fokker::scenario::Region;
    let gpu = common::gpu();
    let (n, dt, steps, seed) = (256usize, 0.025, 200u64, 21u64);
    let p = plan(&format!(
        r#"
seed = {seed}
[particles]
count = {n}
dim = 2
init = {{ kind = "point", at = [0.0, 0.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0*x + 0*y" }}
temperature = 1.0
dt = {dt}
steps = {steps}
[output]
histogram = {{ axes = [0, 1], bins = [4, 4], range = [[-1.0, 1.0], [-1.0, 1.0]] }}
[[observe.first_passage]]
name = "slab"
region = {{ x = [1.5, 2.5] }}
bridge = true
[[observe.first_passage]]
name = "plane"
region = {{ normal = [1.0, -2.0], offset = 3.0 }}
bridge = true
"#
    ));
    let regions = [
        Region::Box {
            intervals: vec![Some([1.5, 2.5]), None],
        },
        Region::HalfSpace {
            normal: vec![1.0, -2.0],
            offset: 3.0,
        },
    ];
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, steps);
    let tags = sim.tags().unwrap();
    let key = fokker::rng::key_from_seed(seed);
    let var2 = 2.0 * dt;
    let potential = match &p.dynamics {
        fokker::scenario::DynamicsPlan::Langevin(l) => l.potential.clone(),
        _ => unreachable!(),
    };
    let near = |x: &[f64], r: &Region| match r {
        Region::Box { .. } => (x[0] - 1.5).abs() < 1e-4 || (x[0] - 2.5).abs() < 1e-4,
        Region::HalfSpace { .. } => (x[0] - 2.0 * x[1] - 3.0).abs() < 1e-4,
    };
    let (mut checked, mut skipped, mut between) = (0u64, 0u64, 0u64);
    for i in 0..n {
        let mut x = vec![0.0f64; 2];
        for (j, region) in regions.iter().enumerate() {
            let gpu_step = tags[i * 5 + 3 + j];
            // Walk the twin until its passage (or the end), skipping this particle's target
            // when a decision on the way is too close to call.
            x.fill(0.0);
            let mut twin = PASSAGE_NEVER;
            let mut unsure = false;
            for k in 0..steps {
                let x0 = x.clone();
                fokker::dynamics::langevin::langevin_cpu(
                    &mut x,
                    2,
                    i as u64,
                    &potential,
                    &fokker::model::Temperature::Constant(1.0),
                    dt,
                    seed,
                    k,
                    1,
                );
                let u = fokker::rng::bridge_uniform(key, i as u64, k, j);
                let prob = bridge_probability(region, &x0, &x, var2);
                unsure |= (u - prob).abs() < 1e-4 || near(&x, region);
                if region.contains(&x) || u < prob {
                    twin = (k + 1) as u32;
                    between += u64::from(!region.contains(&x));
                    break;
                }
            }
            if unsure {
                skipped += 1;
                continue;
            }
            checked += 1;
            assert_eq!(gpu_step, twin, "particle {i}, target {j}");
        }
    }
    // The test must see decisions the bridge made between step ends (steps of sd 0.22 near
    // planes the walks reach in about a third of the cases: 190 with this seed).
    assert!(
        skipped * 20 < checked,
        "{skipped} skipped, {checked} checked"
    );
    assert!(
        between >= 10,
        "only {between} passages found between step ends"
    );
}

/// The snapshot's survival and absorbed counts, reduced on the GPU over four chunks, equal
/// the counts of the tags read back (`PassageCounts::of`), for three targets of which one
/// absorbs.
#[test]
fn passage_counts_reduce_the_tags_exactly() {
    let gpu = common::gpu();
    let n = 1000u64;
    let p = plan(&format!(
        r#"
seed = 5
[particles]
count = {n}
dim = 2
init = {{ kind = "gaussian", mean = [0.0, 0.0], std = [1.0, 1.0] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "0.5*x^2 + 0.5*y^2" }}
temperature = 1.0
dt = 0.01
steps = 60
[output]
histogram = {{ axes = [0, 1], bins = [4, 4], range = [[-3.0, 3.0], [-3.0, 3.0]] }}
[[observe.first_passage]]
name = "a"
region = {{ x = [0.5, 9.0] }}
[[observe.first_passage]]
name = "b"
region = {{ normal = [0.0, 1.0], offset = 1.0 }}
absorb = true
[[observe.first_passage]]
name = "c"
region = {{ x = [-9.0, -1.0], y = [-9.0, 0.0] }}
"#
    ));
    let layout = Layout {
        chunk_particles: Some(256),
        ..Layout::default()
    };
    let mut sim = Simulation::new(&gpu, &p, None, None, 0, n, &layout).expect("simulation");
    assert_eq!(sim.ensemble.chunks.len(), 4);
    for step in [20u64, 60] {
        advance(&mut sim, step);
        let counts = sim.observe().unwrap().passage.expect("passage counts");
        let tags = sim.tags().unwrap();
        let twin = fokker::observe::first_passage::PassageCounts::of(&tags, 6, 2, 3);
        assert_eq!(counts, twin);
        assert!(counts.absorbed > 0 && counts.surviving.iter().all(|&s| s > 0 && s < n));
    }
}

/// `n` particles in 1D from `at`, Langevin with dt = 0.01 under U = `potential` for `steps`
/// steps, between reflecting walls at 0 and `high` (four histogram bins across the box).
fn reflecting_box(
    seed: u64,
    n: u64,
    at: f64,
    potential: &str,
    temperature: f64,
    steps: u64,
    high: f64,
) -> Plan {
    plan(&format!(
        r#"
seed = {seed}
[particles]
count = {n}
dim = 1
init = {{ kind = "point", at = [{at:?}] }}
[dynamics]
kind = "langevin"
potential = {{ expr = "{potential}" }}
temperature = {temperature:?}
dt = 0.01
steps = {steps}
[output]
histogram = {{ axes = [0], bins = 4, range = [[0.0, {high:?}]] }}
[boundary]
x = {{ kind = "reflecting", low = 0.0, high = {high:?} }}
"#
    ))
}

/// A box narrower than the noise (NOISE_BOUND sigma = 0.82 against 0.01): the host picks the
/// fold for steps of any length (`first_passage::reflects_once` is false).
#[test]
fn a_step_longer_than_the_reflecting_box_folds_into_it() {
    // Free Brownian motion in [0, 0.01] with steps of standard deviation sqrt(2 dt) = 0.14,
    // fourteen box widths: every step folds many times. Folding N(x, s^2) into the box by
    // reflection gives the image sum, which for s >> width is uniform within
    // sum_m exp(-2 pi^2 m^2 s^2 / width^2) ~ 1e-17000: after one step the n positions are
    // i.i.d. uniform on the box, so their mean is within Z_LIMIT standard errors
    // width / sqrt(12 n) of the middle and every eighth of the box holds n / 8 within
    // Z_LIMIT binomial standard errors (a one-reflection fold would leave most positions
    // outside, or NaN). f32 rounding moves a position by ~1e-9, far below these.
    let gpu = common::gpu();
    let n = 16_384u64;
    let width = 0.01f64;
    let p = reflecting_box(3, n, 0.005, "0*x", 1.0, 3, width);
    let mut sim = simulation(&gpu, &p);
    sim.advance_to(3, |_| Ok(()), &|| false)
        .expect("no divergence");
    let x: Vec<f64> = sim
        .positions()
        .unwrap()
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    assert!(
        x.iter().all(|v| (0.0..=width).contains(v)),
        "every position in the box"
    );
    let mean = x.iter().sum::<f64>() / n as f64;
    let se = width / (12.0 * n as f64).sqrt();
    assert!(
        (mean - width / 2.0).abs() < Z_LIMIT * se,
        "mean {mean}, se {se:e}"
    );
    let expected = n as f64 / 8.0;
    let binomial = (n as f64 * (1.0 / 8.0) * (7.0 / 8.0)).sqrt();
    for k in 0..8 {
        let (lo, hi) = (k as f64 * width / 8.0, (k + 1) as f64 * width / 8.0);
        let count = x.iter().filter(|&&v| v >= lo && (v < hi || k == 7)).count() as f64;
        assert!(
            (count - expected).abs() < Z_LIMIT * binomial,
            "eighth {k}: {count} against {expected}"
        );
    }
}

/// The other regime: noise far shorter than the box (sigma = sqrt(2 T dt) = 1.4e-3,
/// NOISE_BOUND sigma = 0.008 < 1), so each wall reflects a step once
/// (`first_passage::reflects_once`), and a drift that carries a particle across the whole box
/// in one step is a divergence rather than a wrong position. U = -300 x moves every
/// particle by 300 dt = 3 box widths in its first step: 0.5 -> 3.5 (+- 0.008), reflected at
/// 1 to -1.5 and at 0 to 1.5, still outside, so every particle is NaN and counted. With the
/// drift at 0.9 widths (U = -90 x: 0.5 -> 1.4, reflected once to 0.6 +- 0.008) every
/// particle stays finite and inside.
#[test]
fn a_drift_across_the_whole_box_in_one_step_is_a_divergence() {
    let gpu = common::gpu();
    let n = 4_096u64;
    let run = |slope: f64| {
        let p = reflecting_box(5, n, 0.5, &format!("-{slope}*x"), 1e-4, 1, 1.0);
        let mut sim = simulation(&gpu, &p);
        let stepped = sim.advance_to(1, |_| Ok(()), &|| false);
        (stepped, sim.positions().unwrap())
    };
    let (stepped, x) = run(300.0);
    assert!(
        matches!(stepped, Err(Error::Diverged { step: 1, count, .. }) if count == n),
        "{stepped:?}"
    );
    assert!(x.iter().all(|v| v.is_nan()));
    let (stepped, x) = run(90.0);
    assert!(stepped.is_ok(), "{stepped:?}");
    assert!(x.iter().all(|v| (0.59..=0.61).contains(v)), "{:?}", &x[..4]);
}

/// A start more than a box width outside the walls: the Langevin kernel folds it in before
/// its first step (the identity on points inside), so reflecting each step once still
/// suffices. From 3.7 in [0, 1] the fold gives 0.3 (3.7 - 2 periods of 2 = -0.3, reflected);
/// with sigma = 1.4e-3 and no drift the first step ends within 0.008 of it. Without the fold
/// the step would end near 3.7, reflect to -1.7 and 1.7 and become NaN.
#[test]
fn a_start_outside_the_reflecting_box_is_folded_in_first() {
    let gpu = common::gpu();
    let p = reflecting_box(6, 1024, 3.7, "0*x", 1e-4, 1, 1.0);
    let mut sim = simulation(&gpu, &p);
    advance(&mut sim, 1);
    let x = sim.positions().unwrap();
    assert!(
        x.iter().all(|v| (0.292..=0.308).contains(v)),
        "{:?}",
        &x[..4]
    );
}
