//! The histogram observer (shaders/histogram.wgsl) against its CPU twin, count for count, in
//! both of its binnings: global atomics and per-workgroup private bins flushed at the end
//! (the whole grid at once, or tile by tile),
//! on scattered data and on data in runs (consecutive particles of an invocation in one bin,
//! added as one count).
//!
//! Exactness: every coordinate is a multiple of 2^-10 below 8 in magnitude, and the ranges
//! are [-4, 4] with 16 bins and [-2, 2] with 8 (scale 2 = bins / width, a power of two). The
//! kernel's f32 (v - lo) * scale is then exact (the difference has at most 14 significant
//! bits), so its bin is the twin's f64 bin for every particle, edges included: any
//! difference in a count is a defect, not rounding.

mod common;

use fokker::gpu::Ensemble;
use fokker::gpu::abi::TAG_ABSORBED;
use fokker::observe::histogram::{Binning, CopyOrder};
use fokker::observe::{HistogramCounts, HistogramGpu, phase_histogram_cpu};
use fokker::scenario::HistogramSpec;

const DIM: u32 = 3;

/// splitmix64: the test's own reproducible integers.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `count` rows of DIM coordinates k / 1024 with |k| <= 5120, so some fall outside the
/// ranges; every 101st row has exact range edges, every 211th a NaN and every 223rd an Inf.
fn coordinates(count: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let edges = [-4.0f32, 4.0, -2.0, 2.0, 0.0, 3.5];
    (0..count)
        .flat_map(|i| {
            let mut row: Vec<f32> = (0..DIM)
                .map(|_| (next(&mut s) % 10241) as f32 / 1024.0 - 5.0)
                .collect();
            if i % 101 == 0 {
                for (d, v) in row.iter_mut().enumerate() {
                    *v = edges[(i / 101 + d) % edges.len()];
                }
            }
            if i % 211 == 0 {
                row[(i / 211) % DIM as usize] = f32::NAN;
            }
            if i % 223 == 0 {
                row[(i / 223) % DIM as usize] = f32::NEG_INFINITY;
            }
            row
        })
        .collect()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn specs() -> Vec<HistogramSpec> {
    vec![
        HistogramSpec {
            axes: vec![1],
            bins: vec![16],
            range: vec![[-4.0, 4.0]],
        },
        HistogramSpec {
            axes: vec![2, 0],
            bins: vec![16, 8],
            range: vec![[-4.0, 4.0], [-2.0, 2.0]],
        },
        // Phase space: a position against a velocity axis (DIM + 1).
        HistogramSpec {
            axes: vec![0, DIM + 1],
            bins: vec![8, 16],
            range: vec![[-2.0, 2.0], [-4.0, 4.0]],
        },
    ]
}

fn assert_same(gpu: &HistogramCounts, cpu: &HistogramCounts, what: &str) {
    assert_eq!(gpu.nonfinite, cpu.nonfinite, "{what}: non-finite");
    assert_eq!(gpu.outside, cpu.outside, "{what}: outside");
    assert_eq!(gpu.below, cpu.below, "{what}: below");
    assert_eq!(gpu.above, cpu.above, "{what}: above");
    assert_eq!(gpu.counts, cpu.counts, "{what}: bins");
}

/// Every binning the kernel has: global on one copy and on several (interleaved and in
/// blocks), and private, the whole grid at once or in tiles; one, several and many
/// particles per invocation.
fn binnings() -> Vec<(&'static str, Binning)> {
    vec![
        ("global", Binning::GLOBAL),
        // 70_001 particles make 1094 workgroups of 64: every copy gets some.
        (
            "global, 8 copies",
            Binning {
                copies: 8,
                ..Binning::GLOBAL
            },
        ),
        // 1094 workgroups in blocks of 137 (the last of 135), and of 365 (the last of
        // 364) on 3 copies.
        (
            "global, 8 copies in blocks",
            Binning {
                copies: 8,
                order: CopyOrder::Blocks,
                ..Binning::GLOBAL
            },
        ),
        (
            "global, 3 copies in blocks",
            Binning {
                copies: 3,
                order: CopyOrder::Blocks,
                ..Binning::GLOBAL
            },
        ),
        // 5 particles an invocation: 219 workgroups, the last one partly empty.
        (
            "global, 8 copies in blocks, 5 per invocation",
            Binning {
                items: 5,
                copies: 8,
                order: CopyOrder::Blocks,
                ..Binning::GLOBAL
            },
        ),
        (
            "private, 1 per invocation",
            Binning {
                items: 1,
                private_tiles: Some(1),
                ..Binning::GLOBAL
            },
        ),
        (
            "private, 7 per invocation",
            Binning {
                items: 7,
                private_tiles: Some(1),
                ..Binning::GLOBAL
            },
        ),
        (
            "private, 1023 per invocation",
            Binning {
                items: 1023,
                private_tiles: Some(1),
                ..Binning::GLOBAL
            },
        ),
        // The grid in tiles, one pass each: 16 bins in 6 + 6 + 4 (3 tiles) or 4 x 4 (5
        // asked, 4 cover), 128 in 44 + 44 + 40 or 8 x 16.
        (
            "private, 3 tiles, 7 per invocation",
            Binning {
                items: 7,
                private_tiles: Some(3),
                ..Binning::GLOBAL
            },
        ),
        (
            "private, 5 tiles, 1 per invocation",
            Binning {
                items: 1,
                private_tiles: Some(5),
                ..Binning::GLOBAL
            },
        ),
        (
            "private, 8 tiles, 1023 per invocation",
            Binning {
                items: 1023,
                private_tiles: Some(8),
                ..Binning::GLOBAL
            },
        ),
    ]
}

#[test]
fn both_binnings_count_exactly_as_the_twin() {
    let gpu = common::gpu();
    // Odd sizes and three chunks, so workgroups end part-way and the grid has spare groups.
    let count = 70_001usize;
    let chunk = Some(30_000);
    let positions = coordinates(count, 1);
    let velocities = coordinates(count, 2);
    let mut ensemble = Ensemble::new(&gpu, DIM, 0, count as u64, chunk).unwrap();
    let velocity = Ensemble::new(&gpu, DIM, 0, count as u64, chunk).unwrap();
    ensemble.write_positions(&gpu, &positions);
    velocity.write_positions(&gpu, &velocities);

    // Absorbed particles (every 7th) are left out: the twin sees the others only.
    let stride = 1 + DIM as usize;
    ensemble.attach_tags(&gpu, &vec![0; stride]).unwrap();
    let mut tags = vec![0u32; count * stride];
    for i in (0..count).step_by(7) {
        tags[i * stride + TAG_ABSORBED as usize] = 5;
    }
    ensemble.write_tags(&gpu, &tags);
    let alive = |v: &[f32]| -> Vec<f64> {
        v.chunks_exact(DIM as usize)
            .enumerate()
            .filter(|(i, _)| i % 7 != 0)
            .flat_map(|(_, row)| f64s(row))
            .collect()
    };
    let (x, v) = (alive(&positions), alive(&velocities));

    let wg = 64;
    for spec in specs() {
        let twin = phase_histogram_cpu(&x, Some(&v), DIM, &spec);
        assert!(
            twin.outside > 0 && twin.nonfinite > 0,
            "the data reach every tally"
        );
        assert!(twin.counts.iter().filter(|&&c| c > 0).count() > spec.total_bins() / 2);
        for (what, binning) in binnings() {
            let h =
                HistogramGpu::with_binning(&gpu, &ensemble, Some(&velocity), &spec, wg, binning);
            let counts = h.observe(&gpu, &ensemble).unwrap();
            assert_same(&counts, &twin, &format!("axes {:?}, {what}", spec.axes));
        }
        // And whatever the adapter's default is.
        let h = HistogramGpu::new(&gpu, &ensemble, Some(&velocity), &spec, wg);
        assert_same(&h.observe(&gpu, &ensemble).unwrap(), &twin, "default");
    }
}

/// `count` rows in blocks of 640 consecutive particles at one point each, the points cycling
/// through a bin's inside, the ranges' edges, below and above them (the same k / 1024
/// values as `coordinates`, so the binning stays exact); every 997th row has a NaN. An
/// invocation's particles (`items` of them, WG apart) then mostly share their bin.
fn blocks(count: usize) -> Vec<f32> {
    let points = [0.5f32, -3.25, 4.0, -5.0, 1.0 / 1024.0, 2.0, 7.5];
    (0..count)
        .flat_map(|i| {
            let k = i / 640;
            let mut row: Vec<f32> = (0..DIM as usize)
                .map(|d| points[(k + d) % points.len()])
                .collect();
            if i % 997 == 0 {
                row[(i / 997) % DIM as usize] = f32::NAN;
            }
            row
        })
        .collect()
}

#[test]
fn runs_of_particles_in_one_bin_count_exactly_as_the_twin() {
    let gpu = common::gpu();
    let count = 70_001usize;
    let chunk = Some(30_000);
    let wg = 64;
    // Blocks of shared points with every 7th particle absorbed (runs broken by absorbed and
    // non-finite particles), and every particle at one point with no tags (one run an
    // invocation: the point start's first snapshot).
    let rows = blocks(count);
    let point: Vec<f32> = (0..count).flat_map(|_| [0.5f32, -1.75, 3.0]).collect();
    let stride = 1 + DIM as usize;
    let mut tags = vec![0u32; count * stride];
    for i in (0..count).step_by(7) {
        tags[i * stride + TAG_ABSORBED as usize] = 5;
    }
    for (case, positions, absorbed) in [("blocks", &rows, true), ("one point", &point, false)] {
        let mut ensemble = Ensemble::new(&gpu, DIM, 0, count as u64, chunk).unwrap();
        let velocity = Ensemble::new(&gpu, DIM, 0, count as u64, chunk).unwrap();
        ensemble.write_positions(&gpu, positions);
        velocity.write_positions(&gpu, positions);
        let kept = |i: usize| !absorbed || !i.is_multiple_of(7);
        if absorbed {
            ensemble.attach_tags(&gpu, &vec![0; stride]).unwrap();
            ensemble.write_tags(&gpu, &tags);
        }
        let alive: Vec<f64> = positions
            .chunks_exact(DIM as usize)
            .enumerate()
            .filter(|(i, _)| kept(*i))
            .flat_map(|(_, row)| f64s(row))
            .collect();
        for spec in specs() {
            let twin = phase_histogram_cpu(&alive, Some(&alive), DIM, &spec);
            let fullest = twin.counts.iter().copied().max().unwrap_or(0);
            assert!(
                fullest * 20 >= alive.len() as u64 / u64::from(DIM),
                "{case}: the data are concentrated"
            );
            if absorbed {
                assert!(
                    twin.nonfinite > 0 && twin.outside > 0,
                    "{case}: the data reach the tallies"
                );
            }
            for (what, binning) in binnings() {
                let h = HistogramGpu::with_binning(
                    &gpu,
                    &ensemble,
                    Some(&velocity),
                    &spec,
                    wg,
                    binning,
                );
                let counts = h.observe(&gpu, &ensemble).unwrap();
                assert_same(
                    &counts,
                    &twin,
                    &format!("{case}, axes {:?}, {what}", spec.axes),
                );
            }
        }
    }
}
