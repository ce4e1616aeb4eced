// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// the counter-based generator of Random123. Rust twin: src/rng.rs.
//
// Counter layout (docs/architecture.md, "RNG counter layout"): (particle index low word,
// block low word, stream | block high word << 8, particle index high word); key = the
// 64-bit seed as (low, high). Blocks are 64-bit, (low, high) here, so a particle's noise
// never repeats; below block 2^32 the counter is the original 32-bit one.
// Each block yields four u32 words, turned into four standard normals by Box–Muller
// on lane pairs (0, 1) and (2, 3).

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// High 32 bits of the 64-bit product a * b (core WGSL has no 64-bit integers), from 16-bit
// halves (Hacker's Delight, mulhu). Philox calls it with a constant `a`, so a's halves fold.
// On a device with SHADER_INT64 `Kernel` swaps this region for common/mul_hi_native.wgsl
// (one 64-bit multiply; the same bits, tests/rng_gpu.rs).
// MUL_HI BEGIN
fn mul_hi(a: u32, b: u32) -> u32 {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let t = a1 * b0 + ((a0 * b0) >> 16u);
    let w = a0 * b1 + (t & 0xFFFFu);
    return a1 * b1 + (t >> 16u) + (w >> 16u);
}
// MUL_HI END

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let hi0 = mul_hi(PHILOX_M0, c.x);
    let lo0 = PHILOX_M0 * c.x;
    let hi1 = mul_hi(PHILOX_M1, c.z);
    let lo1 = PHILOX_M1 * c.z;
    return vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var r = 0u; r < 9u; r = r + 1u) {
        c = philox_round(c, k);
        k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return philox_round(c, k);
}

// u in (0, 1]: never 0, so log(u) is finite (bevy_hanabi's Box–Muller bug).
fn unit_open_closed(w: u32) -> f32 {
    return (f32(w >> 8u) + 1.0) * 5.9604644775390625e-8;
}

// u in [0, 1).
fn unit_closed_open(w: u32) -> f32 {
    return f32(w >> 8u) * 5.9604644775390625e-8;
}

// Four standard normals from one Philox block (Box–Muller on both lane pairs).
fn normals4(w: vec4<u32>) -> vec4<f32> {
    let r0 = sqrt(-2.0 * log(unit_open_closed(w.x)));
    let r1 = sqrt(-2.0 * log(unit_open_closed(w.z)));
    let t0 = turn_cos_sin(w.y);
    let t1 = turn_cos_sin(w.w);
    return vec4<f32>(r0 * t0.x, r0 * t0.y, r1 * t1.x, r1 * t1.y);
}

// (cos, sin) of the angle 2 pi u, u = unit_closed_open(w) = k 2^-24 with k = w >> 8: the
// quarter turn nearest to it, k rounded to a multiple of 2^22, is read from the integer
// (exact), and what is left, |phi| <= pi / 4, goes to polynomials (Cephes' sinf and cosf
// on [-pi/4, pi/4], within an ulp or two); the quarter turn then swaps and negates. One
// shared argument reduction without a division, where sin() and cos() each reduce their
// own: 14% faster L2 on lavapipe. tests/rng_gpu.rs holds it against f64 at every edge.
fn turn_cos_sin(w: u32) -> vec2<f32> {
    let k = (w >> 8u) + 0x200000u;
    let quarter = (k >> 22u) & 3u;
    // phi = (pi / 2) (k mod 2^22 - 2^21) 2^-22, the integer exact in f32.
    let phi = f32(i32(k & 0x3FFFFFu) - 0x200000) * 3.7450703e-7;
    let z = phi * phi;
    let s = phi + phi * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
    let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
    // Quarter q turns the pair (c, s) by q pi / 2: (c, s), (-s, c), (-c, -s), (s, -c).
    let swap = (quarter & 1u) == 1u;
    let cs = select(vec2<f32>(c, s), vec2<f32>(s, c), swap);
    let sign_cos = select(1.0, -1.0, quarter == 1u || quarter == 2u);
    let sign_sin = select(1.0, -1.0, quarter >= 2u);
    return vec2<f32>(sign_cos * cs.x, sign_sin * cs.y);
}

// Global particle index (lo, hi) of local index i in a chunk starting at base (lo, hi).
fn global_index(base: vec2<u32>, i: u32) -> vec2<u32> {
    let lo = base.x + i;
    return vec2<u32>(lo, base.y + select(0u, 1u, lo < base.x));
}

// A block below 2^32 (initial sampling).
fn philox_counter(index: vec2<u32>, block: u32, stream: u32) -> vec4<u32> {
    return vec4<u32>(index.x, block, stream, index.y);
}

// A 64-bit block (low, high) of `stream` < 256: the high word sits above the stream.
fn philox_block_counter(index: vec2<u32>, block: vec2<u32>, stream: u32) -> vec4<u32> {
    return vec4<u32>(index.x, block.x, stream | (block.y << 8u), index.y);
}

// The 64-bit block `block` + k, carrying into the high word (a dispatch may cross 2^32).
fn block_add(block: vec2<u32>, k: u32) -> vec2<u32> {
    let lo = block.x + k;
    return vec2<u32>(lo, block.y + select(0u, 1u, lo < block.x));
}

// `block` + k where the sum keeps block's high word: in the whole-round loops of the
// Langevin, SDE, BAOAB and diffusion kernels, whose dispatches the host never lets cross a
// multiple of 2^32 blocks (or of 2^32 steps) (src/dynamics/blocks.rs, `dispatch_plan`). The
// high word, and with it everything Philox's first round computes from the third counter
// word, is then the same at every round, and the compiler computes it once per dispatch:
// about 4% of the plain Langevin loop's instructions and 6-10% of its time on lavapipe
// (docs/architecture.md, "RNG counter layout").
fn block_in_word(block: vec2<u32>, k: u32) -> vec2<u32> {
    return vec2<u32>(block.x + k, block.y);
}
