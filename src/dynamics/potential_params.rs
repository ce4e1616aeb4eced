//! Packs a [`Potential`] into the `potential_params` array of shaders/common/potential.wgsl.
//! Vectors are zero-padded to 8 entries (the shader's two-vec4 `Point`); derived quantities
//! (log weights, inverse variances) are computed here in f64.

use crate::gpu::abi::{self, POINT_LANES};
use crate::model::Potential;

const LANES: usize = POINT_LANES as usize;
// The mixture's per-component order below: log normaliser, mean, inverse variances.
const _: () = assert!(
    abi::MIXTURE_COMPONENT_FLOATS as usize == 1 + 2 * LANES
        && abi::MIXTURE_MEAN == 1
        && abi::MIXTURE_INV_VAR as usize == 1 + LANES
);

fn padded(v: &[f64]) -> [f32; LANES] {
    let mut out = [0f32; LANES];
    for (o, x) in out.iter_mut().zip(v) {
        *o = *x as f32;
    }
    out
}

/// (POTENTIAL override value, parameter array).
pub fn gpu_potential_params(potential: &Potential) -> (u32, Vec<f32>) {
    match potential {
        Potential::Quadratic { matrix, center } => {
            let mut p = vec![0f32; abi::QUADRATIC_CENTER as usize];
            for (i, row) in matrix.iter().enumerate() {
                p[i * LANES..(i + 1) * LANES].copy_from_slice(&padded(row));
            }
            p.extend(padded(center));
            (abi::POTENTIAL_QUADRATIC, p)
        }
        Potential::DoubleWell => (abi::POTENTIAL_DOUBLE_WELL, vec![0.0]),
        Potential::MuellerBrown { scale } => (abi::POTENTIAL_MUELLER_BROWN, vec![*scale as f32]),
        Potential::Mixture(m) => {
            let mut p = vec![m.components() as f32];
            for k in 0..m.components() {
                let log_norm: f64 = m.stds[k].iter().map(|s| s.ln()).sum();
                p.push((m.weights[k].ln() - log_norm) as f32);
                p.extend(padded(&m.means[k]));
                let inv_var: Vec<f64> = m.stds[k].iter().map(|s| 1.0 / (s * s)).collect();
                p.extend(padded(&inv_var));
            }
            (abi::POTENTIAL_MIXTURE, p)
        }
    }
}
