//! Snapshot files written on a thread of their own: the density array, its heatmap and the
//! particles of snapshot k are encoded and written while the device steps towards snapshot
//! k + 1 (on a GPU the PNG encoding and the writes of a snapshot can take longer than the
//! block of steps between two snapshots).
//!
//! At most one snapshot is in flight: handing over the next one first waits for the previous
//! one, so memory holds two snapshots' arrays at most and an error surfaces one snapshot
//! late at the latest. [`SnapshotWriter::flush`] waits for everything handed over; the run
//! flushes before it rewrites manifest.json (which must list written files only), before
//! every checkpoint and at the end.

use super::{write_density, write_rows};
use crate::error::{Error, Result};
use crate::scenario::Plan;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

/// One snapshot's files: its histogram counts and, when the run writes them, the particles'
/// positions and velocities (row-major, dim per particle).
pub(crate) struct SnapshotFiles {
    pub step: u64,
    pub time: f64,
    pub counts: Vec<u64>,
    pub positions: Option<Vec<f32>>,
    pub velocities: Option<Vec<f32>>,
}

impl SnapshotFiles {
    /// Writes them under `out` (the paths `super::snapshot_paths` names).
    pub fn write(&self, out: &std::path::Path, plan: &Plan) -> Result<()> {
        write_density(out, plan, self.step, self.time, &self.counts)?;
        if let Some(p) = &self.positions {
            write_rows(out, plan, "particles", self.step, p)?;
            if let Some(v) = &self.velocities {
                write_rows(out, plan, "velocities", self.step, v)?;
            }
        }
        Ok(())
    }
}

pub(crate) struct SnapshotWriter {
    jobs: Option<Sender<SnapshotFiles>>,
    results: Receiver<Result<()>>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotWriter {
    pub fn new(out: PathBuf, plan: Arc<Plan>) -> SnapshotWriter {
        let (jobs, inbox) = channel::<SnapshotFiles>();
        let (outbox, results) = channel();
        let thread = std::thread::Builder::new()
            .name("fokker snapshot writer".into())
            .spawn(move || {
                for job in inbox {
                    if outbox.send(job.write(&out, &plan)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        SnapshotWriter {
            jobs: thread.as_ref().map(|_| jobs),
            results,
            in_flight: 0,
            thread,
        }
    }

    /// Hands `files` over after the previous snapshot is written (or writes them here when
    /// no thread could be started). Returns the previous snapshot's error, if it had one.
    pub fn write(
        &mut self,
        files: SnapshotFiles,
        out: &std::path::Path,
        plan: &Plan,
    ) -> Result<()> {
        self.flush()?;
        match &self.jobs {
            Some(jobs) => match jobs.send(files) {
                Ok(()) => {
                    self.in_flight += 1;
                    Ok(())
                }
                // The thread is gone (it panicked): write here.
                Err(e) => e.0.write(out, plan),
            },
            None => files.write(out, plan),
        }
    }

    /// Waits until every snapshot handed over is written; the first error among them.
    pub fn flush(&mut self) -> Result<()> {
        let mut first = Ok(());
        while self.in_flight > 0 {
            self.in_flight -= 1;
            let done = self.results.recv().unwrap_or_else(|_| {
                Err(Error::Output(
                    "the snapshot writer thread stopped before writing a snapshot".into(),
                ))
            });
            if first.is_ok() {
                first = done;
            }
        }
        first
    }
}

impl Drop for SnapshotWriter {
    /// Nothing is written after the writer is gone: the thread finishes what it holds first.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Arc<Plan> {
        let text = "[particles]\ncount = 10\ndim = 2\ninit = { kind = \"point\", at = [0.0, 0.0] }\n[dynamics]\nkind = \"langevin\"\n\
                    potential = { kind = \"double_well\" }\ndt = 0.01\nsteps = 2\n";
        let resolved =
            crate::scenario::resolve_str(text, "t.toml", std::path::Path::new(""), &[], None)
                .unwrap();
        Arc::new(resolved.plan)
    }

    fn files(step: u64, plan: &Plan) -> SnapshotFiles {
        SnapshotFiles {
            step,
            time: 0.0,
            counts: vec![1; plan.output.histogram.total_bins()],
            positions: Some(vec![0.5; 20]),
            velocities: None,
        }
    }

    #[test]
    fn snapshots_are_written_in_the_background_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan();
        let mut w = SnapshotWriter::new(dir.path().to_path_buf(), plan.clone());
        for step in [0, 1, 2] {
            w.write(files(step, &plan), dir.path(), &plan).unwrap();
        }
        w.flush().unwrap();
        for step in [0, 1, 2] {
            let (density, heatmap) = super::super::density_paths(step);
            assert!(dir.path().join(density).is_file() && dir.path().join(heatmap).is_file());
            assert!(
                dir.path()
                    .join(super::super::rows_path("particles", step))
                    .is_file()
            );
        }
    }

    #[test]
    fn a_failed_write_surfaces_at_the_next_hand_over_or_flush() {
        let dir = tempfile::tempdir().unwrap();
        // `density` is a file, so the density directory cannot be made.
        std::fs::write(dir.path().join("density"), b"in the way").unwrap();
        let plan = plan();
        let mut w = SnapshotWriter::new(dir.path().to_path_buf(), plan.clone());
        w.write(files(0, &plan), dir.path(), &plan).unwrap();
        let err = w.flush().unwrap_err();
        assert!(err.to_string().contains("density"), "{err}");
        // Handed over, then reported by the next hand-over.
        w.write(files(1, &plan), dir.path(), &plan).unwrap();
        assert!(w.write(files(2, &plan), dir.path(), &plan).is_err());
        // The run stops at that error: the snapshot refused with it was not handed over.
        assert!(w.flush().is_ok());
    }
}
