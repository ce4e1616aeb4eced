//! Packs a [`Potential`] into the `potential_params` array of shaders/common/potential.wgsl.
//! Derived quantities (log weights, inverse variances) are computed here in f64.

use crate::model::Potential;

/// (POTENTIAL override value, parameter array).
pub fn gpu_potential_params(potential: &Potential, dim: u32) -> (u32, Vec<f32>) {
    let d = dim as usize;
    match potential {
        Potential::Quadratic { matrix, center } => {
            let mut p: Vec<f32> = matrix
                .iter()
                .flat_map(|r| r.iter().map(|&v| v as f32))
                .collect();
            p.extend(center.iter().map(|&v| v as f32));
            (0, p)
        }
        Potential::DoubleWell => (1, vec![0.0]),
        Potential::MuellerBrown { scale } => (2, vec![*scale as f32]),
        Potential::Mixture(m) => {
            let mut p = vec![m.components() as f32];
            for k in 0..m.components() {
                let log_norm: f64 = m.stds[k].iter().map(|s| s.ln()).sum();
                p.push((m.weights[k].ln() - log_norm) as f32);
                p.extend(m.means[k][..d].iter().map(|&v| v as f32));
                p.extend(m.stds[k][..d].iter().map(|&s| (1.0 / (s * s)) as f32));
            }
            (3, p)
        }
    }
}
