//! `fokker render DIR`: redraws a finished run's pictures from its stored arrays, optionally
//! with another colormap, scale or axis range, without running anything. With the run's own
//! settings the pictures are the same bytes as the run wrote.

use super::manifest::{Manifest, ReferenceRecord, SnapshotRecord};
use super::reference::{marginal_png, reference_pngs};
use super::{read_manifest, title};
use crate::error::{Error, Result};
use crate::output;
use crate::scenario::{HeatmapSpec, HistogramSpec, Plan, Scale};
use std::path::Path;

/// What to change; None keeps the run's setting.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub colormap: Option<String>,
    pub scale: Option<Scale>,
    /// Per histogram axis, the part to show: bins overlapping [lo, hi] (snapped outward to
    /// whole bins). Applies to every histogram whose axes it has (1 or 2 pairs).
    pub range: Option<Vec<[f64; 2]>>,
}

/// Parses `--range lo,hi[,lo,hi]`.
pub fn parse_range(text: &str) -> std::result::Result<Vec<[f64; 2]>, String> {
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("--range {text}: give numbers lo,hi or lo,hi,lo,hi"))?;
    if values.is_empty() || !values.len().is_multiple_of(2) || values.len() > 4 {
        return Err(format!(
            "--range {text}: give lo,hi for one axis or lo,hi,lo,hi for two"
        ));
    }
    let pairs: Vec<[f64; 2]> = values.chunks(2).map(|c| [c[0], c[1]]).collect();
    if pairs
        .iter()
        .any(|[lo, hi]| !(lo.is_finite() && hi.is_finite() && lo < hi))
    {
        return Err(format!("--range {text}: each pair needs finite lo < hi"));
    }
    Ok(pairs)
}

/// The bins of `spec` to keep for `range`: per axis (first bin, bin count), and the cropped
/// spec. Err when the range misses the histogram or has the wrong number of axes.
fn crop_spec(
    spec: &HistogramSpec,
    range: &[[f64; 2]],
) -> Result<(Vec<(usize, usize)>, HistogramSpec)> {
    if range.len() != spec.axes.len() {
        return Err(Error::Usage(format!(
            "--range has {} axis pair(s) but the histogram of axes {:?} has {}",
            range.len(),
            spec.axes,
            spec.axes.len()
        )));
    }
    let mut keep = Vec::new();
    let mut out = spec.clone();
    for (k, &[lo, hi]) in range.iter().enumerate() {
        let [a, b] = spec.range[k];
        let n = spec.bins[k] as usize;
        let w = (b - a) / n as f64;
        let first = (((lo - a) / w).floor().max(0.0) as usize).min(n);
        let last = (((hi - a) / w).ceil().max(0.0) as usize).min(n);
        if last <= first {
            return Err(Error::Usage(format!(
                "--range [{lo}, {hi}] misses axis {} of the histogram, whose range is [{a}, {b}]",
                spec.axes[k]
            )));
        }
        keep.push((first, last - first));
        out.bins[k] = (last - first) as u32;
        out.range[k] = [a + first as f64 * w, a + last as f64 * w];
    }
    Ok((keep, out))
}

fn crop<T: Copy>(values: &[T], spec: &HistogramSpec, keep: &[(usize, usize)]) -> Vec<T> {
    match keep {
        [(f0, n0)] => values[*f0..f0 + n0].to_vec(),
        [(f0, n0), (f1, n1)] => {
            let stride = spec.bins[1] as usize;
            (*f0..f0 + n0)
                .flat_map(|i| {
                    values[i * stride + f1..i * stride + f1 + n1]
                        .iter()
                        .copied()
                })
                .collect()
        }
        _ => values.to_vec(),
    }
}

/// One histogram as drawn: its spec after cropping and how to crop its arrays.
struct View {
    spec: HistogramSpec,
    shown: HistogramSpec,
    keep: Vec<(usize, usize)>,
}

impl View {
    fn new(spec: &HistogramSpec, range: Option<&Vec<[f64; 2]>>) -> Result<View> {
        let (keep, shown) = match range {
            Some(r) => crop_spec(spec, r)?,
            None => (
                spec.bins.iter().map(|&b| (0, b as usize)).collect(),
                spec.clone(),
            ),
        };
        Ok(View {
            spec: spec.clone(),
            shown,
            keep,
        })
    }
}

fn read_counts(dir: &Path, rel: &str, spec: &HistogramSpec) -> Result<Vec<u64>> {
    let (_, counts) = output::read_npy_u64(&dir.join(rel))?;
    if counts.len() != spec.total_bins() {
        return Err(Error::Data {
            path: dir.join(rel),
            reason: format!(
                "{} bins, but the manifest says {:?}",
                counts.len(),
                spec.bins
            ),
        });
    }
    Ok(counts)
}

/// Redraws the reference and compare pictures of one histogram from the stored arrays.
#[allow(clippy::too_many_arguments)]
fn render_reference(
    dir: &Path,
    plan: &Plan,
    heat: &HeatmapSpec,
    view: &View,
    s: &SnapshotRecord,
    counts: &[u64],
    outside: u64,
    r: &ReferenceRecord,
) -> Result<()> {
    let (_, q) = output::read_npy_f64(&dir.join(&r.density))?;
    if q.len() != view.spec.total_bins() {
        return Err(Error::Data {
            path: dir.join(&r.density),
            reason: format!("{} bins, expected {:?}", q.len(), view.spec.bins),
        });
    }
    // Probabilities over every finite particle, before any cropping.
    let n: u64 = counts.iter().sum::<u64>() + outside;
    let inside: u64 = crop(counts, &view.spec, &view.keep).iter().sum();
    let (ref_png, cmp_png) = reference_pngs(
        plan,
        &view.shown,
        heat,
        s.step,
        s.time,
        &crop(counts, &view.spec, &view.keep),
        n - inside,
        &crop(&q, &view.spec, &view.keep),
    )?;
    output::write_atomic(&dir.join(&r.heatmap), &ref_png)?;
    output::write_atomic(&dir.join(&r.compare), &cmp_png)
}

/// Redraws every picture of the run in `dir`; returns how many files were written.
pub fn render(dir: &Path, opts: &RenderOptions) -> Result<usize> {
    let manifest: Manifest = read_manifest(dir)?;
    let mut plan = manifest.plan.clone();
    if let Some(c) = &opts.colormap {
        if output::colormap(c).is_none() {
            return Err(Error::Usage(format!(
                "--colormap {c}: one of {}",
                output::colormap_names().join(", ")
            )));
        }
        plan.output.heatmap.colormap = c.clone();
    }
    if let Some(s) = opts.scale {
        plan.output.heatmap.scale = s;
    }
    let heat = plan.output.heatmap.clone();
    let main = View::new(&plan.output.histogram, opts.range.as_ref())?;
    let marginals: Vec<View> = plan
        .output
        .marginals
        .iter()
        .map(|m| View::new(m, opts.range.as_ref()))
        .collect::<Result<_>>()?;
    let mut written = 0;
    let mut frames = Vec::new();
    for s in &manifest.snapshots {
        let counts = read_counts(dir, &s.density, &main.spec)?;
        let shown = crop(&counts, &main.spec, &main.keep);
        let names = super::reference::axis_names(&main.spec, plan.particles.dim);
        let image = output::render_density_image(
            &shown,
            &main.shown,
            &heat,
            &title(&plan, s.step, s.time),
            &names,
        )?;
        output::write_atomic(&dir.join(&s.heatmap), &output::png_bytes(&image)?)?;
        written += 1;
        if manifest.gif.is_some() {
            frames.push(image);
        }
        if let Some(r) = &s.reference {
            render_reference(dir, &plan, &heat, &main, s, &counts, s.histogram.outside, r)?;
            written += 2;
        }
        for (m, view) in s.marginals.iter().zip(&marginals) {
            let counts = read_counts(dir, &m.density, &view.spec)?;
            let png = marginal_png(
                &plan,
                &view.shown,
                s.step,
                s.time,
                &crop(&counts, &view.spec, &view.keep),
            )?;
            output::write_atomic(&dir.join(&m.heatmap), &png)?;
            written += 1;
            if let Some(r) = &m.reference {
                render_reference(dir, &plan, &heat, view, s, &counts, m.histogram.outside, r)?;
                written += 2;
            }
        }
    }
    if let Some(gif) = &manifest.gif {
        output::write_atomic(&dir.join(gif), &output::encode_gif(&frames, 200)?)?;
        written += 1;
    }
    written += super::reference::write_plots(dir, &plan, &manifest.snapshots)?.len();
    super::report::write_report(dir)?;
    Ok(written + 1)
}
