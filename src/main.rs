//! The `fokker` command line: parses arguments, calls the library, maps errors to exit codes.

use clap::{Parser, Subcommand};
use fokker::error::exit;
use fokker::gpu::{AdapterChoice, list_adapters};
use fokker::run::progress::ProgressMode;
use fokker::run::{self, RunOptions};
use fokker::scenario;
use fokker::simulation::Layout;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "fokker",
    version,
    about = "GPU particle simulator for Fokker–Planck density experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file and write a run directory.
    Run(RunArgs),
    /// List the GPU adapters wgpu can see, with their limits.
    Adapters {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario file (TOML).
    scenario: PathBuf,
    /// Run directory to write (default: runs/<scenario file stem>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a scenario key, e.g. --set dynamics.temperature=0.3 (value parsed as TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Override the seed.
    #[arg(long)]
    seed: Option<u64>,
    /// auto | software | a substring of the adapter name.
    #[arg(long, default_value = "auto")]
    adapter: AdapterChoice,
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Replace an existing run directory.
    #[arg(long)]
    force: bool,
    /// Validate, print the resolved plan and the memory it needs, and exit.
    #[arg(long)]
    dry_run: bool,
    /// Cap on particles per GPU buffer (testing; results do not change).
    #[arg(long, hide = true)]
    chunk_particles: Option<u64>,
    /// Steps per dispatch (default adaptive; results do not change).
    #[arg(long, hide = true)]
    fused_steps: Option<u32>,
    /// Invocations per workgroup (results do not change).
    #[arg(long, hide = true, default_value_t = 64)]
    workgroup_size: u32,
}

fn main() -> ExitCode {
    quiet_mesa_gl();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run_command(args),
        Command::Adapters { json } => adapters_command(json),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Mesa's EGL path complains on stderr when XDG_RUNTIME_DIR is unset (headless batch
/// nodes); give it a private directory so user output stays clean.
fn quiet_mesa_gl() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("fokker-runtime-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

fn run_command(args: RunArgs) -> fokker::Result<()> {
    let resolved = scenario::load(&args.scenario, &args.set, args.seed)?;
    let out = args.out.unwrap_or_else(|| {
        let stem = args
            .scenario
            .file_stem()
            .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    });
    if args.dry_run {
        print!("{}", run::dry_run_report(&resolved, &out)?);
        return Ok(());
    }
    let opts = RunOptions {
        out,
        force: args.force,
        adapter: args.adapter,
        progress: args.progress,
        layout: Layout {
            workgroup_size: args.workgroup_size,
            chunk_particles: args.chunk_particles,
            fused_steps: args.fused_steps,
            slice_particles: None,
        },
    };
    let report = run::run(&resolved, &opts)?;
    println!(
        "wrote {} ({} snapshots, {:.2} s, {:.3e} particle-steps/s on {})",
        report.out.display(),
        report.snapshots,
        report.timings.wall_seconds,
        report.timings.particle_steps_per_second,
        report.adapter
    );
    Ok(())
}

fn adapters_command(json: bool) -> fokker::Result<()> {
    let adapters = list_adapters();
    if json {
        let text = serde_json::to_string_pretty(&adapters)
            .map_err(|e| fokker::Error::Output(e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    if adapters.is_empty() {
        return Err(fokker::Error::NoAdapter(
            "no adapter found; install Mesa's software drivers (Debian/Ubuntu: apt-get install mesa-vulkan-drivers libvulkan1) or set WGPU_BACKEND=gl".into(),
        ));
    }
    for a in adapters {
        println!(
            "{} [{} {}] driver: {} {}",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, {} workgroups per dimension, {} invocations per workgroup",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension,
            a.max_compute_invocations_per_workgroup
        );
    }
    Ok(())
}
