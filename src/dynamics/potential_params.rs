//! Packs a [`Potential`] into the `potential_params` array of shaders/common/potential.wgsl.
//! Vectors are zero-padded to 8 entries (the shader's two-vec4 `Point`); derived quantities
//! (log weights, inverse variances) are computed here in f64.

use crate::model::Potential;

fn padded(v: &[f64]) -> [f32; 8] {
    let mut out = [0f32; 8];
    for (o, x) in out.iter_mut().zip(v) {
        *o = *x as f32;
    }
    out
}

/// (POTENTIAL override value, parameter array).
pub fn gpu_potential_params(potential: &Potential) -> (u32, Vec<f32>) {
    match potential {
        Potential::Quadratic { matrix, center } => {
            let mut p = vec![0f32; 64];
            for (i, row) in matrix.iter().enumerate() {
                p[i * 8..i * 8 + 8].copy_from_slice(&padded(row));
            }
            p.extend(padded(center));
            (0, p)
        }
        Potential::DoubleWell => (1, vec![0.0]),
        Potential::MuellerBrown { scale } => (2, vec![*scale as f32]),
        Potential::Mixture(m) => {
            let mut p = vec![m.components() as f32];
            for k in 0..m.components() {
                let log_norm: f64 = m.stds[k].iter().map(|s| s.ln()).sum();
                p.push((m.weights[k].ln() - log_norm) as f32);
                p.extend(padded(&m.means[k]));
                let inv_var: Vec<f64> = m.stds[k].iter().map(|s| 1.0 / (s * s)).collect();
                p.extend(padded(&inv_var));
            }
            (3, p)
        }
    }
}
