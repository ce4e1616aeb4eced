//! Philox4x32-10, the Rust twin of `shaders/common/philox.wgsl`, and the counter layout
//! every kernel follows.
//!
//! Counter = (global particle index low word, block low word, stream | block high word << 8,
//! particle index high word), key = the 64-bit seed (low word, high word); see
//! docs/architecture.md, "RNG counter layout". Blocks are 64-bit so that a particle's
//! dynamics noise never repeats however many steps it takes (a 32-bit block word wrapped
//! after 2^34 normals); below block 2^32 the counter is the original one, so runs that
//! short keep their values. Indexing is absolute, so the numbers a particle receives
//! depend only on (seed, particle, stream, block): never on workgroup size, chunking,
//! steps fused per dispatch, snapshot placement, resume or sharding.
//!
//! Streams and blocks:
//! - [`STREAM_DYNAMICS`]: normal number g = step * dim + coordinate sits in block g >> 2,
//!   lane g & 3.
//! - [`STREAM_MALA`]: MALA's uniform of step k is word k & 3 of block k >> 2.
//! - [`STREAM_INIT`]: initial sampling. Normals for coordinate c in block c >> 2, lane c & 3;
//!   uniforms for coordinate c in block [`INIT_UNIFORM_BLOCK`] + (c >> 2), lane c & 3; the
//!   word choosing a mixture component or a data row in block [`INIT_CHOICE_BLOCK`], lane 0.
//! - [`STREAM_VELOCITY`]: the underdamped kind's Maxwell–Boltzmann initial velocities,
//!   normal c (coordinate c) in block c >> 2, lane c & 3, so they are independent of the
//!   initial positions (stream 1) and of the dynamics noise (stream 0).
//! - [`STREAM_BRIDGE`]: the Brownian-bridge uniform of first-passage target j at step k is
//!   word j & 3 of block 2 k + (j >> 2).

pub const STREAM_DYNAMICS: u32 = 0;
pub const STREAM_INIT: u32 = 1;
/// SD flow's proxy noise: normal g = step * dim + coordinate, laid out as for dynamics noise.
pub const STREAM_PROXY: u32 = 2;
/// Samples drawn from a kernel flow's mixture target (row r: normals in blocks from 0, the
/// component choice in block [`INIT_CHOICE_BLOCK`]).
pub const STREAM_TARGET: u32 = 4;
/// MALA's accept/reject uniforms (one per step, [`mala_uniform`]); the shaders take the
/// number from src/gpu/abi.rs.
pub const STREAM_MALA: u32 = crate::gpu::abi::STREAM_MALA;
/// Initial velocities (`kind = "underdamped"`), declared in src/gpu/abi.rs for the shader.
pub const STREAM_VELOCITY: u32 = crate::gpu::abi::STREAM_VELOCITY;
/// The Brownian-bridge uniforms of first-passage targets with `bridge = true`
/// ([`bridge_uniform`]), declared in src/gpu/abi.rs for the shader.
pub const STREAM_BRIDGE: u32 = crate::gpu::abi::STREAM_BRIDGE;
pub const INIT_UNIFORM_BLOCK: u32 = 0x8000_0000;
pub const INIT_CHOICE_BLOCK: u32 = 0xC000_0000;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mul_hi_lo(M0, c[0]);
        let (hi1, lo1) = mul_hi_lo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The counter of a block below 2^32 (initial sampling and targets).
pub fn counter(particle: u64, block: u32, stream: u32) -> [u32; 4] {
    block_counter(particle, u64::from(block), stream)
}

/// The counter of 64-bit `block` of `stream` (< 256) for `particle`. The block's high word
/// sits above the stream's 8 bits, so blocks are distinct up to 2^56 (normals up to 2^58).
pub fn block_counter(particle: u64, block: u64, stream: u32) -> [u32; 4] {
    debug_assert!(
        stream < 256,
        "stream {stream} overlaps the block's high word"
    );
    [
        particle as u32,
        block as u32,
        stream | (((block >> 32) as u32) << 8),
        (particle >> 32) as u32,
    ]
}

/// Where the dynamics noise of `step` starts for a particle of dimension `dim`, as the
/// shaders take it: (block low word, block high word, lane) of normal g = step * dim.
pub fn noise_start(step: u64, dim: u32) -> (u32, u32, u32) {
    let g = step * u64::from(dim);
    ((g >> 2) as u32, (g >> 34) as u32, (g & 3) as u32)
}

/// u in (0, 1] from the top 24 bits, exactly as the shader computes it.
pub fn unit_open_closed(w: u32) -> f64 {
    (f64::from(w >> 8) + 1.0) * 2f64.powi(-24)
}

/// u in [0, 1) from the top 24 bits.
pub fn unit_closed_open(w: u32) -> f64 {
    f64::from(w >> 8) * 2f64.powi(-24)
}

/// Four standard normals by Box–Muller on lane pairs (0, 1) and (2, 3), in f64.
/// The shader computes the same formula in f32.
pub fn normals4(w: [u32; 4]) -> [f64; 4] {
    let pair = |a: u32, b: u32| {
        let r = (-2.0 * unit_open_closed(a).ln()).sqrt();
        let t = std::f64::consts::TAU * unit_closed_open(b);
        (r * t.cos(), r * t.sin())
    };
    let (n0, n1) = pair(w[0], w[1]);
    let (n2, n3) = pair(w[2], w[3]);
    [n0, n1, n2, n3]
}

/// MALA's uniform u in (0, 1] for `step` of a particle: word step & 3 of block step >> 2 of
/// stream [`STREAM_MALA`] (its own draw index, so the dynamics normals keep their counters),
/// as shaders/langevin.wgsl takes it.
pub fn mala_uniform(key: [u32; 2], particle: u64, step: u64) -> f64 {
    let words = philox4x32_10(block_counter(particle, step >> 2, STREAM_MALA), key);
    unit_open_closed(words[(step & 3) as usize])
}

/// The bridge's uniform u in [0, 1) for `target` (< 8) at `step` of a particle: word
/// target & 3 of block 2 step + (target >> 2) of stream [`STREAM_BRIDGE`], as
/// shaders/common/boundary.wgsl's `bridge_uniforms` takes it (a passage between the ends of
/// the step is recorded when u < the crossing probability).
pub fn bridge_uniform(key: [u32; 2], particle: u64, step: u64, target: usize) -> f64 {
    let block = 2 * step + (target as u64 >> 2);
    let words = philox4x32_10(block_counter(particle, block, STREAM_BRIDGE), key);
    unit_closed_open(words[target & 3])
}

/// The g-th normal of a particle's stream.
pub fn normal(key: [u32; 2], particle: u64, stream: u32, g: u64) -> f64 {
    normals4(philox4x32_10(block_counter(particle, g >> 2, stream), key))[(g & 3) as usize]
}

/// The dynamics-noise normals a particle receives, block by block, in step order.
/// Holds the current block so that consecutive coordinates cost one Philox call per four.
pub struct NoiseStream {
    key: [u32; 2],
    particle: u64,
    g: u64,
    block: Option<(u64, [f64; 4])>,
}

impl NoiseStream {
    /// Positioned at the first coordinate of `step`.
    pub fn new(key: [u32; 2], particle: u64, step: u64, dim: u32) -> Self {
        Self {
            key,
            particle,
            g: step * u64::from(dim),
            block: None,
        }
    }

    pub fn next_normal(&mut self) -> f64 {
        let b = self.g >> 2;
        let values = match self.block {
            Some((cached, v)) if cached == b => v,
            _ => {
                let v = normals4(philox4x32_10(
                    block_counter(self.particle, b, STREAM_DYNAMICS),
                    self.key,
                ));
                self.block = Some((b, v));
                v
            }
        };
        let n = values[(self.g & 3) as usize];
        self.g += 1;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for Philox4x32-10 (kat_vectors).
    #[test]
    fn known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn unit_intervals_exclude_zero_for_log() {
        assert!(unit_open_closed(0) > 0.0);
        assert_eq!(unit_open_closed(u32::MAX), 1.0);
        assert_eq!(unit_closed_open(0), 0.0);
        assert!(unit_closed_open(u32::MAX) < 1.0);
        assert!(normals4([0, 0, 0, 0]).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn noise_stream_matches_absolute_indexing() {
        let key = key_from_seed(0x1234_5678_9abc_def0);
        for dim in 1..=8u32 {
            let mut s = NoiseStream::new(key, 77, 5, dim);
            for g in 5 * u64::from(dim)..12 * u64::from(dim) {
                assert_eq!(s.next_normal(), normal(key, 77, STREAM_DYNAMICS, g));
            }
        }
    }

    /// Below block 2^32 the counter is the 32-bit layout the known answers were taken with
    /// (so shorter runs keep their values); from block 2^32 on the high word lands above
    /// the stream and the noise goes on without repeating.
    #[test]
    fn blocks_past_the_32_bit_word_do_not_repeat() {
        let key = key_from_seed(0x1234_5678_9abc_def0);
        let particle = 0x0000_0007_0000_0042u64;
        assert_eq!(
            block_counter(particle, 0xFFFF_FFFF, STREAM_PROXY),
            [0x42, 0xFFFF_FFFF, STREAM_PROXY, 7]
        );
        assert_eq!(
            block_counter(particle, (3 << 32) | 5, STREAM_PROXY),
            [0x42, 5, STREAM_PROXY | (3 << 8), 7]
        );
        for stream in [STREAM_DYNAMICS, STREAM_PROXY] {
            for b in [0u64, 1, 2, 0xFFFF_FFFF] {
                let low = philox4x32_10(block_counter(particle, b, stream), key);
                let high = philox4x32_10(block_counter(particle, b + (1 << 32), stream), key);
                assert_ne!(
                    low, high,
                    "stream {stream}: block {b} repeats at {b} + 2^32"
                );
            }
        }
        // Normals g and g +- 2^34 (one lap of a 32-bit block word) differ, in every lane,
        // and the stream carries across the boundary in step order.
        for dim in 1..=8u32 {
            let step = (1u64 << 34) / u64::from(dim) - 3;
            let mut s = NoiseStream::new(key, particle, step, dim);
            for g in step * u64::from(dim)..(step + 6) * u64::from(dim) {
                let n = s.next_normal();
                assert_eq!(n, normal(key, particle, STREAM_DYNAMICS, g));
                assert_ne!(n, normal(key, particle, STREAM_DYNAMICS, g ^ (1 << 34)));
            }
        }
    }

    #[test]
    fn noise_start_splits_the_64_bit_block() {
        assert_eq!(noise_start(5, 3), (3, 0, 3));
        assert_eq!(noise_start(1 << 33, 2), (0, 1, 0));
        assert_eq!(noise_start((1 << 34) / 3, 3), (0xFFFF_FFFF, 0, 3));
        assert_eq!(noise_start((1 << 34) / 3 + 1, 3), (0, 1, 2));
    }

    /// Box–Muller output of the Rust twin is standard Gaussian (mean, variance, KS).
    #[test]
    fn twin_normals_are_standard_gaussian() {
        let key = key_from_seed(99);
        let mut v: Vec<f64> = (0..25_000u64)
            .flat_map(|p| normals4(philox4x32_10(counter(p, 3, STREAM_DYNAMICS), key)))
            .collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "variance {var}");
        v.sort_by(f64::total_cmp);
        let d = v
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let cdf = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
                (cdf - i as f64 / n).abs().max((i as f64 + 1.0) / n - cdf)
            })
            .fold(0.0, f64::max);
        assert!(d * n.sqrt() < 2.6, "KS distance {d}");
    }

    /// MALA's uniforms: four steps per block of their own stream, never the dynamics
    /// normals' words, and in (0, 1].
    #[test]
    fn mala_uniforms_have_their_own_stream() {
        let key = key_from_seed(9);
        for step in [0u64, 1, 2, 3, 4, 1 << 33] {
            let w = philox4x32_10(block_counter(5, step >> 2, STREAM_MALA), key);
            let u = mala_uniform(key, 5, step);
            assert_eq!(u, unit_open_closed(w[(step & 3) as usize]));
            assert!(u > 0.0 && u <= 1.0);
            let normal_words = philox4x32_10(block_counter(5, step >> 2, STREAM_DYNAMICS), key);
            assert_ne!(w, normal_words);
        }
        assert_ne!(STREAM_MALA, STREAM_DYNAMICS);
        assert!(
            ![STREAM_INIT, STREAM_PROXY, STREAM_TARGET, STREAM_VELOCITY].contains(&STREAM_MALA)
        );
    }
}
