//! The 64-bit multiply of Philox (common/philox.wgsl) on devices that have one: the composed
//! shaders carry the emulated `mul_hi` (16-bit halves, core WGSL) between two marker lines,
//! and on a device with `SHADER_INT64` [`with_native_mul_hi`] swaps it for
//! common/mul_hi_native.wgsl before compilation. Both give the same bits (tests/rng_gpu.rs).
//! build.rs includes this file too and validates both variants of every shader.

pub const BEGIN: &str = "// MUL_HI BEGIN\n";
pub const END: &str = "// MUL_HI END\n";

/// `source` with its MUL_HI region replaced by `native` (the text of
/// common/mul_hi_native.wgsl); `None` when the source has no region (no Philox).
pub fn swap(source: &str, native: &str) -> Option<String> {
    let begin = source.find(BEGIN)?;
    let end = begin + source[begin..].find(END)? + END.len();
    Some(format!("{}{native}{}", &source[..begin], &source[end..]))
}
