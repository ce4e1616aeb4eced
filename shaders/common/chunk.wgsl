// What every particle kernel shares: the chunk a dispatch works on (src/gpu/ensemble.rs,
// `ChunkUniform`) and the finiteness test.

struct Chunk {
    // Global index of the chunk's first particle (lo, hi) and its particle count.
    base: vec2<u32>,
    count: u32,
    _pad: u32,
}

// NaN and Inf have all exponent bits set; `x != x` would be compiled away.
fn is_finite_bits(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7F800000u) != 0x7F800000u;
}
