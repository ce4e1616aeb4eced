//! Per-snapshot density diagnostics of a run: the `output.marginals` histograms, and with
//! `output.reference` the reference density of every histogram (`reference/`), the particle |
//! reference | difference picture (`compare/`), the distances and free energies (in the
//! manifest and metrics.csv), and the plots `distances.png` and `free_energy.png`.
//!
//! The main histogram's files sit directly in `density/`, `reference/`, `compare/`; a
//! marginal of axes (a, b) uses the subfolder `a_b/` of each.

use super::manifest::{HistogramRecord, MarginalRecord, ReferenceRecord, SnapshotRecord};
use super::snapshot_name;
use crate::dynamics::References;
use crate::error::{Error, Result};
use crate::observe::HistogramCounts;
use crate::observe::distance::{distances, histogram_free_energy, tv_floor};
use crate::output::{self, plot};
use crate::reference::{Reference, ReferenceSnapshot, axis_potential, solver::Grid};
use crate::scenario::data::SampleTable;
use crate::scenario::{HistogramSpec, Plan};
use crate::simulation::Observation;
use std::path::Path;

/// The metrics.csv columns added with a reference.
pub const METRICS_COLUMNS: [&str; 6] = [
    "tv",
    "hellinger",
    "kl",
    "tv_floor",
    "free_energy",
    "free_energy_reference",
];

/// Subfolder of a histogram's files: "" for the main one, "a_b/" for a marginal.
pub fn subfolder(spec: &HistogramSpec, main: bool) -> String {
    if main {
        String::new()
    } else {
        let axes: Vec<String> = spec.axes.iter().map(u32::to_string).collect();
        format!("{}/", axes.join("_"))
    }
}

pub fn axis_names(spec: &HistogramSpec, dim: u32) -> Vec<String> {
    spec.axes
        .iter()
        .map(|&a| {
            // Phase space: axes from dim on are the velocities.
            if a < dim {
                format!("x{a}")
            } else {
                format!("v{}", a - dim)
            }
        })
        .collect()
}

/// Every histogram of a run with its reference (if asked for), advanced snapshot by snapshot.
pub struct Diagnostics {
    views: Vec<(HistogramSpec, Option<Reference>)>,
}

fn reference_error(e: String) -> Error {
    Error::Scenario {
        source_name: "plan".into(),
        issues: vec![crate::error::ScenarioIssue {
            key: "output.reference".into(),
            value: String::new(),
            allowed: e,
        }],
    }
}

impl Diagnostics {
    pub fn new(
        plan: &Plan,
        samples: Option<&SampleTable>,
        data: Option<&SampleTable>,
    ) -> Result<Diagnostics> {
        let specs = std::iter::once(&plan.output.histogram).chain(plan.output.marginals.iter());
        let mut views = Vec::new();
        for spec in specs {
            let reference = match plan.output.reference {
                Some(kind) => {
                    Some(Reference::new(plan, kind, spec, samples, data).map_err(reference_error)?)
                }
                None => None,
            };
            views.push((spec.clone(), reference));
        }
        Ok(Diagnostics { views })
    }

    /// The main histogram's grid escape rate into the absorbing targets
    /// (`Reference::escape_rate`); None where there is none to give.
    pub fn escape_rate(&self) -> Option<f64> {
        let (_, reference) = self.views.first()?;
        reference.as_ref()?.escape_rate()?.ok()
    }

    /// Writes the marginals and the reference files of one snapshot into `record`.
    pub fn write(
        &mut self,
        out: &Path,
        plan: &Plan,
        obs: &Observation,
        record: &mut SnapshotRecord,
    ) -> Result<()> {
        for (k, (spec, reference)) in self.views.iter_mut().enumerate() {
            let main = k == 0;
            let hist = if main {
                &obs.histogram
            } else {
                &obs.marginals[k - 1]
            };
            let reference_record = match reference {
                Some(r) => {
                    let snap = r.at(obs.time);
                    Some(write_reference(
                        out, plan, spec, main, obs.step, obs.time, hist, &snap,
                    )?)
                }
                None => None,
            };
            if main {
                record.reference = reference_record;
            } else {
                let (density, heatmap) =
                    write_marginal_density(out, plan, spec, obs.step, obs.time, &hist.counts)?;
                record.marginals.push(MarginalRecord {
                    density,
                    heatmap,
                    histogram: histogram_record(spec, hist),
                    reference: reference_record,
                });
            }
        }
        Ok(())
    }
}

pub fn histogram_record(spec: &HistogramSpec, h: &HistogramCounts) -> HistogramRecord {
    HistogramRecord {
        axes: spec.axes.clone(),
        bins: spec.bins.clone(),
        range: spec.range.clone(),
        in_range: h.in_range(),
        outside: h.outside,
        nonfinite: h.nonfinite,
        below: h.below.clone(),
        above: h.above.clone(),
    }
}

/// density/<a>_<b>/NNNNNNNN.npy and .png of a marginal.
pub fn write_marginal_density(
    out: &Path,
    plan: &Plan,
    spec: &HistogramSpec,
    step: u64,
    time: f64,
    counts: &[u64],
) -> Result<(String, String)> {
    let base = format!("density/{}{}", subfolder(spec, false), snapshot_name(step));
    let (npy, png) = (format!("{base}.npy"), format!("{base}.png"));
    let shape: Vec<usize> = spec.bins.iter().map(|&b| b as usize).collect();
    output::write_atomic(&out.join(&npy), &output::npy_u64(&shape, counts)?)?;
    output::write_atomic(
        &out.join(&png),
        &marginal_png(plan, spec, step, time, counts)?,
    )?;
    Ok((npy, png))
}

pub fn marginal_png(
    plan: &Plan,
    spec: &HistogramSpec,
    step: u64,
    time: f64,
    counts: &[u64],
) -> Result<Vec<u8>> {
    output::render_density_png(
        counts,
        spec,
        &plan.output.heatmap,
        &super::title(plan, step, time),
        &axis_names(spec, plan.particles.dim),
    )
}

/// U of the histogram's axes at the bin centres and the temperature, at `time`, where the
/// potential separates those axes (Langevin and gradient descent). Under a temperature
/// schedule or a potential that depends on t both are taken at the snapshot's time (not
/// NaN): F(t) = sum p U(t) + T(t) sum p log(p / vol) is then the free energy relative to the
/// instantaneous Boltzmann density, and need not fall. The grid reference's free energy is
/// taken the same way (src/reference/solver.rs).
pub fn bin_potential(plan: &Plan, spec: &HistogramSpec, time: f64) -> Option<(Vec<f64>, f64)> {
    let (potential, mut temperature) = plan.dynamics.potential()?;
    if let References::Langevin {
        temperature: schedule,
        ..
    } = plan.dynamics.references()
    {
        temperature = schedule.at(time);
    }
    let axes: Vec<usize> = spec.axes.iter().map(|&a| a as usize).collect();
    let dim = plan.particles.dim as usize;
    // Phase-space axes (velocities, from dim on) have no potential: no free energy.
    if axes.iter().any(|&a| a >= dim) {
        return None;
    }
    let u = axis_potential(potential, dim, &axes).ok()?;
    let grid = Grid::new(
        spec.bins.iter().map(|&b| b as usize).collect(),
        spec.range.clone(),
    );
    Some((
        grid.centres().iter().map(|y| u.value_at(y, time)).collect(),
        temperature,
    ))
}

fn bin_volume(spec: &HistogramSpec) -> f64 {
    spec.range
        .iter()
        .zip(&spec.bins)
        .map(|(r, &b)| (r[1] - r[0]) / f64::from(b))
        .product()
}

/// Particle probabilities per bin: counts over every finite particle (in range or not).
pub fn particle_probabilities(counts: &[u64], outside: u64) -> Vec<f64> {
    let n = (counts.iter().sum::<u64>() + outside).max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

/// Writes reference/<sub>NNNNNNNN.npy and .png and compare/<sub>NNNNNNNN.png for one
/// histogram and computes its distances.
#[allow(clippy::too_many_arguments)]
pub fn write_reference(
    out: &Path,
    plan: &Plan,
    spec: &HistogramSpec,
    main: bool,
    step: u64,
    time: f64,
    hist: &HistogramCounts,
    snap: &ReferenceSnapshot,
) -> Result<ReferenceRecord> {
    let kind = plan.output.reference.ok_or_else(|| {
        Error::Output("a reference was written for a plan without output.reference".into())
    })?;
    let sub = subfolder(spec, main);
    let name = snapshot_name(step);
    let density = format!("reference/{sub}{name}.npy");
    let heatmap = format!("reference/{sub}{name}.png");
    let compare = format!("compare/{sub}{name}.png");
    let shape: Vec<usize> = spec.bins.iter().map(|&b| b as usize).collect();
    output::write_atomic(
        &out.join(&density),
        &output::npy_f64(&shape, &snap.probabilities)?,
    )?;
    let (reference_png, compare_png) = reference_pngs(
        plan,
        spec,
        &plan.output.heatmap,
        step,
        time,
        &hist.counts,
        hist.outside,
        &snap.probabilities,
    )?;
    output::write_atomic(&out.join(&heatmap), &reference_png)?;
    output::write_atomic(&out.join(&compare), &compare_png)?;
    let d = distances(&hist.counts, hist.outside, &snap.probabilities);
    let n = hist.in_range() + hist.outside;
    let free_energy = bin_potential(plan, spec, time)
        .and_then(|(u, t)| histogram_free_energy(&hist.counts, &u, t, bin_volume(spec)));
    Ok(ReferenceRecord {
        kind,
        density,
        heatmap,
        compare,
        tv: d.map(|d| d.tv),
        hellinger: d.map(|d| d.hellinger),
        kl: d.map(|d| d.kl),
        tv_floor: (n > 0).then(|| tv_floor(n, &snap.probabilities)),
        free_energy,
        free_energy_reference: Some(snap.free_energy).filter(|f| f.is_finite()),
        survival_reference: snap.survival,
    })
}

/// PNG bytes of the reference picture and of the particle | reference | difference picture.
#[allow(clippy::too_many_arguments)]
pub fn reference_pngs(
    plan: &Plan,
    spec: &HistogramSpec,
    heat: &crate::scenario::HeatmapSpec,
    step: u64,
    time: f64,
    counts: &[u64],
    outside: u64,
    reference: &[f64],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let names = axis_names(spec, plan.particles.dim);
    let title = super::title(plan, step, time);
    let kind = plan.output.reference.map_or("reference", |k| k.name());
    let reference_png = output::png_bytes(&plot::density_image(
        reference,
        spec,
        &heat.colormap,
        heat.scale,
        &format!("{kind}   {title}"),
        &names,
        "probability",
    )?)?;
    let compare_png = output::png_bytes(&plot::compare_image(
        &particle_probabilities(counts, outside),
        reference,
        spec,
        &heat.colormap,
        heat.scale,
        &format!("particles vs {kind}   {title}"),
        &names,
    )?)?;
    Ok((reference_png, compare_png))
}

/// Appends the reference columns to metrics.csv text (one row per snapshot, in order).
pub fn extend_metrics(csv: String, snapshots: &[SnapshotRecord]) -> String {
    let mut lines = csv.lines();
    let mut out = String::with_capacity(csv.len() * 2);
    if let Some(header) = lines.next() {
        out.push_str(header);
        for c in METRICS_COLUMNS {
            out.push(',');
            out.push_str(c);
        }
        out.push('\n');
    }
    for (line, s) in lines.zip(snapshots) {
        out.push_str(line);
        let r = s.reference.as_ref();
        let values = [
            r.and_then(|r| r.tv),
            r.and_then(|r| r.hellinger),
            r.and_then(|r| r.kl),
            r.and_then(|r| r.tv_floor),
            r.and_then(|r| r.free_energy),
            r.and_then(|r| r.free_energy_reference),
        ];
        for v in values {
            out.push(',');
            if let Some(v) = v {
                out.push_str(&v.to_string());
            }
        }
        out.push('\n');
    }
    out
}

/// distances.png and free_energy.png at the run root; their relative paths.
pub fn write_plots(out: &Path, plan: &Plan, snapshots: &[SnapshotRecord]) -> Result<Vec<String>> {
    if plan.output.reference.is_none() {
        return Ok(Vec::new());
    }
    let kind = plan.output.reference.map_or("reference", |k| k.name());
    let series =
        |name: &str, f: &dyn Fn(&ReferenceRecord) -> Option<f64>, dashed: bool| plot::Series {
            name: name.into(),
            points: snapshots
                .iter()
                .filter_map(|s| Some((s.time, f(s.reference.as_ref()?)?)))
                .collect(),
            dashed,
        };
    let title = |what: &str| match &plan.name {
        Some(n) => format!("{n}: {what}"),
        None => what.to_string(),
    };
    let distances_png = plot::line_chart(
        &title(&format!("particles vs {kind}")),
        "t",
        "distance",
        &[
            series("total variation", &|r| r.tv, false),
            series("Hellinger", &|r| r.hellinger, false),
            series("KL(particles || reference)", &|r| r.kl, false),
            series("TV noise floor", &|r| r.tv_floor, true),
        ],
        true,
    )?;
    output::write_atomic(
        &out.join("distances.png"),
        &output::png_bytes(&distances_png)?,
    )?;
    let mut plots = vec!["distances.png".to_string()];
    let energy = [
        series("particles (histogram)", &|r| r.free_energy, false),
        series(kind, &|r| r.free_energy_reference, true),
    ];
    // Dynamics without a potential (diffusion) have no free energy to plot.
    if energy.iter().all(|s| s.points.is_empty()) {
        return Ok(plots);
    }
    plots.push("free_energy.png".into());
    let free_energy_png = plot::line_chart(
        &title("free energy F = ∫ρU + T∫ρ log ρ"),
        "t",
        "F",
        &energy,
        false,
    )?;
    output::write_atomic(
        &out.join("free_energy.png"),
        &output::png_bytes(&free_energy_png)?,
    )?;
    Ok(plots)
}

fn sum_counts(parts: &[(&Path, &str)]) -> Result<Vec<u64>> {
    let mut total: Vec<u64> = Vec::new();
    for (dir, rel) in parts {
        let (_, c) = output::read_npy_u64(&dir.join(rel))?;
        if total.is_empty() {
            total = vec![0; c.len()];
        }
        if c.len() != total.len() {
            return Err(Error::Data {
                path: dir.join(rel),
                reason: format!("{} bins, expected {}", c.len(), total.len()),
            });
        }
        for (t, v) in total.iter_mut().zip(c) {
            *t += v;
        }
    }
    Ok(total)
}

fn sum_histogram(parts: &[&HistogramRecord], counts: Vec<u64>) -> HistogramCounts {
    let axes = parts[0].axes.len();
    let mut h = HistogramCounts {
        counts,
        outside: 0,
        nonfinite: 0,
        below: vec![0; axes],
        above: vec![0; axes],
    };
    for p in parts {
        h.outside += p.outside;
        h.nonfinite += p.nonfinite;
        for a in 0..axes {
            h.below[a] += p.below[a];
            h.above[a] += p.above[a];
        }
    }
    h
}

/// `fokker merge`: the marginals (summed over the shards) and the references (the first
/// shard's reference files, which every shard computed alike) of one merged snapshot, with
/// the distances recomputed from the merged counts `main`.
pub fn merge_snapshot(
    out: &Path,
    plan: &Plan,
    shards: &[(&Path, &SnapshotRecord)],
    main: &HistogramCounts,
    record: &mut SnapshotRecord,
) -> Result<()> {
    let (first_dir, first) = shards[0];
    let reference_of = |r: &ReferenceRecord| -> Result<ReferenceSnapshot> {
        Ok(ReferenceSnapshot {
            probabilities: output::read_npy_f64(&first_dir.join(&r.density))?.1,
            free_energy: r.free_energy_reference.unwrap_or(f64::NAN),
            survival: r.survival_reference,
        })
    };
    if let Some(r) = &first.reference {
        record.reference = Some(write_reference(
            out,
            plan,
            &plan.output.histogram,
            true,
            record.step,
            record.time,
            main,
            &reference_of(r)?,
        )?);
    }
    for (k, spec) in plan.output.marginals.iter().enumerate() {
        let parts: Vec<(&Path, &str)> = shards
            .iter()
            .map(|(d, s)| {
                s.marginals
                    .get(k)
                    .map(|m| (*d, m.density.as_str()))
                    .ok_or_else(|| Error::Data {
                        path: d.to_path_buf(),
                        reason: format!("snapshot {} lacks marginal {k}", s.step),
                    })
            })
            .collect::<Result<_>>()?;
        let records: Vec<&HistogramRecord> = shards
            .iter()
            .filter_map(|(_, s)| s.marginals.get(k).map(|m| &m.histogram))
            .collect();
        let hist = sum_histogram(&records, sum_counts(&parts)?);
        let (density, heatmap) =
            write_marginal_density(out, plan, spec, record.step, record.time, &hist.counts)?;
        let reference = match first.marginals.get(k).and_then(|m| m.reference.as_ref()) {
            Some(r) => Some(write_reference(
                out,
                plan,
                spec,
                false,
                record.step,
                record.time,
                &hist,
                &reference_of(r)?,
            )?),
            None => None,
        };
        record.marginals.push(MarginalRecord {
            density,
            heatmap,
            histogram: histogram_record(spec, &hist),
            reference,
        });
    }
    Ok(())
}
