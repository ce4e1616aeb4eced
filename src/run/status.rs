//! `fokker status DIR...`: one line per run directory (status, progress, last snapshot time,
//! throughput, and how to continue an interrupted run), or JSON for scripts. Reads only what
//! the manifest and the checkpoint record.

use super::manifest::{Manifest, ShardRecord, Status};
use super::{checkpoint, read_manifest};
use crate::error::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How deep `fokker status` looks for run directories below a directory that is not one (a
/// sweep's points are one level down, its shards three).
const MAX_DEPTH: usize = 3;

/// What `fokker status` reports about one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    pub dir: String,
    /// `running`, `complete`, `interrupted`, `diverged` or `failed`, as in the manifest.
    pub status: Status,
    /// Steps done: the last snapshot's step, or the checkpoint's when it is further on.
    pub step: u64,
    pub steps: u64,
    pub snapshots: usize,
    /// Time of the last snapshot written.
    pub time: Option<f64>,
    /// Particle steps per second of stepping so far.
    pub particle_steps_per_second: Option<f64>,
    pub shard: Option<ShardRecord>,
    /// Whether a checkpoint is on disk (interrupted, or killed after a periodic one).
    pub checkpoint: bool,
    /// The command that continues the run: set for interrupted runs, and for `running` ones
    /// with a checkpoint (for when their process is gone: killed, or its node lost).
    pub resume: Option<String>,
    pub error: Option<String>,
}

/// The runs under `paths`: each a run directory, or a directory holding run directories
/// (a sweep, a folder of runs), searched a few levels down in name order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<RunStatus>> {
    let mut out = Vec::new();
    for path in paths {
        let mut dirs = Vec::new();
        find_runs(path, 0, &mut dirs);
        if dirs.is_empty() {
            let manifest = path.join("manifest.json");
            return Err(Error::io(
                &manifest,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a run directory, and none below it",
                ),
            ));
        }
        for dir in dirs {
            out.push(of(&dir, &read_manifest(&dir)?));
        }
    }
    Ok(out)
}

fn find_runs(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if dir.join("manifest.json").is_file() {
        found.push(dir.to_path_buf());
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    children.sort();
    for c in children {
        find_runs(&c, depth + 1, found);
    }
}

/// The status of the run in `dir` described by `m`.
pub fn of(dir: &Path, m: &Manifest) -> RunStatus {
    let last = m.snapshots.last();
    let saved = checkpoint::saved_step(dir);
    let step = last.map_or(0, |s| s.step).max(saved.unwrap_or(0));
    let rate = m.timings.particle_steps_per_second;
    let resumable =
        m.status == Status::Interrupted || (m.status == Status::Running && saved.is_some());
    RunStatus {
        dir: dir.display().to_string(),
        status: m.status,
        step,
        steps: m.plan.dynamics.steps(),
        snapshots: m.snapshots.len(),
        time: last.map(|s| s.time),
        particle_steps_per_second: (rate > 0.0).then_some(rate),
        shard: m.shard,
        checkpoint: saved.is_some(),
        resume: resumable
            .then(|| format!("fokker resume {}", shell_word(&dir.display().to_string()))),
        error: m.error.clone(),
    }
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// One aligned line per run.
pub fn table(runs: &[RunStatus]) -> String {
    let width = runs
        .iter()
        .map(|r| r.dir.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for r in runs {
        let percent = if r.steps > 0 {
            100.0 * r.step as f64 / r.steps as f64
        } else {
            0.0
        };
        let mut line = format!(
            "{:width$}  {:11}  step {}/{} ({percent:.0}%)",
            r.dir,
            r.status.name(),
            r.step,
            r.steps
        );
        if let Some(s) = r.shard {
            line += &format!("  shard {}/{}", s.index, s.count);
        }
        match r.time {
            Some(t) => line += &format!("  t = {t:.4}"),
            None => line += "  no snapshot yet",
        }
        if let Some(rate) = r.particle_steps_per_second {
            line += &format!("  {rate:.3e} particle-steps/s");
        }
        if let Some(cmd) = &r.resume {
            if r.status == Status::Running {
                line += &format!("  checkpoint: if its process is gone, {cmd}");
            } else {
                line += &format!("  resume: {cmd}");
            }
        }
        // An interrupted run's error is the interruption, which the resume command says.
        if let Some(e) = r.error.as_ref().filter(|_| r.status != Status::Interrupted) {
            line += &format!("  error: {}", e.lines().next().unwrap_or(""));
        }
        text += line.trim_end();
        text.push('\n');
    }
    text
}
