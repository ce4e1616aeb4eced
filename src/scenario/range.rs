//! The default histogram range, used when `[output] histogram.range` is not given.

use super::data::SampleTable;
use super::plan::{DynamicsPlan, Init};
use crate::model::{Mixture, Potential};

/// Half-width, in standard deviations, of the box that stands for a Gaussian: 4 sigma holds
/// all but 6e-5 of the mass per axis, so under/overflow counts stay negligible.
pub(crate) const SIGMAS: f64 = 4.0;

/// The default histogram range for `axes`: per axis, the smallest interval holding both
///
/// - a box around the **initial distribution**: point: `at ± 0.5`; gaussian: `mean ± 4 std`;
///   uniform: `[low, high]`; mixture: the union of `mean_k ± 4 std_k`; samples: the data's
///   `[min, max]` widened by 5% of its width on each side (`± 0.5` when all values are equal);
/// - the region the **equilibrium** exp(-U/T) of the potential occupies: double_well:
///   `[-2.5, 2.5]` on axis 0 and `± 4 sqrt(T)` on the others (U = x²/2 there); quadratic:
///   `center ± 4 sqrt(T (A⁻¹)_ii)` when A is positive definite (otherwise there is no
///   equilibrium and only the initial box counts); mueller_brown: `[-1.5, 1.2] x [-0.5, 2.0]`
///   (its three minima and the paths between them) and `± 4 sqrt(T)` beyond axis 1; mixture:
///   the union of `mean_k ± 4 std_k max(1, sqrt(T))` (p^(1/T) widens each component by about
///   sqrt(T) when T > 1).
///
/// A velocity axis (dim .. 2 dim - 1, `kind = "underdamped"`) takes the kind's own
/// [`Dynamics::velocity_box`](crate::dynamics::Dynamics::velocity_box): Maxwell–Boltzmann's
/// `± 4 sqrt(T / m)` joined with any given initial velocity `± 0.5`.
///
/// Both, because the density starts in the first and relaxes towards the second, and one
/// fixed grid must hold every snapshot of the way. `None` if a bound is not finite (values
/// near f64::MAX), in which case the user has to give the range.
pub fn default_range(
    axes: &[u32],
    init: &Init,
    samples: Option<&SampleTable>,
    dynamics: &DynamicsPlan,
    data: Option<&SampleTable>,
) -> Option<Vec<[f64; 2]>> {
    let bounds = samples.and_then(SampleTable::column_bounds);
    axes.iter()
        .map(|&a| {
            let a = a as usize;
            // A velocity axis (phase space): the kind knows both its initial and final box.
            if let Some(v) = dynamics.velocity_box(a) {
                return (v[0].is_finite() && v[1].is_finite() && v[0] < v[1]).then_some(v);
            }
            let start = initial_box(init, bounds.as_deref(), a)?;
            let r = match dynamics.final_box(data, a) {
                Some(eq) => [start[0].min(eq[0]), start[1].max(eq[1])],
                None => start,
            };
            (r[0].is_finite() && r[1].is_finite() && r[0] < r[1]).then_some(r)
        })
        .collect()
}

fn initial_box(init: &Init, bounds: Option<&[(f32, f32)]>, a: usize) -> Option<[f64; 2]> {
    match init {
        Init::Point { at } => at.get(a).map(|&x| [x - 0.5, x + 0.5]),
        Init::Gaussian { mean, std } => {
            let (m, s) = (mean.get(a)?, std.get(a)?);
            Some([m - SIGMAS * s, m + SIGMAS * s])
        }
        Init::Uniform { low, high } => Some([*low.get(a)?, *high.get(a)?]),
        Init::Mixture(m) => mixture_box(m, a, 1.0),
        Init::Samples { .. } => samples_box(bounds?.get(a)?),
    }
}

/// The box the equilibrium exp(-U/T) of `potential` occupies on axis `a` (see
/// [`default_range`]).
pub(crate) fn equilibrium_box(potential: &Potential, t: f64, a: usize) -> Option<[f64; 2]> {
    let harmonic = [-SIGMAS * t.sqrt(), SIGMAS * t.sqrt()];
    match potential {
        Potential::DoubleWell => Some(if a == 0 { [-2.5, 2.5] } else { harmonic }),
        Potential::MuellerBrown { .. } => Some(match a {
            0 => [-1.5, 1.2],
            1 => [-0.5, 2.0],
            _ => harmonic,
        }),
        Potential::Quadratic { matrix, center } => {
            let var = t * inverse_diagonal(matrix)?.get(a)?;
            let c = center.get(a)?;
            Some([c - SIGMAS * var.sqrt(), c + SIGMAS * var.sqrt()])
        }
        Potential::Mixture(m) => mixture_box(m, a, t.sqrt().max(1.0)),
        // No closed form: the range comes from the initial law (or is given).
        Potential::Expr(_) | Potential::Wgsl(_) => None,
    }
}

/// A data column's [min, max] widened by 5% of its width on each side (± 0.5 if flat).
pub(crate) fn samples_box(&(lo, hi): &(f32, f32)) -> Option<[f64; 2]> {
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    Some([lo - pad, hi + pad])
}

/// Union over components of mean ± 4 std * widen on axis `a`.
pub(crate) fn mixture_box(m: &Mixture, a: usize, widen: f64) -> Option<[f64; 2]> {
    m.means
        .iter()
        .zip(&m.stds)
        .map(|(mean, std)| {
            let (mu, s) = (mean.get(a)?, std.get(a)?);
            Some([mu - SIGMAS * s * widen, mu + SIGMAS * s * widen])
        })
        .try_fold(None, |acc: Option<[f64; 2]>, b| {
            let b = b?;
            Some(Some(match acc {
                None => b,
                Some(r) => [r[0].min(b[0]), r[1].max(b[1])],
            }))
        })?
}

/// The diagonal of A⁻¹ for a symmetric positive-definite A (Cholesky A = L Lᵀ, so
/// (A⁻¹)_ii = |L⁻¹ e_i|²); `None` when A is not positive definite.
pub(crate) fn inverse_diagonal(a: &[Vec<f64>]) -> Option<Vec<f64>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s = a.get(i)?.get(j)? - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !s.is_finite() || s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let diag = (0..n)
        .map(|i| {
            // Forward substitution L y = e_i; y_k = 0 for k < i.
            let mut y = vec![0.0; n];
            for k in i..n {
                let rhs = if k == i { 1.0 } else { 0.0 };
                y[k] = (rhs - (i..k).map(|m| l[k][m] * y[m]).sum::<f64>()) / l[k][k];
            }
            y.iter().map(|v| v * v).sum()
        })
        .collect::<Vec<f64>>();
    diag.iter().all(|v| v.is_finite()).then_some(diag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_diagonal_of_spd() {
        // A = [[2, 1], [1, 2]], A^-1 = [[2, -1], [-1, 2]] / 3.
        let d = inverse_diagonal(&[vec![2.0, 1.0], vec![1.0, 2.0]]).expect("spd");
        assert!((d[0] - 2.0 / 3.0).abs() < 1e-15 && (d[1] - 2.0 / 3.0).abs() < 1e-15);
        // 3x3 with known inverse diagonal.
        let a = vec![
            vec![4.0, 2.0, 0.0],
            vec![2.0, 5.0, 1.0],
            vec![0.0, 1.0, 3.0],
        ];
        let d = inverse_diagonal(&a).expect("spd");
        // det = 4(15-1) - 2(6-0) = 44; cofactors: (15-1)=14, (12-0)=12, (20-4)=16.
        for (got, want) in d.iter().zip([14.0 / 44.0, 12.0 / 44.0, 16.0 / 44.0]) {
            assert!((got - want).abs() < 1e-14, "{got} vs {want}");
        }
        assert!(inverse_diagonal(&[vec![1.0, 0.0], vec![0.0, -1.0]]).is_none());
        assert!(inverse_diagonal(&[vec![0.0]]).is_none());
    }

    fn langevin(potential: Potential, temperature: f64) -> DynamicsPlan {
        DynamicsPlan::Langevin(crate::dynamics::langevin::LangevinPlan {
            potential,
            temperature: crate::model::Temperature::Constant(temperature),
            dt: 0.01.into(),
            steps: 1,
            t_end: 0.01,
            mala: false,
        })
    }

    #[test]
    fn union_of_initial_and_equilibrium_boxes() {
        let init = Init::Point { at: vec![3.0, 0.0] };
        let r = default_range(
            &[0, 1],
            &init,
            None,
            &langevin(Potential::DoubleWell, 1.0),
            None,
        )
        .expect("range");
        assert_eq!(r, vec![[-2.5, 3.5], [-4.0, 4.0]]);
        let q = Potential::Quadratic {
            matrix: vec![vec![4.0]],
            center: vec![1.0],
        };
        let r = default_range(
            &[0],
            &Init::Point { at: vec![1.0] },
            None,
            &langevin(q, 1.0),
            None,
        )
        .expect("range");
        assert_eq!(r, vec![[-1.0, 3.0]]);
        // Indefinite A: only the initial box.
        let q = Potential::Quadratic {
            matrix: vec![vec![-1.0]],
            center: vec![0.0],
        };
        let r = default_range(
            &[0],
            &Init::Point { at: vec![0.0] },
            None,
            &langevin(q, 1.0),
            None,
        )
        .expect("range");
        assert_eq!(r, vec![[-0.5, 0.5]]);
        let table = SampleTable {
            rows: 2,
            dim: 1,
            values: vec![0.0, 10.0],
        };
        let init = Init::Samples {
            path: "x.csv".into(),
            rows: 2,
            sha256: String::new(),
        };
        let r = default_range(
            &[0],
            &init,
            Some(&table),
            &langevin(Potential::DoubleWell, 0.0),
            None,
        )
        .expect("range");
        assert_eq!(r, vec![[-2.5, 10.5]]);
        let big = Init::Gaussian {
            mean: vec![0.0],
            std: vec![1e308],
        };
        assert!(
            default_range(
                &[0],
                &big,
                None,
                &langevin(Potential::DoubleWell, 1.0),
                None
            )
            .is_none()
        );
    }
}
