//! A compute pipeline specialised by pipeline-overridable constants, and dispatch sizing.

use super::context::Gpu;
use std::sync::Arc;

/// What makes two pipelines the same: the label, the whole composed source, every override
/// value (by its bits) and the workgroup size. The map hashes all of it and compares it in
/// full, so two different sources never share a pipeline, whatever their lengths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelKey {
    label: String,
    source: String,
    entry: String,
    constants: Vec<(String, u64)>,
    workgroup_size: u32,
}

impl KernelKey {
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn new(
        label: &str,
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
        workgroup_size: u32,
    ) -> Self {
        KernelKey {
            label: label.to_string(),
            source: source.to_string(),
            entry: entry.to_string(),
            constants: constants
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_bits()))
                .collect(),
            workgroup_size,
        }
    }
}

pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    /// The group-0 bindings the specialised module still uses (its layout has only those;
    /// `bind` leaves the others out); None: every binding the caller gives.
    bindings: Option<Vec<u32>>,
    /// Invocations per workgroup (the shader's `WG` override).
    pub workgroup_size: u32,
    /// Whether the particle rows are read and written as whole vectors (src/gpu/rows.rs).
    vector_rows: bool,
}

impl Kernel {
    /// The pipeline for `source` specialised by `constants` (the shader's `override` values;
    /// `WG` is set from `workgroup_size`). Compiled once per device and specialisation, then
    /// shared: building a pipeline costs tens of milliseconds on a software adapter.
    pub fn new(
        gpu: &Gpu,
        label: &str,
        source: &str,
        constants: &[(&str, f64)],
        workgroup_size: u32,
    ) -> Arc<Kernel> {
        Self::with_entry(gpu, label, source, "main", constants, workgroup_size)
    }

    /// [`Kernel::new`] for the entry point `entry` of `source`. Variants of one shader that
    /// differ in much code (MALA's Metropolis step) are entry points of their own rather
    /// than branches on an override: the driver then never sees the other variant's code,
    /// where a branch on an override reached lavapipe whole (inlined, then optimised, before
    /// it was found dead: ten times the compile time of the plain Langevin kernel).
    pub fn with_entry(
        gpu: &Gpu,
        label: &str,
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
        workgroup_size: u32,
    ) -> Arc<Kernel> {
        let key = KernelKey::new(label, source, entry, constants, workgroup_size);
        let cache = || {
            gpu.kernels
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if let Some(kernel) = cache().get(&key) {
            return kernel.clone();
        }
        // Compiled without the lock, so that threads making different kernels at once
        // (`Simulation::new`) compile them side by side; should two make the same one, the
        // first stored is kept.
        let kernel = Arc::new(Kernel::compile(
            gpu,
            label,
            source,
            entry,
            constants,
            workgroup_size,
        ));
        cache().entry(key).or_insert(kernel).clone()
    }

    fn compile(
        gpu: &Gpu,
        label: &str,
        source: &str,
        entry: &str,
        constants: &[(&str, f64)],
        workgroup_size: u32,
    ) -> Kernel {
        let native = gpu
            .adapter
            .native_int64
            .then(|| super::mul_hi::swap(source, crate::shaders::MUL_HI_NATIVE))
            .flatten();
        let source = native.as_deref().unwrap_or(source);
        // Whole-vector rows where DIM allows them (src/gpu/rows.rs).
        let dim = constants
            .iter()
            .find(|(name, value)| *name == "DIM" && value.fract() == 0.0);
        let vector = dim
            .filter(|_| gpu.vector_rows)
            .and_then(|&(_, dim)| super::rows::vectorise(source, dim as u32));
        let source = vector.as_deref().unwrap_or(source);
        let mut all: Vec<(&str, f64)> = constants.to_vec();
        all.push(("WG", f64::from(workgroup_size)));
        // Specialised on the host (src/gpu/specialise.rs); should naga refuse, the driver
        // gets the WGSL and the overrides as before (the same program, compiled slower).
        let (shader, constants, bindings) = match super::specialise::specialise(source, entry, &all)
        {
            Ok(module) => {
                let bindings = super::specialise::bindings(&module);
                (
                    wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(module)),
                    Vec::new(),
                    Some(bindings),
                )
            }
            Err(why) => {
                eprintln!("warning: kernel {label} ({entry}) not specialised on the host: {why}");
                (wgpu::ShaderSource::Wgsl(source.into()), all, None)
            }
        };
        let module = gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: shader,
            });
        let pipeline = gpu
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            });
        let layout = pipeline.get_bind_group_layout(0);
        Kernel {
            pipeline,
            layout,
            bindings,
            workgroup_size,
            vector_rows: vector.is_some(),
        }
    }

    /// Whether the particle rows are read and written as whole vectors (src/gpu/rows.rs).
    pub fn vector_rows(&self) -> bool {
        self.vector_rows
    }

    /// Whether the driver got the module specialised on the host (src/gpu/specialise.rs)
    /// rather than the WGSL with overrides (naga refused to specialise it).
    pub fn specialised(&self) -> bool {
        self.bindings.is_some()
    }

    pub fn bind(&self, gpu: &Gpu, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        self.bind_resources(gpu, None, buffers.iter().map(|b| b.as_entire_binding()))
    }

    /// A bind group of `resources` at bindings 0, 1, ...; those the specialised module no
    /// longer uses (its layout has only the others) are left out.
    pub fn bind_resources<'a>(
        &self,
        gpu: &Gpu,
        label: Option<&str>,
        resources: impl IntoIterator<Item = wgpu::BindingResource<'a>>,
    ) -> wgpu::BindGroup {
        let used = |i: u32| self.bindings.as_ref().is_none_or(|b| b.contains(&i));
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .into_iter()
            .enumerate()
            .filter(|(i, _)| used(*i as u32))
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
            })
            .collect();
        gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label,
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Encodes and submits one dispatch of this kernel over `invocations` invocations (one
    /// per particle) with `bind`, in its own command buffer, timed as `work`.
    pub fn submit_once(
        &self,
        gpu: &Gpu,
        bind: &wgpu::BindGroup,
        invocations: u32,
        work: super::timer::Work,
    ) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.dispatch(
                &mut pass,
                bind,
                invocations.div_ceil(self.workgroup_size),
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        }
        gpu.submit(encoder, work);
    }

    /// Records one dispatch covering `workgroups` groups, folded into 2D past the
    /// per-dimension limit (the shader recovers the linear index from num_workgroups).
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        bind: &wgpu::BindGroup,
        workgroups: u32,
        max_per_dim: u32,
    ) {
        let (x, y) = grid(workgroups, max_per_dim);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }
}

/// (x, y) with x <= max_per_dim and x * y >= workgroups, y as small as possible.
pub fn grid(workgroups: u32, max_per_dim: u32) -> (u32, u32) {
    if workgroups <= max_per_dim {
        return (workgroups.max(1), 1);
    }
    let y = workgroups.div_ceil(max_per_dim);
    (workgroups.div_ceil(y), y)
}

#[cfg(test)]
mod tests {
    use super::{KernelKey, grid};

    #[test]
    fn sources_of_equal_length_have_different_keys() {
        let (a, b) = ("const C: f32 = 1.0;", "const C: f32 = 2.0;");
        assert_eq!(a.len(), b.len());
        let key = |source: &str, dim: f64, wg: u32| {
            KernelKey::new("k", source, "main", &[("DIM", dim)], wg)
        };
        assert_eq!(key(a, 2.0, 64), key(a, 2.0, 64));
        assert_ne!(key(a, 2.0, 64), key(b, 2.0, 64));
        assert_ne!(key(a, 2.0, 64), key(a, 3.0, 64));
        assert_ne!(key(a, 2.0, 64), key(a, 2.0, 32));
        assert_ne!(
            key(a, 2.0, 64),
            KernelKey::new("other", a, "main", &[("DIM", 2.0)], 64)
        );
        assert_ne!(
            key(a, 2.0, 64),
            KernelKey::new("k", a, "main_mala", &[("DIM", 2.0)], 64)
        );
    }

    #[test]
    fn grid_covers_and_respects_the_limit() {
        for &(n, max) in &[
            (1, 65535),
            (65535, 65535),
            (65536, 65535),
            (1_000_003, 65535),
            (15, 4),
        ] {
            let (x, y) = grid(n, max);
            assert!(x <= max && y <= max);
            assert!(u64::from(x) * u64::from(y) >= u64::from(n));
            assert!(u64::from(x) * u64::from(y - 1) < u64::from(n));
        }
    }
}
