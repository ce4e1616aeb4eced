// Mean and covariance by reduction: each workgroup sums ITEMS * WG particles, shifted by a
// host-chosen center c to avoid cancellation, and writes one row of partial sums
//   [sum (x - c) (DIM), sum (x - c)_i (x - c)_j for i <= j (DIM (DIM + 1) / 2), non-finite count]
// which the host adds in f64. Non-finite particles (bit test) are left out of the sums.
// Per particle the sums are vec4 and mat4x4 updates (common/point.wgsl says why: run-time
// indexed private arrays ran several times slower on lavapipe).
// CPU twin: src/observe/moments.rs. Includes common/chunk.wgsl, common/point.wgsl and
// common/state.wgsl; `Chunk` comes from src/gpu/abi.rs.

// Particles per invocation, set by the host (src/observe/moments.rs, `ITEMS`).
override ITEMS: u32 = 128u;

@group(0) @binding(2) var<uniform> center: Point;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
// Per-particle tags of a run with walls or targets (common/boundary.wgsl), TAG_STRIDE words
// each; an absorbed particle (tag TAG_ABSORBED != 0) is left out of the sums and of the
// non-finite count (the host subtracts the absorbed from the count). TAG_STRIDE = 0: no tags.
override TAG_STRIDE: u32 = 0u;
@group(0) @binding(4) var<storage, read> tags: array<u32>;

var<workgroup> scratch: array<f32, 256>;

// The partial sums of one invocation.
struct Sums {
    a: vec4<f32>,
    b: vec4<f32>,
    aa: mat4x4<f32>,
    ab: mat4x4<f32>,
    bb: mat4x4<f32>,
    nonfinite: f32,
}

// u v^T: column j is u v_j, so m[j][i] = u_i v_j.
fn outer(u: vec4<f32>, v: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(u * v.x, u * v.y, u * v.z, u * v.w);
}

fn lane(v: vec4<f32>, i: u32) -> f32 {
    return select(select(v.x, v.y, i == 1u), select(v.z, v.w, i == 3u), i >= 2u);
}

fn column(m: mat4x4<f32>, j: u32) -> vec4<f32> {
    return select(select(m[0], m[1], j == 1u), select(m[2], m[3], j == 3u), j >= 2u);
}

// sum over particles of x_i x_j, i <= j.
fn cross_sum(s: Sums, i: u32, j: u32) -> f32 {
    if (j < 4u) {
        return lane(column(s.aa, j), i);
    }
    if (i < 4u) {
        return lane(column(s.ab, j - 4u), i);
    }
    return lane(column(s.bb, j - 4u), i - 4u);
}

// Adds `value` over the workgroup and stores the total at `at` of the group's row.
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
    let stride = DIM + DIM * (DIM + 1u) / 2u + 1u;
    let zero = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var s = Sums(vec4<f32>(0.0), vec4<f32>(0.0), zero, zero, zero, 0.0);
    for (var item = 0u; item < ITEMS; item = item + 1u) {
        let i = group * ITEMS * WG + item * WG + lid;
        if (i < chunk.count && (TAG_STRIDE == 0u || tags[i * TAG_STRIDE + TAG_ABSORBED] == 0u)) {
            let p = load_point(i);
            if (point_is_finite(p)) {
                let xa = p.a - center.a;
                s.a = s.a + xa;
                s.aa = s.aa + outer(xa, xa);
                if (DIM > 4u) {
                    let xb = p.b - center.b;
                    s.b = s.b + xb;
                    s.ab = s.ab + outer(xa, xb);
                    s.bb = s.bb + outer(xb, xb);
                }
            } else {
                s.nonfinite = s.nonfinite + 1.0;
            }
        }
    }
    let row = group * stride;
    for (var i = 0u; i < DIM; i = i + 1u) {
        reduce_store(lid, select(lane(s.a, i), lane(s.b, i - 4u), i >= 4u), row + i);
    }
    var k = DIM;
    for (var i = 0u; i < DIM; i = i + 1u) {
        for (var j = i; j < DIM; j = j + 1u) {
            reduce_store(lid, cross_sum(s, i, j), row + k);
            k = k + 1u;
        }
    }
    reduce_store(lid, s.nonfinite, row + stride - 1u);
}
