//! Initial distributions: the GPU sampler (shaders/init.wgsl) and its f64 CPU twin.

use crate::error::{Error, Result};
use crate::gpu::abi::{self, InitArgs};
use crate::gpu::timer::Work;
use crate::gpu::{Ensemble, Gpu, Kernel};
use crate::rng::{self, INIT_CHOICE_BLOCK, INIT_UNIFORM_BLOCK, STREAM_INIT};
use crate::scenario::Init;
use crate::scenario::data::SampleTable;
use crate::shaders;

/// (INIT override value, parameter array) for shaders/init.wgsl.
fn gpu_init_params(init: &Init, samples: Option<&SampleTable>) -> (u32, Vec<f32>) {
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    match init {
        Init::Point { at } => (abi::INIT_POINT, f(at)),
        Init::Gaussian { mean, std } => (abi::INIT_GAUSSIAN, [f(mean), f(std)].concat()),
        Init::Uniform { low, high } => {
            let width: Vec<f64> = low.iter().zip(high).map(|(l, h)| h - l).collect();
            (abi::INIT_UNIFORM, [f(low), f(&width)].concat())
        }
        Init::Mixture(m) => {
            let mut p = vec![m.components() as f32];
            let mut acc = 0.0;
            for w in &m.weights {
                acc += w;
                p.push(acc as f32);
            }
            for k in 0..m.components() {
                p.extend(f(&m.means[k]));
                p.extend(f(&m.stds[k]));
            }
            (abi::INIT_MIXTURE, p)
        }
        Init::Samples { .. } => (
            abi::INIT_SAMPLES,
            samples.map(|s| s.values.clone()).unwrap_or_default(),
        ),
    }
}

fn rows_of(init: &Init, samples: Option<&SampleTable>) -> Result<u64> {
    match init {
        Init::Samples { path, .. } => samples.map(|s| s.rows as u64).ok_or_else(|| Error::Data {
            path: path.clone(),
            reason: "sample table was not loaded".into(),
        }),
        _ => Ok(0),
    }
}

/// Samples every particle of `ensemble` from `init` (Philox stream 1; see src/rng.rs).
/// `total` is the particle count of the whole run (all shards): particle i takes row i of a
/// sample table exactly when `total` equals the number of rows.
pub fn initialize(
    gpu: &Gpu,
    ensemble: &Ensemble,
    init: &Init,
    samples: Option<&SampleTable>,
    total: u64,
    seed: u64,
    workgroup_size: u32,
) -> Result<()> {
    let (kind, params) = gpu_init_params(init, samples);
    let rows = rows_of(init, samples)?;
    let params_bytes = params.len() as u64 * 4;
    if params_bytes > gpu.limits.max_storage_buffer_binding_size {
        return Err(Error::Device(format!(
            "the initial sample table needs {params_bytes} bytes, more than the adapter's \
             storage-binding limit of {} bytes",
            gpu.limits.max_storage_buffer_binding_size
        )));
    }
    let kernel = Kernel::new(
        gpu,
        "init",
        shaders::INIT,
        &[("DIM", f64::from(ensemble.dim)), ("INIT", f64::from(kind))],
        workgroup_size,
    );
    let args = InitArgs {
        key: rng::key_from_seed(seed),
        rows: rows as u32,
        in_order: u32::from(rows == total),
    };
    let args = gpu.uniform_with("init args", bytemuck::bytes_of(&args));
    let params = gpu.storage_with("init params", bytemuck::cast_slice(&params));
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for c in &ensemble.chunks {
            let bind = kernel.bind(gpu, &[&c.state, &c.uniform, &args, &params]);
            kernel.dispatch(
                &mut pass,
                &bind,
                c.count.div_ceil(workgroup_size),
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        }
    }
    gpu.submit(encoder, Work::Other);
    gpu.wait()
}

/// CPU twin of shaders/init.wgsl in f64: positions of particles `first .. first + count`.
pub fn init_cpu(
    init: &Init,
    samples: Option<&SampleTable>,
    dim: u32,
    first: u64,
    count: u64,
    total: u64,
    seed: u64,
) -> Vec<f64> {
    let key = rng::key_from_seed(seed);
    let d = dim as usize;
    let words = |p: u64, block: u32| rng::philox4x32_10(rng::counter(p, block, STREAM_INIT), key);
    let normal = |p: u64, c: usize| rng::normal(key, p, STREAM_INIT, c as u64);
    let uniform = |p: u64, c: usize| {
        rng::unit_closed_open(words(p, INIT_UNIFORM_BLOCK + (c as u32 >> 2))[c & 3])
    };
    let mut out = Vec::with_capacity(count as usize * d);
    for p in first..first + count {
        for c in 0..d {
            out.push(match init {
                Init::Point { at } => at[c],
                Init::Gaussian { mean, std } => mean[c] + std[c] * normal(p, c),
                Init::Uniform { low, high } => low[c] + (high[c] - low[c]) * uniform(p, c),
                Init::Mixture(m) => {
                    let u = rng::unit_closed_open(words(p, INIT_CHOICE_BLOCK)[0]);
                    let mut acc = 0.0;
                    let mut k = 0;
                    while k + 1 < m.components() {
                        acc += m.weights[k];
                        if u < acc {
                            break;
                        }
                        k += 1;
                    }
                    m.means[k][c] + m.stds[k][c] * normal(p, c)
                }
                Init::Samples { .. } => {
                    let table = samples.expect("samples are loaded with the plan");
                    let row = if table.rows as u64 == total {
                        p as usize
                    } else {
                        ((u64::from(words(p, INIT_CHOICE_BLOCK)[0]) * table.rows as u64) >> 32)
                            as usize
                    };
                    f64::from(table.values[row * d + c])
                }
            });
        }
    }
    out
}
