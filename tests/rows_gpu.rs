//! Particle rows read and written as whole vectors (src/gpu/rows.rs: DIM = 2, 4, 8) against
//! one float at a time: every example scenario and the double well in 4 and 8 dimensions
//! step to the same positions and velocities, bit for bit, and observe the same histogram
//! and moments. Both views load and store the same floats at the same places and compute
//! the same operations on them, so nothing may differ; a read of the wrong float or a store
//! that leaves one out shows in the positions at once.
//!
//! The energy sums are not compared bit for bit: lavapipe contracted a multiply and an add of
//! |grad U|^2 differently in the two compilations (in a 2D run the configurational
//! temperature moved in its eighth digit), which is the driver's freedom, not a different
//! read. tests/energy_gpu.rs holds them against exact values with the vector rows.

mod common;

use fokker::gpu::Gpu;
use fokker::simulation::{Layout, Simulation};
use std::path::{Path, PathBuf};

/// What a run leaves behind after `steps` steps: positions, velocities (or other extra
/// state), histogram counts and the moments' bits.
#[derive(Debug, PartialEq)]
struct Outcome {
    positions: Vec<u32>,
    extra: Option<Vec<u32>>,
    histogram: fokker::observe::histogram::HistogramCounts,
    moments: Vec<u64>,
}

fn run(gpu: &Gpu, resolved: &fokker::scenario::Resolved, steps: u64) -> Outcome {
    let plan = &resolved.plan;
    let mut sim = Simulation::new(
        gpu,
        plan,
        resolved.samples.as_ref(),
        resolved.data.as_ref(),
        0,
        plan.particles.count,
        &Layout::default(),
    )
    .expect("simulation");
    common::sim::advance(&mut sim, steps);
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<u32>>();
    let obs = sim.observe().expect("observe");
    let m = &obs.moments;
    Outcome {
        positions: bits(sim.positions().expect("positions")),
        extra: sim.extra_state().expect("extra state").map(bits),
        histogram: obs.histogram,
        moments: m
            .mean
            .iter()
            .chain(&m.cov)
            .map(|v| v.to_bits())
            .chain([m.count, m.nonfinite])
            .collect(),
    }
}

#[test]
fn whole_vector_rows_step_and_observe_as_single_floats() {
    let vector = common::gpu();
    let scalar = common::gpu().with_scalar_rows();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = common::sim::example_scenarios();
    let count = "particles.count=256".to_string();
    let mut runs: Vec<(PathBuf, Vec<String>)> = files
        .iter()
        .map(|f| (f.clone(), vec![count.clone()]))
        .collect();
    let well = root.join("examples/double_well.toml");
    for dim in [4, 8] {
        let zeros = vec!["0.0"; dim].join(", ");
        runs.push((
            well.clone(),
            vec![
                count.clone(),
                format!("particles.dim={dim}"),
                format!("particles.init={{ kind = \"gaussian\", mean = [{zeros}], std = 1.0 }}"),
            ],
        ));
    }
    let mut vectorised = std::collections::BTreeSet::new();
    for (file, overrides) in &runs {
        let resolved = fokker::scenario::load(file, overrides, None)
            .unwrap_or_else(|e| panic!("{} {overrides:?}: {e}", file.display()));
        let dim = resolved.plan.particles.dim;
        if fokker::gpu::rows::DIMS.contains(&dim) {
            vectorised.insert(dim);
        }
        // Two blocks of a few steps (the second from an odd step where the dynamics allows
        // single steps), short enough for the kernel flows' N^2 work.
        let steps = resolved.plan.dynamics.steps().min(7);
        let (a, b) = (
            run(&vector, &resolved, steps),
            run(&scalar, &resolved, steps),
        );
        assert_eq!(
            a,
            b,
            "{} {overrides:?}: vector rows against single floats",
            file.display()
        );
    }
    assert_eq!(
        vectorised.into_iter().collect::<Vec<_>>(),
        vec![2, 4, 8],
        "every vectorised DIM is run"
    );
    // The two devices did compile different kernels: the steppers and the observers that
    // read rows through the accessors went whole-vector on one and not on the other.
    let labels = vector.vector_row_kernels();
    for kind in ["langevin", "moments", "energy", "histogram"] {
        assert!(
            labels.iter().any(|l| l.contains(kind)),
            "no {kind} kernel with vector rows among {labels:?}"
        );
    }
    assert_eq!(scalar.vector_row_kernels(), Vec::<String>::new());
}
