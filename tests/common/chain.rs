//! The Euler–Maruyama chain's own law in one dimension, by its transition operator: for the
//! tests whose dynamics separate into one-dimensional chains x' = x - dt U'(x) +
//! sqrt(2 T dt) xi (the double well's x axis; T constant or a schedule), or
//! x' = x + dt f(x) + sqrt(2 D(x) dt) xi (a one-dimensional sde), so they need no time-step
//! allowance.

/// Law of the chain after each of `checkpoints` steps from the point `x0`, as the mass of
/// every cell of the grid `lo + (j + 1/2) h` (cells [lo + j h, lo + (j + 1) h]).
///
/// Mass is kept at cell centres and moved by the exact Gaussian transition of the chain
/// from each centre, integrated over every cell (normal CDF differences). Keeping the mass
/// at centres adds the in-cell spread back at every step, a variance of h^2 / 12 per step
/// for a smooth density: the transition's variance is reduced by that, so the chain's
/// variance per step stays 2 T dt. The first step goes from x0 itself. The kernel is cut
/// at 8 standard deviations (mass 1e-15) and the grid must hold the law (checked: the mass
/// that leaves it is returned as `lost`).
pub struct ChainLaw {
    pub lo: f64,
    pub h: f64,
    /// Cell masses at each checkpoint.
    pub masses: Vec<Vec<f64>>,
    pub lost: f64,
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

#[allow(clippy::too_many_arguments)]
pub fn chain_law(
    gradient: &dyn Fn(f64) -> f64,
    temperature: f64,
    dt: f64,
    x0: f64,
    lo: f64,
    hi: f64,
    h: f64,
    checkpoints: &[u64],
) -> ChainLaw {
    chain_law_sde(
        &|x| -gradient(x),
        &|_| temperature,
        dt,
        x0,
        lo,
        hi,
        h,
        checkpoints,
    )
}

/// The same for the chain x' = x + dt f(x) + sqrt(2 D(x) dt) xi of a one-dimensional SDE
/// (`kind = "sde"`): the transition from x is N(x + dt f(x), 2 D(x) dt), narrowed by h^2/12
/// as above (2 D(x) dt must exceed h^2 / 12 everywhere on the grid).
#[allow(clippy::too_many_arguments)]
pub fn chain_law_sde(
    drift: &dyn Fn(f64) -> f64,
    diffusion: &dyn Fn(f64) -> f64,
    dt: f64,
    x0: f64,
    lo: f64,
    hi: f64,
    h: f64,
    checkpoints: &[u64],
) -> ChainLaw {
    transition_law(
        drift,
        &|_, x| diffusion(x),
        false,
        dt,
        x0,
        lo,
        hi,
        h,
        checkpoints,
    )
}

/// [`chain_law`] with temperature `temperature(k)` from step k to k + 1 (an annealing
/// schedule T(t) is `|k| T(k dt)`): the transition rows are rebuilt at every step.
#[allow(clippy::too_many_arguments)]
pub fn scheduled_chain_law(
    gradient: &dyn Fn(f64) -> f64,
    temperature: &dyn Fn(u64) -> f64,
    dt: f64,
    x0: f64,
    lo: f64,
    hi: f64,
    h: f64,
    checkpoints: &[u64],
) -> ChainLaw {
    transition_law(
        &|x| -gradient(x),
        &|k, _| temperature(k),
        true,
        dt,
        x0,
        lo,
        hi,
        h,
        checkpoints,
    )
}

/// A transition row: its first cell and the masses it sends to that cell and on.
type Row = (usize, Vec<f64>);

/// The chain x' = x + dt f(x) + sqrt(2 D(k, x) dt) xi at step k; D read at every step
/// (`timed`) or once.
#[allow(clippy::too_many_arguments)]
fn transition_law(
    drift: &dyn Fn(f64) -> f64,
    diffusion: &dyn Fn(u64, f64) -> f64,
    timed: bool,
    dt: f64,
    x0: f64,
    lo: f64,
    hi: f64,
    h: f64,
    checkpoints: &[u64],
) -> ChainLaw {
    let cells = ((hi - lo) / h).round() as usize;
    let centre = |j: usize| lo + (j as f64 + 0.5) * h;
    // Row of the transition from x with kernel sd s, cut `reach` cells from its mean.
    let row = |x: f64, s: f64, reach: usize| -> Row {
        let mu = x + dt * drift(x);
        let c = ((mu - lo) / h).floor() as isize;
        let first = (c - reach as isize).max(0) as usize;
        let last = ((c + reach as isize) as usize).min(cells - 1);
        let w = (first..=last)
            .map(|j| {
                let (a, b) = (lo + j as f64 * h, lo + (j + 1) as f64 * h);
                normal_cdf((b - mu) / s) - normal_cdf((a - mu) / s)
            })
            .collect();
        (first, w)
    };
    // The rows of step k: 8 standard deviations of the widest kernel.
    let rows_at = |k: u64| -> Vec<Row> {
        let d_max = (0..cells)
            .map(|j| diffusion(k, centre(j)))
            .fold(diffusion(k, x0), f64::max);
        let reach = (8.0 * (2.0 * d_max * dt).sqrt() / h).ceil() as usize + 2;
        (0..cells)
            .map(|j| {
                let x = centre(j);
                let variance = 2.0 * diffusion(k, x) * dt - h * h / 12.0;
                assert!(variance > 0.0, "the chain's cells are too wide at x = {x}");
                row(x, variance.sqrt(), reach)
            })
            .collect()
    };
    let mut mass = vec![0.0; cells];
    let d0 = diffusion(0, x0);
    let reach0 = (8.0 * (2.0 * d0 * dt).sqrt() / h).ceil() as usize + 2;
    let (first, w) = row(x0, (2.0 * d0 * dt).sqrt(), reach0);
    for (k, v) in w.iter().enumerate() {
        mass[first + k] = *v;
    }
    let mut rows: Option<Vec<Row>> = None;
    let mut out = Vec::new();
    let mut step = 1u64;
    for &c in checkpoints {
        assert!(c >= step, "checkpoints ascend from 1");
        while step < c {
            if timed || rows.is_none() {
                rows = Some(rows_at(step));
            }
            let rows = rows.as_ref().expect("built above");
            let mut next = vec![0.0; cells];
            for (j, &m) in mass.iter().enumerate() {
                if m != 0.0 {
                    let (first, w) = &rows[j];
                    for (k, v) in w.iter().enumerate() {
                        next[first + k] += m * v;
                    }
                }
            }
            mass = next;
            step += 1;
        }
        out.push(mass.clone());
    }
    let lost = 1.0 - mass.iter().sum::<f64>();
    ChainLaw {
        lo,
        h,
        masses: out,
        lost,
    }
}

impl ChainLaw {
    /// Masses of `bins` equal bins of [a, b] at checkpoint `k`: the bin edges must fall on
    /// cell edges.
    pub fn bins(&self, k: usize, bins: usize, a: f64, b: f64) -> Vec<f64> {
        let per = (b - a) / bins as f64 / self.h;
        let start = (a - self.lo) / self.h;
        assert!(
            (per - per.round()).abs() < 1e-9 && (start - start.round()).abs() < 1e-9,
            "bin edges on cell edges"
        );
        let (per, start) = (per.round() as usize, start.round() as usize);
        (0..bins)
            .map(|i| {
                self.masses[k][start + i * per..start + (i + 1) * per]
                    .iter()
                    .sum()
            })
            .collect()
    }

    /// Mean and variance at checkpoint `k`.
    pub fn moments(&self, k: usize) -> (f64, f64) {
        let x = |j: usize| self.lo + (j as f64 + 0.5) * self.h;
        let m: f64 = self.masses[k]
            .iter()
            .enumerate()
            .map(|(j, p)| p * x(j))
            .sum();
        let v: f64 = self.masses[k]
            .iter()
            .enumerate()
            .map(|(j, p)| p * (x(j) - m).powi(2))
            .sum();
        // Every step's transition was narrowed by h^2 / 12, which snapping to centres adds
        // back: the centred masses carry the chain's variance.
        (m, v)
    }
}
