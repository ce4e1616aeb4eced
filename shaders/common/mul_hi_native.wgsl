// High 32 bits of the 64-bit product a * b by one native 64-bit multiply: the body of
// common/philox.wgsl's MUL_HI region on devices with SHADER_INT64 (see `Kernel`).
fn mul_hi(a: u32, b: u32) -> u32 {
    return u32((u64(a) * u64(b)) >> 32u);
}
