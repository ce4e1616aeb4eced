//! The grid solver's boundaries and rates (src/reference/boundary.rs, `slowest_rates`,
//! `survival_integral`) against exact answers. Tolerances are derived beside each test from
//! the cell width h, the time step dt and f64 round-off (EPS):
//!
//! - a backward-Euler axis solve on the M-matrix I − dt A returns the exact solution of a
//!   system perturbed by at most 10 EPS relative entry by entry (tests/reference_general.rs,
//!   `solve_roundoff`); its inverse is non-negative with columns summing to at most 1, so a
//!   step moves the masses by at most 10 EPS (1 + 2 dt ρ) in L1, ρ the largest outflow rate;
//! - eigenvalues: Sturm bisection is within a few EPS ‖A‖ (we allow 64 EPS ‖A‖); the
//!   subspace iteration stops at a Ritz residual ≤ 1e-12 ‖A‖, and a Rayleigh quotient with
//!   residual r has an eigenvalue within ‖r‖ of it (symmetric matrices).

use fokker::reference::boundary::{AxisBoundary, Region};
use fokker::reference::solver::{Coefficients, FokkerPlanck, Grid};
use std::f64::consts::PI;

const EPS: f64 = f64::EPSILON;

/// Free diffusion (U = 0, D = T = d) on a 1D grid of `n` cells over [0, len].
fn free_1d(n: usize, len: f64, d: f64, start: usize, dt: f64) -> FokkerPlanck {
    let grid = Grid::new(vec![n], vec![[0.0, len]]);
    let mut m = vec![0.0; n];
    m[start] = 1.0;
    FokkerPlanck::new(grid, d, vec![0.0; n], m, dt)
}

/// One step's round-off in L1 relative to the mass (module doc), ρ ≤ 4 d / h² for free
/// diffusion in 1D (both faces of a cell, the half-cell end face counting 2 d / h²).
fn step_roundoff(dt: f64, rho: f64) -> f64 {
    10.0 * EPS * (1.0 + 2.0 * dt * rho)
}

#[test]
fn reflecting_box_relaxes_to_uniform_and_keeps_mass() {
    // [0, 1], D = 1, a point mass in cell 20 of 200; dt = 0.01 to t = 5 (500 steps).
    let (n, d, dt, t) = (200, 1.0, 0.01, 5.0);
    let mut fp = free_1d(n, 1.0, d, 20, dt)
        .with_boundaries(vec![AxisBoundary::Reflecting])
        .unwrap();
    fp.advance_to(t);
    let steps = fp.steps() as f64;
    let h = 1.0 / n as f64;
    let rho = 4.0 * d / (h * h);
    // Mass: every step keeps it up to its round-off.
    let total = fp.survival();
    assert!(
        (total - 1.0).abs() <= steps * step_roundoff(dt, rho),
        "{total}"
    );
    // Uniform: m_i − 1/n = (2/n) sum_{k>=1} cos(k π x_s) cos(k π x_i) g_k^steps, with the
    // discrete modes cos(k π x_i) (see free_diffusion_rates) and backward Euler's factor
    // g_k = 1 / (1 + dt λ_k), λ_k = (4 d / h²) sin²(k π h / 2): |m_i − 1/n| ≤ (2/n) sum g_k^steps,
    // plus the round-off above.
    let tail: f64 = (1..n)
        .map(|k| {
            let lam = 4.0 * d / (h * h) * (k as f64 * PI * h / 2.0).sin().powi(2);
            (1.0 / (1.0 + dt * lam)).powf(steps)
        })
        .sum::<f64>()
        * 2.0
        / n as f64;
    let bound = tail + steps * step_roundoff(dt, rho);
    for (i, m) in fp.mass().iter().enumerate() {
        assert!(
            (m - 1.0 / n as f64).abs() <= bound,
            "cell {i}: {m} (bound {bound})"
        );
    }
    assert!(fp.absorbed().is_empty() && fp.absorbed_at_ends() == vec![[0.0; 2]]);
}

/// (4 d / h²) sin²(θ): the discrete Laplacian's eigenvalue for a mode of phase θ per half cell.
fn discrete(d: f64, h: f64, theta: f64) -> f64 {
    4.0 * d / (h * h) * theta.sin().powi(2)
}

/// Free diffusion on [0, L], n cells, h = L / n. The cell-centred scheme's modes are exact
/// sines and cosines of the centres x_i = (i + ½) h:
/// - reflecting: cos(k π x / L) (the no-flux face is a mirror, u_{−1} = u_0), k = 0, 1, ..;
/// - absorbing ends: sin(k π x / L), k = 1, 2, .. — the half-cell flux 2 D u_0 / h² is the
///   mirror with a sign, u_{−1} = −u_0, which is what sin takes at the face x = 0;
/// - absorbing low, reflecting high: sin((k − ½) π x / L);
/// - periodic: e^{2 π i k x / L}, k = 0, ±1, ±2, ..;
///
/// each with eigenvalue (4 D / h²) sin²(ω h / 2) for wavenumber ω, against the exact D ω²:
/// sin² z ≥ z² − z⁴ / 3 gives 0 ≤ D ω² − λ_h ≤ D ω² (ω h)² / 12, the scheme's O(h²).
#[test]
fn free_diffusion_rates_are_the_discrete_laplacians() {
    let (n, len, d) = (160, 2.0, 0.7);
    let h = len / n as f64;
    let norm = 4.0 * d / (h * h);
    let cases: Vec<(AxisBoundary, Vec<f64>)> = vec![
        (
            AxisBoundary::Reflecting,
            (0..6).map(|k| k as f64 * PI / len).collect(),
        ),
        (
            AxisBoundary::ABSORBING,
            (1..7).map(|k| k as f64 * PI / len).collect(),
        ),
        (
            AxisBoundary::Absorbing {
                low: true,
                high: false,
            },
            (1..7).map(|k| (k as f64 - 0.5) * PI / len).collect(),
        ),
        (
            AxisBoundary::Periodic,
            [0, 1, 1, 2, 2, 3]
                .iter()
                .map(|&k| 2.0 * PI * k as f64 / len)
                .collect(),
        ),
    ];
    for (boundary, omegas) in cases {
        let fp = free_1d(n, len, d, 0, 0.01)
            .with_boundaries(vec![boundary])
            .unwrap();
        let rates = fp.slowest_rates(omegas.len()).unwrap();
        // Bisection (tridiagonal) or the subspace iteration (periodic): module doc.
        let tol = if boundary == AxisBoundary::Periodic {
            1e-12 * 2.0 * norm
        } else {
            64.0 * EPS * 2.0 * norm
        };
        for (lam, w) in rates.iter().zip(&omegas) {
            let exact_discrete = discrete(d, h, w * h / 2.0);
            assert!(
                (lam - exact_discrete).abs() <= tol,
                "{boundary:?}: {lam} vs {exact_discrete}"
            );
            let exact = d * w * w;
            assert!(
                exact - lam >= -tol && exact - lam <= exact * (w * h).powi(2) / 12.0 + tol,
                "{boundary:?}: {lam} vs D ω² = {exact}"
            );
        }
        let absorbing = matches!(boundary, AxisBoundary::Absorbing { .. });
        // The escape rate: the lowest with absorption, the first non-zero without.
        let rate = fp.escape_rate().unwrap();
        let want = rates[usize::from(!absorbing)];
        assert!((rate - want).abs() <= tol, "{rate} vs {want}");
    }
}

/// 2D: a reflecting axis times a periodic one; the operator is a Kronecker sum, its rates
/// the sums of the two axes' discrete rates (the periodic axis 0 exercises the transposed
/// ordering of the banded solve).
#[test]
fn two_dimensional_rates_are_sums_of_the_axes() {
    let (n0, n1, l0, l1, d) = (40, 30, 2.0 * PI, 1.5, 0.5);
    let grid = Grid::new(vec![n0, n1], vec![[0.0, l0], [0.0, l1]]);
    let m = vec![1.0 / grid.len() as f64; grid.len()];
    let fp = FokkerPlanck::new(grid, d, vec![0.0; n0 * n1], m, 0.01)
        .with_boundaries(vec![AxisBoundary::Periodic, AxisBoundary::Reflecting])
        .unwrap();
    let (h0, h1) = (l0 / n0 as f64, l1 / n1 as f64);
    let mut exact: Vec<f64> = Vec::new();
    for a in 0..4i32 {
        for b in 0..4 {
            let r0 = discrete(d, h0, PI * a as f64 / n0 as f64);
            let r1 = discrete(d, h1, PI * b as f64 / (2 * n1) as f64);
            // Periodic modes ±a are two.
            for _ in 0..if a == 0 { 1 } else { 2 } {
                exact.push(r0 + r1);
            }
        }
    }
    exact.sort_by(f64::total_cmp);
    let rates = fp.slowest_rates(6).unwrap();
    let norm = 4.0 * d / (h0 * h0) + 4.0 * d / (h1 * h1);
    for (lam, e) in rates.iter().zip(&exact) {
        assert!(
            (lam - e).abs() <= 1e-12 * 2.0 * norm,
            "{rates:?} vs {exact:?}"
        );
    }
}

/// Advances to each of `times`, checking mass bookkeeping at each: the mass on the grid
/// plus all that was absorbed equals the initial `total` within the steps' round-off.
fn advance_checked(fp: &mut FokkerPlanck, time: f64, total: f64, rho: f64, dt: f64) {
    fp.advance_to(time);
    let absorbed: f64 =
        fp.absorbed().iter().sum::<f64>() + fp.absorbed_at_ends().iter().flatten().sum::<f64>();
    let kept = fp.survival() + absorbed;
    let bound = fp.steps() as f64 * step_roundoff(dt, rho) * total;
    assert!((kept - total).abs() <= bound, "{kept} vs {total}");
    assert!(fp.mass().iter().all(|&m| m >= 0.0), "negative mass");
}

/// Free diffusion on [0, 1] (D = 1) between absorbing ends from a point mass at the centre
/// x_j of cell j.
///
/// The discrete problem exactly: the modes are sin(k π x_i), k = 1..n (see
/// free_diffusion_rates_are_the_discrete_laplacians), with Σ_i sin² = n/2 (n for k = n), so
/// S_h(t) = Σ_k [sin(k π x_j) Σ_i sin(k π x_i) / Σ_i sin²(k π x_i)] g_k^steps,
/// g_k = 1 / (1 + dt λ_k): the solver must give it to its round-off.
///
/// The exact series S(t) = Σ_{k odd} (4 / (k π)) sin(k π x_j) e^{−k² π² t}. Per mode the
/// scheme differs in three ways, each to leading order: the coefficient (midpoint sum of the
/// sine: h Σ_i sin(k π x_i) = h / sin(k π h / 2) for odd k, a factor z / sin z,
/// z = k π h / 2, ≈ 1 + (k π h)² / 24), the rate (λ_h = λ (1 − (k π h)² / 12 + ..), so
/// e^{−λ_h t} ≈ e^{−λ t} (1 + λ t (k π h)² / 12)) and backward Euler's factor
/// (g^{t/dt} = e^{−λ t} (1 + λ² t dt / 2 + ..)). The test allows twice the sum of the three
/// leading terms: the next orders are relatively O((k π h)², λ dt) ≤ 0.2 on the modes that
/// are not yet e^{−40} small.
#[test]
fn absorbing_ends_survival_is_the_exact_series() {
    let (n, dt) = (100usize, 1e-4);
    let j = 37;
    let h = 1.0 / n as f64;
    let mut fp = free_1d(n, 1.0, 1.0, j, dt)
        .with_boundaries(vec![AxisBoundary::ABSORBING])
        .unwrap();
    let rho = 4.0 / (h * h);
    let x = |i: usize| (i as f64 + 0.5) * h;
    for &t in &[0.02, 0.05, 0.1, 0.3] {
        advance_checked(&mut fp, t, 1.0, rho, dt);
        let steps = fp.steps() as f64;
        let mut discrete_s = 0.0;
        for k in 1..=n {
            let w = k as f64 * PI;
            let sum: f64 = (0..n).map(|i| (w * x(i)).sin()).sum();
            let norm: f64 = (0..n).map(|i| (w * x(i)).sin().powi(2)).sum();
            let lam = discrete(1.0, h, w * h / 2.0);
            discrete_s += (w * x(j)).sin() * sum / norm * (1.0 / (1.0 + dt * lam)).powf(steps);
        }
        let s = fp.survival();
        // Round-off: the steps' (module doc) and the series' n² terms of a few EPS each.
        let roundoff = steps * step_roundoff(dt, rho) + 8.0 * (n * n) as f64 * EPS;
        assert!(
            (s - discrete_s).abs() <= roundoff,
            "t = {t}: {s} vs discrete {discrete_s}"
        );
        let (mut exact, mut leading) = (0.0, 0.0);
        for k in (1..2000).step_by(2) {
            let w = k as f64 * PI;
            let c = 4.0 / w * (w * x(j)).sin();
            let lam = w * w;
            let e = (-lam * t).exp();
            exact += c * e;
            let wh2 = (w * h).powi(2);
            leading += c.abs() * e * (wh2 / 24.0 + lam * t * wh2 / 12.0 + lam * lam * t * dt / 2.0);
        }
        println!("t = {t}: S = {s}, exact {exact}, leading error {leading}");
        assert!(
            (s - exact).abs() <= 2.0 * leading + roundoff,
            "t = {t}: {s} vs exact {exact} (leading error {leading})"
        );
    }
}

/// Free diffusion on a circle of length 2π (periodic, n cells, D = 0.5) from a point mass
/// at x_j. The periodic operator is circulant: the discrete Fourier mode e^{i k x} decays by
/// g_k = 1 / (1 + dt λ_k), λ_k = (4 D / h²) sin²(k h / 2) per step, so the density at the
/// centres is exactly ρ_h(x_i) = (1 / L) Σ_{k = −n/2 + 1}^{n/2} cos(k (x_i − x_j)) g_k^steps
/// (checked to round-off). The wrapped Gaussian is ρ(x, t) = Σ_m N(x; x_j + m L, 2 D t) =
/// (1 / L) Σ_{all k} cos(k (x − x_j)) e^{−D k² t}; at the centres the triangle inequality
/// bounds the difference by (1 / L) [Σ_{|k| ≤ n/2} |g_k^steps − e^{−D k² t}| +
/// Σ_{|k| > n/2} e^{−D k² t}], the scheme's O(dt + h²) with its constant.
#[test]
fn periodic_free_diffusion_is_the_wrapped_gaussian() {
    let (n, d, dt) = (128usize, 0.5, 1e-3);
    let len = 2.0 * PI;
    let h = len / n as f64;
    let j = 20;
    let mut fp = free_1d(n, len, d, j, dt)
        .with_boundaries(vec![AxisBoundary::Periodic])
        .unwrap();
    let rho = 4.0 * d / (h * h);
    let x = |i: usize| (i as f64 + 0.5) * h;
    let ks: Vec<i64> = (-(n as i64) / 2 + 1..=n as i64 / 2).collect();
    for &t in &[0.1, 0.5, 1.0] {
        advance_checked(&mut fp, t, 1.0, rho, dt);
        let steps = fp.steps() as f64;
        let g = |k: i64| (1.0 / (1.0 + dt * discrete(d, h, k as f64 * h / 2.0))).powf(steps);
        let mut bound: f64 = ks
            .iter()
            .map(|&k| (g(k) - (-d * (k * k) as f64 * t).exp()).abs())
            .sum();
        bound += 2.0
            * (n as i64 / 2 + 1..10 * n as i64)
                .map(|k| (-d * (k * k) as f64 * t).exp())
                .sum::<f64>();
        bound /= len;
        // Round-off of the steps in mass (divided by h for a density) and of the n-term sums.
        let roundoff = steps * step_roundoff(dt, rho) / h + 8.0 * n as f64 * EPS / len;
        let var = 2.0 * d * t;
        let mut worst: f64 = 0.0;
        for i in 0..n {
            let density = fp.mass()[i] / h;
            let discrete_rho: f64 = ks
                .iter()
                .map(|&k| (k as f64 * (x(i) - x(j))).cos() * g(k))
                .sum::<f64>()
                / len;
            assert!(
                (density - discrete_rho).abs() <= roundoff,
                "t = {t}, cell {i}: {density} vs discrete {discrete_rho}"
            );
            let wrapped: f64 = (-20..=20)
                .map(|m| {
                    let z = x(i) - x(j) - m as f64 * len;
                    (-z * z / (2.0 * var)).exp() / (2.0 * PI * var).sqrt()
                })
                .sum();
            worst = worst.max((density - wrapped).abs());
        }
        println!("t = {t}: worst |rho_h - wrapped| = {worst:e}, bound {bound:e}");
        assert!(worst <= bound + roundoff, "t = {t}: {worst} > {bound}");
    }
}

/// (1 / T) ∫_{x0}^{b} e^{U(y)/T} ∫_{lo}^{y} e^{−U(z)/T} dz dy: the exact mean first-passage
/// time of Langevin dynamics (D = T) from x0 to b, with a reflecting wall at lo, by
/// composite Simpson on both integrals (the inner one accumulated panel by panel). `panels`
/// of width w give a relative error ~ w⁴ U⁗-scale / 180, below 1e-12 for the panels used.
fn mfpt_quadrature(u: impl Fn(f64) -> f64, t: f64, lo: f64, x0: f64, b: f64, panels: usize) -> f64 {
    let w = (b - lo) / panels as f64;
    let shift = u(b).max(u(x0));
    let inner_f = |z: f64| (-(u(z) - shift) / t).exp();
    let outer_f = |y: f64, inner: f64| ((u(y) - shift) / t).exp() * inner;
    // inner(y) at every panel edge and midpoint, by Simpson on half panels (w/2 wide, each
    // with its own midpoint).
    let simpson =
        |a: f64, c: f64| (c - a) / 6.0 * (inner_f(a) + 4.0 * inner_f(0.5 * (a + c)) + inner_f(c));
    let mut inner = 0.0;
    let mut total = 0.0;
    for p in 0..panels {
        let y0 = lo + p as f64 * w;
        let (ym, y1) = (y0 + 0.5 * w, y0 + w);
        let i0 = inner;
        let im = i0 + simpson(y0, ym);
        let i1 = im + simpson(ym, y1);
        inner = i1;
        // The outer integral runs over [x0, b] only.
        if y1 <= x0 {
            continue;
        }
        let (a, c) = (y0.max(x0), y1);
        if a > y0 {
            // The panel straddling x0: integrate [x0, y1] with the inner value interpolated
            // by its own Simpson from y0 (x0 is a cell centre, the panel is tiny).
            let ia = i0 + simpson(y0, a);
            let imid = ia + simpson(a, 0.5 * (a + c));
            total += (c - a) / 6.0
                * (outer_f(a, ia) + 4.0 * outer_f(0.5 * (a + c), imid) + outer_f(c, i1));
        } else {
            total += w / 6.0 * (outer_f(y0, i0) + 4.0 * outer_f(ym, im) + outer_f(y1, i1));
        }
    }
    total / t
}

/// The discrete problem's mean first-passage time in closed form: a 1D chain with
/// stationary weights π_k = e^{−U_k/T} and rates r_j (cell j to j + 1; r_{n−1} out through
/// the absorbing high end, r_j = 0 inside a sink) starting from cell i:
/// T_i = Σ_{j=i}^{J} (1 / (π_j r_j)) Σ_{k ≤ j} π_k, J the last cell before the absorbing
/// set (the steady flux through face j balances the mass below it).
fn discrete_mfpt(pi: &[f64], rate: &[f64], start: usize, last: usize) -> f64 {
    let mut below = 0.0;
    let mut total = 0.0;
    for j in 0..=last {
        below += pi[j];
        if j >= start {
            total += below / (pi[j] * rate[j]);
        }
    }
    total
}

/// The solver's ∫ S dt to `t_end` plus the rest S(t_end) / λ₀: for a pure slowest mode the
/// rest of backward Euler's right-endpoint sum is dt S Σ_{m≥1} g^m = S / λ₀ exactly
/// (g = 1 / (1 + dt λ₀)); the other modes have decayed by e^{−(λ₁ − λ₀) t_end}.
fn solver_mfpt(fp: &mut FokkerPlanck, t_end: f64) -> f64 {
    fp.advance_to(t_end);
    fp.survival_integral() + fp.survival() / fp.escape_rate().unwrap()
}

/// The OU process dX = −X dt + √2 dW (U = x²/2, T = 1) from the cell centre nearest 0 to the
/// level a = 1.5, on [−6, 1.5] with the high end absorbing.
///
/// 1. The solver's ∫ S dt is the discrete MFPT 1ᵀ(−A)^{−1} m0 at any dt (see
///    `FokkerPlanck::survival_integral`; dt = 0.05 here): against the chain's closed form
///    within the round-off of the steps and of the n-term sums.
/// 2. Against the exact quadrature the discrete MFPT is second order in h: e(h) = c h² +
///    O(h³) (the start x0 moves by h/4 between the grids, c varies smoothly), so
///    e(h) / e(h/2) = 4 (1 + O(h)); the test allows 4 ± 0.5 at h = 0.025 and checks that
///    the Richardson value (4 T_{h/2} − T_h) / 3 is at least 10 times closer than T_{h/2}.
#[test]
fn ou_mean_first_passage_to_a_level_is_the_quadrature() {
    let (lo, a, dt) = (-6.0, 1.5, 0.05);
    let u = |x: f64| 0.5 * x * x;
    let mut errors = Vec::new();
    for n in [300usize, 600] {
        let grid = Grid::new(vec![n], vec![[lo, a]]);
        let h = grid.width(0);
        let j = ((0.0 - lo) / h) as usize;
        let x0 = grid.centre(0, j);
        let us: Vec<f64> = grid.centres().iter().map(|x| u(x[0])).collect();
        let mut m = vec![0.0; n];
        m[j] = 1.0;
        let mut fp = FokkerPlanck::new(grid, 1.0, us.clone(), m, dt)
            .with_boundaries(vec![AxisBoundary::Absorbing {
                low: false,
                high: true,
            }])
            .unwrap();
        let mfpt = solver_mfpt(&mut fp, 120.0);
        // The chain: r_j = (T/h²) B(ΔU/T), the end 2 (T/h²) B((U_w − U_{n−1})/T) with U_w
        // extrapolated (boundary.rs).
        let pi: Vec<f64> = us.iter().map(|v| (-v).exp()).collect();
        let mut rate: Vec<f64> = (0..n - 1)
            .map(|k| fokker::reference::solver::bernoulli(us[k + 1] - us[k]) / (h * h))
            .collect();
        let u_w = 1.5 * us[n - 1] - 0.5 * us[n - 2];
        rate.push(2.0 * fokker::reference::solver::bernoulli(u_w - us[n - 1]) / (h * h));
        let chain = discrete_mfpt(&pi, &rate, j, n - 1);
        // Round-off: each step's relative 10 EPS (1 + 2 dt ρ) on S, summed with weight dt
        // over the steps (so ≤ t_end S-scale), and the chain's n² terms.
        let rho = 4.0 / (h * h) + 6.0 / h;
        let roundoff =
            fp.steps() as f64 * step_roundoff(dt, rho) * mfpt + 8.0 * (n * n) as f64 * EPS * chain;
        assert!((mfpt - chain).abs() <= roundoff, "{mfpt} vs chain {chain}");
        let exact = mfpt_quadrature(u, 1.0, lo, x0, a, 20000);
        println!("n = {n}: solver {mfpt}, chain {chain}, quadrature {exact}");
        errors.push(mfpt - exact);
    }
    let ratio = errors[0] / errors[1];
    assert!(
        (ratio - 4.0).abs() <= 0.5,
        "errors {errors:?}, ratio {ratio}"
    );
    // Richardson on the errors (each against the quadrature at its grid's own x0): the h²
    // terms cancel, what is left is O(h³) ≪ e(h/2).
    let richardson = (4.0 * errors[1] - errors[0]) / 3.0;
    assert!(
        richardson.abs() <= 0.1 * errors[1].abs(),
        "errors {errors:?}, Richardson {richardson}"
    );
}

/// The symmetric double well U = (x² − 1)² at T = 0.2 (ΔU / T = 5), on [−2, 2] (e^{−U/T} at
/// the walls is e^{−45}).
fn double_well(n: usize) -> (Grid, Vec<f64>) {
    let grid = Grid::new(vec![n], vec![[-2.0, 2.0]]);
    let u = grid
        .centres()
        .iter()
        .map(|x| (x[0] * x[0] - 1.0).powi(2))
        .collect();
    (grid, u)
}

/// The π-moments E_π[τ] and E_π[τ²] of the first-passage time τ to b (absorbing) from
/// x ~ π ∝ e^{−U/T} on [lo, b] (reflecting at lo), τ(x) = (1/T) ∫_x^b e^{U/T} ∫_lo^y
/// e^{−U/T}: cumulative trapezoid sums on `panels` panels (relative error ~ (w/ℓ)² / 12,
/// ℓ = √(T / U'') the narrowest scale of the integrands; below 1e-9 here).
fn first_passage_moments(
    u: impl Fn(f64) -> f64,
    t: f64,
    lo: f64,
    b: f64,
    panels: usize,
) -> (f64, f64) {
    let w = (b - lo) / panels as f64;
    let x: Vec<f64> = (0..=panels).map(|i| lo + i as f64 * w).collect();
    let shift = x.iter().map(|&v| u(v)).fold(f64::INFINITY, f64::min);
    let p: Vec<f64> = x.iter().map(|&v| (-(u(v) - shift) / t).exp()).collect();
    let mut inner = vec![0.0; panels + 1];
    for i in 1..=panels {
        inner[i] = inner[i - 1] + 0.5 * w * (p[i - 1] + p[i]);
    }
    let g: Vec<f64> = (0..=panels).map(|i| inner[i] / p[i] / t).collect();
    let mut tau = vec![0.0; panels + 1];
    for i in (0..panels).rev() {
        tau[i] = tau[i + 1] + 0.5 * w * (g[i] + g[i + 1]);
    }
    let trap = |f: &dyn Fn(usize) -> f64| {
        (0..panels)
            .map(|i| 0.5 * w * (f(i) + f(i + 1)))
            .sum::<f64>()
    };
    let z = trap(&|i| p[i]);
    (
        trap(&|i| p[i] * tau[i]) / z,
        trap(&|i| p[i] * tau[i] * tau[i]) / z,
    )
}

/// Bounds on the lowest rate λ₀ of a reversible diffusion absorbed at b from its mean
/// first-passage function τ (−L τ = 1, τ(b) = 0): τ is a trial function for the
/// self-adjoint −L in L²(π), with ⟨τ, −L τ⟩ = E_π[τ], ⟨τ, τ⟩ = E_π[τ²] and ‖−L τ‖² = 1.
/// Rayleigh: λ₀ ≤ ρ = E_π[τ] / E_π[τ²] (≤ 1 / E_π[τ]); Temple: λ₀ ≥ ρ − (1 / E_π[τ²] − ρ²)
/// / (λ₁ − ρ) for any λ₁ at most the next rate. Metastability makes τ nearly constant on the
/// well, so the bracket is narrow: it says what the eigenvalue equals, and how exactly.
fn rate_bracket(moments: (f64, f64), next_rate: f64) -> (f64, f64) {
    let (m1, m2) = moments;
    let rho = m1 / m2;
    (rho - (1.0 / m2 - rho * rho) / (next_rate - rho), rho)
}

/// The lowest rates of a grid of `n` cells on [−2, 2], reflecting, optionally absorbing
/// beyond `b`.
fn double_well_rates(n: usize, t: f64, b: Option<f64>) -> Vec<f64> {
    let (grid, us) = double_well(n);
    let m = vec![1.0 / n as f64; n];
    let mut fp = FokkerPlanck::new(grid, t, us, m, 0.05)
        .with_boundaries(vec![AxisBoundary::Reflecting])
        .unwrap();
    if let Some(b) = b {
        fp = fp
            .with_absorbing_region(Region::Box(vec![[b, f64::INFINITY]]))
            .unwrap();
    }
    fp.slowest_rates(3).unwrap()
}

/// The symmetric double well at ΔU / T = 5.
///
/// - Reflecting walls: the first non-zero rate λ₁ = k_AB + k_BA = 2k. Exactly, the
///   operator commutes with x -> −x, its odd eigenfunctions vanish at 0, and λ₁ is the
///   lowest rate of the left half absorbed at the barrier top 0: bracketed by the MFPT
///   function to the top (`rate_bracket`).
/// - Absorbing beyond the barrier at b ≈ 0.31, a cell centre of both grids below (the
///   sink's density is 0 there, boundary.rs; the region starts h/100 below it so that the
///   centre's rounding cannot move the sink): the lowest rate, bracketed by the MFPT
///   function to b.
///
/// The grid's rate is O(h²) from the continuous one. Grids of h and h/3 (so that b is a
/// centre of both) give the Richardson value (9 λ_{h/3} − λ_h) / 8, which leaves O(h⁴); the
/// test allows a tenth of the h² term at h/3, |λ_{h/3} − λ_h| / 8.
#[test]
fn double_well_rates_against_first_passage_times() {
    let t = 0.2;
    let u = |x: f64| (x * x - 1.0).powi(2);
    let (n, panels) = (150, 200_000);
    let (grid, _) = double_well(n);
    let b_cell = grid.centre(0, 86);
    let region_start = b_cell - grid.width(0) / 100.0;
    for (b, absorbing) in [(0.0, None), (b_cell, Some(region_start))] {
        let coarse = double_well_rates(n, t, absorbing);
        let fine = double_well_rates(3 * n, t, absorbing);
        // Reflecting: λ₁ is the second rate; absorbing: λ₀ the first.
        let at = usize::from(absorbing.is_none());
        let (lam_h, lam_h3) = (coarse[at], fine[at]);
        let richardson = (9.0 * lam_h3 - lam_h) / 8.0;
        let slack = 0.1 * (lam_h3 - lam_h).abs() / 8.0;
        let moments = first_passage_moments(u, t, -2.0, b, panels);
        // The next rate of the continuous problem: the grid's, less its own h² change.
        let next = fine[at + 1] - (fine[at + 1] - coarse[at + 1]).abs();
        let (low, high) = rate_bracket(moments, next);
        println!(
            "b = {b}: rates h {coarse:?}, h/3 {fine:?}; Richardson {richardson}, bracket [{low}, {high}], 1/E[tau] {}",
            1.0 / moments.0
        );
        assert!(
            richardson >= low - slack && richardson <= high + slack,
            "b = {b}: {richardson} outside [{low}, {high}] ± {slack}"
        );
    }
    let kramers = (8.0f64 * 4.0).sqrt() / (2.0 * PI) * (-5.0f64).exp();
    println!("2 k_Kramers = {}", 2.0 * kramers);
}

/// A 2D double well in x times a harmonic y, absorbed in two regions, x ≤ −b (a box) and
/// x ≥ b (a half-space), both product sets. The operator is a Kronecker sum of commuting
/// axis operators, A = A_x ⊕ A_y, sinks and all: its rates are sums of the axes' rates,
/// the lowest λ₀ = λ₀(A_x) + 0 (A_y keeps e^{−y²/2T}): the 2D subspace iteration against
/// the 1D bisection within their tolerances (module doc). Since the axes commute, the split
/// backward-Euler step is exactly (I − dt A_x)^{−1} (I − dt A_y)^{−1}, so once the faster
/// modes have decayed S falls by g = 1 / (1 + dt λ₀) per step: over the last 200 steps to
/// t = 30 the other modes contribute ≲ e^{−(λ_y,1 − λ₀) 20} ≈ 2e-9 relative (λ_y,1 ≈ 1, the
/// OU rate); the test allows 1e-7. A start at x = 0 splits the absorbed mass evenly between
/// the mirror-image regions, up to the steps' round-off.
#[test]
fn two_dimensional_absorbing_regions_decay_at_the_lowest_rate() {
    let t = 0.25;
    // n0 odd: a cell centre at x = 0, the grid its own mirror image.
    let (n0, n1, dt) = (81usize, 40usize, 0.05);
    let b = 0.6;
    let u = |x: &[f64]| (x[0] * x[0] - 1.0).powi(2) + 0.5 * x.get(1).map_or(0.0, |y| y * y);
    let regions = |axes: usize| {
        let mut bx = vec![[f64::NEG_INFINITY, -b]];
        let mut normal = vec![1.0];
        if axes == 2 {
            bx.push([f64::NEG_INFINITY, f64::INFINITY]);
            normal.push(0.0);
        }
        [Region::Box(bx), Region::HalfSpace { normal, offset: b }]
    };
    let build = |grid: Grid| {
        let axes = grid.axes();
        let us: Vec<f64> = grid.centres().iter().map(|x| u(x)).collect();
        let mut m = vec![0.0; grid.len()];
        // The cell centred at x = 0 (and just below y = 0).
        let centre = if axes == 1 {
            n0 / 2
        } else {
            (n0 / 2) * n1 + n1 / 2
        };
        m[centre] = 1.0;
        let mut fp = FokkerPlanck::new(grid, t, us, m, dt)
            .with_boundaries(vec![AxisBoundary::Reflecting; axes])
            .unwrap();
        for r in regions(axes) {
            fp = fp.with_absorbing_region(r).unwrap();
        }
        fp
    };
    let range = [[-2.0, 2.0], [-3.0, 3.0]];
    let line = build(Grid::new(vec![n0], vec![range[0]]));
    let mut plane = build(Grid::new(vec![n0, n1], range.to_vec()));
    let (h0, h1) = (4.0 / n0 as f64, 6.0 / n1 as f64);
    // ‖A‖ ≤ twice the largest outflow; B(z) ≤ 1 + |z| and |ΔU| / T ≤ 4 across a face here.
    let norm = 2.0 * 5.0 * 2.0 * t * (1.0 / (h0 * h0) + 1.0 / (h1 * h1));
    let lam_1d = line.slowest_rates(1).unwrap()[0];
    let lam_2d = plane.slowest_rates(1).unwrap()[0];
    assert!(
        (lam_1d - lam_2d).abs() <= 1e-12 * norm + 64.0 * EPS * norm,
        "{lam_1d} vs {lam_2d}"
    );
    let rho = norm / 2.0;
    advance_checked(&mut plane, 20.0, 1.0, rho, dt);
    let s20 = plane.survival();
    advance_checked(&mut plane, 30.0, 1.0, rho, dt);
    let s30 = plane.survival();
    let predicted = (1.0 / (1.0 + dt * lam_2d)).powf(200.0);
    println!("λ₀ = {lam_2d}; S(30)/S(20) = {} vs {predicted}", s30 / s20);
    assert!(((s30 / s20) / predicted - 1.0).abs() <= 1e-7);
    let absorbed = plane.absorbed();
    let bound = plane.steps() as f64 * step_roundoff(dt, rho);
    assert!((absorbed[0] - absorbed[1]).abs() <= bound, "{absorbed:?}");
}

/// Stationary drift velocity of dX = (−V'(X) + F) dt + √(2T) dW on a circle of length L
/// (Stratonovich; Risken, The Fokker–Planck Equation, §11.3): with Φ = V − F x,
/// v = L T (1 − e^{−F L/T}) / ∫_0^L dx ∫_0^L dy e^{(Φ(x + y) − Φ(x))/T}. The outer integrand
/// is periodic in x (trapezoid, spectrally accurate); the inner one by Simpson on `m`
/// panels (relative error ~ (L/m)⁴ / 180 × the fourth derivative's scale, ~1e-10 here).
fn washboard_velocity(v: impl Fn(f64) -> f64, f: f64, t: f64, len: f64, m: usize) -> f64 {
    let phi = |x: f64| v(x) - f * x;
    let w = len / m as f64;
    let mut total = 0.0;
    for i in 0..m {
        let x = i as f64 * w;
        let g = |y: f64| ((phi(x + y) - phi(x)) / t).exp();
        let inner: f64 = (0..m / 2)
            .map(|p| {
                let y = 2.0 * p as f64 * w;
                w / 3.0 * (g(y) + 4.0 * g(y + w) + g(y + 2.0 * w))
            })
            .sum();
        total += w * inner;
    }
    len * t * (1.0 - (-f * len / t).exp()) / total
}

/// The tilted washboard V = V0 cos x, F = 0.5, T = 0.5 on one period (periodic axis, a
/// general drift, the wrap face fitted like the others), relaxed to its stationary state
/// (backward Euler's fixed point is the kernel of A at any dt; t = 600 is ≳ 30 relaxation
/// times): its mean velocity against Risken's closed form. The scheme's stationary density
/// is second order in h (solver.rs), but the velocity is a sum over the whole period of
/// smooth periodic terms, and the O(h²) part of the face exponents' midpoint error is
/// (h²/24) (f/D)'' — a derivative of a periodic function, whose sum over the period vanishes
/// to all orders (Euler–Maclaurin): the velocity is fourth order. With 100 and 200 cells
/// e(h) / e(h/2) = 16 (1 + O(h²)) (asserted within 12..20), and the fourth-order
/// Richardson value (16 e(h/2) − e(h)) / 15 must remove at least 90 % of e(h/2). Mass is
/// kept exactly along the way.
#[test]
fn tilted_washboard_drift_velocity_is_risken_s() {
    let (v0, f, t) = (1.0, 0.5, 0.5);
    let len = 2.0 * PI;
    let exact = washboard_velocity(|x| v0 * x.cos(), f, t, len, 2000);
    let mut errors = Vec::new();
    for n in [100usize, 200] {
        let grid = Grid::new(vec![n], vec![[0.0, len]]);
        let coefficients = Coefficients::general(
            move |y: &[f64], _t: f64, _: &mut Vec<f64>, out: &mut [f64]| {
                out[0] = v0 * y[0].sin() + f;
                out[1] = t;
            },
            false,
        );
        let mut fp =
            FokkerPlanck::with_coefficients(grid, coefficients, vec![1.0 / n as f64; n], 0.5)
                .with_boundaries(vec![AxisBoundary::Periodic])
                .unwrap();
        let h = len / n as f64;
        // ρ: two faces, B(±P) ≤ 1 + |P|, |P| ≤ h (V0 + F) / T.
        let rho = 2.0 * t / (h * h) * (1.0 + h * (v0 + f) / t);
        advance_checked(&mut fp, 600.0, 1.0, rho, 0.5);
        let v = fp.mean_velocity()[0];
        println!("n = {n}: v = {v}, exact {exact}");
        errors.push(v - exact);
    }
    let ratio = errors[0] / errors[1];
    assert!((12.0..=20.0).contains(&ratio), "errors {errors:?}");
    let richardson = (16.0 * errors[1] - errors[0]) / 15.0;
    assert!(
        richardson.abs() <= 0.1 * errors[1].abs(),
        "errors {errors:?}"
    );
}

/// Free diffusion on a torus: the axes' operators commute, so the split step is exactly the
/// product of the two 1D backward-Euler steps, and from a point the 2D masses are the outer
/// product of two 1D periodic runs (the column-wise cyclic solve of axis 0 against the 1D
/// line solve), within the steps' round-off (module doc) on each factor and their product.
#[test]
fn torus_diffusion_is_the_product_of_two_circles() {
    let (n0, n1, d, dt) = (24usize, 16usize, 0.3, 0.01);
    let (l0, l1) = (2.0, 1.0);
    let circle = |n: usize, len: f64, start: usize| {
        let mut fp = free_1d(n, len, d, start, dt)
            .with_boundaries(vec![AxisBoundary::Periodic])
            .unwrap();
        fp.advance_to(0.5);
        fp.mass().to_vec()
    };
    let (a, b) = (circle(n0, l0, 5), circle(n1, l1, 11));
    let grid = Grid::new(vec![n0, n1], vec![[0.0, l0], [0.0, l1]]);
    let mut m = vec![0.0; n0 * n1];
    m[5 * n1 + 11] = 1.0;
    let mut fp = FokkerPlanck::new(grid, d, vec![0.0; n0 * n1], m, dt)
        .with_boundaries(vec![AxisBoundary::Periodic; 2])
        .unwrap();
    fp.advance_to(0.5);
    let (h0, h1) = (l0 / n0 as f64, l1 / n1 as f64);
    let rho = 4.0 * d * (1.0 / (h0 * h0) + 1.0 / (h1 * h1));
    let bound = 3.0 * fp.steps() as f64 * step_roundoff(dt, rho);
    let worst = (0..n0 * n1)
        .map(|k| (fp.mass()[k] - a[k / n1] * b[k % n1]).abs())
        .fold(0.0, f64::max);
    assert!(worst <= bound, "{worst} > {bound}");
    assert!((fp.survival() - 1.0).abs() <= bound);
}

/// Boundaries that do not fit the grid are refused with a reason, never a panic.
#[test]
fn unfit_boundaries_and_regions_are_refused() {
    let fp = || free_1d(20, 1.0, 1.0, 3, 0.01);
    let e = fp()
        .with_boundaries(vec![AxisBoundary::Reflecting; 2])
        .err()
        .unwrap();
    assert!(e.contains("2 boundaries") && e.contains("1 axes"), "{e}");
    let e = fp()
        .with_absorbing_region(Region::Box(vec![[0.0, 1.0], [0.0, 1.0]]))
        .err()
        .unwrap();
    assert!(e.contains("2 axes"), "{e}");
    let e = fp()
        .with_absorbing_region(Region::predicate(|x| x[0] > 5.0))
        .err()
        .unwrap();
    assert!(e.contains("no free cell centre"), "{e}");
    // Mass in a region's cells is absorbed when the region is added.
    let fp = fp()
        .with_absorbing_region(Region::HalfSpace {
            normal: vec![-1.0],
            offset: -0.2,
        })
        .unwrap();
    assert_eq!(fp.absorbed(), &[1.0]);
    assert_eq!(fp.survival(), 0.0);
    // A general drift in 2D has no symmetric form: its rates are refused.
    let grid = Grid::new(vec![4, 4], vec![[0.0, 1.0]; 2]);
    let general = Coefficients::general(
        |y: &[f64], _t: f64, _: &mut Vec<f64>, out: &mut [f64]| {
            out[0] = -y[1];
            out[1] = y[0];
            out[2] = 1.0;
        },
        false,
    );
    let fp = FokkerPlanck::with_coefficients(grid, general, vec![1.0 / 16.0; 16], 0.01);
    let e = fp.slowest_rates(2).err().unwrap();
    assert!(e.contains("gradient drift"), "{e}");
}

/// The same OU first passage with the drift given as a general field (f = −x, D = 1): the
/// fitted rates r_j = B(−P) D / h², l_j = B(P) D / h², P = h f(face) / D, and out through the
/// absorbing end 2 B(−P') D / h², P' = (h/2) f(a) / D (boundary.rs), form a birth–death
/// chain with π_{j+1} = π_j r_j / l_j; the solver's ∫ S dt must be its MFPT to round-off
/// (as in ou_mean_first_passage_to_a_level_is_the_quadrature), which pins the general end
/// flux's direction and size.
#[test]
fn general_drift_absorbing_end_is_the_fitted_chain() {
    use fokker::reference::solver::bernoulli;
    let (lo, a, n, dt) = (-6.0, 1.5, 300usize, 0.05);
    let grid = Grid::new(vec![n], vec![[lo, a]]);
    let h = grid.width(0);
    let j = ((0.0 - lo) / h) as usize;
    let field = Coefficients::general(
        |y: &[f64], _t: f64, _: &mut Vec<f64>, out: &mut [f64]| {
            out[0] = -y[0];
            out[1] = 1.0;
        },
        false,
    );
    let mut m = vec![0.0; n];
    m[j] = 1.0;
    let mut fp = FokkerPlanck::with_coefficients(grid, field, m, dt)
        .with_boundaries(vec![AxisBoundary::Absorbing {
            low: false,
            high: true,
        }])
        .unwrap();
    let mfpt = solver_mfpt(&mut fp, 120.0);
    let face = |k: usize| lo + (k + 1) as f64 * h;
    let mut pi = vec![1.0];
    let mut rate = Vec::new();
    for k in 0..n - 1 {
        let p = h * -face(k);
        rate.push(bernoulli(-p) / (h * h));
        let left = bernoulli(p) / (h * h);
        pi.push(pi[k] * rate[k] / left);
    }
    rate.push(2.0 * bernoulli(-(0.5 * h * -a)) / (h * h));
    let chain = discrete_mfpt(&pi, &rate, j, n - 1);
    let rho = 4.0 / (h * h) + 6.0 / h;
    let roundoff =
        fp.steps() as f64 * step_roundoff(dt, rho) * mfpt + 8.0 * (n * n) as f64 * EPS * chain;
    assert!((mfpt - chain).abs() <= roundoff, "{mfpt} vs chain {chain}");
}
