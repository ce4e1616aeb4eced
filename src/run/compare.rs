//! `fokker compare RUN_A RUN_B`: distances between two runs' density histograms, snapshot by
//! snapshot, printed as a table and written as CSV and a plot.
//!
//! Snapshots are paired by time, not by step, so runs with different dt compare: a snapshot
//! time is `every` rounded to whole steps, so two runs whose dt differ put the same nominal
//! snapshot at slightly different times (0.25 and 0.252). A snapshot of A pairs with the
//! nearest snapshot of B when their times differ by less than half a snapshot interval (the
//! smallest gap from either snapshot to a neighbour in its own run); the offsets are
//! reported, and every snapshot left unpaired is listed with the reason.

use super::manifest::{Manifest, SnapshotRecord};
use super::read_manifest;
use crate::error::{Error, Result};
use crate::observe::distance::{distances, tv_floor};
use crate::output::{self, plot};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One matched pair of snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Run A's snapshot time (the x of the plot).
    pub time: f64,
    /// Run B's snapshot time paired with it.
    pub time_b: f64,
    pub step_a: u64,
    pub step_b: u64,
    pub tv: f64,
    pub hellinger: f64,
    /// Expected tv between two independent histograms of the same law with these particle
    /// numbers: tv_floor of the pooled histogram with N = N_a N_b / (N_a + N_b) (for two
    /// samples, Var(p_a - p_b) = q (1 - q) (1/N_a + 1/N_b)).
    pub tv_floor: f64,
}

impl Row {
    /// t_B - t_A.
    pub fn offset(&self) -> f64 {
        self.time_b - self.time
    }
}

/// A snapshot that is in no row, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmatched {
    /// "A" or "B".
    pub run: &'static str,
    pub step: u64,
    pub time: f64,
    pub reason: String,
}

/// What `compare` wrote.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Snapshots of either run not in `rows`, A's first, each in time order.
    pub unmatched: Vec<Unmatched>,
    /// Snapshots in each run.
    pub snapshots: (usize, usize),
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

/// For each time, the smallest gap to a neighbouring time of the same run (infinite for a
/// run of one snapshot).
fn gaps(times: &[f64]) -> Vec<f64> {
    (0..times.len())
        .map(|i| {
            let before = i.checked_sub(1).map(|j| times[i] - times[j]);
            let after = times.get(i + 1).map(|t| t - times[i]);
            before
                .into_iter()
                .chain(after)
                .map(f64::abs)
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// Pairs snapshot times of two runs: for each of A's, the index of the nearest of B's when
/// they differ by less than half a snapshot interval (the smaller of the two snapshots' gaps
/// to their neighbours), or the same time where neither run has a second snapshot. The
/// pairing is one-to-one: if a_i and a_k both paired with b, |a_i - a_k| < (g_i + g_k) / 2
/// <= max(g_i, g_k), yet both gaps are at most |a_i - a_k|.
/// Also returns, for each of A's, the nearest of B's and the tolerance that applied.
pub fn pair_times(a: &[f64], b: &[f64]) -> Vec<Result<usize, Option<(usize, f64)>>> {
    let (ga, gb) = (gaps(a), gaps(b));
    a.iter()
        .enumerate()
        .map(|(i, &ta)| {
            let nearest =
                (0..b.len()).min_by(|&x, &y| (b[x] - ta).abs().total_cmp(&(b[y] - ta).abs()));
            let Some(j) = nearest else {
                return Err(None);
            };
            let tolerance = ga[i].min(gb[j]) / 2.0;
            if same_time(ta, b[j]) || (tolerance.is_finite() && (b[j] - ta).abs() < tolerance) {
                Ok(j)
            } else {
                Err(Some((j, tolerance)))
            }
        })
        .collect()
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
    let times = |m: &Manifest| -> Vec<f64> { m.snapshots.iter().map(|s| s.time).collect() };
    let pairs = pair_times(&times(&ma), &times(&mb));
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    let mut paired_b = vec![false; mb.snapshots.len()];
    let left_out = |run: &'static str, s: &SnapshotRecord, reason: String| Unmatched {
        run,
        step: s.step,
        time: s.time,
        reason,
    };
    for (sa, pair) in ma.snapshots.iter().zip(pairs) {
        let sb = match pair {
            Ok(j) => {
                paired_b[j] = true;
                &mb.snapshots[j]
            }
            Err(nearest) => {
                let reason = match nearest {
                    None => "run B has no snapshots".to_string(),
                    Some((j, tolerance)) => no_partner("B", tolerance, sa, &mb.snapshots[j]),
                };
                unmatched.push(left_out("A", sa, reason));
                continue;
            }
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
        let why_not = |reason: &str| {
            format!(
                "paired with B's snapshot at t = {} (step {}), but {reason}",
                sb.time, sb.step
            )
        };
        if na == 0 || nb == 0 {
            let empty = if na == 0 { "A" } else { "B" };
            let reason = why_not(&format!("run {empty} has no finite particles there"));
            unmatched.push(left_out("A", sa, reason));
            continue;
        }
        // Run A as the "reference": its probabilities, with its outside share.
        let qa: Vec<f64> = ca.iter().map(|&c| c as f64 / na as f64).collect();
        let Some(d) = distances(&cb, sb.histogram.outside, &qa) else {
            let reason = why_not("no particle of B is inside the histogram range");
            unmatched.push(left_out("A", sa, reason));
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
            time_b: sb.time,
            step_a: sa.step,
            step_b: sb.step,
            tv: d.tv,
            hellinger: d.hellinger,
            tv_floor: tv_floor(n_eff, &pooled),
        });
    }
    let b_times = times(&mb);
    let b_pairs = pair_times(&b_times, &times(&ma));
    for ((sb, _), pair) in mb
        .snapshots
        .iter()
        .zip(paired_b)
        .zip(b_pairs)
        .filter(|((_, p), _)| !p)
    {
        let reason = match pair {
            Err(Some((j, tolerance))) => no_partner("A", tolerance, sb, &ma.snapshots[j]),
            _ => "run A has no snapshots".to_string(),
        };
        unmatched.push(left_out("B", sb, reason));
    }
    if rows.is_empty() {
        let why: Vec<String> = unmatched
            .iter()
            .map(|u| format!("{}'s t = {}: {}", u.run, u.time, u.reason))
            .collect();
        return Err(mismatch(
            a,
            b,
            format!(
                "no snapshot pairs (snapshots are paired by time): {}",
                why.join("; ")
            ),
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
    let mut csv = String::from("time,step_a,step_b,tv,hellinger,tv_floor,time_b,offset\n");
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{}",
            r.time,
            r.step_a,
            r.step_b,
            r.tv,
            r.hellinger,
            r.tv_floor,
            r.time_b,
            r.offset()
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
        unmatched,
        snapshots: (ma.snapshots.len(), mb.snapshots.len()),
        csv: csv_path,
        plot: png_path,
    })
}

/// Why snapshot `s` has no partner in run `other`, whose nearest snapshot is `nearest`.
fn no_partner(other: &str, tolerance: f64, s: &SnapshotRecord, nearest: &SnapshotRecord) -> String {
    let within = if tolerance.is_finite() {
        format!("within half a snapshot interval ({})", short(tolerance))
    } else {
        "at the same time (neither snapshot has a neighbour to set an interval)".into()
    };
    format!(
        "no snapshot of {other} {within}; the nearest is at t = {} (step {}), {} away",
        nearest.time,
        nearest.step,
        short((nearest.time - s.time).abs())
    )
}

/// A time difference as printed: up to 4 significant digits.
fn short(v: f64) -> String {
    format!("{v:.4e}")
        .parse::<f64>()
        .map_or_else(|_| v.to_string(), |r| r.to_string())
}

/// What `fokker compare` prints above the table: how many snapshots paired, how (with the
/// time offsets), and why the others did not.
pub fn summary(c: &Comparison) -> String {
    let mut s = format!(
        "paired {} of A's {} and B's {} snapshots by time (a pair's times differ by less than \
         half a snapshot interval)\n",
        c.rows.len(),
        c.snapshots.0,
        c.snapshots.1
    );
    let offsets: Vec<String> = c.rows.iter().map(|r| short(r.offset())).collect();
    if c.rows.iter().all(|r| r.offset() == 0.0) {
        s.push_str("every pair is at the same time\n");
    } else {
        let _ = writeln!(s, "time offsets t_B - t_A: {}", offsets.join(", "));
    }
    for u in &c.unmatched {
        let _ = writeln!(
            s,
            "not paired: {}'s snapshot at t = {} (step {}): {}",
            u.run, u.time, u.step, u.reason
        );
    }
    s
}

/// The table `fokker compare` prints.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "{:>12} {:>10} {:>10} {:>12} {:>12} {:>12} {:>12}\n",
        "time", "step_a", "step_b", "tv", "hellinger", "tv_floor", "offset"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:>12.6} {:>10} {:>10} {:>12.6} {:>12.6} {:>12.6} {:>12.4e}",
            r.time,
            r.step_a,
            r.step_b,
            r.tv,
            r.hellinger,
            r.tv_floor,
            r.offset()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_rounded_to_other_steps_pair_within_half_an_interval() {
        // every = 0.25 at dt = 0.002 (125 steps) and at dt = 0.004 (62.5 -> 63 steps).
        let a: Vec<f64> = (0..5).map(|k| f64::from(k) * 0.25).collect();
        let b = [0.0, 0.252, 0.504, 0.756, 1.0];
        let pairs = pair_times(&a, &b);
        assert_eq!(pairs, (0..5).map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn a_time_beyond_half_an_interval_is_not_paired_and_says_how_far() {
        // B snapshots twice as often: A's 0.5 pairs with B's 0.5; 0.25 has no partner in A.
        let a = [0.0, 0.5, 1.0];
        let b = [0.0, 0.25, 0.5, 0.75, 1.0];
        assert_eq!(pair_times(&a, &b), vec![Ok(0), Ok(2), Ok(4)]);
        let back = pair_times(&b, &a);
        assert_eq!(back[0], Ok(0));
        // B's 0.25 is 0.25 from A's 0 and 0.5; the tolerance is half the smaller gap, 0.125.
        assert_eq!(back[1], Err(Some((0, 0.125))));
        // Exactly half an interval is not less than half an interval.
        let half = Err(Some((0, 0.5)));
        assert_eq!(pair_times(&[0.0, 1.0], &[0.5]), vec![half, half]);
        assert_eq!(pair_times(&[0.0], &[]), vec![Err(None)]);
        // One snapshot each: only the same time pairs.
        assert_eq!(pair_times(&[1.0], &[1.0]), vec![Ok(0)]);
        assert_eq!(
            pair_times(&[1.0], &[1.1]),
            vec![Err(Some((0, f64::INFINITY)))]
        );
    }
}
