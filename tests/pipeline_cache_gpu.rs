//! The pipeline cache tells sources apart by their whole text, not by their length.

mod common;

use fokker::gpu::Kernel;
use std::sync::Arc;

const ONE: &str = "@group(0) @binding(0) var<storage, read_write> out: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main() { out[0] = 1.0; }
";
const TWO: &str = "@group(0) @binding(0) var<storage, read_write> out: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main() { out[0] = 2.0; }
";

#[test]
fn sources_of_equal_length_get_their_own_pipelines() {
    let gpu = common::gpu();
    assert_eq!(ONE.len(), TWO.len());
    let one = Kernel::new(&gpu, "cache test", ONE, &[], 1);
    let two = Kernel::new(&gpu, "cache test", TWO, &[], 1);
    assert!(!Arc::ptr_eq(&one, &two));
    assert!(Arc::ptr_eq(
        &one,
        &Kernel::new(&gpu, "cache test", ONE, &[], 1)
    ));
    for (kernel, want) in [(&one, 1.0f32), (&two, 2.0)] {
        let out = gpu.storage_buffer("out", 4, wgpu::BufferUsages::empty());
        let bind = kernel.bind(&gpu, &[&out]);
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            kernel.dispatch(
                &mut pass,
                &bind,
                1,
                gpu.limits.max_compute_workgroups_per_dimension,
            );
        }
        gpu.queue.submit([encoder.finish()]);
        let bytes = gpu.read_bytes(&out, 0, 4).expect("readback");
        assert_eq!(bytemuck::pod_read_unaligned::<f32>(&bytes), want);
        gpu.check().expect("no device errors");
    }
}
