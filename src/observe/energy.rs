//! Energy observables per snapshot: mean potential ⟨U⟩, configurational temperature
//! ⟨|∇U|²⟩ / ⟨ΔU⟩ and, for dynamics with velocities, kinetic temperature ⟨Σ_k m_k v_k²⟩ / dim.
//! The GPU reduction (shaders/energy.wgsl, per-workgroup partial sums added in f64 on the
//! host, like moments.rs) and its f64 CPU twin.
//!
//! Both temperatures equal T at equilibrium exp(−U/T) (by parts, ⟨|∇U|²⟩ = T ⟨ΔU⟩ wherever
//! exp(−U/T) ∇U vanishes at infinity; equipartition for the velocities). The sums, not the
//! ratios, are kept (`EnergySums`), so shards pool exactly.

use crate::dynamics::potential_params::gpu_potential_params;
use crate::error::{Error, Result};
use crate::gpu::abi::{ENERGY_MASS, ENERGY_ROW, ENERGY_TIME, POINT_LANES};
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::model::Potential;
use crate::shaders;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Particles each invocation sums before the workgroup reduction (as in moments.rs).
pub const ITEMS: u32 = 128;

/// Sums over the finite particles of U, |∇U|², ΔU and Σ_k m_k v_k² (None: no velocities).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergySums {
    pub count: u64,
    pub potential: f64,
    pub gradient2: f64,
    pub laplacian: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinetic: Option<f64>,
    /// dim, the kinetic temperature's divisor.
    pub dim: u32,
}

impl EnergySums {
    pub fn mean_potential(&self) -> Option<f64> {
        (self.count > 0).then(|| self.potential / self.count as f64)
    }

    /// ⟨|∇U|²⟩ / ⟨ΔU⟩.
    pub fn configurational_temperature(&self) -> Option<f64> {
        (self.count > 0).then(|| self.gradient2 / self.laplacian)
    }

    /// ⟨Σ_k m_k v_k²⟩ / dim.
    pub fn kinetic_temperature(&self) -> Option<f64> {
        let k = self.kinetic?;
        (self.count > 0).then(|| k / (self.count as f64 * f64::from(self.dim)))
    }

    /// The sums of several shards of one ensemble.
    pub fn pool<'a>(parts: impl IntoIterator<Item = &'a EnergySums>) -> Option<EnergySums> {
        let mut it = parts.into_iter();
        let mut out = it.next()?.clone();
        for p in it {
            out.count += p.count;
            out.potential += p.potential;
            out.gradient2 += p.gradient2;
            out.laplacian += p.laplacian;
            out.kinetic = out.kinetic.zip(p.kinetic).map(|(a, b)| a + b);
        }
        Some(out)
    }
}

/// Whether the energy observer applies to `potential`: every one but a WGSL file (whose U
/// and ΔU the program does not know).
pub fn observable(potential: &Potential) -> bool {
    !matches!(potential, Potential::Wgsl(_))
}

pub struct EnergyGpu {
    kernel: Arc<Kernel>,
    args: wgpu::Buffer,
    masses: Option<Vec<f64>>,
    partials: Vec<(wgpu::Buffer, u32)>,
    binds: Vec<wgpu::BindGroup>,
    dim: u32,
    count: u64,
}

/// shaders/energy.wgsl composed for `potential`: an expression's U, gradient and Laplacian
/// generated into its user region and validated by naga (the scenario reader calls this too,
/// so a run never starts with an energy kernel that does not compile).
pub fn energy_source(potential: &Potential) -> Result<std::borrow::Cow<'static, str>, String> {
    match potential {
        Potential::Expr(e) => {
            let functions = [
                ("user_gradient", e.wgsl()),
                ("user_value", e.wgsl_value()),
                ("user_laplacian", e.wgsl_laplacian()),
            ];
            let source = shaders::with_user_functions(shaders::ENERGY, &functions)?;
            shaders::validate(&source)?;
            Ok(std::borrow::Cow::Owned(source))
        }
        Potential::Wgsl(_) => {
            Err("the energy observer has no U or Laplacian for a WGSL potential".into())
        }
        _ => Ok(std::borrow::Cow::Borrowed(shaders::ENERGY)),
    }
}

impl EnergyGpu {
    /// For `potential` (not a WGSL file, see [`observable`]); `velocities` with their
    /// per-axis `masses` add the kinetic sum. `workgroup_size` as in `MomentsGpu::new`.
    pub fn new(
        gpu: &Gpu,
        ensemble: &Ensemble,
        potential: &Potential,
        velocities: Option<(&Ensemble, &[f64])>,
        workgroup_size: u32,
    ) -> Result<EnergyGpu> {
        let wg = workgroup_size.clamp(1, 256).next_power_of_two().min(256);
        let (kind, params) = gpu_potential_params(potential);
        let source = energy_source(potential)
            .map_err(|why| Error::Device(format!("the energy shader did not compose: {why}")))?;
        let kernel = Kernel::new(
            gpu,
            "energy",
            &source,
            &[
                ("DIM", f64::from(ensemble.dim)),
                ("ITEMS", f64::from(ITEMS)),
                ("POTENTIAL", f64::from(kind)),
                ("VELOCITIES", if velocities.is_some() { 1.0 } else { 0.0 }),
                ("TAG_STRIDE", f64::from(ensemble.tag_stride)),
            ],
            wg,
        );
        let params = gpu.storage_with("energy potential params", bytemuck::cast_slice(&params));
        let args = gpu.storage_buffer(
            "energy args",
            (4 * (ENERGY_MASS + POINT_LANES)) as u64,
            wgpu::BufferUsages::COPY_DST,
        );
        let dummy = gpu.storage_with("energy no velocities", &[0u8; 16]);
        let max = gpu.limits.max_compute_workgroups_per_dimension;
        let row = ENERGY_ROW as usize;
        let partials: Vec<(wgpu::Buffer, u32)> = ensemble
            .chunks
            .iter()
            .map(|c| {
                let groups = c.count.div_ceil(ITEMS * wg);
                let (x, y) = crate::gpu::kernel::grid(groups, max);
                (
                    gpu.storage_buffer(
                        "energy partials",
                        ((x * y) as usize * row * 4) as u64,
                        wgpu::BufferUsages::empty(),
                    ),
                    groups,
                )
            })
            .collect();
        let binds = ensemble
            .chunks
            .iter()
            .enumerate()
            .zip(&partials)
            .map(|((i, c), (p, _))| {
                let v = velocities.map_or(&dummy, |(v, _)| &v.chunks[i].state);
                kernel.bind(gpu, &[&c.state, &c.uniform, &args, &params, v, p, &c.tags])
            })
            .collect();
        Ok(EnergyGpu {
            kernel,
            args,
            masses: velocities.map(|(_, m)| m.to_vec()),
            partials,
            binds,
            dim: ensemble.dim,
            count: ensemble.count,
        })
    }

    /// The sums over all particles but the `absorbed` ones (which the kernel leaves out) at
    /// the potential's time `t`.
    pub fn observe(&self, gpu: &Gpu, t: f64, absorbed: u64) -> Result<EnergySums> {
        let mut args = vec![0f32; (ENERGY_MASS + POINT_LANES) as usize];
        args[ENERGY_TIME as usize] = t as f32;
        if let Some(m) = &self.masses {
            for (dst, src) in args[ENERGY_MASS as usize..].iter_mut().zip(m) {
                *dst = *src as f32;
            }
        }
        gpu.queue
            .write_buffer(&self.args, 0, bytemuck::cast_slice(&args));
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for (bind, (_, groups)) in self.binds.iter().zip(&self.partials) {
                self.kernel.dispatch(
                    &mut pass,
                    bind,
                    *groups,
                    gpu.limits.max_compute_workgroups_per_dimension,
                );
            }
        }
        gpu.submit(encoder, Work::Observing);
        let row = ENERGY_ROW as usize;
        let mut s = [0f64; 4];
        let mut nonfinite = 0u64;
        for (buffer, groups) in &self.partials {
            let bytes = gpu.read_bytes(buffer, 0, (*groups as usize * row * 4) as u64)?;
            for r in bytemuck::cast_slice::<u8, f32>(&bytes).chunks_exact(row) {
                for (a, v) in s.iter_mut().zip(r) {
                    *a += f64::from(*v);
                }
                nonfinite += r[row - 1] as u64;
            }
        }
        Ok(EnergySums {
            count: self.count - absorbed - nonfinite,
            potential: s[0],
            gradient2: s[1],
            laplacian: s[2],
            kinetic: self.masses.as_ref().map(|_| s[3]),
            dim: self.dim,
        })
    }
}

/// CPU twin of shaders/energy.wgsl in f64: `positions` (and `velocities`, with per-axis
/// `masses`) row-major, dim coordinates each, U at time `t`.
pub fn energy_cpu(
    potential: &Potential,
    positions: &[f64],
    velocities: Option<(&[f64], &[f64])>,
    dim: u32,
    t: f64,
) -> EnergySums {
    let d = dim as usize;
    let mut out = EnergySums {
        count: 0,
        potential: 0.0,
        gradient2: 0.0,
        laplacian: 0.0,
        kinetic: velocities.map(|_| 0.0),
        dim,
    };
    for (i, x) in positions.chunks_exact(d).enumerate() {
        if x.iter().any(|v| !v.is_finite()) {
            continue;
        }
        out.count += 1;
        out.potential += potential.value_at(x, t);
        out.gradient2 += potential
            .gradient_at(x, t)
            .iter()
            .map(|g| g * g)
            .sum::<f64>();
        out.laplacian += potential.laplacian_at(x, t);
        if let (Some(k), Some((v, m))) = (out.kinetic.as_mut(), velocities) {
            *k += (0..d)
                .map(|a| m[a] * v[i * d + a] * v[i * d + a])
                .sum::<f64>();
        }
    }
    out
}
