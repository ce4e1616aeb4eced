//! Scenario text to a plan and a simulation, for GPU tests that drive `Simulation` directly.

use fokker::scenario::{HistogramSpec, Init, Plan};
use fokker::simulation::{Layout, Simulation};
use std::path::{Path, PathBuf};

/// The start and histogram of the particle-by-particle twin comparisons: N(0, 0.5^2) in
/// each of `dim` coordinates, and four bins of coordinate 0 on [-2, 2] (the histogram is
/// not what they compare).
pub fn twin_start(dim: u32) -> (Init, HistogramSpec) {
    let d = dim as usize;
    let init = Init::Gaussian {
        mean: vec![0.0; d],
        std: vec![0.5; d],
    };
    let spec = HistogramSpec {
        axes: vec![0],
        bins: vec![4],
        range: vec![[-2.0, 2.0]],
    };
    (init, spec)
}

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

/// The first step whose normals reach number 2^34 in dimension `dim`: Philox block 2^32,
/// where the 64-bit block's high word changes.
pub fn noise_word_boundary(dim: u32) -> u64 {
    (1u64 << 34) / u64::from(dim)
}

/// `sim` set back to `start` (positions) and `extra` (velocities, if the kind has them) at
/// step `step0` and stepped `steps` steps: the positions and the extra state after.
pub fn run_block(
    sim: &mut Simulation,
    start: &[f32],
    extra: Option<&[f32]>,
    step0: u64,
    steps: u64,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let point = fokker::simulation::ResumePoint {
        step: step0,
        pending: None,
    };
    sim.restore(start, extra, point).expect("restore");
    advance(sim, step0 + steps);
    (
        sim.positions().expect("positions"),
        sim.extra_state().expect("extra state"),
    )
}

/// The largest |gpu - twin| over the coordinates.
pub fn largest_difference(gpu: &[f32], twin: &[f64]) -> f64 {
    gpu.iter()
        .zip(twin)
        .map(|(g, c)| (f64::from(*g) - c).abs())
        .fold(0.0, f64::max)
}
