//! MMD^2 to the target against step as a line plot: `mmd.png` of one kernel-flow run, and
//! `fokker mmd-plot OUT.png RUN...` for several runs side by side (SD flow, MMD flow and SVGD
//! on the same source and target).

use super::manifest::{Manifest, SnapshotRecord};
use super::read_manifest;
use crate::error::{Error, Result};
use crate::output::plot::{Series, line_chart};
use crate::output::{png_bytes, write_atomic};
use crate::scenario::Plan;
use std::path::Path;

fn points(snapshots: &[SnapshotRecord]) -> Vec<(f64, f64)> {
    snapshots
        .iter()
        .filter_map(|s| s.mmd2.map(|m| (s.step as f64, m)))
        .collect()
}

/// Writes `mmd.png` in the run directory when its snapshots carry MMD^2.
pub fn write_mmd_plot(
    out: &Path,
    plan: &Plan,
    snapshots: &[SnapshotRecord],
) -> Result<Option<String>> {
    let points = points(snapshots);
    if points.is_empty() {
        return Ok(None);
    }
    let png = line_chart(
        &format!("MMD² to the target, {}", plan.dynamics.kind_name()),
        "step",
        "MMD² (log scale)",
        &[Series {
            name: plan.dynamics.kind_name().into(),
            points,
            dashed: false,
        }],
        true,
    )?;
    write_atomic(&out.join("mmd.png"), &png_bytes(&png)?)?;
    Ok(Some("mmd.png".into()))
}

/// One curve per run directory, named by the run's name or else its dynamics kind. Every
/// run must carry MMD^2 (a kernel flow).
pub fn compare_mmd(out_png: &Path, runs: &[std::path::PathBuf]) -> Result<()> {
    let manifests: Vec<Manifest> = runs
        .iter()
        .map(|d| read_manifest(d))
        .collect::<Result<_>>()?;
    let mut curves = Vec::with_capacity(runs.len());
    for (dir, m) in runs.iter().zip(&manifests) {
        let p = points(&m.snapshots);
        if p.is_empty() {
            return Err(Error::Usage(format!(
                "{}: its snapshots carry no MMD^2 (only sd_flow, mmd_flow and svgd runs do)",
                dir.display()
            )));
        }
        let name = m
            .name
            .clone()
            .unwrap_or_else(|| m.plan.dynamics.kind_name().to_string());
        curves.push((name, p));
    }
    let series: Vec<Series> = curves
        .into_iter()
        .map(|(name, points)| Series {
            name,
            points,
            dashed: false,
        })
        .collect();
    let png = line_chart(
        "MMD² to the target",
        "step",
        "MMD² (log scale)",
        &series,
        true,
    )?;
    write_atomic(out_png, &png_bytes(&png)?)
}
