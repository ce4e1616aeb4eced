// Histogram of one or two axes with atomic u32 bins (drained to u64 on the host between
// batches small enough that no bin can wrap). CPU twin: src/observe/histogram.rs.
// Includes common/chunk.wgsl and common/point.wgsl; `Chunk` and `Hist` (HistUniform) come from src/gpu/abi.rs.
// Axes 0 .. DIM - 1 are the positions (`state`), DIM .. 2 DIM - 1 the velocities of the
// underdamped kind (`velocity`, laid out like `state`; other kinds bind `state` there too and
// never name such an axis). A particle with a non-finite coordinate on a velocity axis it is
// binned on counts as non-finite as well.
// Bins follow numpy: [lo, hi) except the last, which includes hi.
//
// counts layout (once per copy, COPIES below): bins (numpy histogram2d order: i * bins1 + j), then the HIST_TALLIES
// tallies: [total bins + HIST_OUTSIDE] outside (not in any bin, finite), [+ HIST_NONFINITE]
// non-finite, [+ HIST_BELOW + 2a] below range on axis a, [+ HIST_ABOVE + 2a] above range on
// axis a.

override DIM: u32 = 2u;
override WG: u32 = 64u;
// 1: each workgroup counts into its own copy of the bins in workgroup memory (two 16-bit
// bins per word: a workgroup bins fewer than 2^16 particles) and adds the non-zero ones
// to `counts` at its end; 0: every particle adds to `counts` directly.
override PRIVATE: u32 = 0u;
// Private bins of a grid larger than workgroup memory: the grid is cut into TILES tiles of
// TILE_BINS consecutive bins (the last one shorter), and the workgroup bins its particles
// once per tile, each pass counting only those in that tile (the tallies in the first
// pass) and adding its copy to `counts` before the next. TILES = 1: the whole grid at once.
override TILES: u32 = 1u;
override TILE_BINS: u32 = 2u;
// Words of the workgroup copy: ceil(TILE_BINS / 2) + HIST_TALLIES (the host writes the
// value into this line before compiling; 1 where PRIVATE is 0).
const PRIVATE_WORDS: u32 = 1u;

@group(0) @binding(0) var<storage, read> state: array<f32>;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<uniform> hist: Hist;
@group(0) @binding(3) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read> velocity: array<f32>;
// Per-particle tags of a run with walls or targets (common/boundary.wgsl), TAG_STRIDE words
// each; an absorbed particle (tag TAG_ABSORBED != 0) is left out. TAG_STRIDE = 0: no tags.
override TAG_STRIDE: u32 = 0u;
@group(0) @binding(5) var<storage, read> tags: array<u32>;

var<workgroup> local_counts: array<atomic<u32>, PRIVATE_WORDS>;

// Phase-space coordinate `axis` of particle i at position p.
fn axis_value(p: Point, i: u32, axis: u32) -> f32 {
    if (axis < DIM) {
        return coordinate(p, axis);
    }
    return velocity[i * DIM + axis - DIM];
}

// Global binning: COPIES copies of the whole counts layout one after another (the host
// sums them; src/observe/histogram.rs, `Binning`), so that concurrent workgroups seldom add
// to the same word: workgroup g of G adds to copy g % COPIES, or with COPY_BLOCKS = 1 to
// copy g / ceil(G / COPIES), contiguous blocks of workgroups sharing one (`CopyOrder`).
// `copy_base`: this workgroup's.
override COPIES: u32 = 1u;
override COPY_BLOCKS: u32 = 0u;
var<private> copy_base: u32;

// `particle_index` of an absorbed particle, and `tile_place` of one outside the tile:
// counted nowhere (in this pass).
const NO_INDEX: u32 = 0xFFFFFFFFu;

// The private tile being binned: its first bin, and whether this pass counts the tallies.
var<private> tile_first: u32;
var<private> tile_tallies: bool;

// Where `index` of the counts layout (bins, then tallies) is counted in this pass: itself
// with global bins; in a private copy the bin's place in the tile (tallies after the
// TILE_BINS bins), or NO_INDEX outside the tile.
fn tile_place(index: u32, total: u32) -> u32 {
    if (PRIVATE == 0u || index == NO_INDEX) {
        return index;
    }
    if (index >= total) {
        return select(NO_INDEX, TILE_BINS + index - total, tile_tallies);
    }
    return select(NO_INDEX, index - tile_first, index >= tile_first && index - tile_first < TILE_BINS);
}

// Adds n at `place` (`tile_place`). A private copy's 16-bit bins take n < 2^16: a
// workgroup bins fewer than 2^16 particles.
fn count_n(place: u32, n: u32) {
    if (PRIVATE == 0u) {
        atomicAdd(&counts[copy_base + place], n);
    } else if (place < TILE_BINS) {
        atomicAdd(&local_counts[place / 2u], n << ((place & 1u) * 16u));
    } else {
        atomicAdd(&local_counts[(TILE_BINS + 1u) / 2u + place - TILE_BINS], n);
    }
}

fn count_at(index: u32, total: u32) {
    let place = tile_place(index, total);
    if (place != NO_INDEX) {
        count_n(place, 1u);
    }
}

// The histogram's axes (the same as `hist.axes`, as constants so that the binning below
// compiles to straight-line code).
override NAXES: u32 = 1u;
override AXIS0: u32 = 0u;
override AXIS1: u32 = 0u;

// Where particle i counts: its bin, else the outside or non-finite tally (the below / above
// tallies, the rare branch, are counted here); NO_INDEX for an absorbed particle.
// Straight-line in the common case, a particle inside the range.
fn particle_index(i: u32, total: u32) -> u32 {
    if (TAG_STRIDE > 0u && tags[i * TAG_STRIDE + TAG_ABSORBED] != 0u) {
        return NO_INDEX;
    }
    // The whole row (src/gpu/rows.rs); its lanes beyond DIM are zero, so finite.
    let p = read_state(i * DIM);
    var finite = point_is_finite(p);
    let v0 = axis_value(p, i, AXIS0);
    var v1 = hist.lo[1];
    if (NAXES == 2u) {
        v1 = axis_value(p, i, AXIS1);
    }
    finite = finite && is_finite_bits(v0) && is_finite_bits(v1);
    let in0 = v0 >= hist.lo[0] && v0 <= hist.hi[0];
    let in1 = v1 >= hist.lo[1] && v1 <= hist.hi[1];
    let b0 = min(u32(max(v0 - hist.lo[0], 0.0) * hist.scale[0]), hist.bins[0] - 1u);
    let b1 = select(0u, min(u32(max(v1 - hist.lo[1], 0.0) * hist.scale[1]), hist.bins[1] - 1u), NAXES == 2u);
    var index = b0 * select(1u, hist.bins[1], NAXES == 2u) + b1;
    if (!finite) {
        index = total + HIST_NONFINITE;
    } else if (!(in0 && in1)) {
        index = total + HIST_OUTSIDE;
        let v = array<f32, 2>(v0, v1);
        for (var a = 0u; a < NAXES; a = a + 1u) {
            if (v[a] < hist.lo[a]) {
                count_at(total + HIST_BELOW + 2u * a, total);
            } else if (v[a] > hist.hi[a]) {
                count_at(total + HIST_ABOVE + 2u * a, total);
            }
        }
    }
    return index;
}

// Bins this workgroup's particles into what this pass counts: consecutive particles of an
// invocation that fall in one place are added as one run. A concentrated ensemble (a point
// start, a narrow well) would otherwise send every add to the same few words, one after
// the other. Particles per invocation: `hist.items` (src/observe/histogram.rs chooses it;
// a uniform rather than an override, so that one pipeline serves every particle count).
fn bin_items(group: u32, lid: u32, total: u32) {
    var run = NO_INDEX;
    var run_count = 0u;
    for (var item = 0u; item < hist.items; item = item + 1u) {
        let i = group * hist.items * WG + item * WG + lid;
        if (i < chunk.count) {
            let place = tile_place(particle_index(i, total), total);
            if (place != run) {
                if (run_count > 0u) {
                    count_n(run, run_count);
                }
                run = place;
                run_count = 0u;
            }
            run_count = run_count + select(1u, 0u, place == NO_INDEX);
        }
    }
    if (run_count > 0u) {
        count_n(run, run_count);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let total = hist.bins.x * select(1u, hist.bins.y, hist.naxes == 2u);
    let group = wid.x + wid.y * nwg.x;
    var copy = group % COPIES;
    if (COPY_BLOCKS == 1u) {
        // nwg.x, nwg.y <= 65535: the product fits, and copy < COPIES for every group.
        copy = group / ((nwg.x * nwg.y + COPIES - 1u) / COPIES);
    }
    copy_base = copy * (total + HIST_TALLIES);
    if (PRIVATE == 0u) {
        bin_items(group, lid, total);
        return;
    }
    let half = (TILE_BINS + 1u) / 2u;
    for (var tile = 0u; tile < TILES; tile = tile + 1u) {
        tile_first = tile * TILE_BINS;
        tile_tallies = tile == 0u;
        for (var w = lid; w < half + HIST_TALLIES; w = w + WG) {
            atomicStore(&local_counts[w], 0u);
        }
        workgroupBarrier();
        bin_items(group, lid, total);
        workgroupBarrier();
        // The tile's bins (the last tile may hold fewer than TILE_BINS), then the tallies.
        let bins = min(TILE_BINS, total - tile_first);
        for (var w = lid; w < (bins + 1u) / 2u; w = w + WG) {
            let v = atomicLoad(&local_counts[w]);
            if ((v & 0xFFFFu) != 0u) {
                atomicAdd(&counts[tile_first + 2u * w], v & 0xFFFFu);
            }
            if ((v >> 16u) != 0u) {
                atomicAdd(&counts[tile_first + 2u * w + 1u], v >> 16u);
            }
        }
        for (var w = lid; w < HIST_TALLIES; w = w + WG) {
            let v = atomicLoad(&local_counts[half + w]);
            if (v != 0u) {
                atomicAdd(&counts[total + w], v);
            }
        }
        // Every flush has read the copy before the next tile clears it.
        workgroupBarrier();
    }
}
