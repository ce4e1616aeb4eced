//! Workload L2 of BENCHMARKS.md: overdamped Langevin in the 2D double well, T = 1,
//! dt = 1e-3, all particles from the origin, a 128 x 128 histogram on [-2.5, 2.5]^2 after
//! the last step. Prints one JSON line with the fields of shared/peers/langevin_peer.py.
//!
//!     cargo bench --bench l2 -- --particles 1000000 --steps 100 [--adapter software]
//!
//! `seconds` is the whole job: allocation and initial upload, stepping, histogram and its
//! readback. Adapter start-up and shader compilation are reported apart (`startup_seconds`),
//! as the JAX peer excludes its compile.
//!
//! `--potential expr` runs the same double well written as an expression,
//! "(x^2 - 1)^2 + 0.5*y^2" (gradient derived, WGSL generated and validated by naga), and
//! reports the generation + validation time as `codegen_seconds` (benches/compare_expr.sh
//! puts both side by side).
//!
//! `--mala` times the same job twice in one process, plain Euler–Maruyama and then with
//! `mala = true` (Metropolis-adjusted: a second potential value and gradient per step and a
//! uniform from Philox), alternating, best of `--repeat` (3) each, and reports both times
//! and `mala_ratio` = MALA / plain (the target is at most 1.6), with the measured
//! acceptance rate.
//!
//! `--boundary` times the same job twice in one process, plain and with walls and
//! first-passage bookkeeping (a reflecting x in [-2, 2], a periodic y in [-2.5, 2.5), a
//! recording target x >= 1 and a recording half-space x + y >= 2: every step folds, wraps and
//! tests two regions, and the tags are read back at the snapshot), alternating, best of
//! `--repeat` (3) each, and reports `boundary_ratio` = bounded / plain (the target is at
//! most 1.15). `--setup` picks other walls and targets: `issue` (the example: a
//! reflecting x in [-3, 3], a periodic y in [0, 2 pi), an absorbing target 0.8 <= x <= 3),
//! `walls` (reflecting x and y in [-2, 2], an absorbing target x >= 1), and for a breakdown
//! `reflect1`, `reflect2`, `periodic1`, `target` (recording) and `absorb` (one part each).
//!
//! `--wg N` sets the workgroup size (default 64), `--fused-steps N` the steps per dispatch,
//! `--mala-carry true|false` whether MALA carries U and grad U from the accepted proposal
//! or evaluates them at every step (default: carry).
//!
//! `--kind underdamped` runs the same workload with velocities: underdamped Langevin by
//! BAOAB (`kind = "underdamped"`, gamma = 1, m = 1, Maxwell initial velocities), the job
//! benches/baoab_peer.py does (benches/compare_baoab.sh puts them side by side).

use fokker::gpu::{AdapterChoice, Gpu};
use fokker::model::Potential;
use fokker::scenario::*;
use fokker::simulation::{Layout, Simulation};
use std::time::Instant;

/// The double well written as an expression (the built-in's U exactly).
fn expression_double_well() -> Potential {
    let source = fokker::model::expr::PotentialSource {
        expr: "(x^2 - 1)^2 + 0.5*y^2".into(),
        params: Default::default(),
        dim: 2,
    };
    match fokker::model::expr::ExprPotential::new(source) {
        Ok(p) => Potential::Expr(p),
        Err(e) => panic!("the double-well expression does not compile: {}", e.error),
    }
}

fn l2_plan(
    particles: u64,
    steps: u64,
    seed: u64,
    temperature: f64,
    potential: &Potential,
    mala: bool,
    underdamped: bool,
) -> Plan {
    let dynamics = if underdamped {
        DynamicsPlan::Underdamped(fokker::dynamics::underdamped::UnderdampedPlan {
            potential: potential.clone(),
            temperature,
            gamma: 1.0,
            mass: vec![1.0, 1.0],
            initial_velocity: fokker::dynamics::underdamped::InitialVelocity::Maxwell,
            dt: 1e-3,
            steps,
            t_end: steps as f64 * 1e-3,
        })
    } else {
        DynamicsPlan::Langevin(fokker::dynamics::langevin::LangevinPlan {
            potential: potential.clone(),
            temperature: fokker::model::Temperature::Constant(temperature),
            dt: 1e-3.into(),
            steps,
            t_end: steps as f64 * 1e-3,
            mala,
        })
    };
    Plan {
        name: Some("L2".into()),
        seed,
        boundary: Default::default(),
        particles: ParticlesPlan {
            count: particles,
            dim: 2,
            init: Init::Point { at: vec![0.0, 0.0] },
        },
        dynamics,
        output: OutputPlan {
            every_steps: None,
            histogram: HistogramSpec {
                axes: vec![0, 1],
                bins: vec![128, 128],
                range: vec![[-2.5, 2.5], [-2.5, 2.5]],
            },
            heatmap: HeatmapSpec {
                colormap: "viridis".into(),
                scale: Scale::Log,
            },
            particles: ParticlesOutput::None,
            gif: false,
            trajectories: 0,
            reference: None,
            marginals: Vec::new(),
        },
    }
}

/// The walls and targets of `--boundary` (see the module doc): `setup` is "heavy" (the
/// default), "issue" or "walls".
fn l2_boundary(setup: &str) -> Boundary {
    let reflecting = Wall::Reflecting {
        low: -2.0,
        high: 2.0,
    };
    let right = |absorb| PassageTarget {
        name: "right".into(),
        region: Region::Box {
            intervals: vec![Some([1.0, 10.0]), None],
        },
        absorb,
        bridge: false,
    };
    match setup {
        "heavy" => Boundary {
            walls: vec![
                reflecting,
                Wall::Periodic {
                    low: -2.5,
                    high: 2.5,
                },
            ],
            first_passage: vec![
                right(false),
                PassageTarget {
                    name: "corner".into(),
                    region: Region::HalfSpace {
                        normal: vec![1.0, 1.0],
                        offset: 2.0,
                    },
                    absorb: false,
                    bridge: false,
                },
            ],
            basins: Vec::new(),
        },
        "issue" => Boundary {
            walls: vec![
                Wall::Reflecting {
                    low: -3.0,
                    high: 3.0,
                },
                Wall::Periodic {
                    low: 0.0,
                    high: std::f64::consts::TAU,
                },
            ],
            first_passage: vec![PassageTarget {
                name: "right_well".into(),
                region: Region::Box {
                    intervals: vec![Some([0.8, 3.0]), None],
                },
                absorb: true,
                bridge: false,
            }],
            basins: Vec::new(),
        },
        "walls" => Boundary {
            walls: vec![reflecting, reflecting],
            first_passage: vec![right(true)],
            basins: Vec::new(),
        },
        "reflect2" => Boundary {
            walls: vec![reflecting, reflecting],
            first_passage: vec![],
            basins: Vec::new(),
        },
        "reflect1" => Boundary {
            walls: vec![reflecting, Wall::Free],
            first_passage: vec![],
            basins: Vec::new(),
        },
        "periodic1" => Boundary {
            walls: vec![
                Wall::Free,
                Wall::Periodic {
                    low: -2.5,
                    high: 2.5,
                },
            ],
            first_passage: vec![],
            basins: Vec::new(),
        },
        "target" => Boundary {
            walls: vec![],
            first_passage: vec![right(false)],
            basins: Vec::new(),
        },
        "absorb" => Boundary {
            walls: vec![],
            first_passage: vec![right(true)],
            basins: Vec::new(),
        },
        other => panic!("--setup {other}: heavy, issue or walls"),
    }
}

/// One timed job (allocation, stepping, the snapshot's readback), with the `--boundary`
/// walls and targets when `walls`.
fn bounded_job(
    gpu: &Gpu,
    mut plan: Plan,
    layout: &Layout,
    walls: Option<&str>,
) -> fokker::Result<(f64, fokker::simulation::Observation)> {
    if let Some(setup) = walls {
        plan.boundary = l2_boundary(setup);
    }
    let (particles, steps) = (plan.particles.count, plan.dynamics.steps());
    let t1 = Instant::now();
    let mut sim = Simulation::new(gpu, &plan, None, None, 0, particles, layout)?;
    sim.advance_to(steps, |_| Ok(()), &|| false)?;
    let obs = sim.observe()?;
    Ok((t1.elapsed().as_secs_f64(), obs))
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| {
            v.parse::<f64>()
                .ok()
                .map(|f| f.to_string())
                .or(Some(v.clone()))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The value after `name`, when given and parsed.
fn optional_arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() -> fokker::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let particles: u64 = arg(&args, "--particles", 1_000_000u64);
    let steps: u64 = arg(&args, "--steps", 100u64);
    let seed: u64 = arg(&args, "--seed", 0u64);
    let temperature: f64 = arg(&args, "--temperature", 1.0f64);
    let adapter: AdapterChoice = arg(&args, "--adapter", AdapterChoice::Auto);
    let layout = Layout {
        fused_steps: optional_arg(&args, "--fused-steps"),
        workgroup_size: arg(&args, "--wg", Layout::default().workgroup_size),
        mala_carry: optional_arg(&args, "--mala-carry"),
        ..Layout::default()
    };

    let written: String = arg(&args, "--potential", "builtin".to_string());
    let (potential, codegen) = match written.as_str() {
        "expr" => {
            let t = Instant::now();
            let p = expression_double_well();
            let temperature = fokker::model::Temperature::Constant(temperature);
            if let Err(why) = fokker::dynamics::potential_params::potential_shader(
                fokker::shaders::LANGEVIN,
                &p,
                Some(&temperature),
            ) {
                panic!("the generated shader does not validate: {why}");
            }
            (p, t.elapsed().as_secs_f64())
        }
        _ => (Potential::DoubleWell, 0.0),
    };

    let with_mala = args.iter().any(|a| a == "--mala");
    let with_boundary = args.iter().any(|a| a == "--boundary");
    let kind: String = arg(&args, "--kind", "langevin".to_string());
    let underdamped = match kind.as_str() {
        "langevin" => false,
        "underdamped" if !with_mala => true,
        "underdamped" => panic!("--mala is for --kind langevin"),
        other => panic!("--kind {other}: langevin or underdamped"),
    };
    let workload = if underdamped { "BAOAB" } else { "L2" };

    let t0 = Instant::now();
    let gpu = Gpu::open(&adapter)?;
    // Compile every pipeline once on a tiny ensemble (Mesa caches the result).
    for mala in [false, with_mala] {
        let warm = l2_plan(256, 2, seed, temperature, &potential, mala, underdamped);
        let mut sim = Simulation::new(&gpu, &warm, None, None, 0, 256, &layout)?;
        sim.advance_to(2, |_| Ok(()), &|| false)?;
        sim.observe()?;
    }
    let startup = t0.elapsed().as_secs_f64();

    let job = |mala: bool| -> fokker::Result<(f64, fokker::simulation::Observation)> {
        let plan = l2_plan(
            particles,
            steps,
            seed,
            temperature,
            &potential,
            mala,
            underdamped,
        );
        bounded_job(&gpu, plan, &layout, None)
    };
    if with_boundary {
        let repeat: u32 = arg(&args, "--repeat", 3u32);
        let setup: String = arg(&args, "--setup", "heavy".to_string());
        let (mut plain, mut bounded) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..repeat.max(1) {
            for walls in [false, true] {
                let plan = l2_plan(
                    particles,
                    steps,
                    seed,
                    temperature,
                    &potential,
                    false,
                    false,
                );
                let t = bounded_job(&gpu, plan, &layout, walls.then_some(setup.as_str()))?.0;
                if walls {
                    bounded = bounded.min(t);
                } else {
                    plain = plain.min(t);
                }
            }
        }
        println!(
            "{}",
            serde_json::json!({
                "impl": "fokker",
                "workload": "L2",
                "particles": particles,
                "steps": steps,
                "plain_seconds": (plain * 1e4).round() / 1e4,
                "boundary_seconds": (bounded * 1e4).round() / 1e4,
                "boundary_ratio": (bounded / plain * 1e3).round() / 1e3,
                "setup": setup,
                "adapter": format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
            })
        );
        return Ok(());
    }
    if with_mala {
        // Alternated, best of `--repeat` each, so that load from other processes on the
        // machine falls on both alike.
        let repeat: u32 = arg(&args, "--repeat", 3u32);
        let (mut seconds, mut mala_seconds) = (f64::INFINITY, f64::INFINITY);
        let mut mala_obs = None;
        for _ in 0..repeat.max(1) {
            seconds = seconds.min(job(false)?.0);
            let (t, obs) = job(true)?;
            mala_seconds = mala_seconds.min(t);
            mala_obs = Some(obs);
        }
        let mala_obs = mala_obs.expect("at least one run");
        let accepted = mala_obs.accepted.unwrap_or(0);
        println!(
            "{}",
            serde_json::json!({
                "impl": "fokker",
                "workload": "L2",
                "particles": particles,
                "steps": steps,
                "plain_seconds": (seconds * 1e4).round() / 1e4,
                "mala_seconds": (mala_seconds * 1e4).round() / 1e4,
                "mala_ratio": (mala_seconds / seconds * 1e3).round() / 1e3,
                "acceptance_rate": accepted as f64 / (particles as f64 * steps as f64),
                "potential": written,
                "adapter": format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
            })
        );
        return Ok(());
    }
    let (seconds, obs) = job(false)?;
    println!(
        "{}",
        serde_json::json!({
            "impl": "fokker",
            "workload": workload,
            "particles": particles,
            "steps": steps,
            "seconds": (seconds * 1e4).round() / 1e4,
            "particle_steps_per_s": particles as f64 * steps as f64 / seconds,
            "in_range": obs.histogram.in_range(),
            "startup_seconds": (startup * 1e4).round() / 1e4,
            "kind": kind,
            "potential": written,
            "codegen_seconds": (codegen * 1e5).round() / 1e5,
            "adapter": format!("{} ({})", gpu.adapter.name, gpu.adapter.backend),
            "native_int64": gpu.adapter.native_int64,
        })
    );
    Ok(())
}
