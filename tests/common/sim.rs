//! Scenario text to a plan and a simulation, for GPU tests that drive `Simulation` directly.

use fokker::scenario::Plan;
use fokker::simulation::{Layout, Simulation};
use std::path::{Path, PathBuf};

/// The plan of scenario `text` (panics with the scenario's error).
pub fn plan(text: &str) -> Plan {
    match fokker::scenario::resolve_str(text, "t.toml", Path::new(""), &[], None) {
        Ok(r) => r.plan,
        Err(e) => panic!("{e}"),
    }
}

/// The whole ensemble of `plan` on `gpu`, with the default layout.
pub fn simulation<'g>(gpu: &'g fokker::gpu::Gpu, plan: &Plan) -> Simulation<'g> {
    Simulation::new(
        gpu,
        plan,
        None,
        None,
        0,
        plan.particles.count,
        &Layout::default(),
    )
    .expect("simulation")
}

/// Steps `sim` to `step` without interruptions.
pub fn advance(sim: &mut Simulation, step: u64) {
    sim.advance_to(step, |_| Ok(()), &|| false)
        .expect("advance");
}

/// Every scenario file under examples/, sorted.
pub fn example_scenarios() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &mut out,
    );
    out.sort();
    out
}
