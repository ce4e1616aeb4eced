//! Tolerances derived from the test's own N, bins, dt and f32 epsilon.
//!
//! Total variation of a histogram. Let p be the exact bin probabilities of a law (the
//! mass outside the range is one more bin) and p^ the histogram of N independent particles
//! whose law is q, with delta = TV(q, p) (on the bins; at most the TV of the continuous
//! laws, binning only merges mass). Then:
//! - E0 = E TV(p^, p) for N samples of p itself is `observe::distance::tv_floor(N, p)`,
//!   exact (de Moivre's mean absolute deviation of each binomial count).
//! - Coupling each sample of q with one of p that differs with probability delta moves the
//!   histogram by at most the fraction of differing samples, so E0 - delta <= E TV(p^, p)
//!   <= E0 + delta.
//! - TV(p^, p) is a function of N independent samples that one sample changes by at most
//!   1/N, so by McDiarmid P(TV - E TV > eps) <= exp(-2 N eps^2), the same below: with
//!   eps = sqrt(ln(1 / FALSE_ALARM) / (2 N)) a correct run fails with probability at most
//!   FALSE_ALARM (1e-6) per assertion.
//!
//! Hence E0 - delta - eps <= TV(p^, p) <= E0 + delta + eps: the only allowance left is the
//! bias delta, which each test derives (zero where it compares with the chain's own exact
//! law, besides f32 rounding).

/// Probability that one assertion on a correct run fails.
pub const FALSE_ALARM: f64 = 1e-6;

/// f32 unit round-off doubled (machine epsilon, 2^-23), in f64.
pub const EPS32: f64 = f32::EPSILON as f64;

/// Total variation between a histogram (counts inside the range, over `n` particles: the
/// rest are outside) and bin probabilities `p`, the outside mass one more category.
pub fn tv(counts: &[u64], p: &[f64], n: u64) -> f64 {
    let inside: f64 = 0.5
        * counts
            .iter()
            .zip(p)
            .map(|(&c, &q)| (c as f64 / n as f64 - q).abs())
            .sum::<f64>();
    let out_emp = 1.0 - counts.iter().sum::<u64>() as f64 / n as f64;
    let out_ref = (1.0 - p.iter().sum::<f64>()).max(0.0);
    inside + 0.5 * (out_emp - out_ref).abs()
}

/// TV between two laws given by their bin probabilities (the outside mass one more bin).
pub fn binned_tv(p: &[f64], q: &[f64]) -> f64 {
    let out = |p: &[f64]| (1.0 - p.iter().sum::<f64>()).max(0.0);
    0.5 * (p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>() + (out(p) - out(q)).abs())
}

/// E TV(p^, p) for `n` samples of p itself (exact).
pub fn tv_expected(p: &[f64], n: u64) -> f64 {
    fokker::observe::distance::tv_floor(n, p)
}

/// McDiarmid deviation of a histogram's TV from its mean, exceeded with probability at
/// most FALSE_ALARM.
pub fn tv_deviation(n: u64) -> f64 {
    ((1.0 / FALSE_ALARM).ln() / (2.0 * n as f64)).sqrt()
}

/// Largest TV(p^, p) a correct run of `n` particles whose law is within `bias` of p shows.
pub fn tv_upper(p: &[f64], n: u64, bias: f64) -> f64 {
    tv_expected(p, n) + bias + tv_deviation(n)
}

/// Smallest TV(p^, p) a correct run of `n` particles whose law is within `bias` of p shows.
pub fn tv_lower(p: &[f64], n: u64, bias: f64) -> f64 {
    tv_expected(p, n) - bias - tv_deviation(n)
}

/// Largest TV between the histograms of two independent runs of `na` and `nb` particles,
/// run a's law q (bin probabilities) and run b's within `bias` of it. Coupling b's samples
/// with samples of q moves the TV by at most bias on average; for two samples of q,
/// E|p^a_b - p^b_b| <= sqrt(q_b (1 - q_b) (1/na + 1/nb)) (Jensen), the outside mass one
/// more bin; one sample of a (of b) moves the TV by at most 1/na (1/nb), so McDiarmid's
/// deviation is sqrt(ln(1 / FALSE_ALARM) (1/na + 1/nb) / 2).
pub fn two_sample_tv_upper(q: &[f64], na: u64, nb: u64, bias: f64) -> f64 {
    let inv = 1.0 / na as f64 + 1.0 / nb as f64;
    let out = (1.0 - q.iter().sum::<f64>()).max(0.0);
    let mean: f64 = 0.5
        * q.iter()
            .chain(std::iter::once(&out))
            .map(|&p| (p * (1.0 - p) * inv).sqrt())
            .sum::<f64>();
    mean + bias + ((1.0 / FALSE_ALARM).ln() * inv / 2.0).sqrt()
}

/// KL(N(m1, v1) || N(m2, v2)) of one coordinate.
pub fn gaussian_kl(m1: f64, v1: f64, m2: f64, v2: f64) -> f64 {
    let r = v1 / v2;
    0.5 * (r - 1.0 - r.ln() + (m1 - m2).powi(2) / v2)
}

/// Bound on TV between two Gaussians with diagonal covariances (means `m`, variances `v`
/// per coordinate): KL adds over independent coordinates, and Pinsker's inequality gives
/// TV <= sqrt(KL / 2) (capped at 1).
pub fn gaussian_tv_bound(m1: &[f64], v1: &[f64], m2: &[f64], v2: &[f64]) -> f64 {
    let kl: f64 = (0..m1.len())
        .map(|i| gaussian_kl(m1[i], v1[i], m2[i], v2[i]))
        .sum();
    (0.5 * kl).sqrt().min(1.0)
}

/// Sum over bins of |a - b|: twice the number of particles that changed bin between two
/// histograms of the same particles (each leaves one bin and enters another).
pub fn counts_moved(a: &[u64], b: &[u64]) -> u64 {
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).sum()
}

/// Particles (rows of `dim`) with a histogrammed coordinate within `reach[p]` of one of its
/// bin edges: an upper bound on how many can change bin when particle p moves by less than
/// `reach[p]` in every coordinate.
pub fn near_edges(
    x: &[f64],
    dim: usize,
    spec: &fokker::scenario::HistogramSpec,
    reach: &[f64],
) -> u64 {
    x.chunks_exact(dim)
        .zip(reach)
        .filter(|&(r, &reach)| {
            spec.axes.iter().enumerate().any(|(j, &axis)| {
                let ([lo, hi], bins) = (spec.range[j], f64::from(spec.bins[j]));
                let w = (hi - lo) / bins;
                let k = ((r[axis as usize] - lo) / w).round().clamp(0.0, bins);
                (r[axis as usize] - (lo + k * w)).abs() < reach
            })
        })
        .count() as u64
}

/// Laurent–Massart: a chi-square variable with k degrees of freedom exceeds
/// k + 2 sqrt(k x) + 2 x with probability at most e^-x; x = ln(1 / FALSE_ALARM).
pub fn chi_square_limit(dof: usize) -> f64 {
    let (k, x) = (dof as f64, (1.0 / FALSE_ALARM).ln());
    k + 2.0 * (k * x).sqrt() + 2.0 * x
}

/// Two-sided normal quantile for FALSE_ALARM: P(|Z| > Z_LIMIT) < 1e-6 (4.89 exactly).
pub const Z_LIMIT: f64 = 4.9;

/// Chi-square of `counts` against bin probabilities `p` over `n` draws.
pub fn chi_square(counts: &[u64], p: &[f64], n: u64) -> f64 {
    counts
        .iter()
        .zip(p)
        .map(|(&c, &q)| {
            let e = q * n as f64;
            (c as f64 - e).powi(2) / e
        })
        .sum()
}
