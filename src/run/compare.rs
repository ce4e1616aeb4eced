//! `fokker compare RUN_A RUN_B`: distances between two runs' density histograms, snapshot by
//! snapshot (snapshots matched by time, so runs with different dt compare), printed as a
//! table and written as CSV and a plot.

use super::manifest::Manifest;
use super::read_manifest;
use crate::error::{Error, Result};
use crate::observe::distance::{distances, tv_floor};
use crate::output::{self, plot};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One matched pair of snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub time: f64,
    pub step_a: u64,
    pub step_b: u64,
    pub tv: f64,
    pub hellinger: f64,
    /// Expected tv between two independent histograms of the same law with these particle
    /// numbers: tv_floor of the pooled histogram with N = N_a N_b / (N_a + N_b) (for two
    /// samples, Var(p_a - p_b) = q (1 - q) (1/N_a + 1/N_b)).
    pub tv_floor: f64,
}

/// What `compare` wrote.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub csv: PathBuf,
    pub plot: PathBuf,
}

fn mismatch(a: &Path, b: &Path, what: String) -> Error {
    Error::Data {
        path: b.to_path_buf(),
        reason: format!(
            "cannot compare with {}: {what}; compare needs runs with the same histogram axes, bins and range",
            a.display()
        ),
    }
}

fn same_time(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Compares the main histograms of the runs in `a` and `b`; writes
/// `<out>/vs_<name of a>.csv` and `.png` (out defaults to `b/compare`).
pub fn compare(a: &Path, b: &Path, out: Option<&Path>) -> Result<Comparison> {
    let ma: Manifest = read_manifest(a)?;
    let mb: Manifest = read_manifest(b)?;
    let (ha, hb) = (&ma.plan.output.histogram, &mb.plan.output.histogram);
    if ha.axes != hb.axes {
        return Err(mismatch(
            a,
            b,
            format!("histogram axes {:?} vs {:?}", ha.axes, hb.axes),
        ));
    }
    if ha.bins != hb.bins {
        return Err(mismatch(
            a,
            b,
            format!("histogram bins {:?} vs {:?}", ha.bins, hb.bins),
        ));
    }
    if ha.range != hb.range {
        return Err(mismatch(
            a,
            b,
            format!("histogram range {:?} vs {:?}", ha.range, hb.range),
        ));
    }
    let mut rows = Vec::new();
    for sa in &ma.snapshots {
        let Some(sb) = mb.snapshots.iter().find(|s| same_time(s.time, sa.time)) else {
            continue;
        };
        let (_, ca) = output::read_npy_u64(&a.join(&sa.density))?;
        let (_, cb) = output::read_npy_u64(&b.join(&sb.density))?;
        if ca.len() != ha.total_bins() || cb.len() != ha.total_bins() {
            return Err(mismatch(
                a,
                b,
                format!("snapshot at t = {} has the wrong number of bins", sa.time),
            ));
        }
        let na = ca.iter().sum::<u64>() + sa.histogram.outside;
        let nb = cb.iter().sum::<u64>() + sb.histogram.outside;
        if na == 0 || nb == 0 {
            continue;
        }
        // Run A as the "reference": its probabilities, with its outside share.
        let qa: Vec<f64> = ca.iter().map(|&c| c as f64 / na as f64).collect();
        let Some(d) = distances(&cb, sb.histogram.outside, &qa) else {
            continue;
        };
        let pooled: Vec<f64> = ca
            .iter()
            .zip(&cb)
            .map(|(&x, &y)| (x + y) as f64 / (na + nb) as f64)
            .collect();
        let n_eff = (na as f64 * nb as f64 / (na + nb) as f64).round().max(1.0) as u64;
        rows.push(Row {
            time: sa.time,
            step_a: sa.step,
            step_b: sb.step,
            tv: d.tv,
            hellinger: d.hellinger,
            tv_floor: tv_floor(n_eff, &pooled),
        });
    }
    if rows.is_empty() {
        return Err(mismatch(
            a,
            b,
            "no snapshot times in common (snapshots are matched by time)".into(),
        ));
    }
    let out = out.map_or_else(|| b.join("compare"), Path::to_path_buf);
    let stem = format!(
        "vs_{}",
        a.file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
    );
    let csv_path = out.join(format!("{stem}.csv"));
    let png_path = out.join(format!("{stem}.png"));
    let mut csv = String::from("time,step_a,step_b,tv,hellinger,tv_floor\n");
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{}",
            r.time, r.step_a, r.step_b, r.tv, r.hellinger, r.tv_floor
        );
    }
    output::write_atomic(&csv_path, csv.as_bytes())?;
    let series = |name: &str, f: fn(&Row) -> f64, dashed: bool| plot::Series {
        name: name.into(),
        points: rows.iter().map(|r| (r.time, f(r))).collect(),
        dashed,
    };
    let image = plot::line_chart(
        &format!("{} vs {}", b.display(), a.display()),
        "t",
        "distance",
        &[
            series("total variation", |r| r.tv, false),
            series("Hellinger", |r| r.hellinger, false),
            series("TV noise floor (two samples)", |r| r.tv_floor, true),
        ],
        true,
    )?;
    output::write_atomic(&png_path, &output::png_bytes(&image)?)?;
    Ok(Comparison {
        rows,
        csv: csv_path,
        plot: png_path,
    })
}

/// The table `fokker compare` prints.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:>12} {:>10} {:>10} {:>12} {:>12} {:>12}\n",
        "time", "step_a", "step_b", "tv", "hellinger", "tv_floor"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:>12.6} {:>10} {:>10} {:>12.6} {:>12.6} {:>12.6}",
            r.time, r.step_a, r.step_b, r.tv, r.hellinger, r.tv_floor
        );
    }
    s
}
