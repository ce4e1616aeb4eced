//! `fokker merge OUT SHARD_DIR...`: sums the u64 histograms of a job array's shards into one
//! run directory. Noise is keyed by the global particle index, so the merged densities and
//! particles equal those of the unsharded run byte for byte.

use super::manifest::{HistogramRecord, Manifest, MomentsRecord, SnapshotRecord, Status, Timings};
use super::{
    read_manifest, write_density, write_gif, write_manifest, write_metrics, write_rows,
    write_trajectories,
};
use crate::error::{Error, Result};
use crate::observe::first_passage::{PassageCounts, TransitionCounts};
use crate::output;
use std::path::{Path, PathBuf};

fn refuse(path: &Path, reason: String) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        reason,
    }
}

/// Checks that `shards` are the complete shards of one plan, each exactly once, and returns
/// their manifests in shard order.
fn check(shards: &[PathBuf]) -> Result<Vec<(PathBuf, Manifest)>> {
    let Some(first_dir) = shards.first() else {
        return Err(Error::Usage(
            "merge needs at least one shard directory".into(),
        ));
    };
    let mut all = Vec::new();
    for dir in shards {
        let m = read_manifest(dir)?;
        if m.status != Status::Complete {
            return Err(refuse(
                dir,
                format!(
                    "this shard is not complete (status {:?}); finish or resume it first",
                    m.status
                ),
            ));
        }
        if m.shard.is_none() {
            return Err(refuse(
                dir,
                "not a shard: it was run without --shard-count".into(),
            ));
        }
        all.push((dir.clone(), m));
    }
    let (hash, count) = (
        all[0].1.plan_hash.clone(),
        all[0].1.shard.map_or(1, |s| s.count),
    );
    for (dir, m) in &all {
        if m.plan_hash != hash {
            return Err(refuse(
                dir,
                format!(
                    "its plan hash {} differs from {}'s {hash}: shards of different plans",
                    m.plan_hash,
                    first_dir.display()
                ),
            ));
        }
        if m.shard.map(|s| s.count) != Some(count) {
            return Err(refuse(
                dir,
                format!(
                    "its shard count differs from {}'s {count}",
                    first_dir.display()
                ),
            ));
        }
    }
    let mut seen = vec![None::<&PathBuf>; count as usize];
    for (dir, m) in &all {
        let index = m.shard.map_or(0, |s| s.index) as usize;
        if let Some(other) = seen[index] {
            return Err(refuse(
                dir,
                format!("shard {index} is given twice (also {})", other.display()),
            ));
        }
        seen[index] = Some(dir);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_none())
        .map(|(i, _)| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "shards {} of {count} are missing; merge needs every shard once",
            missing.join(", ")
        )));
    }
    all.sort_by_key(|(_, m)| m.shard.map_or(0, |s| s.index));
    let steps: Vec<u64> = all[0].1.snapshots.iter().map(|s| s.step).collect();
    for (dir, m) in &all {
        if m.snapshots.iter().map(|s| s.step).ne(steps.iter().copied()) {
            return Err(refuse(
                dir,
                "its snapshots differ from the other shards'".into(),
            ));
        }
    }
    Ok(all)
}

/// Pools per-shard moments ([`crate::observe::Moments::pool`]).
fn pool_moments(parts: &[&MomentsRecord]) -> MomentsRecord {
    let parts: Vec<crate::observe::Moments> = parts
        .iter()
        .map(|p| crate::observe::Moments {
            count: p.count,
            nonfinite: 0,
            mean: p.mean.clone(),
            cov: p.cov.clone(),
        })
        .collect();
    let pooled = crate::observe::Moments::pool(&parts.iter().collect::<Vec<_>>());
    MomentsRecord {
        count: pooled.count,
        mean: pooled.mean,
        cov: pooled.cov,
    }
}

/// Merges `shards` into `out`; returns the number of snapshots written.
pub fn merge(out: &Path, shards: &[PathBuf], force: bool) -> Result<usize> {
    let all = check(shards)?;
    let base = &all[0].1;
    let plan = base.plan.clone();
    output::prepare_run_dir(out, force)?;
    let mut snapshots = Vec::new();
    for (j, first) in base.snapshots.iter().enumerate() {
        let mut counts: Vec<u64> = Vec::new();
        let mut hist = HistogramRecord {
            in_range: 0,
            outside: 0,
            nonfinite: 0,
            below: vec![0; first.histogram.axes.len()],
            above: vec![0; first.histogram.axes.len()],
            ..first.histogram.clone()
        };
        let mut positions: Vec<f32> = Vec::new();
        let mut velocities: Vec<f32> = Vec::new();
        for (dir, m) in &all {
            let s = &m.snapshots[j];
            let (_, c) = output::read_npy_u64(&dir.join(&s.density))?;
            if counts.is_empty() {
                counts = vec![0; c.len()];
            }
            if c.len() != counts.len() {
                return Err(refuse(
                    dir,
                    format!(
                        "{} has {} bins, expected {}",
                        s.density,
                        c.len(),
                        counts.len()
                    ),
                ));
            }
            for (t, v) in counts.iter_mut().zip(&c) {
                *t += v;
            }
            hist.in_range += s.histogram.in_range;
            hist.outside += s.histogram.outside;
            hist.nonfinite += s.histogram.nonfinite;
            for a in 0..hist.below.len() {
                hist.below[a] += s.histogram.below[a];
                hist.above[a] += s.histogram.above[a];
            }
            if let (Some(rel), true) = (&s.particles, first.particles.is_some()) {
                positions.extend(output::read_npy_f32(&dir.join(rel))?.1);
            }
            if let (Some(rel), true) = (&s.velocities, first.velocities.is_some()) {
                velocities.extend(output::read_npy_f32(&dir.join(rel))?.1);
            }
        }
        let (density, heatmap) = write_density(out, &plan, first.step, first.time, &counts)?;
        let particles = match first.particles {
            Some(_) => Some(write_rows(out, &plan, "particles", first.step, &positions)?),
            None => None,
        };
        let velocities = match first.velocities {
            Some(_) => Some(write_rows(
                out,
                &plan,
                "velocities",
                first.step,
                &velocities,
            )?),
            None => None,
        };
        let moments: Vec<&MomentsRecord> =
            all.iter().map(|(_, m)| &m.snapshots[j].moments).collect();
        let merged = crate::observe::HistogramCounts {
            counts,
            outside: hist.outside,
            nonfinite: hist.nonfinite,
            below: hist.below.clone(),
            above: hist.above.clone(),
        };
        let mut record = SnapshotRecord {
            step: first.step,
            time: first.time,
            density,
            heatmap,
            particles,
            velocities,
            histogram: hist,
            moments: pool_moments(&moments),
            // Shards in index order hold the traced (lowest) particle indices in order.
            trace: all
                .iter()
                .flat_map(|(_, m)| m.snapshots[j].trace.iter().copied())
                .collect(),
            reference: None,
            marginals: Vec::new(),
            // Only dynamics of independent particles shard; none of them has a target.
            mmd2: None,
            // MALA: the shards' counts add up; the rate is recomputed over all particles.
            accepted: all
                .iter()
                .map(|(_, m)| m.snapshots[j].accepted)
                .sum::<Option<u64>>(),
            acceptance_rate: None,
            // The shards' energy sums add up; the observables are recomputed from them.
            energy: crate::observe::EnergySums::pool(
                all.iter()
                    .filter_map(|(_, m)| m.snapshots[j].energy.as_ref().map(|e| &e.sums)),
            )
            .map(super::manifest::EnergyRecord::from_sums),
            // Counts add up.
            passage: all
                .iter()
                .map(|(_, m)| m.snapshots[j].passage.clone())
                .collect::<Option<Vec<_>>>()
                .map(|p| PassageCounts::pool(&p)),
        };
        if let Some(accepted) = record.accepted {
            let since = j.checked_sub(1).map(|p| all[0].1.snapshots[p].step);
            record.acceptance_rate =
                super::acceptance_rate(accepted, plan.particles.count, since, record.step);
        }
        let parts: Vec<(&Path, &SnapshotRecord)> = all
            .iter()
            .map(|(d, m)| (d.as_path(), &m.snapshots[j]))
            .collect();
        super::reference::merge_snapshot(out, &plan, &parts, &merged, &mut record)?;
        snapshots.push(record);
    }
    write_metrics(out, &plan, &snapshots)?;
    let gif = if plan.output.gif {
        Some(write_gif(out, &plan, &snapshots)?)
    } else {
        None
    };
    // First-passage steps and windings concatenate in shard order (the particles' order);
    // counts and sums add up.
    let mut arrays = super::passage::FinalArrays {
        count: plan.particles.count as usize,
        passages: vec![Vec::new(); plan.boundary.first_passage.len()],
        ..Default::default()
    };
    for (dir, _) in &all {
        let part = super::passage::read_arrays(dir, &plan)?;
        for (all, p) in arrays.passages.iter_mut().zip(part.passages) {
            all.extend(p);
        }
        if let Some(w) = part.windings {
            arrays.windings.get_or_insert_with(Vec::new).extend(w);
        }
    }
    let records: Vec<_> = all.iter().map(|(_, m)| m.first_passage.as_ref()).collect();
    arrays.transitions = records
        .iter()
        .map(|r| r.and_then(|r| r.basins.as_ref().map(|b| b.counts.clone())))
        .collect::<Option<Vec<_>>>()
        .map(|parts| TransitionCounts::pool(&parts));
    arrays.unwrapped = records
        .iter()
        .map(|r| r.and_then(|r| r.unwrapped.clone()))
        .collect::<Option<Vec<_>>>()
        .and_then(|parts| super::passage::Unwrapped::pool(&parts));
    // Every shard computed the same grid, so the first one's escape rate is the run's.
    let escape_rate_reference = records
        .first()
        .and_then(|r| r.and_then(|r| r.escape_rate_reference));
    let first_passage =
        super::passage::write_final(out, &plan, arrays, &snapshots)?.map(|mut r| {
            r.escape_rate_reference = escape_rate_reference;
            r
        });
    let stepping = all
        .iter()
        .map(|(_, m)| m.timings.stepping_seconds)
        .fold(0.0, f64::max);
    let manifest = Manifest {
        status: Status::Complete,
        shard: None,
        merged_from: all.iter().map(|(d, _)| d.display().to_string()).collect(),
        timings: Timings {
            wall_seconds: all
                .iter()
                .map(|(_, m)| m.timings.wall_seconds)
                .fold(0.0, f64::max),
            stepping_seconds: stepping,
            // The shards ran side by side: the job array's throughput.
            particle_steps_per_second: plan.particles.count as f64 * plan.dynamics.steps() as f64
                / stepping.max(1e-9),
            ..Timings::default()
        },
        trajectories: write_trajectories(out, &plan, &snapshots)?,
        plots: super::reference::write_plots(out, &plan, &snapshots)?,
        snapshots,
        gif,
        error: None,
        first_passage,
        ..base.clone()
    };
    crate::output::sync_deferred()?;
    write_manifest(out, &manifest)?;
    // The shards ran one scenario; the merged run keeps its text and gets its own report.
    let scenario = all[0].0.join(super::SCENARIO);
    if scenario.is_file() {
        let text = std::fs::read(&scenario).map_err(|e| Error::io(&scenario, e))?;
        output::write_atomic(&out.join(super::SCENARIO), &text)?;
    }
    super::report::write_report(out)?;
    Ok(manifest.snapshots.len())
}
