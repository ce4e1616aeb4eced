//! Every kernel the examples build is specialised on the host (src/gpu/specialise.rs): naga
//! accepts each composed shader, resolves its overrides and prunes it, so no kernel falls
//! back to the WGSL with overrides (slower to compile on lavapipe, and a sign that the
//! pruning missed a construct).

mod common;

use fokker::simulation::{Layout, Simulation};
use std::path::{Path, PathBuf};

#[test]
fn every_example_kernel_is_specialised() {
    let gpu = common::gpu();
    let files = common::sim::example_scenarios();
    assert!(files.len() >= 20, "the examples are found");
    let count = "particles.count=256".to_string();
    let mut runs: Vec<(PathBuf, Vec<String>)> = files
        .iter()
        .map(|f| (f.clone(), vec![count.clone()]))
        .collect();
    // MALA's own entry point, also between walls.
    let well = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/double_well.toml");
    runs.push((
        well.clone(),
        vec![count.clone(), "dynamics.mala=true".into()],
    ));
    runs.push((
        well,
        vec![
            count.clone(),
            "dynamics.mala=true".into(),
            "boundary.x={ kind = \"reflecting\", low = -3.0, high = 3.0 }".into(),
        ],
    ));
    for (file, overrides) in &runs {
        let resolved = fokker::scenario::load(file, overrides, None)
            .unwrap_or_else(|e| panic!("{} {overrides:?}: {e}", file.display()));
        let plan = &resolved.plan;
        // Building the simulation compiles the initial sampling, the stepper and the
        // observers (the single-step Langevin variant is built when a block needs it).
        Simulation::new(
            &gpu,
            plan,
            resolved.samples.as_ref(),
            resolved.data.as_ref(),
            0,
            plan.particles.count,
            &Layout::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    assert!(gpu.kernel_count() >= 20, "{} kernels", gpu.kernel_count());
    assert_eq!(gpu.unspecialised_kernels(), Vec::<String>::new());
}
