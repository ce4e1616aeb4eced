//! Checkpoints: the particle state and the point to continue from, written when a run is
//! interrupted, read by `fokker resume`.
//!
//! `checkpoint/state.npy` holds this run's positions (f32, exact), `checkpoint/point.json`
//! the step, any block cut short, the plan hash and the fokker version. A new checkpoint is
//! written whole into `checkpoint.next/` and only then takes the place of the previous one
//! (which is kept as `checkpoint.prev/` during the swap), so there is always one whole
//! checkpoint on disk.

use super::manifest::{Manifest, ShardRecord, Status, VERSION};
use crate::error::{Error, Result};
use crate::observe::first_passage::TransitionCounts;
use crate::output;
use crate::scenario::Init;
use crate::scenario::data::{read_table, sha256_file};
use crate::scenario::parse::{Resolved, plan_hash};
use crate::simulation::ResumePoint;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PointFile {
    fokker_version: String,
    plan_hash: String,
    shard: Option<ShardRecord>,
    particles: u64,
    dim: u32,
    point: ResumePoint,
    /// MALA: proposals accepted since the last snapshot (the next snapshot's
    /// `acceptance_rate` counts them). Absent for dynamics without an accept step, so
    /// their checkpoints read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accepted: Option<u64>,
    /// Basin transitions counted so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transitions: Option<TransitionCounts>,
}

/// A checkpoint read back.
pub struct Saved {
    pub positions: Vec<f32>,
    /// Velocities of dynamics that have them (`checkpoint/velocity.npy`).
    pub extra: Option<Vec<f32>>,
    pub bounds: BoundaryState,
    pub point: ResumePoint,
    /// MALA's accepted proposals since the last snapshot.
    pub accepted: Option<u64>,
}

/// The state of a run with walls, targets or basins besides the positions.
#[derive(Debug, Clone, Default)]
pub struct BoundaryState {
    /// Per-particle tags (absorbed step, windings, first-passage steps, last basin),
    /// row-major (`checkpoint/tags.npy`); empty without boundaries.
    pub tags: Vec<u32>,
    /// Basin transitions counted so far (`point.json`).
    pub transitions: Option<TransitionCounts>,
}

pub fn write(
    out: &Path,
    positions: &[f32],
    extra: Option<&[f32]>,
    bounds: &BoundaryState,
    point: ResumePoint,
    accepted: Option<u64>,
    manifest: &Manifest,
) -> Result<()> {
    let dim = manifest.plan.particles.dim;
    let particles = positions.len() as u64 / u64::from(dim);
    let dir = out.join("checkpoint.next");
    let shape = [particles as usize, dim as usize];
    output::write_atomic(&dir.join("state.npy"), &output::npy_f32(&shape, positions)?)?;
    if let Some(v) = extra {
        output::write_atomic(&dir.join("velocity.npy"), &output::npy_f32(&shape, v)?)?;
    }
    if !bounds.tags.is_empty() {
        let stride = bounds.tags.len() / particles.max(1) as usize;
        output::write_atomic(
            &dir.join("tags.npy"),
            &output::npy_u32(&[particles as usize, stride], &bounds.tags)?,
        )?;
    }
    let file = PointFile {
        fokker_version: VERSION.into(),
        plan_hash: manifest.plan_hash.clone(),
        shard: manifest.shard,
        particles,
        dim,
        point,
        accepted,
        transitions: bounds.transitions.clone(),
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::Output(format!("cannot serialise the checkpoint: {e}")))?;
    output::write_atomic(&dir.join("point.json"), &json)?;
    let (current, previous) = (out.join("checkpoint"), out.join("checkpoint.prev"));
    if current.exists() {
        std::fs::rename(&current, &previous).map_err(|e| Error::io(&current, e))?;
    }
    std::fs::rename(&dir, &current).map_err(|e| Error::io(&dir, e))?;
    remove_dir(&previous)
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

/// The newest whole checkpoint: `checkpoint/`, or `checkpoint.prev/` when a swap was cut off.
fn newest(dir: &Path) -> std::path::PathBuf {
    let current = dir.join("checkpoint");
    if current.join("point.json").is_file() {
        current
    } else {
        dir.join("checkpoint.prev")
    }
}

/// Reads the checkpoint of an interrupted run, refusing one from another fokker version or
/// another plan.
pub fn read(dir: &Path, manifest: &Manifest) -> Result<Saved> {
    // `running` with a checkpoint: the process was killed without a chance to say so.
    if !matches!(manifest.status, Status::Interrupted | Status::Running) {
        return Err(Error::Usage(format!(
            "{} is not an interrupted run (its status is {:?}); only interrupted runs can be resumed",
            dir.display(),
            manifest.status
        )));
    }
    let source = newest(dir);
    let path = source.join("point.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let file: PointFile = serde_json::from_str(&text).map_err(|e| Error::Data {
        path: path.clone(),
        reason: format!("not a fokker checkpoint: {e}"),
    })?;
    if file.fokker_version != VERSION {
        return Err(Error::Usage(format!(
            "the checkpoint was written by fokker {} and this is fokker {VERSION}: resume it with the same version",
            file.fokker_version
        )));
    }
    if file.plan_hash != manifest.plan_hash {
        return Err(Error::Data {
            path,
            reason: "the checkpoint belongs to another plan than the manifest".into(),
        });
    }
    // particles x dim f32 arrays: the positions, and the velocities of a heavy ball.
    let read = |path: std::path::PathBuf| -> Result<Vec<f32>> {
        let (shape, values) = output::read_npy_f32(&path)?;
        if shape != [file.particles as usize, file.dim as usize] {
            return Err(Error::Data {
                path,
                reason: format!(
                    "shape {shape:?} does not match the checkpoint's {} x {}",
                    file.particles, file.dim
                ),
            });
        }
        Ok(values)
    };
    let positions = read(source.join("state.npy"))?;
    let velocity = source.join("velocity.npy");
    let extra = if velocity.is_file() {
        Some(read(velocity)?)
    } else {
        None
    };
    let tags_path = source.join("tags.npy");
    let tags = if tags_path.is_file() {
        output::read_npy_u32(&tags_path)?.1
    } else {
        Vec::new()
    };
    Ok(Saved {
        positions,
        extra,
        bounds: BoundaryState {
            tags,
            transitions: file.transitions,
        },
        point: file.point,
        accepted: file.accepted,
    })
}

/// The plan of the manifest with its input files read again, refusing a plan whose hash
/// does not match or an input file that changed since the run started.
pub fn verify_inputs(dir: &Path, manifest: &Manifest) -> Result<Resolved> {
    let plan = manifest.plan.clone();
    if plan_hash(&plan)? != manifest.plan_hash {
        return Err(Error::Data {
            path: dir.join("manifest.json"),
            reason: "the plan in the manifest does not match its plan_hash".into(),
        });
    }
    let samples = match &plan.particles.init {
        Init::Samples { path, sha256, .. } => {
            if sha256_file(path)? != *sha256 {
                return Err(Error::Data { path: path.clone(), reason: "this input file changed since the run started; restore it or start a new run".into() });
            }
            Some(read_table(path)?)
        }
        _ => None,
    };
    let data = match plan.dynamics.input_file() {
        Some((path, sha256)) => {
            if sha256_file(path)? != sha256 {
                return Err(Error::Data { path: path.to_path_buf(), reason: "this input file changed since the run started; restore it or start a new run".into() });
            }
            Some(read_table(path)?)
        }
        None => None,
    };
    Ok(Resolved {
        data,
        hash: manifest.plan_hash.clone(),
        plan,
        samples,
    })
}

/// Removes the checkpoints of a run that completed.
pub fn remove(out: &Path) -> Result<()> {
    for name in ["checkpoint", "checkpoint.prev", "checkpoint.next"] {
        remove_dir(&out.join(name))?;
    }
    Ok(())
}
