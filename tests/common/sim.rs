//! Scenario text to a plan and a simulation, for GPU tests that drive `Simulation` directly.

use fokker::scenario::Plan;
use fokker::simulation::{Layout, Simulation};
use std::path::Path;

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
