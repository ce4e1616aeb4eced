//! Distances between a particle histogram and a reference law on the same bins, the
//! sampling-noise floor of total variation, and the free energy of a binned density.
//!
//! The particle histogram is normalised by every finite particle, N = in range + outside,
//! and "outside the range" is one more category: p_b = c_b / N, p_out = outside / N. The
//! reference gives q_b per bin and q_out = 1 - sum q_b (0 for the grid solver and the
//! Boltzmann density, which live on the box; the analytic law's tails otherwise).
//!
//! - tv = (1/2) (sum_b |p_b - q_b| + |p_out - q_out|), in [0, 1].
//! - hellinger = sqrt(1 - BC), BC = sum_b sqrt(p_b q_b) + sqrt(p_out q_out), in [0, 1].
//! - kl = KL(p' || q') = sum_b p'_b log(p'_b / q'_b) over the bins only, both renormalised to
//!   the range. Empty particle bins contribute 0 (0 log 0 = 0): this direction never divides
//!   by an empty bin, which is what a finite sample has. A bin with particles where the
//!   reference is exactly 0 would make it infinite; there q'_b is floored at 1e-300, so the
//!   value is large and finite (the solver's and Boltzmann's q are positive everywhere).
//! - tv_floor = E[tv] for N independent samples from q itself: for each category,
//!   N p ~ Binomial(N, q), so E|p - q| = MAD(N, q) / N with de Moivre's closed form
//!   MAD = 2 (m + 1) C(N, m + 1) q^(m+1) (1 - q)^(N-m), m = floor(N q). For N q (1 - q)
//!   large this is sqrt(2 q (1 - q) / (pi N)), so tv_floor ~ sum_b sqrt(q_b (1 - q_b) / (2 pi N)):
//!   about sqrt(B_eff / (2 pi N)) for B_eff occupied bins. A tv near the floor is noise; a tv
//!   well above it is bias (time step, grid, or a real difference).

/// Below this q'_b in [`kl`] a reference bin is taken as 1e-300.
const KL_FLOOR: f64 = 1e-300;

/// The three distances of one snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distances {
    pub tv: f64,
    pub hellinger: f64,
    pub kl: f64,
}

/// Distances between counts (`outside` finite particles beyond the range) and reference bin
/// probabilities `q` (same order). None when there are no particles.
pub fn distances(counts: &[u64], outside: u64, q: &[f64]) -> Option<Distances> {
    let in_range: u64 = counts.iter().sum();
    let n = in_range + outside;
    if n == 0 {
        return None;
    }
    let n_f = n as f64;
    let q_in: f64 = q.iter().sum();
    let q_out = (1.0 - q_in).max(0.0);
    let p_out = outside as f64 / n_f;
    let mut l1 = (p_out - q_out).abs();
    let mut bc = (p_out * q_out).sqrt();
    let mut kl = 0.0;
    for (&c, &qb) in counts.iter().zip(q) {
        let p = c as f64 / n_f;
        l1 += (p - qb).abs();
        bc += (p * qb).sqrt();
        if c > 0 && in_range > 0 {
            let p_in = c as f64 / in_range as f64;
            let q_norm = (qb / q_in).max(KL_FLOOR);
            kl += p_in * (p_in / q_norm).ln();
        }
    }
    Some(Distances {
        tv: (0.5 * l1).clamp(0.0, 1.0),
        hellinger: (1.0 - bc).max(0.0).sqrt(),
        kl: kl.max(0.0),
    })
}

/// E|X/N - q| for X ~ Binomial(N, q), exactly (de Moivre), in logs for large N.
pub fn binomial_mean_abs_deviation(n: u64, q: f64) -> f64 {
    if n == 0 || q <= 0.0 || q >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let m = (nf * q).floor();
    if m + 1.0 > nf {
        return 0.0;
    }
    // log[2 (m+1) C(N, m+1) q^(m+1) (1-q)^(N-m)] - log N
    let log_choose = libm::lgamma(nf + 1.0) - libm::lgamma(m + 2.0) - libm::lgamma(nf - m);
    let log_mad = std::f64::consts::LN_2
        + (m + 1.0).ln()
        + log_choose
        + (m + 1.0) * q.ln()
        + (nf - m) * (-q).ln_1p();
    (log_mad - nf.ln()).exp()
}

/// Expected tv of N samples from q against q (see the module notes).
pub fn tv_floor(n: u64, q: &[f64]) -> f64 {
    let q_in: f64 = q.iter().sum();
    let q_out = (1.0 - q_in).max(0.0);
    let bins: f64 = q.iter().map(|&qb| binomial_mean_abs_deviation(n, qb)).sum();
    0.5 * (bins + binomial_mean_abs_deviation(n, q_out))
}

/// F = sum_b p_b U_b + T sum_b p_b log(p_b / vol) of counts normalised over the range, with
/// U at the bin centres and vol the bin volume (0 log 0 = 0). None without particles.
pub fn histogram_free_energy(
    counts: &[u64],
    potential: &[f64],
    temperature: f64,
    volume: f64,
) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let p: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64).collect();
    Some(crate::reference::solver::free_energy(
        &p,
        potential,
        temperature,
        volume,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_laws_are_at_distance_zero_and_disjoint_ones_at_one() {
        let q = [0.25, 0.5, 0.25];
        let d = distances(&[25, 50, 25], 0, &q).unwrap();
        assert!(d.tv.abs() < 1e-15 && d.hellinger < 1e-7 && d.kl.abs() < 1e-15);
        let d = distances(&[0, 0, 10], 0, &[1.0, 0.0, 0.0]).unwrap();
        assert!((d.tv - 1.0).abs() < 1e-15 && (d.hellinger - 1.0).abs() < 1e-15);
        assert!(d.kl > 600.0 && d.kl.is_finite());
        // Particles outside the range count against a reference that has none there.
        let d = distances(&[50, 0], 50, &[1.0, 0.0]).unwrap();
        assert!((d.tv - 0.5).abs() < 1e-15);
        assert!(distances(&[0, 0], 0, &[0.5, 0.5]).is_none());
    }

    #[test]
    fn mean_abs_deviation_matches_brute_force_and_the_normal_limit() {
        for &(n, q) in &[(10u64, 0.3f64), (7, 0.05), (40, 0.5), (1, 0.9)] {
            let mut exact = 0.0;
            let mut pmf = (1.0 - q).powi(n as i32);
            for k in 0..=n {
                if k > 0 {
                    pmf *= (n - k + 1) as f64 / k as f64 * q / (1.0 - q);
                }
                exact += pmf * (k as f64 / n as f64 - q).abs();
            }
            let got = binomial_mean_abs_deviation(n, q);
            assert!((got - exact).abs() < 1e-12, "n {n} q {q}: {got} vs {exact}");
        }
        let (n, q) = (100_000_000u64, 0.01);
        let normal = (2.0 * q * (1.0 - q) / (std::f64::consts::PI * n as f64)).sqrt();
        let got = binomial_mean_abs_deviation(n, q);
        assert!((got / normal - 1.0).abs() < 1e-3, "{got} vs {normal}");
    }

    /// tv_floor against a Monte Carlo estimate: many histograms of N samples from q.
    #[test]
    fn tv_floor_matches_monte_carlo() {
        let q: Vec<f64> = {
            let raw: Vec<f64> = (0..40)
                .map(|i| (-((i as f64 - 15.0) / 6.0).powi(2)).exp())
                .collect();
            let z: f64 = raw.iter().sum();
            raw.iter().map(|v| v / z).collect()
        };
        let cdf: Vec<f64> = q
            .iter()
            .scan(0.0, |s, v| {
                *s += v;
                Some(*s)
            })
            .collect();
        // xorshift64*: a fixed, dependency-free stream.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        };
        for &n in &[50u64, 2000] {
            let trials = 2000;
            let mut mean = 0.0;
            for _ in 0..trials {
                let mut counts = vec![0u64; q.len()];
                for _ in 0..n {
                    let u = uniform();
                    let b = cdf.partition_point(|&c| c < u).min(q.len() - 1);
                    counts[b] += 1;
                }
                mean += distances(&counts, 0, &q).unwrap().tv / trials as f64;
            }
            let floor = tv_floor(n, &q);
            assert!(
                (mean / floor - 1.0).abs() < 0.03,
                "N = {n}: Monte Carlo {mean} vs tv_floor {floor}"
            );
        }
    }

    #[test]
    fn free_energy_of_a_histogram() {
        // Uniform on two bins of width 0.5 with U = 0: F = T log(0.5 / 0.5) = 0.
        let f = histogram_free_energy(&[5, 5], &[0.0, 0.0], 1.0, 0.5).unwrap();
        assert!(f.abs() < 1e-15);
        let f = histogram_free_energy(&[10, 0], &[2.0, 0.0], 0.5, 0.25).unwrap();
        assert!((f - (2.0 + 0.5 * 4.0f64.ln())).abs() < 1e-14);
        assert!(histogram_free_energy(&[0, 0], &[0.0, 0.0], 1.0, 1.0).is_none());
    }
}
