//! The GPU ABI, declared once: every uniform layout and every enumeration that the host and
//! the WGSL shaders share (docs/architecture.md, "GPU ABI").
//!
//! build.rs includes this file with `#[path]`, writes each struct and constant below as WGSL
//! at the head of the shader compositions that use it, and checks with naga that the WGSL
//! layout (member offsets and size) equals the Rust one, so a layout change is made here and
//! nowhere else. Only what is written in this file reaches the shaders: keep it free of
//! crate paths (build.rs compiles it alone, with bytemuck).

use std::mem::{offset_of, size_of};

/// The WGSL type of a host field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WgslType {
    U32,
    F32,
    Vec2U32,
    Vec2F32,
    /// `n` words of padding, one `u32` member each (`name0`, `name1`, ...): a uniform's
    /// arrays need a 16-byte stride, so padding cannot be an array.
    Pad(usize),
}

/// One field of a shared struct: its name, WGSL type and byte offset on the host.
#[derive(Clone, Copy, Debug)]
pub struct WgslField {
    pub name: &'static str,
    pub ty: WgslType,
    pub offset: usize,
}

/// A shared struct as the shaders see it: WGSL name, fields and host size in bytes.
#[derive(Clone, Copy, Debug)]
pub struct WgslStruct {
    pub name: &'static str,
    pub fields: &'static [WgslField],
    pub size: usize,
}

macro_rules! wgsl_type {
    (u32) => {
        WgslType::U32
    };
    (f32) => {
        WgslType::F32
    };
    ([u32; 2]) => {
        WgslType::Vec2U32
    };
    ([f32; 2]) => {
        WgslType::Vec2F32
    };
    ([u32; $n:literal]) => {
        WgslType::Pad($n)
    };
}

/// Declares a `#[repr(C)]` Pod struct and its WGSL description `WGSL` (named `$wgsl` in the
/// shaders), with a compile-time check of its size.
macro_rules! gpu_struct {
    (
        $(#[doc = $doc:literal])*
        $name:ident as $wgsl:literal, $size:literal bytes {
            $($(#[doc = $fdoc:literal])* $field:ident: $ty:tt,)*
        }
    ) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $field: $ty,)*
        }
        const _: () = assert!(size_of::<$name>() == $size);
        impl $name {
            pub const WGSL: WgslStruct = WgslStruct {
                name: $wgsl,
                fields: &[$(WgslField {
                    name: stringify!($field),
                    ty: wgsl_type!($ty),
                    offset: offset_of!($name, $field),
                }),*],
                size: size_of::<$name>(),
            };
        }
    };
}

/// Declares `u32` constants and the list [`CONSTANTS`] that build.rs writes into every shader.
macro_rules! gpu_constants {
    ($($(#[doc = $doc:literal])* $name:ident = $value:expr;)*) => {
        $($(#[doc = $doc])* pub const $name: u32 = $value;)*
        /// Every shared constant, (name, value): WGSL `const NAME: u32 = value;`.
        pub const CONSTANTS: &[(&str, u32)] = &[$((stringify!($name), $name)),*];
    };
}

gpu_struct! {
    /// The per-chunk uniform every particle kernel reads (src/gpu/ensemble.rs).
    ChunkUniform as "Chunk", 16 bytes {
        /// Global index of the chunk's first particle, (low, high) words.
        base: [u32; 2],
        count: u32,
        _pad: u32,
    }
}

gpu_struct! {
    /// One dispatch of overdamped Langevin (shaders/langevin.wgsl) or of the general SDE
    /// (shaders/sde.wgsl, which ignores noise_scale).
    LangevinStep as "Step", 64 bytes {
        key: [u32; 2],
        /// Philox block and lane of the first normal of the first step: g = step0 * DIM.
        block0: u32,
        lane0: u32,
        steps: u32,
        dt: f32,
        noise_scale: f32,
        /// This dispatch covers the chunk's particles first .. first + span (a slice, so that
        /// a long block of steps on many particles is split into submissions of bounded
        /// length).
        first: u32,
        span: u32,
        /// High word of block0 (docs/architecture.md, "RNG counter layout").
        block0_hi: u32,
        /// Time of the dispatch's first step (step s is at t0 + s dt), for potentials and
        /// temperatures that depend on time.
        t0: f32,
        /// Under a step-size schedule (langevin.wgsl's DT_TABLE), the params-array index of
        /// the dispatch's first step's (dt, t, noise scale).
        table0: u32,
        /// The dispatch's first step, (low, high) words: MALA's uniform of step k is lane
        /// k & 3 of block k >> 2 of stream STREAM_MALA (src/rng.rs).
        step0: u32,
        step0_hi: u32,
        /// 1 / T (MALA's acceptance ratio; MALA runs at a constant T > 0).
        inv_temperature: f32,
        _pad: [u32; 1],
    }
}

gpu_struct! {
    /// One dispatch of the heavy-ball gradient flow (shaders/heavy_ball.wgsl).
    HeavyBallStep as "Step", 32 bytes {
        steps: u32,
        dt: f32,
        friction: f32,
        first: u32,
        span: u32,
        /// Time of the dispatch's first step (step s is at t0 + s dt).
        t0: f32,
        _pad: [u32; 2],
    }
}

gpu_struct! {
    /// One dispatch of underdamped Langevin by BAOAB (shaders/underdamped.wgsl); the
    /// per-axis coefficients (dt / 2m, the O step's noise scale, the initial velocities'
    /// law) are a storage array, computed on the host in f64.
    UnderdampedStep as "Step", 48 bytes {
        key: [u32; 2],
        /// Philox block and lane of the first normal of the first step: g = step0 * DIM.
        block0: u32,
        lane0: u32,
        steps: u32,
        dt: f32,
        /// The O step's velocity factor c = exp(-gamma dt).
        ou_c: f32,
        first: u32,
        span: u32,
        /// High word of block0 (docs/architecture.md, "RNG counter layout").
        block0_hi: u32,
        /// Time of the dispatch's first step (step s is at t0 + s dt).
        t0: f32,
        _pad: [u32; 1],
    }
}

gpu_struct! {
    /// One dispatch of forward noising, the reverse SDE or the probability flow
    /// (shaders/diffusion.wgsl).
    DiffusionStep as "Step", 48 bytes {
        key: [u32; 2],
        block0: u32,
        lane0: u32,
        steps: u32,
        first: u32,
        span: u32,
        /// Coefficient entry of this dispatch's first step.
        table0: u32,
        /// Row of particle i in the score buffers is i - aux_base.
        aux_base: u32,
        /// High word of block0 (docs/architecture.md, "RNG counter layout").
        block0_hi: u32,
        _pad: [u32; 2],
    }
}

gpu_struct! {
    /// One stage of a kernel flow or interacting-particle step (shaders/kernel_flows.wgsl).
    KernelFlowStep as "Step", 64 bytes {
        key: [u32; 2],
        /// Philox block and lane of the step's first normal: g = step * DIM.
        block0: u32,
        lane0: u32,
        /// sigma (sd_flow), beta (mmd_flow), sqrt(2 T dt) (interaction).
        noise_scale: f32,
        /// eta (sd_flow), eta / h^2 (mmd_flow), eta / N (svgd), dt (interaction).
        a: f32,
        /// 1 / N (mmd_flow), 2 / h (svgd), kappa / N (interaction).
        b: f32,
        /// 1 / M (mmd_flow), 1 / eps^2 (svgd with samples).
        c: f32,
        /// High word of block0 (docs/architecture.md, "RNG counter layout").
        block0_hi: u32,
        /// Time of the step (interaction: step dt; 0 for the flows whose potential is a
        /// fixed target).
        t: f32,
        /// Interaction with walls or targets (common/boundary.wgsl): the step's index (low
        /// word) and the steps of the dispatch (1).
        step0: u32,
        steps: u32,
        /// The step's high word (common/boundary.wgsl reads it with the bridge's counter).
        step0_hi: u32,
        _pad: [u32; 3],
    }
}

gpu_struct! {
    /// Initial sampling (shaders/init.wgsl).
    InitArgs as "InitArgs", 16 bytes {
        key: [u32; 2],
        /// Table rows (samples).
        rows: u32,
        /// 1: particle i takes row i (the particle count equals the rows).
        in_order: u32,
    }
}

gpu_struct! {
    /// A histogram of one or two axes (shaders/histogram.wgsl).
    HistUniform as "Hist", 48 bytes {
        axes: [u32; 2],
        bins: [u32; 2],
        lo: [f32; 2],
        /// bins / (hi - lo) per axis.
        scale: [f32; 2],
        hi: [f32; 2],
        naxes: u32,
        /// Particles per invocation (`Binning::items`).
        items: u32,
    }
}

gpu_struct! {
    /// One window of a kernel sum (shaders/kernel_sum.wgsl).
    KernelSumParams as "Params", 32 bytes {
        first: u32,
        count: u32,
        /// Sources in this window.
        rows: u32,
        out_first: u32,
        query_scale: f32,
        /// log2(e) / (2 v): squared distance to exponent in base 2.
        c2: f32,
        /// 1 / (2 v): squared distance to exponent in base e.
        ce: f32,
        /// FIRST_WINDOW | LAST_WINDOW.
        flags: u32,
    }
}

gpu_constants! {
    /// Coordinates a shader's `Point` holds (two vec4s); shorter vectors are zero-padded.
    POINT_LANES = 8;

    /// `override POTENTIAL` (shaders/common/potential.wgsl), written by
    /// src/dynamics/potential_params.rs.
    POTENTIAL_QUADRATIC = 0;
    POTENTIAL_DOUBLE_WELL = 1;
    POTENTIAL_MUELLER_BROWN = 2;
    POTENTIAL_MIXTURE = 3;
    /// A user expression: `user_gradient` generated into common/potential.wgsl's user
    /// region (src/model/expr).
    POTENTIAL_EXPR = 4;
    /// Quadratic parameters: the matrix (POINT_LANES x POINT_LANES, row-major), then the
    /// center from this float on.
    QUADRATIC_CENTER = POINT_LANES * POINT_LANES;
    /// Mixture parameters: K, then per component this many floats: log w_k - sum_i log
    /// sigma_ki, mu_k (from MIXTURE_MEAN), 1 / sigma_k^2 (from MIXTURE_INV_VAR).
    MIXTURE_COMPONENT_FLOATS = 1 + 2 * POINT_LANES;
    MIXTURE_MEAN = 1;
    MIXTURE_INV_VAR = 1 + POINT_LANES;

    /// The energy observer (shaders/energy.wgsl, src/observe/energy.rs): `energy_args`
    /// holds t at ENERGY_TIME and the masses (POINT_LANES, zero-padded) from ENERGY_MASS;
    /// each workgroup writes ENERGY_ROW partial sums (U, |grad U|^2, Delta U, m v^2,
    /// non-finite count).
    ENERGY_TIME = 0;
    ENERGY_MASS = 1;
    ENERGY_ROW = 5;

    /// Philox stream of MALA's accept/reject uniforms (src/rng.rs): step k's uniform is
    /// lane k & 3 of block k >> 2, so the dynamics normals (stream 0) keep their counters.
    STREAM_MALA = 3;
    /// Philox stream of the underdamped kind's Maxwell–Boltzmann initial velocities
    /// (src/rng.rs): normal c of a particle in block c >> 2, lane c & 3.
    STREAM_VELOCITY = 5;
    /// Philox stream of the Brownian-bridge uniforms of first-passage targets with
    /// `bridge = true` (src/rng.rs, `bridge_uniform`): target j at step k takes word j & 3
    /// of block 2 k + (j >> 2).
    STREAM_BRIDGE = 6;

    /// `override INIT` (shaders/init.wgsl), written by src/dynamics/init.rs.
    INIT_POINT = 0;
    INIT_GAUSSIAN = 1;
    INIT_UNIFORM = 2;
    INIT_MIXTURE = 3;
    INIT_SAMPLES = 4;

    /// `override SCORE` (shaders/diffusion.wgsl): no score (forward), the Gaussian mixture's
    /// closed form, or read from the empirical-score buffers.
    SCORE_NONE = 0;
    SCORE_MIXTURE = 1;
    SCORE_BUFFERS = 2;
    /// vec4s per step in the diffusion coefficient table: (A, B, C, -),
    /// (alpha(t), s^2(t), -, -), (A2, C2, alpha(t2), s^2(t2)).
    DIFFUSION_COEFF_VEC4S = 3;
    /// vec4s per mixture component and time in the diffusion mixture table: the means (2),
    /// the inverse variances (2), the log normaliser and padding (1).
    DIFFUSION_COMPONENT_VEC4S = 5;
    /// vec4s of the diffusion coefficient uniform: 1024 steps (a block's longest) of
    /// DIFFUSION_COEFF_VEC4S.
    DIFFUSION_COEFF_WINDOW = 3072;
    /// vec4s of the diffusion mixture uniform (64 KiB, the uniform binding size every WebGPU
    /// device offers): the mixture table of a block whose steps fit, read as broadcasts.
    DIFFUSION_MIXTURE_WINDOW = 4096;

    /// `override MODE` (shaders/kernel_flows.wgsl), chosen in src/dynamics/kernel_flows.rs.
    FLOW_SD = 0;
    FLOW_SD_APPROXIMATE = 1;
    FLOW_MMD = 2;
    FLOW_SVGD = 3;
    FLOW_INTERACTION = 4;
    /// Interacting particles with a pair potential written as an expression: the step's
    /// sum is a KERNEL_USER pair sum.
    FLOW_PAIR = 5;
    /// `override STAGE` (shaders/kernel_flows.wgsl): before and after the step's kernel sums.
    STAGE_PRE = 0;
    STAGE_POST = 1;

    /// Tallies after a histogram's bins (shaders/histogram.wgsl): finite but in no bin,
    /// non-finite, then per axis a below (HIST_BELOW + 2 a) and an above (HIST_ABOVE + 2 a).
    HIST_OUTSIDE = 0;
    HIST_NONFINITE = 1;
    HIST_BELOW = 2;
    HIST_ABOVE = 3;
    HIST_TALLIES = 6;

    /// Floats in one window of kernel-sum sources: 64 KiB, the uniform binding size every
    /// WebGPU device offers.
    WINDOW_FLOATS = 16384;
    /// `KernelSumParams::flags` bits.
    FIRST_WINDOW = 1;
    LAST_WINDOW = 2;
    /// `override KERNEL` (shaders/kernel_sum.wgsl): Gaussian-kernel weighted means, or the
    /// pair sum of a pair potential's generated `user_pair` (src/dynamics/kernel_sum.rs).
    KERNEL_GAUSSIAN = 0;
    KERNEL_USER = 1;

    /// Walls and regions (shaders/common/boundary.wgsl, written by
    /// src/observe/first_passage.rs `spec_vec4s`): a uniform array of BOUNDS_VEC4S vec4s.
    /// vec4s 0, 1: the walls' lows (coordinates 0..3, 4..7), 2, 3: highs, 4, 5: widths, 6, 7:
    /// 1 / widths (free axes: -f32::MAX, f32::MAX, 1, 1); then from BOUNDS_REGIONS per region
    /// (the targets', then the basins') REGION_VEC4S vec4s: lows (2; a half-space's normal),
    /// highs (2), and (kind, absorb, offset, 1 / |normal|^2). Which axes reflect or wrap are
    /// the REFLECT_AXES and PERIODIC_AXES bit masks (overrides), so those branches are
    /// compile-time.
    BOUNDS_REGIONS = 8;
    REGION_VEC4S = 5;
    MAX_REGIONS = 16;
    BOUNDS_VEC4S = 8 + 5 * 16;
    REGION_BOX = 0;
    REGION_HALF_SPACE = 1;
    /// Per-particle tags (`TAG_STRIDE` = 1 + DIM + targets u32 words): the step after which
    /// the particle was absorbed (0: alive) at TAG_ABSORBED, the i32 winding count of each
    /// axis from TAG_WINDING, the first-passage step of each target from TAG_WINDING + DIM
    /// (PASSAGE_NEVER: not yet).
    TAG_ABSORBED = 0;
    TAG_WINDING = 1;
    PASSAGE_NEVER = 0xFFFF_FFFF;
    /// With basins (`BASINS` > 0) the last tag word is the index of the last basin visited
    /// (BASIN_NONE: none yet); the basins' regions follow the targets' in the spec, and the
    /// stepper's counter buffer holds from BASIN_COUNTERS, as (low, high) word pairs, the
    /// steps spent with each basin as the last one (BASINS pairs), then the transitions
    /// a -> b (pair a BASINS + b).
    BASIN_NONE = 0xFFFF_FFFF;
    BASIN_COUNTERS = 4;

    /// Invocations per workgroup of the particle kernels unless the scenario says otherwise.
    DEFAULT_WORKGROUP_SIZE = 64;
}
