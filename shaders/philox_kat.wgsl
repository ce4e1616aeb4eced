// Test kernel: Philox4x32-10 and its normals for host-given (counter, key) pairs, so the
// WGSL generator is checked against Random123's known answers and the Rust twin.

override WG: u32 = 64u;

struct Case {
    counter: vec4<u32>,
    key: vec2<u32>,
    _pad: vec2<u32>,
}

struct Answer {
    words: vec4<u32>,
    normals: vec4<f32>,
}

@group(0) @binding(0) var<storage, read> cases: array<Case>;
@group(0) @binding(1) var<storage, read_write> answers: array<Answer>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&cases)) {
        return;
    }
    let w = philox4x32_10(cases[i].counter, cases[i].key);
    answers[i] = Answer(w, normals4(w));
}

// Box–Muller alone: the cases' counters taken as the Philox words themselves, so that a test
// can choose the angles (every quarter-turn edge of `turn_cos_sin`).
@compute @workgroup_size(WG)
fn main_normals(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&cases)) {
        return;
    }
    let w = cases[i].counter;
    answers[i] = Answer(w, normals4(w));
}
