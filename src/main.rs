//! The `fokker` command line: parses arguments, calls the library, maps errors to exit codes.

use clap::{Parser, Subcommand};
use fokker::error::exit;
use fokker::gpu::{AdapterChoice, Devices, list_adapters};
use fokker::run::progress::ProgressMode;
use fokker::run::{self, RunOptions, Shard};
use fokker::scenario;
use fokker::simulation::Layout;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

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
    /// Continue an interrupted run from its checkpoint.
    Resume(ResumeArgs),
    /// Run a scenario over a grid of overrides: one run directory per point, indexed by
    /// OUT/sweep.json. Every point is validated before anything is written; without --point
    /// (or a job-array task) every point runs in turn, and running the same command again
    /// skips complete points and resumes interrupted ones.
    Sweep(SweepArgs),
    /// Write DIR/summary.csv for a sweep: one row per point with its parameters and the last
    /// row of its metrics.csv; optionally plot a metric against a parameter.
    SweepSummary {
        /// The sweep directory (it holds sweep.json).
        dir: PathBuf,
        /// Plot this metrics.csv column (e.g. tv, mean_0)...
        #[arg(long, value_name = "METRIC", requires = "against")]
        plot: Option<String>,
        /// ...against this grid key: one line per combination of the other keys' values.
        #[arg(long, value_name = "PARAM", requires = "plot")]
        against: Option<String>,
        /// The plot's PNG (default DIR/<METRIC>_vs_<PARAM>.png).
        #[arg(long, value_name = "FILE.png", requires = "plot")]
        out: Option<PathBuf>,
    },
    /// One line per run: status, progress, last snapshot time, throughput, and how to resume
    /// an interrupted run. A directory that is not a run (a sweep) lists the runs below it.
    Status {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Print JSON (an array, one object per run) instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Draw samples of exp(-U/T) from a Langevin scenario (every particle a chain): write
    /// DIR/samples.npy and an effective-sample-size report (DIR/ess.json, DIR/summary.txt).
    Sample(SampleArgs),
    /// Sum the histograms of a job array's shards into one run directory.
    Merge {
        /// The merged run directory to write.
        out: PathBuf,
        /// The shard run directories (every shard exactly once).
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Replace an existing run directory at OUT.
        #[arg(long)]
        force: bool,
    },
    /// Plot MMD^2 to the target against step for kernel-flow runs side by side.
    MmdPlot {
        /// The PNG to write.
        out: PathBuf,
        /// Run directories of sd_flow, mmd_flow or svgd runs.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
    /// Redraw a finished run's pictures (PNGs, GIF, plots) from its stored arrays.
    Render {
        /// The run directory.
        dir: PathBuf,
        /// Colormap (default: the run's).
        #[arg(long)]
        colormap: Option<String>,
        /// linear | log (default: the run's).
        #[arg(long)]
        scale: Option<ScaleArg>,
        /// Show only lo,hi (one axis) or lo,hi,lo,hi (two axes) of the histograms.
        #[arg(long, allow_hyphen_values = true)]
        range: Option<String>,
    },
    /// Write a run's report.html again, or one page with several runs side by side (--out).
    Report {
        /// Run directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Write one page with the runs side by side here (default: each run's own
        /// DIR/report.html).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Distances between two runs' densities, snapshot by snapshot (paired by time).
    Compare {
        run_a: PathBuf,
        run_b: PathBuf,
        /// Folder for vs_<RUN_A name>.csv and .png (default: RUN_B/compare).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Plot columns of a CSV file as lines (e.g. a convergence study's table).
    Plot {
        csv: PathBuf,
        /// The x column.
        #[arg(long)]
        x: String,
        /// The y columns, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        y: Vec<String>,
        /// One line per distinct value of this column.
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        log_x: bool,
        #[arg(long)]
        log_y: bool,
        #[arg(long, default_value = "")]
        title: String,
        /// The y axis label (default: the y column names).
        #[arg(long)]
        y_label: Option<String>,
        /// The PNG to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the GPU adapters wgpu can see, with their limits.
    Adapters {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScaleArg {
    Linear,
    Log,
}

/// Flags for everything that steps particles.
#[derive(clap::Args)]
struct DeviceArgs {
    /// auto | software | index:N | pci:BUS | a substring of the adapter name. `auto` takes
    /// the GPU the scheduler gave the process (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES,
    /// SLURM_STEP_GPUS, SLURM_JOB_GPUS) where one is set; `fokker adapters` lists indices.
    #[arg(long, default_value = "auto")]
    adapter: AdapterChoice,
    /// Split the run across several adapters in this process: `all` (the job's GPUs, else
    /// every GPU) or a comma list of --adapter specs (one may repeat). Overrides --adapter.
    #[arg(long, value_name = "all|SPEC,SPEC,...")]
    devices: Option<Devices>,
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Cap on particles per GPU buffer (testing; results do not change).
    #[arg(long, hide = true)]
    chunk_particles: Option<u64>,
    /// Steps per dispatch (results do not change).
    #[arg(long, hide = true)]
    fused_steps: Option<u32>,
    /// Particles per submission (results do not change).
    #[arg(long, hide = true)]
    slice_particles: Option<u32>,
    /// Invocations per workgroup (results do not change).
    #[arg(long, hide = true, default_value_t = 64)]
    workgroup_size: u32,
    /// Also write a checkpoint every this many seconds (the previous one is kept until the
    /// new one is whole), so a hard kill loses at most this much work.
    #[arg(long, value_name = "SECONDS")]
    checkpoint_every: Option<f64>,
}

impl DeviceArgs {
    fn checkpoint_every(&self) -> fokker::Result<Option<std::time::Duration>> {
        match self.checkpoint_every {
            None => Ok(None),
            Some(s) if s.is_finite() && s > 0.0 => Ok(Some(std::time::Duration::from_secs_f64(s))),
            Some(s) => Err(fokker::Error::Usage(format!(
                "--checkpoint-every {s}: give a positive number of seconds"
            ))),
        }
    }

    fn layout(&self) -> Layout {
        Layout {
            workgroup_size: self.workgroup_size,
            chunk_particles: self.chunk_particles,
            fused_steps: self.fused_steps,
            slice_particles: self.slice_particles,
            mala_carry: None,
        }
    }
}

#[derive(clap::Args)]
struct SampleArgs {
    /// Scenario file (TOML) with `[dynamics] kind = "langevin"`.
    scenario: PathBuf,
    /// Number of samples: ceil(COUNT / particles.count) draws per chain.
    #[arg(long)]
    count: u64,
    /// Directory to write samples.npy, ess.json and summary.txt in.
    #[arg(long)]
    out: PathBuf,
    /// Steps before the first draw (default: half of dynamics.steps).
    #[arg(long, value_name = "STEPS")]
    burn_in: Option<u64>,
    /// Observables to report, comma-separated expressions of x (x0 .. x7, or x, y, z), e.g.
    /// x0,x1,"x0^2" (default: every coordinate).
    #[arg(long, value_delimiter = ',')]
    observables: Vec<String>,
    /// Override a scenario key (value parsed as TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Override the seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Overwrite a previous `fokker sample` output in DIR.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(clap::Args)]
struct ResumeArgs {
    /// The interrupted run directory.
    dir: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(clap::Args)]
#[command(
    mut_arg("out", |a| a.help("The sweep directory: DIR/pNNN per point, DIR/sweep.json (default: runs/<scenario file stem>)")),
    mut_arg("force", |a| a.help("Replace the points' run directories and another sweep's sweep.json in DIR")),
    mut_arg("dry_run", |a| a.help("Validate every point, list them with their directories, and exit")),
    mut_arg("shard_index", |a| a.help("With --point: the shard of that point to run")),
    mut_arg("shard_count", |a| a.help("Shards per point (default 1): array task = point * shards + shard, into DIR/shards/pNNN/shard-NN")),
)]
struct SweepArgs {
    /// Every flag of `fokker run`; --out is the sweep directory, --shard-count the shards per
    /// point.
    #[command(flatten)]
    run: RunArgs,
    /// A scenario key and its values, KEY=V1,V2,... (KEY as for --set, or seed for --seed);
    /// repeat for more keys. Commas inside [..], {..} and quotes do not split.
    #[arg(
        long = "grid",
        value_name = "KEY=V1,V2,...",
        allow_hyphen_values = true
    )]
    grid: Vec<String>,
    /// Pair the lists value by value (equal lengths) instead of taking their product.
    #[arg(long)]
    zip: bool,
    /// Run point I only (default: array task SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN as
    /// point * shards + shard, else every point in turn).
    #[arg(long, value_name = "I")]
    point: Option<u64>,
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
    /// Replace an existing run directory.
    #[arg(long)]
    force: bool,
    /// Validate, print the resolved plan and the memory it needs, and exit.
    #[arg(long)]
    dry_run: bool,
    /// This task's shard (default: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, else 0).
    #[arg(long)]
    shard_index: Option<u64>,
    /// Number of shards (default: SLURM_ARRAY_TASK_COUNT, else 1).
    #[arg(long)]
    shard_count: Option<u64>,
    #[command(flatten)]
    device: DeviceArgs,
}

fn main() -> ExitCode {
    let runtime_dir = quiet_mesa_gl();
    let remove_runtime_dir = || {
        if let Some(dir) = &runtime_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help, --version and usage errors end here: clean up before clap exits.
            remove_runtime_dir();
            e.exit();
        }
    };
    // Before any device is opened: SIGTERM / SIGINT / SIGUSR1 (what Slurm sends before a
    // time limit) ask the run to checkpoint at the next step boundary and exit 75.
    let interrupt = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT, SIGUSR1] {
        if let Err(e) = signal_hook::flag::register(signal, interrupt.clone()) {
            eprintln!("warning: cannot install a handler for signal {signal}: {e}");
        }
    }
    let result = match cli.command {
        Command::Run(args) => run_command(args, interrupt),
        Command::Resume(args) => resume_command(args, interrupt),
        Command::Sweep(args) => sweep_command(args, interrupt),
        Command::SweepSummary {
            dir,
            plot,
            against,
            out,
        } => {
            let plot = plot.as_deref().zip(against.as_deref());
            let plot = plot.map(|(m, a)| (m, a, out.as_deref()));
            run::sweep::summary(&dir, plot).map(|files| {
                for f in files {
                    println!("wrote {}", f.display());
                }
            })
        }
        Command::Status { dirs, json } => status_command(&dirs, json),
        Command::Sample(args) => sample_command(args),
        Command::Merge { out, shards, force } => merge_command(&out, &shards, force),
        Command::MmdPlot { out, runs } => {
            run::mmd_plot::compare_mmd(&out, &runs).map(|()| println!("wrote {}", out.display()))
        }
        Command::Adapters { json } => adapters_command(json),
        Command::Render {
            dir,
            colormap,
            scale,
            range,
        } => render_command(&dir, colormap, scale, range.as_deref()),
        Command::Report { dirs, out } => run::report::report(&dirs, out.as_deref()).map(|pages| {
            for p in pages {
                println!("wrote {}", p.display());
            }
        }),
        Command::Compare { run_a, run_b, out } => compare_command(&run_a, &run_b, out.as_deref()),
        Command::Plot {
            csv,
            x,
            y,
            group,
            log_x,
            log_y,
            title,
            y_label,
            out,
        } => {
            let spec = run::plot_csv::PlotSpec {
                y_label: y_label.unwrap_or_else(|| y.join(", ")),
                x,
                y,
                group,
                log_x,
                log_y,
                title,
            };
            run::plot_csv::plot_csv(&csv, &spec, &out).map(|()| println!("wrote {}", out.display()))
        }
    };
    remove_runtime_dir();
    match result {
        Ok(()) => ExitCode::from(exit::OK as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// Mesa's EGL path complains on stderr when XDG_RUNTIME_DIR is unset (headless batch
/// nodes); give it a private directory so user output stays clean. Returns the directory
/// made, to be removed at exit.
fn quiet_mesa_gl() -> Option<PathBuf> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return None;
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
        return Some(dir);
    }
    None
}

/// The test hook `FOKKER_TEST_STOP_AT` ([`run::StopAt`]), read once as a run starts.
fn test_stop_at() -> fokker::Result<Option<run::StopAt>> {
    match std::env::var("FOKKER_TEST_STOP_AT") {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|e| fokker::Error::Usage(format!("FOKKER_TEST_STOP_AT={v}: {e}"))),
        Err(_) => Ok(None),
    }
}

/// The test hook `FOKKER_TEST_FAIL_DEVICE` ([`run::devices::FailDevice`]).
fn test_fail_device() -> fokker::Result<Option<run::devices::FailDevice>> {
    match std::env::var("FOKKER_TEST_FAIL_DEVICE") {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|e| fokker::Error::Usage(format!("FOKKER_TEST_FAIL_DEVICE={v}: {e}"))),
        Err(_) => Ok(None),
    }
}

/// A non-negative integer from the environment (None when unset).
fn env(name: &str) -> fokker::Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => {
            v.trim().parse().map(Some).map_err(|_| {
                fokker::Error::Usage(format!("{name}={v} is not a non-negative integer"))
            })
        }
        Err(_) => Ok(None),
    }
}

/// This process's task of a Slurm job array, counted from 0: SLURM_ARRAY_TASK_ID minus
/// SLURM_ARRAY_TASK_MIN.
fn array_task() -> fokker::Result<Option<u64>> {
    Ok(match env("SLURM_ARRAY_TASK_ID")? {
        Some(id) => Some(id.saturating_sub(env("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0))),
        None => None,
    })
}

/// The shard from the flags, else from a Slurm job array's environment, else the whole run.
fn shard_of(args: &RunArgs) -> fokker::Result<Shard> {
    let index = match args.shard_index {
        Some(i) => i,
        None => array_task()?.unwrap_or(0),
    };
    let count = match args.shard_count {
        Some(c) => c,
        None => env("SLURM_ARRAY_TASK_COUNT")?.unwrap_or(1),
    };
    Ok(Shard { index, count })
}

fn print_report(report: &run::RunReport) {
    println!("{}", report_line(report));
}

fn report_line(report: &run::RunReport) -> String {
    let t = &report.timings;
    // Kernel-sum dynamics: the figure that compares across sizes is interactions per second.
    let rate = match t.interactions_per_second {
        Some(i) => format!("{:.3e} interactions/s", i),
        None => format!("{:.3e} particle-steps/s", t.particle_steps_per_second),
    };
    format!(
        "wrote {} ({} snapshots, {:.2} s, {rate} on {})",
        report.out.display(),
        report.snapshots,
        t.wall_seconds,
        report.adapter
    )
}

/// `runs/<scenario file stem>`, the default --out.
fn default_out(args: &RunArgs) -> PathBuf {
    args.out.clone().unwrap_or_else(|| {
        let stem = args
            .scenario
            .file_stem()
            .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from("runs").join(stem)
    })
}

/// Run options from the flags `run` and `sweep` share.
fn run_options(
    args: &RunArgs,
    out: PathBuf,
    shard: Shard,
    interrupt: Arc<AtomicBool>,
) -> fokker::Result<RunOptions> {
    Ok(RunOptions {
        out,
        force: args.force,
        adapter: args.device.adapter.clone(),
        devices: args.device.devices.clone(),
        progress: args.device.progress,
        layout: args.device.layout(),
        shard,
        interrupt,
        checkpoint_every: args.device.checkpoint_every()?,
        stop_at: test_stop_at()?,
        fail_device: test_fail_device()?,
        hooks: None,
    })
}

fn sweep_command(args: SweepArgs, interrupt: Arc<AtomicBool>) -> fokker::Result<()> {
    use run::sweep::{self, Outcome};
    let r = &args.run;
    let grids = args
        .grid
        .iter()
        .map(|g| g.parse())
        .collect::<fokker::Result<Vec<sweep::Grid>>>()?;
    let spec = sweep::SweepSpec {
        scenario: r.scenario.clone(),
        set: r.set.clone(),
        seed: r.seed,
        grids,
        zip: args.zip,
        out: default_out(r),
        shards: r.shard_count.unwrap_or(1),
    };
    let task = if args.point.is_some() {
        None
    } else {
        array_task()?
    };
    let (plan, selected) = sweep::plan(&spec, args.point, r.shard_index, task)?;
    if r.dry_run {
        print!("{}", sweep::dry_run_report(&plan));
        return Ok(());
    }
    let opts = run_options(r, spec.out.clone(), Shard::WHOLE, interrupt)?;
    let mut done = 0;
    sweep::run(&plan, selected, &opts, &mut |params, outcome| {
        match outcome {
            Outcome::Ran(report) => println!("{params}: {}", report_line(&report)),
            Outcome::Resumed(report) => println!("{params}: resumed, {}", report_line(&report)),
            Outcome::AlreadyComplete(dir) => {
                println!("{params}: {} is already complete", dir.display())
            }
        }
        done += 1;
    })?;
    println!(
        "sweep {}: {done} run(s) done here; {} points listed in {}",
        spec.out.display(),
        plan.index.points.len(),
        spec.out.join(sweep::INDEX).display()
    );
    Ok(())
}

fn status_command(dirs: &[PathBuf], json: bool) -> fokker::Result<()> {
    let runs = run::status::collect(dirs)?;
    if json {
        let text = serde_json::to_string_pretty(&runs)
            .map_err(|e| fokker::Error::Output(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", run::status::table(&runs));
    }
    Ok(())
}

fn resume_command(args: ResumeArgs, interrupt: Arc<AtomicBool>) -> fokker::Result<()> {
    let opts = RunOptions {
        out: args.dir.clone(),
        force: false,
        adapter: args.device.adapter.clone(),
        devices: args.device.devices.clone(),
        progress: args.device.progress,
        layout: args.device.layout(),
        shard: Shard::WHOLE,
        interrupt,
        checkpoint_every: args.device.checkpoint_every()?,
        stop_at: test_stop_at()?,
        fail_device: test_fail_device()?,
        hooks: None,
    };
    print_report(&run::resume(&args.dir, &opts)?);
    Ok(())
}

fn merge_command(out: &std::path::Path, shards: &[PathBuf], force: bool) -> fokker::Result<()> {
    let snapshots = run::merge::merge(out, shards, force)?;
    println!(
        "merged {} shards into {} ({snapshots} snapshots)",
        shards.len(),
        out.display()
    );
    Ok(())
}

fn run_command(args: RunArgs, interrupt: Arc<AtomicBool>) -> fokker::Result<()> {
    let resolved = scenario::load(&args.scenario, &args.set, args.seed)?;
    let out = default_out(&args);
    if args.dry_run {
        print!("{}", run::dry_run_report(&resolved, &out)?);
        return Ok(());
    }
    let opts = run_options(&args, out, shard_of(&args)?, interrupt)?;
    print_report(&run::run(&resolved, &opts)?);
    Ok(())
}

fn sample_command(args: SampleArgs) -> fokker::Result<()> {
    if args.device.devices.is_some() {
        return Err(fokker::Error::Usage(
            "--devices: `fokker sample` runs on one device; choose it with --adapter".into(),
        ));
    }
    let resolved = scenario::load(&args.scenario, &args.set, args.seed)?;
    let opts = run::sample::SampleOptions {
        out: args.out,
        count: args.count,
        burn_in: args.burn_in,
        observables: args.observables,
        force: args.force,
        adapter: args.device.adapter.clone(),
        layout: args.device.layout(),
    };
    print!("{}", run::sample::sample(&resolved, &opts)?);
    Ok(())
}

fn render_command(
    dir: &std::path::Path,
    colormap: Option<String>,
    scale: Option<ScaleArg>,
    range: Option<&str>,
) -> fokker::Result<()> {
    let opts = run::render::RenderOptions {
        colormap,
        scale: scale.map(|s| match s {
            ScaleArg::Linear => fokker::scenario::Scale::Linear,
            ScaleArg::Log => fokker::scenario::Scale::Log,
        }),
        range: range
            .map(run::render::parse_range)
            .transpose()
            .map_err(fokker::Error::Usage)?,
    };
    let written = run::render::render(dir, &opts)?;
    println!("rendered {written} files in {}", dir.display());
    Ok(())
}

fn compare_command(
    a: &std::path::Path,
    b: &std::path::Path,
    out: Option<&std::path::Path>,
) -> fokker::Result<()> {
    let c = run::compare::compare(a, b, out)?;
    print!("{}", run::compare::summary(&c));
    print!("{}", run::compare::table(&c.rows));
    println!("wrote {} and {}", c.csv.display(), c.plot.display());
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
    println!(
        "{:<5}  {:<12}  {:<40}  {:<7}  {:>10}",
        "index", "pci_bus_id", "name", "backend", "memory"
    );
    for a in adapters {
        let memory = a
            .memory_bytes
            .map_or_else(|| "unknown".into(), |b| format!("{} MiB", b >> 20));
        println!(
            "{:<5}  {:<12}  {:<40}  {:<7}  {:>10}",
            a.index,
            a.pci_bus_id.as_deref().unwrap_or("-"),
            a.name,
            a.backend,
            memory
        );
        println!(
            "       {:?}, driver {} {}; max storage binding {} MiB, max buffer {} MiB, {} workgroups per dimension, {} invocations per workgroup",
            a.device_type,
            a.driver,
            a.driver_info,
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension,
            a.max_compute_invocations_per_workgroup
        );
    }
    Ok(())
}
