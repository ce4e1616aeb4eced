// Energy observables by reduction (src/observe/energy.rs): each workgroup sums, over ITEMS *
// WG finite particles, U(x, t), |grad U(x, t)|^2, Delta U(x, t) and sum_k m_k v_k^2 (the
// velocities' binding read only where VELOCITIES is 1), and writes one row
//   [sum U, sum |grad U|^2, sum Delta U, sum m v^2, non-finite count]
// which the host adds in f64. `energy_args` holds t at ENERGY_TIME and the masses (8) from
// ENERGY_MASS. Includes common/chunk.wgsl, common/point.wgsl, common/state.wgsl and
// common/potential.wgsl.

override ITEMS: u32 = 128u;
override POTENTIAL: u32 = 1u;
override VELOCITIES: u32 = 0u;

@group(0) @binding(2) var<storage, read> energy_args: array<f32>;
@group(0) @binding(3) var<storage, read> potential_params: array<f32>;
@group(0) @binding(4) var<storage, read> velocity: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;
// Per-particle tags of a run with walls or targets (common/boundary.wgsl), TAG_STRIDE words
// each; an absorbed particle (tag TAG_ABSORBED != 0) is left out of the sums and of the
// non-finite count (the host subtracts the absorbed from the count). TAG_STRIDE = 0: no tags.
override TAG_STRIDE: u32 = 0u;
@group(0) @binding(6) var<storage, read> tags: array<u32>;

var<workgroup> scratch: array<f32, 256>;

fn reduce_store(lid: u32, value: f32, at: u32) {
    scratch[lid] = value;
    workgroupBarrier();
    for (var width = WG / 2u; width > 0u; width = width / 2u) {
        if (lid < width) {
            scratch[lid] = scratch[lid] + scratch[lid + width];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[at] = scratch[0];
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = wid.x + wid.y * nwg.x;
    let quadratic = potential_quadratic();
    let t = energy_args[ENERGY_TIME];
    let mass = Point(
        vec4<f32>(energy_args[ENERGY_MASS], energy_args[ENERGY_MASS + 1u], energy_args[ENERGY_MASS + 2u], energy_args[ENERGY_MASS + 3u]),
        vec4<f32>(energy_args[ENERGY_MASS + 4u], energy_args[ENERGY_MASS + 5u], energy_args[ENERGY_MASS + 6u], energy_args[ENERGY_MASS + 7u]),
    );
    var su = 0.0;
    var sg = 0.0;
    var sl = 0.0;
    var sk = 0.0;
    var bad = 0.0;
    for (var item = 0u; item < ITEMS; item = item + 1u) {
        let i = group * ITEMS * WG + item * WG + lid;
        if (i < chunk.count && (TAG_STRIDE == 0u || tags[i * TAG_STRIDE + TAG_ABSORBED] == 0u)) {
            let p = load_point(i);
            if (point_is_finite(p)) {
                su = su + potential_value(quadratic, p, t);
                let g = gradient(quadratic, p, t);
                sg = sg + dot(g.a, g.a) + dot(g.b, g.b);
                sl = sl + potential_laplacian(quadratic, p, t);
                if (VELOCITIES == 1u) {
                    let v = read_velocity(i * DIM);
                    sk = sk + dot(mass.a * v.a, v.a) + dot(mass.b * v.b, v.b);
                }
            } else {
                bad = bad + 1.0;
            }
        }
    }
    let row = group * ENERGY_ROW;
    reduce_store(lid, su, row);
    reduce_store(lid, sg, row + 1u);
    reduce_store(lid, sl, row + 2u);
    reduce_store(lid, sk, row + 3u);
    reduce_store(lid, bad, row + 4u);
}
