//! What a run with walls or first-passage targets writes (README, "Boundaries and first
//! passage"): the `survival_<name>` and `absorbed_fraction` columns of metrics.csv, and at
//! the end `first_passage/<name>.npy` (u32 first-passage steps, 4294967295 = never),
//! `first_passage/<name>.exit_times.npy` (histogram rows: left, right edge in steps, count)
//! and its picture `.exit_times.png`,
//! `winding.npy` (i32 windings of the periodic axes), `survival.png` and the manifest's
//! `first_passage` record (mean first-passage time with its confidence interval).

use super::manifest::SnapshotRecord;
use crate::error::Result;
use crate::observe::first_passage::{self, PassageSummary, TransitionCounts, TransitionRate};
use crate::output::plot::{Series, line_chart};
use crate::output::{self, png_bytes, write_atomic};
use crate::scenario::Plan;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The manifest's record of a run with targets or periodic axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstPassageRecord {
    /// One per target, in the plan's order.
    pub targets: Vec<PassageSummary>,
    /// Relative paths: per target `first_passage/<name>.npy`, the exit-time histogram
    /// `.exit_times.npy` and its picture `.exit_times.png`.
    pub files: Vec<String>,
    /// `winding.npy` when an axis is periodic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winding: Option<String>,
    /// `survival.png` when there are targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survival_plot: Option<String>,
    /// With periodic axes: the unwrapped coordinates x + (high - low) w at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwrapped: Option<Unwrapped>,
    /// With `[[observe.basins]]`: the counts and the rates between them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basins: Option<BasinRecord>,
    /// With absorbing targets and `reference = "fokker_planck"`: the grid's exact escape
    /// rate into them (the lowest eigenvalue of the discretised generator, the targets'
    /// cells sinks), against which S(t) ~ c e^{-k t} and the particles' rate are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escape_rate_reference: Option<f64>,
}

/// Mean and variance of the unwrapped coordinate of each periodic axis over all particles at
/// the end of the run (with their f64 sums, which merged shards add): the mean displacement
/// over the run time is the drift velocity, the variance over 2 t the effective diffusion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unwrapped {
    pub axes: Vec<usize>,
    pub count: u64,
    pub sum: Vec<f64>,
    pub sum_squares: Vec<f64>,
    pub mean: Vec<f64>,
    pub variance: Vec<f64>,
}

impl Unwrapped {
    /// From the final positions (row-major) and the windings of the periodic axes.
    pub fn of(plan: &Plan, positions: &[f32], windings: &[i32]) -> Unwrapped {
        let axes = plan.boundary.periodic_axes();
        let (d, p) = (plan.particles.dim as usize, axes.len());
        let mut sum = vec![0.0; p];
        let mut sum_squares = vec![0.0; p];
        for (x, w) in positions.chunks_exact(d).zip(windings.chunks_exact(p)) {
            for (j, &k) in axes.iter().enumerate() {
                let (low, high) = plan.boundary.wall(k).interval().unwrap_or((0.0, 0.0));
                let u = f64::from(x[k]) + (high - low) * f64::from(w[j]);
                sum[j] += u;
                sum_squares[j] += u * u;
            }
        }
        Self::from_sums(axes, (positions.len() / d.max(1)) as u64, sum, sum_squares)
    }

    fn from_sums(axes: Vec<usize>, count: u64, sum: Vec<f64>, sum_squares: Vec<f64>) -> Self {
        let n = count.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let variance = sum_squares
            .iter()
            .zip(&mean)
            .map(|(q, m)| (q / n - m * m).max(0.0))
            .collect();
        Unwrapped {
            axes,
            count,
            sum,
            sum_squares,
            mean,
            variance,
        }
    }

    /// The shards' sums together.
    pub fn pool(parts: &[Unwrapped]) -> Option<Unwrapped> {
        let first = parts.first()?;
        let mut sum = vec![0.0; first.sum.len()];
        let mut sum_squares = sum.clone();
        let mut count = 0;
        for p in parts {
            count += p.count;
            for j in 0..sum.len() {
                sum[j] += p.sum[j];
                sum_squares[j] += p.sum_squares[j];
            }
        }
        Some(Self::from_sums(first.axes.clone(), count, sum, sum_squares))
    }
}

/// Transitions between basins: the integer counts (pooled exactly over shards) and the
/// rates k_ab = transitions a -> b / time with a as the last basin visited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasinRecord {
    pub names: Vec<String>,
    pub counts: TransitionCounts,
    pub rates: Vec<TransitionRate>,
}

/// metrics.csv with `survival_<name>` per target and, when a target absorbs,
/// `absorbed_fraction`, appended to every row (empty where a snapshot has no counts).
pub fn extend_metrics(csv: String, plan: &Plan, snapshots: &[SnapshotRecord]) -> String {
    let targets = &plan.boundary.first_passage;
    if targets.is_empty() {
        return csv;
    }
    let absorbs = plan.boundary.absorbs();
    let grid = grid_survival(plan);
    let mut out = String::with_capacity(csv.len() * 2);
    let mut lines = csv.lines();
    if let Some(header) = lines.next() {
        out.push_str(header);
        for t in targets {
            out.push_str(&format!(",survival_{}", t.name));
        }
        if absorbs {
            out.push_str(",absorbed_fraction");
        }
        if grid {
            out.push_str(",survival_reference");
        }
        out.push('\n');
    }
    for (line, s) in lines.zip(snapshots) {
        out.push_str(line);
        let p = s.passage.as_ref();
        for j in 0..targets.len() {
            out.push(',');
            if let Some(p) = p {
                out.push_str(&p.survival(j).to_string());
            }
        }
        if absorbs {
            out.push(',');
            if let Some(p) = p {
                out.push_str(&p.absorbed_fraction().to_string());
            }
        }
        if grid {
            out.push(',');
            if let Some(v) = s.reference.as_ref().and_then(|r| r.survival_reference) {
                out.push_str(&v.to_string());
            }
        }
        out.push('\n');
    }
    out
}

/// Whether the run has the grid's survival: an absorbing target and the grid reference
/// (metrics.csv's `survival_reference`, beside `absorbed_fraction`).
fn grid_survival(plan: &Plan) -> bool {
    plan.boundary.absorbs()
        && plan.output.reference == Some(crate::scenario::ReferenceKind::FokkerPlanck)
}

/// What the end-of-run files are made of, for `count` particles: per target its
/// first-passage steps, the windings of the periodic axes (count x periodic axes; None
/// without), their unwrapped moments, and the basin counts.
#[derive(Debug, Clone, Default)]
pub struct FinalArrays {
    pub count: usize,
    pub passages: Vec<Vec<u32>>,
    pub windings: Option<Vec<i32>>,
    pub unwrapped: Option<Unwrapped>,
    pub transitions: Option<TransitionCounts>,
}

/// The per-target first-passage steps and the windings of this run's particles from the
/// final tags (row-major).
pub fn from_tags(plan: &Plan, tags: &[u32]) -> (Vec<Vec<u32>>, Option<Vec<i32>>) {
    let b = &plan.boundary;
    let (dim, n) = (plan.particles.dim, b.first_passage.len());
    let stride = first_passage::tag_stride(b, dim);
    let passages = (0..n)
        .map(|j| first_passage::passage_steps(tags, stride, dim, j))
        .collect();
    let periodic = b.periodic_axes();
    let windings = (!periodic.is_empty()).then(|| first_passage::windings(tags, stride, &periodic));
    (passages, windings)
}

/// The end-of-run arrays of a shard, read back from its files (for `fokker merge`).
pub fn read_arrays(dir: &Path, plan: &Plan) -> Result<FinalArrays> {
    let passages = plan
        .boundary
        .first_passage
        .iter()
        .map(|t| Ok(output::read_npy_u32(&dir.join(format!("first_passage/{}.npy", t.name)))?.1))
        .collect::<Result<Vec<_>>>()?;
    let windings = if plan.boundary.periodic_axes().is_empty() {
        None
    } else {
        Some(output::read_npy_i32(&dir.join("winding.npy"))?.1)
    };
    Ok(FinalArrays {
        passages,
        windings,
        ..FinalArrays::default()
    })
}

/// Writes the end-of-run files of `count` particles — per target its first-passage steps
/// (`passages[j]`), the periodic axes' `windings` — and returns the manifest record; None
/// for a run without targets or periodic axes.
pub fn write_final(
    out: &Path,
    plan: &Plan,
    arrays: FinalArrays,
    snapshots: &[SnapshotRecord],
) -> Result<Option<FirstPassageRecord>> {
    let FinalArrays {
        count,
        passages,
        windings,
        unwrapped,
        transitions,
    } = arrays;
    let b = &plan.boundary;
    let periodic = b.periodic_axes();
    if b.first_passage.is_empty() && periodic.is_empty() && b.basins.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = b.basins.iter().map(|x| x.name.clone()).collect();
    let mut record = FirstPassageRecord {
        targets: Vec::new(),
        files: Vec::new(),
        winding: None,
        survival_plot: None,
        unwrapped,
        basins: transitions.map(|counts| BasinRecord {
            rates: counts.rates(&names, plan.dynamics.time_per_step()),
            names,
            counts,
        }),
        escape_rate_reference: None,
    };
    let steps = plan.dynamics.steps();
    for (t, passages) in b.first_passage.iter().zip(&passages) {
        let rel = format!("first_passage/{}.npy", t.name);
        write_atomic(&out.join(&rel), &output::npy_u32(&[count], passages)?)?;
        record.files.push(rel);
        let hist = first_passage::exit_histogram(passages, steps);
        let flat: Vec<f64> = hist.iter().flatten().copied().collect();
        let rel = format!("first_passage/{}.exit_times.npy", t.name);
        write_atomic(&out.join(&rel), &output::npy_f64(&[hist.len(), 3], &flat)?)?;
        record.files.push(rel);
        // Its picture: counts per bin against the time at the bin's centre.
        let points = hist
            .iter()
            .map(|[a, b, c]| (plan.dynamics.time_at((0.5 * (a + b)) as u64), *c))
            .collect();
        let png = line_chart(
            &format!("first-passage times into {}", t.name),
            "t",
            "particles per bin",
            &[Series {
                name: t.name.clone(),
                points,
                dashed: false,
            }],
            false,
        )?;
        let rel = format!("first_passage/{}.exit_times.png", t.name);
        write_atomic(&out.join(&rel), &png_bytes(&png)?)?;
        record.files.push(rel);
        record.targets.push(first_passage::summarize(
            &t.name,
            t.absorb,
            passages,
            &|k| plan.dynamics.time_at(k),
        ));
    }
    if let Some(w) = windings {
        write_atomic(
            &out.join("winding.npy"),
            &output::npy_i32(&[count, periodic.len()], &w)?,
        )?;
        record.winding = Some("winding.npy".into());
    }
    record.survival_plot = write_survival_plot(out, plan, snapshots)?;
    Ok(Some(record))
}

/// `survival.png`: every target's survival probability against time, log scale.
pub fn write_survival_plot(
    out: &Path,
    plan: &Plan,
    snapshots: &[SnapshotRecord],
) -> Result<Option<String>> {
    let targets = &plan.boundary.first_passage;
    if targets.is_empty() {
        return Ok(None);
    }
    let series: Vec<Series> = targets
        .iter()
        .enumerate()
        .map(|(j, t)| Series {
            name: t.name.clone(),
            points: snapshots
                .iter()
                .filter_map(|s| s.passage.as_ref().map(|p| (s.time, p.survival(j))))
                .collect(),
            dashed: false,
        })
        .collect();
    let mut series = series;
    if grid_survival(plan) {
        series.push(Series {
            name: "fokker_planck (no absorbing target reached)".into(),
            points: snapshots
                .iter()
                .filter_map(|s| Some((s.time, s.reference.as_ref()?.survival_reference?)))
                .collect(),
            dashed: true,
        });
    }
    let png = line_chart(
        "survival S(t) = P(target not reached by t)",
        "t",
        "S(t) (log scale)",
        &series,
        true,
    )?;
    write_atomic(&out.join("survival.png"), &png_bytes(&png)?)?;
    Ok(Some("survival.png".into()))
}
