//! Checkpoints: the particle state and the point to continue from, written when a run is
//! interrupted, read by `fokker resume`.
//!
//! `checkpoint/state.npy` holds this run's positions (f32, exact), `checkpoint/point.json`
//! the step, any block cut short, the plan hash and the fokker version. A new checkpoint is
//! written whole into `checkpoint.next/` and only then takes the place of the previous one
//! (which is kept as `checkpoint.prev/` during the swap), so there is always one whole
//! checkpoint on disk.
//!
//! A run split across devices (`--devices`) checkpoints every range: `state.npy` holds
//! all the run's rows in index order as before, and `point.json` lists the ranges with
//! each one's resume point (`ranges`). A range whose device failed is saved from the
//! previous checkpoint, or marked `restart` to be sampled again and stepped from 0.

use super::manifest::{Manifest, ShardRecord, Status, VERSION};
use crate::error::{Error, Result};
use crate::observe::first_passage::TransitionCounts;
use crate::output;
use crate::scenario::Init;
use crate::scenario::data::read_table_and_hash;
use crate::scenario::parse::{PLAN_HASH_FORMAT, Resolved, plan_hash};
use crate::simulation::ResumePoint;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PointFile {
    fokker_version: String,
    /// How `plan_hash` was computed ([`PLAN_HASH_FORMAT`]); checkpoints written before it
    /// was recorded used format 1.
    #[serde(default = "first_hash_format")]
    plan_hash_format: u32,
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
    /// Every range of a run split across devices (absent for one range: `point` and
    /// `accepted` are its own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ranges: Vec<RangePoint>,
    /// Basin transitions counted so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transitions: Option<TransitionCounts>,
}

/// One device's range in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangePoint {
    /// First global index and particle count.
    pub first: u64,
    pub particles: u64,
    pub point: ResumePoint,
    /// MALA's proposals accepted since the last snapshot, over this range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    /// Its rows hold nothing: the device failed before any checkpoint held them, so the
    /// range is sampled again and stepped from step 0.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

fn first_hash_format() -> u32 {
    1
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
    /// The ranges in index order (one for a run on one device).
    pub ranges: Vec<RangePoint>,
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

/// Writes a checkpoint of `ranges` (in index order) whose rows `positions` and `extra`
/// hold.
pub fn write(
    out: &Path,
    positions: &[f32],
    extra: Option<&[f32]>,
    bounds: &BoundaryState,
    ranges: &[RangePoint],
    manifest: &Manifest,
) -> Result<()> {
    let (point, accepted) = match ranges {
        [one] => (one.point, one.accepted),
        _ => (
            ranges[0].point,
            ranges.iter().map(|r| r.accepted).sum::<Option<u64>>(),
        ),
    };
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
        plan_hash_format: PLAN_HASH_FORMAT,
        plan_hash: manifest.plan_hash.clone(),
        shard: manifest.shard,
        particles,
        dim,
        point,
        accepted,
        ranges: if ranges.len() > 1 {
            ranges.to_vec()
        } else {
            Vec::new()
        },
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
    if file.plan_hash_format != PLAN_HASH_FORMAT {
        return Err(Error::Usage(format!(
            "{} was started by an older fokker whose plan hash covered input files' bytes \
             (plan hash format {}); this fokker hashes input data by content (format \
             {PLAN_HASH_FORMAT}), so it cannot vouch that the plan is the same and will not \
             resume it: start the run again",
            dir.display(),
            file.plan_hash_format
        )));
    }
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
    let ranges = if file.ranges.is_empty() {
        vec![RangePoint {
            first: file.shard.map_or(0, |s| s.first),
            particles: file.particles,
            point: file.point,
            accepted: file.accepted,
            restart: false,
        }]
    } else {
        file.ranges.clone()
    };
    let run_first = ranges[0].first;
    let contiguous = ranges.iter().try_fold(run_first, |at, r| {
        (r.first == at).then_some(at + r.particles)
    });
    if contiguous != Some(run_first + file.particles) {
        return Err(Error::Data {
            path,
            reason: "its ranges do not cover its particles in order".into(),
        });
    }
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
        ranges,
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
    // Each input read again (an array given from Python: its copy in the run directory).
    let reread = |path: &Path, sha256: &str| -> Result<_> {
        let (table, now) = read_table_and_hash(path)?;
        if now != sha256 {
            return Err(Error::Data {
                path: path.to_path_buf(),
                reason:
                    "this input file changed since the run started; restore it or start a new run"
                        .into(),
            });
        }
        Ok(table)
    };
    let samples = match &plan.particles.init {
        Init::Samples { path, sha256, .. } => Some(reread(path, sha256)?),
        _ => None,
    };
    let data = match plan.dynamics.input_file() {
        Some((path, sha256)) => Some(reread(path, sha256)?),
        None => None,
    };
    Ok(Resolved {
        data,
        hash: manifest.plan_hash.clone(),
        plan,
        samples,
        text: None,
        arrays: Vec::new(),
    })
}

/// Removes the checkpoints of a run that completed.
pub fn remove(out: &Path) -> Result<()> {
    for name in ["checkpoint", "checkpoint.prev", "checkpoint.next"] {
        remove_dir(&out.join(name))?;
    }
    Ok(())
}

/// The step of the newest whole checkpoint in `dir` (None without one): where `fokker
/// resume` would continue.
pub fn saved_step(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(newest(dir).join("point.json")).ok()?;
    let file: PointFile = serde_json::from_str(&text).ok()?;
    Some(file.point.step)
}
