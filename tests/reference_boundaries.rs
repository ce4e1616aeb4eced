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
        assert!((m - 1.0 / n as f64).abs() <= bound, "cell {i}: {m} (bound {bound})");
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
        assert!((lam - e).abs() <= 1e-12 * 2.0 * norm, "{rates:?} vs {exact:?}");
    }
}
