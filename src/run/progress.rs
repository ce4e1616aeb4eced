//! Progress reporting: a bar on a terminal, JSON lines in batch logs, or nothing.
//! Everything goes to stderr so that stdout carries only results.

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, JSON lines otherwise.
    Auto,
    Bar,
    Jsonl,
    None,
}

/// JSON lines at most this often (plus one per snapshot and one at the end).
const JSONL_PERIOD: Duration = Duration::from_secs(1);

pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Option<Instant>,
    total_steps: u64,
    particles: u64,
}

impl Progress {
    pub fn new(mode: ProgressMode, total_steps: u64, particles: u64) -> Progress {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Jsonl,
            m => m,
        };
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::new(total_steps);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] step {pos}/{len} {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress {
            mode,
            bar,
            started: Instant::now(),
            last_line: None,
            total_steps,
            particles,
        }
    }

    fn line(&self, value: serde_json::Value) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{value}");
    }

    pub fn step(&mut self, step: u64, time: f64) {
        match self.mode {
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(step);
                    bar.set_message(format!("t = {time:.4}"));
                }
            }
            ProgressMode::Jsonl => {
                if self.last_line.is_some_and(|t| t.elapsed() < JSONL_PERIOD) {
                    return;
                }
                self.last_line = Some(Instant::now());
                let elapsed = self.started.elapsed().as_secs_f64();
                self.line(json!({
                    "event": "progress",
                    "step": step,
                    "steps": self.total_steps,
                    "time": time,
                    "fraction": step as f64 / self.total_steps.max(1) as f64,
                    "elapsed_s": elapsed,
                    "particle_steps_per_s": self.particles as f64 * step as f64 / elapsed.max(1e-9),
                }));
            }
            _ => {}
        }
    }

    pub fn snapshot(&mut self, step: u64, time: f64, path: &str) {
        if self.mode == ProgressMode::Jsonl {
            self.line(json!({"event": "snapshot", "step": step, "time": time, "density": path}));
        }
    }

    pub fn finish(&mut self, status: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.mode == ProgressMode::Jsonl {
            self.line(json!({"event": "done", "status": status, "elapsed_s": self.started.elapsed().as_secs_f64()}));
        }
    }
}
