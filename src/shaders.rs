//! The composed WGSL sources, validated by naga at build time (see build.rs).
include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
