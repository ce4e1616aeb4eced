//! `metrics.csv`: one row per snapshot with the ensemble mean and covariance.

use std::fmt::Write;

/// The moments of one snapshot. `cov` is the full dim x dim matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub step: u64,
    pub time: f64,
    pub mean: Vec<f64>,
    pub cov: Vec<f64>,
    /// MMD^2 to a kernel flow's target.
    pub mmd2: Option<f64>,
    /// MALA's fraction of proposals accepted since the previous row (None at the first).
    pub acceptance_rate: Option<f64>,
    /// Energy observables (column name, value; empty where None), after the covariance:
    /// `mean_potential`, `kinetic_temperature`, `configurational_temperature` (src/run).
    /// The first row's names make the header; every row has the same names.
    pub energy: Vec<(&'static str, Option<f64>)>,
}

/// The whole CSV (header and rows, each line ending in `\n`). Only the upper triangle of the
/// covariance is written (`cov_i_j`, i <= j) since the matrix is symmetric. Numbers use Rust's
/// `{}` for f64: the shortest text that parses back to the same value, never in exponent
/// form, so any CSV reader gets the exact number. An entry a row lacks (a vector shorter
/// than `dim` asks for) is left empty, which CSV readers take as missing, instead of panicking.
/// A column `mmd2` appears when any row has it, then `acceptance_rate` when
/// `with_acceptance` (Metropolis-adjusted dynamics: every row but the first has it).
pub fn metrics_csv(dim: usize, rows: &[MetricsRow], with_acceptance: bool) -> String {
    let with_mmd = rows.iter().any(|r| r.mmd2.is_some());
    let mut out = String::from("step,time");
    for i in 0..dim {
        let _ = write!(out, ",mean_{i}");
    }
    for i in 0..dim {
        for j in i..dim {
            let _ = write!(out, ",cov_{i}_{j}");
        }
    }
    for (name, _) in rows.first().map_or(&[][..], |r| &r.energy[..]) {
        let _ = write!(out, ",{name}");
    }
    if with_mmd {
        out.push_str(",mmd2");
    }
    if with_acceptance {
        out.push_str(",acceptance_rate");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "{},{}", row.step, row.time);
        for i in 0..dim {
            out.push(',');
            if let Some(v) = row.mean.get(i) {
                let _ = write!(out, "{v}");
            }
        }
        for i in 0..dim {
            for j in i..dim {
                out.push(',');
                if let Some(v) = row.cov.get(i * dim + j) {
                    let _ = write!(out, "{v}");
                }
            }
        }
        for (_, v) in &row.energy {
            out.push(',');
            if let Some(v) = v {
                let _ = write!(out, "{v}");
            }
        }
        if with_mmd {
            out.push(',');
            if let Some(v) = row.mmd2 {
                let _ = write!(out, "{v}");
            }
        }
        if with_acceptance {
            out.push(',');
            if let Some(v) = row.acceptance_rate {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_rows() {
        let rows = [
            MetricsRow {
                step: 0,
                time: 0.0,
                mean: vec![0.0, 1.5],
                cov: vec![1.0, 0.25, 0.25, 2.0],
                mmd2: None,
                acceptance_rate: None,
                energy: Vec::new(),
            },
            MetricsRow {
                step: 500,
                time: 0.5,
                mean: vec![-0.1, 1e-7],
                cov: vec![0.1, 0.2, 0.2, 1e20],
                mmd2: None,
                acceptance_rate: None,
                energy: Vec::new(),
            },
        ];
        let csv = metrics_csv(2, &rows, false);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "step,time,mean_0,mean_1,cov_0_0,cov_0_1,cov_1_1");
        assert_eq!(lines[1], "0,0,0,1.5,1,0.25,2");
        assert_eq!(
            lines[2],
            "500,0.5,-0.1,0.0000001,0.1,0.2,100000000000000000000"
        );
        assert_eq!(lines.len(), 3);
        assert!(csv.ends_with('\n'));
        // Every field parses back to the value it came from.
        let f: Vec<f64> = lines[2].split(',').map(|s| s.parse().unwrap()).collect();
        assert_eq!(f, vec![500.0, 0.5, -0.1, 1e-7, 0.1, 0.2, 1e20]);
    }

    #[test]
    fn mmd_column_when_a_row_has_it() {
        let row = |step, mmd2| MetricsRow {
            step,
            time: step as f64,
            mean: vec![0.5],
            cov: vec![2.0],
            mmd2,
            acceptance_rate: None,
            energy: Vec::new(),
        };
        let csv = metrics_csv(1, &[row(0, Some(0.25)), row(10, None)], false);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "step,time,mean_0,cov_0_0,mmd2");
        assert_eq!(lines[1], "0,0,0.5,2,0.25");
        assert_eq!(lines[2], "10,10,0.5,2,");
    }

    #[test]
    fn three_dimensions_upper_triangle_and_short_rows() {
        let csv = metrics_csv(
            3,
            &[MetricsRow {
                step: 1,
                time: 0.001,
                mean: vec![1.0],
                cov: vec![],
                mmd2: None,
                acceptance_rate: None,
                energy: Vec::new(),
            }],
            false,
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "step,time,mean_0,mean_1,mean_2,cov_0_0,cov_0_1,cov_0_2,cov_1_1,cov_1_2,cov_2_2"
        );
        assert_eq!(lines[1], "1,0.001,1,,,,,,,,");
        assert_eq!(metrics_csv(1, &[], false), "step,time,mean_0,cov_0_0\n");
    }

    #[test]
    fn acceptance_column_when_asked_empty_at_the_first_row() {
        let row = |step, acceptance_rate| MetricsRow {
            step,
            time: step as f64,
            mean: vec![0.5],
            cov: vec![2.0],
            mmd2: None,
            acceptance_rate,
            energy: vec![
                ("mean_potential", Some(1.5)),
                ("configurational_temperature", None),
            ],
        };
        let csv = metrics_csv(1, &[row(0, None), row(10, Some(0.875))], true);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "step,time,mean_0,cov_0_0,mean_potential,configurational_temperature,acceptance_rate"
        );
        assert_eq!(lines[1], "0,0,0.5,2,1.5,,");
        assert_eq!(lines[2], "10,10,0.5,2,1.5,,0.875");
        // A run whose only snapshot is the first still has the column.
        assert_eq!(
            metrics_csv(1, &[row(0, None)], true),
            "step,time,mean_0,cov_0_0,mean_potential,configurational_temperature,acceptance_rate\n\
             0,0,0.5,2,1.5,,\n"
        );
    }
}
