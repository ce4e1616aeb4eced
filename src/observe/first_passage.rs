//! Walls, periodic axes and first-passage targets on the host: the spec the kernels read
//! (shaders/common/boundary.wgsl), the initial per-particle tags, what a snapshot counts from
//! the tags (survival, absorbed fraction), the end-of-run statistics (mean first-passage time
//! with its confidence interval, exit-time histogram, transition rates) and the f64 twins
//! of the wall maps (docs/architecture.md, "Boundaries and first passage").

use crate::gpu::abi::{
    BASIN_NONE, BOUNDS_REGIONS, BOUNDS_VEC4S, PASSAGE_NEVER, POINT_LANES, REGION_BOX,
    REGION_HALF_SPACE, REGION_VEC4S, TAG_ABSORBED, TAG_WINDING,
};
use crate::scenario::{Boundary, Region, Wall};
use serde::{Deserialize, Serialize};

/// The uniform array the kernels read (src/gpu/abi.rs, `BOUNDS_*`), as floats.
pub fn spec_vec4s(boundary: &Boundary) -> Vec<f32> {
    let lanes = POINT_LANES as usize;
    let mut out = vec![0f32; 4 * BOUNDS_VEC4S as usize];
    for k in 0..lanes {
        let (low, high, width) = match boundary.wall(k).interval() {
            Some((low, high)) => (low as f32, high as f32, (high as f32) - (low as f32)),
            None => (-f32::MAX, f32::MAX, 1.0),
        };
        out[k] = low;
        out[lanes + k] = high;
        out[2 * lanes + k] = width;
        out[3 * lanes + k] = 1.0 / width;
    }
    let regions = boundary
        .first_passage
        .iter()
        .map(|t| (&t.region, t.absorb))
        .chain(boundary.basins.iter().map(|b| (&b.region, false)));
    for (j, (region, absorb)) in regions.enumerate() {
        let o = 4 * (BOUNDS_REGIONS + j as u32 * REGION_VEC4S) as usize;
        let row = &mut out[o..o + 4 * REGION_VEC4S as usize];
        // The last vec4: (kind, absorb, offset, 0).
        let info = 2 * lanes;
        row[info + 1] = if absorb { 1.0 } else { 0.0 };
        match region {
            Region::Box { intervals } => {
                row[info] = REGION_BOX as f32;
                for k in 0..lanes {
                    let [lo, hi] = intervals
                        .get(k)
                        .copied()
                        .flatten()
                        .map_or([-f32::MAX, f32::MAX], |[lo, hi]| [lo as f32, hi as f32]);
                    row[k] = lo;
                    row[lanes + k] = hi;
                }
            }
            Region::HalfSpace { normal, offset } => {
                row[info] = REGION_HALF_SPACE as f32;
                row[info + 2] = *offset as f32;
                // 1 / |n|^2, for the bridge's distances (offset - n.x) / |n|.
                let norm2: f64 = normal.iter().map(|n| n * n).sum();
                row[info + 3] = (1.0 / norm2) as f32;
                for (k, n) in normal.iter().enumerate() {
                    row[k] = *n as f32;
                }
            }
        }
    }
    out
}

/// The regions in the kernels' order: the targets', then the basins'.
fn regions(boundary: &Boundary) -> impl Iterator<Item = &Region> {
    boundary
        .first_passage
        .iter()
        .map(|t| &t.region)
        .chain(boundary.basins.iter().map(|b| &b.region))
}

/// The bit masks of the regions (targets, then basins) that are half-spaces, and of the
/// targets that absorb (`HALF_SPACES`, `ABSORBING` overrides).
pub fn region_masks(boundary: &Boundary) -> (u32, u32) {
    let half = regions(boundary)
        .enumerate()
        .filter(|(_, r)| matches!(r, Region::HalfSpace { .. }))
        .fold(0, |m, (j, _)| m | 1 << j);
    let absorbing = boundary
        .first_passage
        .iter()
        .enumerate()
        .filter(|(_, t)| t.absorb)
        .fold(0, |m, (j, _)| m | 1 << j);
    (half, absorbing)
}

/// The axes each region (targets, then basins) constrains, bit 8 (j & 3) + k of word j >> 2
/// for region j and axis k (`REGION_AXES_0` .. `REGION_AXES_3` overrides): a box's named
/// axes, a half-space's nonzero normal components.
pub fn region_axes(boundary: &Boundary) -> [u32; 4] {
    let mut words = [0u32; 4];
    for (j, region) in regions(boundary).enumerate() {
        let axes = match region {
            Region::Box { intervals } => intervals
                .iter()
                .enumerate()
                .filter(|(_, i)| i.is_some())
                .fold(0u32, |m, (k, _)| m | 1 << k),
            Region::HalfSpace { normal, .. } => normal
                .iter()
                .enumerate()
                .filter(|(_, n)| **n != 0.0)
                .fold(0u32, |m, (k, _)| m | 1 << k),
        };
        words[j / 4] |= axes << (8 * (j % 4));
    }
    words
}

/// The faces of the box regions (targets, then basins) that the kernels test, in the bits
/// of `region_axes` (`REGION_LOWS_*`, `REGION_HIGHS_*` overrides): a low face at or below a
/// reflecting axis's low wall, or a high face at or above its high wall, holds every
/// position the walls leave (the folds never return a point past a wall, and NaN fails
/// both tests anyway), so its bit is clear and the kernels compile its comparison out.
/// The bounds are compared as the kernels hold them, in f32. Half-spaces and the faces on
/// free and periodic axes (a wrapped position may sit an ulp past a wall) are all tested.
pub fn region_faces(boundary: &Boundary) -> ([u32; 4], [u32; 4]) {
    let mut lows = [u32::MAX; 4];
    let mut highs = [u32::MAX; 4];
    for (j, region) in regions(boundary).enumerate() {
        let Region::Box { intervals } = region else {
            continue;
        };
        for (k, interval) in intervals.iter().enumerate() {
            let (Some([lo, hi]), Wall::Reflecting { low, high }) = (interval, boundary.wall(k))
            else {
                continue;
            };
            let bit = 1 << (8 * (j % 4) + k);
            if (*lo as f32) <= low as f32 {
                lows[j / 4] &= !bit;
            }
            if (*hi as f32) >= high as f32 {
                highs[j / 4] &= !bit;
            }
        }
    }
    (lows, highs)
}

/// The largest |normal| the kernels draw: Box–Muller's radius sqrt(-2 ln u) with u >=
/// 2^-24 (`unit_open_closed` in shaders/common/philox.wgsl: (k + 1) 2^-24) is at most
/// sqrt(48 ln 2) = 5.76811, and each normal is that radius times a cosine or sine. The f32
/// log, product and square root add a relative error below 1e-6 (5.76812): 5.77 bounds
/// it.
pub const NOISE_BOUND: f64 = 5.77;

/// Whether the Langevin kernel may reflect each step once at each wall (`REFLECT_ONCE`):
/// every reflecting axis is wider than the largest noise displacement of a step,
/// NOISE_BOUND sigma with sigma = sqrt(2 T dt) (`noise_scale`; None when it changes during
/// the run, a temperature or step-size schedule, where the kernel folds steps of any
/// length). A step that starts inside the box then ends less than a box width past a wall
/// unless its drift alone crossed the box, which the kernel reports as a divergence
/// (common/boundary.wgsl, `reflect_once`).
pub fn reflects_once(boundary: &Boundary, noise_scale: Option<f64>) -> bool {
    let Some(sigma) = noise_scale else {
        return false;
    };
    boundary.walls.iter().all(|w| match w {
        Wall::Reflecting { low, high } => {
            NOISE_BOUND * sigma < f64::from(*high as f32 - *low as f32)
        }
        _ => true,
    })
}

/// The bit mask of the targets that take the Brownian-bridge crossing probability
/// (`BRIDGE` override).
pub fn bridge_mask(boundary: &Boundary) -> u32 {
    boundary
        .first_passage
        .iter()
        .enumerate()
        .filter(|(_, t)| t.bridge)
        .fold(0, |m, (j, _)| m | 1 << j)
}

/// The bit masks of the reflecting and of the periodic axes (`REFLECT_AXES`,
/// `PERIODIC_AXES` overrides).
pub fn wall_masks(boundary: &Boundary) -> (u32, u32) {
    let mut masks = (0, 0);
    for (k, w) in boundary.walls.iter().enumerate() {
        match w {
            Wall::Reflecting { .. } => masks.0 |= 1 << k,
            Wall::Periodic { .. } => masks.1 |= 1 << k,
            Wall::Free => {}
        }
    }
    masks
}

/// The overrides of common/boundary.wgsl for a run with `boundary` whose ensemble has
/// `tag_stride` tag words per particle (0 without tags).
pub fn overrides(boundary: &Boundary, tag_stride: u32) -> Vec<(&'static str, f64)> {
    let (reflect, periodic) = wall_masks(boundary);
    let (half_spaces, absorbing) = region_masks(boundary);
    let axes = region_axes(boundary);
    let (lows, highs) = region_faces(boundary);
    vec![
        ("REGION_AXES_0", f64::from(axes[0])),
        ("REGION_AXES_1", f64::from(axes[1])),
        ("REGION_AXES_2", f64::from(axes[2])),
        ("REGION_AXES_3", f64::from(axes[3])),
        ("REGION_LOWS_0", f64::from(lows[0])),
        ("REGION_LOWS_1", f64::from(lows[1])),
        ("REGION_LOWS_2", f64::from(lows[2])),
        ("REGION_LOWS_3", f64::from(lows[3])),
        ("REGION_HIGHS_0", f64::from(highs[0])),
        ("REGION_HIGHS_1", f64::from(highs[1])),
        ("REGION_HIGHS_2", f64::from(highs[2])),
        ("REGION_HIGHS_3", f64::from(highs[3])),
        ("BRIDGE", f64::from(bridge_mask(boundary))),
        ("HALF_SPACES", f64::from(half_spaces)),
        ("ABSORBING", f64::from(absorbing)),
        ("BOUNDARY", if boundary.is_empty() { 0.0 } else { 1.0 }),
        ("REFLECT_AXES", f64::from(reflect)),
        ("PERIODIC_AXES", f64::from(periodic)),
        ("TARGETS", boundary.first_passage.len() as f64),
        ("BASINS", boundary.basins.len() as f64),
        ("TAG_STRIDE", f64::from(tag_stride.max(1))),
    ]
}

/// The period of every axis as the kernels hold it (f32 high - f32 low, as `spec_vec4s`'s
/// widths), 0 on axes that are not periodic: the minimum image of interacting particles.
pub fn periods(boundary: &Boundary, dim: u32) -> Vec<f32> {
    (0..dim as usize)
        .map(|k| match boundary.wall(k) {
            Wall::Periodic { low, high } => (high as f32) - (low as f32),
            _ => 0.0,
        })
        .collect()
}

/// u32 tag words per particle of a run with `boundary` (0 when it has none): absorbed
/// step, windings, first-passage steps, and the last basin when there are basins.
pub fn tag_stride(boundary: &Boundary, dim: u32) -> usize {
    if boundary.is_empty() {
        return 0;
    }
    1 + dim as usize + boundary.first_passage.len() + usize::from(!boundary.basins.is_empty())
}

/// The tags every particle starts with: alive, no windings, no target reached (and, with
/// basins, no basin visited).
pub fn initial_tags(dim: u32, targets: usize, basins: bool) -> Vec<u32> {
    let mut row = vec![0u32; 1 + dim as usize];
    row.resize(1 + dim as usize + targets, PASSAGE_NEVER);
    if basins {
        row.push(BASIN_NONE);
    }
    row
}

/// Counter words (u32) the basins need after `BASIN_COUNTERS`: a 64-bit dwell count per
/// basin and a 64-bit transition count per ordered pair.
pub fn basin_counter_words(basins: usize) -> u64 {
    2 * (basins + basins * basins) as u64
}

/// The transitions between basins: per basin the steps spent with it as the last basin
/// visited, per ordered pair the transitions (integers, so that shards add up).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionCounts {
    pub dwell_steps: Vec<u64>,
    /// Row-major: [a * basins + b] counts a -> b.
    pub transitions: Vec<u64>,
}

impl TransitionCounts {
    /// From the counters' 64-bit values (dwell per basin, then the pairs).
    pub fn from_counters(basins: usize, values: &[u64]) -> TransitionCounts {
        TransitionCounts {
            dwell_steps: values[..basins].to_vec(),
            transitions: values[basins..basins + basins * basins].to_vec(),
        }
    }

    pub fn counters(&self) -> Vec<u64> {
        self.dwell_steps
            .iter()
            .chain(&self.transitions)
            .copied()
            .collect()
    }

    pub fn pool(parts: &[TransitionCounts]) -> TransitionCounts {
        let mut out = parts.first().cloned().unwrap_or_default();
        for p in parts.iter().skip(1) {
            for (a, b) in out.dwell_steps.iter_mut().zip(&p.dwell_steps) {
                *a += b;
            }
            for (a, b) in out.transitions.iter_mut().zip(&p.transitions) {
                *a += b;
            }
        }
        out
    }

    /// k_ab = n_ab / (time with a as the last basin), its Poisson standard error
    /// k_ab / sqrt(n_ab), for every ordered pair with time spent in a; `dt` the time per step.
    pub fn rates(&self, names: &[String], dt: f64) -> Vec<TransitionRate> {
        let n = names.len();
        let mut out = Vec::new();
        for a in 0..n {
            for b in (0..n).filter(|&b| b != a) {
                let count = self.transitions[a * n + b];
                let time = self.dwell_steps[a] as f64 * dt;
                let rate = (time > 0.0).then(|| count as f64 / time);
                out.push(TransitionRate {
                    from: names[a].clone(),
                    to: names[b].clone(),
                    transitions: count,
                    time,
                    rate,
                    std_error: rate
                        .filter(|_| count > 0)
                        .map(|k| k / (count as f64).sqrt()),
                });
            }
        }
        out
    }
}

/// One ordered pair's transition rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRate {
    pub from: String,
    pub to: String,
    pub transitions: u64,
    /// Time spent with `from` as the last basin visited.
    pub time: f64,
    /// transitions / time (null without time in `from`).
    pub rate: Option<f64>,
    /// Poisson standard error rate / sqrt(transitions) (null without transitions).
    pub std_error: Option<f64>,
}

/// What one snapshot counts from the tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassageCounts {
    /// Particles counted (this ensemble's).
    pub particles: u64,
    /// Absorbed particles.
    pub absorbed: u64,
    /// Per target: particles that have not reached it yet.
    pub surviving: Vec<u64>,
}

impl PassageCounts {
    /// Counts of the tags (row-major, `stride` words per particle: [`tag_stride`]).
    pub fn of(tags: &[u32], stride: usize, dim: u32, targets: usize) -> PassageCounts {
        let mut c = PassageCounts {
            particles: 0,
            absorbed: 0,
            surviving: vec![0; targets],
        };
        for row in tags.chunks_exact(stride) {
            c.particles += 1;
            c.absorbed += u64::from(row[TAG_ABSORBED as usize] != 0);
            for (j, s) in c.surviving.iter_mut().enumerate() {
                *s += u64::from(row[TAG_WINDING as usize + dim as usize + j] == PASSAGE_NEVER);
            }
        }
        c
    }

    /// The counts of several shards together.
    pub fn pool(parts: &[PassageCounts]) -> PassageCounts {
        let mut out = PassageCounts {
            surviving: vec![0; parts.first().map_or(0, |p| p.surviving.len())],
            ..PassageCounts::default()
        };
        for p in parts {
            out.particles += p.particles;
            out.absorbed += p.absorbed;
            for (a, b) in out.surviving.iter_mut().zip(&p.surviving) {
                *a += b;
            }
        }
        out
    }

    /// Survival probability of target j: the fraction that has not reached it.
    pub fn survival(&self, j: usize) -> f64 {
        self.surviving[j] as f64 / self.particles.max(1) as f64
    }

    pub fn absorbed_fraction(&self) -> f64 {
        self.absorbed as f64 / self.particles.max(1) as f64
    }
}

/// Column j of the tags: target j's first-passage steps (u32, `PASSAGE_NEVER` = never).
pub fn passage_steps(tags: &[u32], stride: usize, dim: u32, j: usize) -> Vec<u32> {
    tags.chunks_exact(stride)
        .map(|row| row[1 + dim as usize + j])
        .collect()
}

/// The winding counts of the periodic `axes` (count x axes.len(), row-major).
pub fn windings(tags: &[u32], stride: usize, axes: &[usize]) -> Vec<i32> {
    tags.chunks_exact(stride)
        .flat_map(|row| axes.iter().map(|&k| row[TAG_WINDING as usize + k] as i32))
        .collect()
}

/// The mean first-passage time of one target over the particles that reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageSummary {
    pub name: String,
    pub absorb: bool,
    /// Particles that reached the target during the run.
    pub passed: u64,
    /// Particles that never did.
    pub never: u64,
    /// Mean of the passage times t_k (the run's time after the first-passage step k) over
    /// the particles that passed; null when none did.
    pub mean_time: Option<f64>,
    /// Standard error of that mean, s / sqrt(passed) (null below two passages).
    pub std_error: Option<f64>,
    /// The 95% confidence interval mean ± 1.96 standard errors (normal approximation).
    pub ci95: Option<[f64; 2]>,
}

/// The summary of target `name` from its first-passage steps, `time_at(k)` the time after
/// step k. Sums in f64 over the passage times.
pub fn summarize(
    name: &str,
    absorb: bool,
    steps: &[u32],
    time_at: &dyn Fn(u64) -> f64,
) -> PassageSummary {
    let times: Vec<f64> = steps
        .iter()
        .filter(|&&k| k != PASSAGE_NEVER)
        .map(|&k| time_at(u64::from(k)))
        .collect();
    let n = times.len();
    let mean = (n > 0).then(|| times.iter().sum::<f64>() / n as f64);
    let std_error = mean.filter(|_| n > 1).map(|m| {
        let var = times.iter().map(|t| (t - m).powi(2)).sum::<f64>() / (n - 1) as f64;
        (var / n as f64).sqrt()
    });
    PassageSummary {
        name: name.to_string(),
        absorb,
        passed: n as u64,
        never: (steps.len() - n) as u64,
        mean_time: mean,
        std_error,
        ci95: mean
            .zip(std_error)
            .map(|(m, e)| [m - 1.96 * e, m + 1.96 * e]),
    }
}

/// Bins of the exit-time histogram (`first_passage/<name>.exit_times.npy`).
pub const EXIT_TIME_BINS: usize = 64;

/// Histogram of the first-passage steps that are not `PASSAGE_NEVER`: `EXIT_TIME_BINS` equal
/// bins over steps 1 ..= `steps` (the run's length), each row (left edge, right edge, count)
/// in steps.
pub fn exit_histogram(passages: &[u32], steps: u64) -> Vec<[f64; 3]> {
    let steps = steps.max(1) as f64;
    let width = steps / EXIT_TIME_BINS as f64;
    let mut counts = vec![0u64; EXIT_TIME_BINS];
    for &k in passages.iter().filter(|&&k| k != PASSAGE_NEVER) {
        let b = (((f64::from(k) - 1.0) / width) as usize).min(EXIT_TIME_BINS - 1);
        counts[b] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(b, &c)| {
            [
                b as f64 * width + 1.0,
                (b + 1) as f64 * width + 1.0,
                c as f64,
            ]
        })
        .collect()
}

/// The f64 twin of common/boundary.wgsl's `bridge_probability`: the probability that a
/// Brownian bridge from `x0` to `x1` with variance `var2` (sigma^2 dt) per coordinate entered
/// `region` in between, 1 when an end is in it. A half-space: exp(-2 d0 d1 / (|n|^2 var2))
/// with d = offset - n.x when both d are positive (Karlin–Taylor: the maximum of a Brownian
/// bridge along the unit normal); a box: the product of that over its faces, exact for a box
/// constraining one axis, with several the product of the per-axis probabilities (a corner
/// approximation: the path may visit the axes' slabs at different times).
pub fn bridge_probability(region: &Region, x0: &[f64], x1: &[f64], var2: f64) -> f64 {
    let touched = |d0: f64, d1: f64, c: f64| {
        if d0 > 0.0 && d1 > 0.0 {
            (c * d0 * d1).exp()
        } else {
            1.0
        }
    };
    let c = -2.0 / var2;
    match region {
        Region::HalfSpace { normal, offset } => {
            let dot = |x: &[f64]| normal.iter().zip(x).map(|(n, v)| n * v).sum::<f64>();
            let norm2: f64 = normal.iter().map(|n| n * n).sum();
            touched(offset - dot(x0), offset - dot(x1), c / norm2)
        }
        Region::Box { intervals } => intervals
            .iter()
            .enumerate()
            .filter_map(|(k, i)| i.map(|[lo, hi]| (k, lo, hi)))
            .map(|(k, lo, hi)| {
                touched(lo - x0[k], lo - x1[k], c) * touched(x0[k] - hi, x1[k] - hi, c)
            })
            .product(),
    }
}

/// The f64 twin of common/boundary.wgsl's `reflect_into`: `v` folded into [low, high] by
/// reflection at both walls.
pub fn reflect_into(v: f64, low: f64, high: f64) -> f64 {
    if (low..=high).contains(&v) {
        return v;
    }
    let width = high - low;
    let period = 2.0 * width;
    let m = (v - low).rem_euclid(period);
    (low + if m <= width { m } else { period - m }).clamp(low, high)
}

/// The f64 twin of `wrap_into`: (`v` wrapped into [low, high), periods subtracted).
pub fn wrap_into(v: f64, low: f64, high: f64) -> (f64, i64) {
    let width = high - low;
    let n = ((v - low) / width).floor();
    let mut w = v - n * width;
    let mut n = n as i64;
    if w >= high {
        w -= width;
        n += 1;
    }
    if w < low {
        w += width;
        n -= 1;
    }
    (w.clamp(low, high), n)
}

/// The f64 twin of the walls of common/boundary.wgsl for one particle after a step: `x`
/// folded into its reflecting intervals and wrapped on its periodic axes, the periods
/// subtracted added to `winding` (one per axis).
pub fn apply_walls(x: &mut [f64], winding: &mut [i64], boundary: &Boundary) {
    for (k, v) in x.iter_mut().enumerate() {
        match boundary.wall(k) {
            Wall::Free => {}
            Wall::Reflecting { low, high } => *v = reflect_into(*v, low, high),
            Wall::Periodic { low, high } => {
                let (w, n) = wrap_into(*v, low, high);
                *v = w;
                winding[k] += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PassageTarget;

    #[test]
    fn reflection_folds_big_steps() {
        assert_eq!(reflect_into(0.5, 0.0, 1.0), 0.5);
        assert!((reflect_into(1.25, 0.0, 1.0) - 0.75).abs() < 1e-15);
        assert!((reflect_into(-0.25, 0.0, 1.0) - 0.25).abs() < 1e-15);
        // Three walls crossed: 3.25 -> 2 - 3.25 = -1.25 -> 1.25 -> 0.75.
        assert!((reflect_into(3.25, 0.0, 1.0) - 0.75).abs() < 1e-15);
        assert!((reflect_into(-2.5, -1.0, 1.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn wrap_counts_periods() {
        assert_eq!(wrap_into(0.5, 0.0, 1.0), (0.5, 0));
        let (w, n) = wrap_into(2.25, 0.0, 1.0);
        assert!((w - 0.25).abs() < 1e-15 && n == 2);
        let (w, n) = wrap_into(-0.25, 0.0, 1.0);
        assert!((w - 0.75).abs() < 1e-15 && n == -1);
        // Unwrapped = wrapped + n L.
        let (w, n) = wrap_into(-7.3, -1.0, 2.0);
        assert!((w + 3.0 * n as f64 - -7.3).abs() < 1e-12, "{w} {n}");
    }

    /// The bridge's crossing probability is exp(-2 d0 d1 / var2) for distances d along the
    /// unit normal (a scaled normal gives the same), the same for a box face, 1 when an end
    /// is inside or the ends straddle the plane, and a box's faces multiply.
    #[test]
    fn bridge_probabilities() {
        let (x0, x1, var2): ([f64; 2], [f64; 2], f64) = ([0.2, 0.0], [0.5, 0.3], 0.04);
        let exact = (-2.0 * 0.8 * 0.5 / var2).exp();
        let plane = |scale: f64| Region::HalfSpace {
            normal: vec![scale, 0.0],
            offset: scale,
        };
        for scale in [1.0, 3.0] {
            let p = bridge_probability(&plane(scale), &x0, &x1, var2);
            assert!((p - exact).abs() < 1e-15 * exact.max(1.0), "{p} {exact}");
        }
        let slab = Region::Box {
            intervals: vec![Some([1.0, 2.0]), None],
        };
        assert!((bridge_probability(&slab, &x0, &x1, var2) - exact).abs() < 1e-15);
        assert_eq!(bridge_probability(&slab, &x0, &[1.5, 0.0], var2), 1.0);
        assert_eq!(bridge_probability(&slab, &x0, &[2.5, 0.0], var2), 1.0);
        let corner = Region::Box {
            intervals: vec![Some([1.0, 2.0]), Some([-5.0, -1.0])],
        };
        let y = (-2.0f64 * 1.0 * 1.3 / var2).exp();
        let p = bridge_probability(&corner, &x0, &x1, var2);
        assert!((p - exact * y).abs() < 1e-15, "{p}");
    }

    #[test]
    fn counts_and_summaries() {
        // dim 1, two targets: [absorbed, winding, t0, t1].
        let tags = [
            0,
            0,
            PASSAGE_NEVER,
            PASSAGE_NEVER,
            7,
            (-2i32) as u32,
            7,
            3,
            0,
            1,
            5,
            PASSAGE_NEVER,
        ];
        let c = PassageCounts::of(&tags, 4, 1, 2);
        assert_eq!(c.particles, 3);
        assert_eq!(c.absorbed, 1);
        assert_eq!(c.surviving, vec![1, 2]);
        assert_eq!(passage_steps(&tags, 4, 1, 0), vec![PASSAGE_NEVER, 7, 5]);
        assert_eq!(windings(&tags, 4, &[0]), vec![0, -2, 1]);
        let s = summarize("a", true, &[PASSAGE_NEVER, 7, 5], &|k| k as f64 * 0.5);
        assert_eq!(s.passed, 2);
        assert_eq!(s.never, 1);
        assert_eq!(s.mean_time, Some(3.0));
        // Sample sd of (3.5, 2.5) is 1/sqrt(2); / sqrt(2) gives 0.5.
        assert!((s.std_error.unwrap() - 0.5).abs() < 1e-12);
        let h = exit_histogram(&[1, 64, PASSAGE_NEVER, 128], 128);
        assert_eq!(h.len(), EXIT_TIME_BINS);
        assert_eq!(h[0][2] + h[31][2] + h[63][2], 3.0);
    }

    /// The example: reflecting x in [-3, 3], periodic y; a box target x in [0.8, 3]
    /// (its high face is the wall: compiled out), a second box reaching past both walls in
    /// x and constraining the periodic y (both y faces tested), a half-space (all tested).
    #[test]
    fn faces_at_reflecting_walls_are_not_tested() {
        let target = |name: &str, region| PassageTarget {
            name: name.into(),
            region,
            absorb: false,
            bridge: false,
        };
        let b = Boundary {
            walls: vec![
                Wall::Reflecting {
                    low: -3.0,
                    high: 3.0,
                },
                Wall::Periodic {
                    low: 0.0,
                    high: 6.5,
                },
            ],
            first_passage: vec![
                target(
                    "right",
                    Region::Box {
                        intervals: vec![Some([0.8, 3.0]), None],
                    },
                ),
                target(
                    "band",
                    Region::Box {
                        intervals: vec![Some([-4.0, 3.5]), Some([0.0, 6.5])],
                    },
                ),
                target(
                    "plane",
                    Region::HalfSpace {
                        normal: vec![1.0, 0.0],
                        offset: 3.0,
                    },
                ),
            ],
            basins: Vec::new(),
        };
        let (lows, highs) = region_faces(&b);
        // Region j's byte is bits 8 j .. 8 j + 7 of word 0; bit k is axis k.
        let byte = |w: u32, j: usize| (w >> (8 * j)) & 0xFF;
        assert_eq!((byte(lows[0], 0), byte(highs[0], 0)), (0xFF, 0xFE));
        assert_eq!((byte(lows[0], 1), byte(highs[0], 1)), (0xFE, 0xFE));
        assert_eq!((byte(lows[0], 2), byte(highs[0], 2)), (0xFF, 0xFF));
        assert_eq!(byte(lows[0], 3), 0xFF);
        assert_eq!(
            (&lows[1..], &highs[1..]),
            (&[u32::MAX; 3][..], &[u32::MAX; 3][..])
        );
        // A face a hair inside the wall (in f32) is still tested.
        let mut inside = b.clone();
        inside.first_passage[0].region = Region::Box {
            intervals: vec![Some([0.8, 2.9999995]), None],
        };
        assert_eq!(byte(region_faces(&inside).1[0], 0), 0xFF);
    }

    /// One reflection per wall only while the largest noise step, NOISE_BOUND sigma, is
    /// shorter than every reflecting box; a run whose sigma changes folds.
    #[test]
    fn reflecting_once_needs_the_box_wider_than_the_noise() {
        let walls = |width: f64| Boundary {
            walls: vec![
                Wall::Periodic {
                    low: 0.0,
                    high: 0.01,
                },
                Wall::Reflecting {
                    low: 0.0,
                    high: width,
                },
            ],
            first_passage: Vec::new(),
            basins: Vec::new(),
        };
        let sigma = 0.1;
        assert!(reflects_once(
            &walls(NOISE_BOUND * sigma * 1.001),
            Some(sigma)
        ));
        assert!(!reflects_once(
            &walls(NOISE_BOUND * sigma * 0.999),
            Some(sigma)
        ));
        assert!(!reflects_once(&walls(100.0), None));
        // No reflecting axis (a periodic one narrower than the noise wraps any step).
        assert!(reflects_once(&Boundary::default(), Some(sigma)));
        // The bound holds for the largest radius Box–Muller can draw, at u = 2^-24.
        let radius = (-2.0 * (2f64.powi(-24)).ln()).sqrt();
        assert!(radius * (1.0 + 1e-6) < NOISE_BOUND && NOISE_BOUND - radius < 0.01);
    }

    #[test]
    fn spec_layout() {
        let b = Boundary {
            walls: vec![
                Wall::Free,
                Wall::Periodic {
                    low: 0.0,
                    high: 2.0,
                },
            ],
            first_passage: vec![PassageTarget {
                name: "a".into(),
                region: Region::Box {
                    intervals: vec![Some([1.0, 2.0]), None],
                },
                absorb: true,
                bridge: false,
            }],
            basins: Vec::new(),
        };
        let s = spec_vec4s(&b);
        assert_eq!(s.len(), 4 * BOUNDS_VEC4S as usize);
        // Axis 1 periodic on [0, 2): low, high, width in lane 1 of vec4s 0, 2, 4.
        assert_eq!((s[1], s[9], s[17]), (0.0, 2.0, 2.0));
        assert_eq!((s[0], s[8], s[16]), (-f32::MAX, f32::MAX, 1.0));
        assert_eq!(wall_masks(&b), (0, 2));
        let t = 4 * BOUNDS_REGIONS as usize;
        assert_eq!((s[t], s[t + 8]), (1.0, 2.0));
        assert_eq!((s[t + 1], s[t + 9]), (-f32::MAX, f32::MAX));
        assert_eq!((s[t + 16], s[t + 17]), (REGION_BOX as f32, 1.0));
    }
}
