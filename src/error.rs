//! Error types and the exit codes they map to (README, "Exit codes").

use std::path::PathBuf;

/// Exit codes of the `fokker` binary. Stable: documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const DIVERGED: i32 = 3;
    pub const USAGE: i32 = 2;
    pub const INVALID_INPUT: i32 = 65;
    pub const NO_ADAPTER: i32 = 69;
    pub const IO: i32 = 74;
    pub const DEVICE_LOST: i32 = 75;
}

/// One problem found while validating a scenario: the key (dotted path), the value
/// as the user wrote it, and what is allowed there.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioIssue {
    pub key: String,
    pub value: String,
    pub allowed: String,
}

impl std::fmt::Display for ScenarioIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.key, self.allowed)
        } else {
            write!(f, "{} = {}: {}", self.key, self.value, self.allowed)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every problem validation found, reported at once.
    #[error("invalid scenario {}:\n{}", source_name, issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Scenario {
        source_name: String,
        issues: Vec<ScenarioIssue>,
    },
    #[error("invalid data file {path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("{0}")]
    Usage(String),
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Output(String),
    #[error("GPU device error: {0}")]
    Device(String),
    #[error(
        "interrupted by a signal at step {step}; the checkpoint is in {dir}/checkpoint: continue with `fokker resume {dir}`"
    )]
    Interrupted { step: u64, dir: String },
    /// A device of a run split across devices failed; the checkpoint holds every range.
    #[error(
        "{message}; the other devices stopped and the checkpoint in {dir}/checkpoint holds every range \
         (the failed one as last saved): continue with `fokker resume {dir}`"
    )]
    DeviceFailed { message: String, dir: String },
    #[error(
        "run diverged at step {step} (t = {time}): {count} particle(s) have NaN or Inf coordinates \
         (between reflecting walls, also a step whose drift crossed the whole box); reduce \
         dynamics.dt. The last good snapshot is kept."
    )]
    Diverged { step: u64, time: f64, count: u64 },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario { .. } | Error::Data { .. } => exit::INVALID_INPUT,
            Error::Usage(_) => exit::USAGE,
            Error::NoAdapter(_) => exit::NO_ADAPTER,
            Error::Io { .. } | Error::Output(_) => exit::IO,
            Error::Device(_) | Error::Interrupted { .. } | Error::DeviceFailed { .. } => {
                exit::DEVICE_LOST
            }
            Error::Diverged { .. } => exit::DIVERGED,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
