// What every particle kernel shares besides the chunk a dispatch works on (`Chunk`, declared
// by src/gpu/abi.rs as ChunkUniform): the finiteness test.

// NaN and Inf have all exponent bits set; `x != x` would be compiled away.
fn is_finite_bits(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7F800000u) != 0x7F800000u;
}
