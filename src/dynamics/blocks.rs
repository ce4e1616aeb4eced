//! How a block of steps is cut into dispatches and submitted, for the kernels that draw
//! their noise in whole rounds of Philox blocks (Langevin and MALA, the general SDE, BAOAB,
//! the diffusion samplers): single steps up to a round boundary, whole rounds, single steps
//! to the end, and cuts where the rounds kernel's fixed high words would change
//! (docs/architecture.md, "RNG counter layout").

use crate::gpu::Gpu;
use crate::gpu::timer::Work;

/// Steps per round of whole Philox blocks: 4 / gcd(dim, 4) (shaders/common/noise.wgsl).
pub fn round_steps(dim: u32) -> u32 {
    match dim % 4 {
        0 => 1,
        2 => 2,
        _ => 4,
    }
}

/// How a block of steps from `step0` splits into single steps up to a round boundary,
/// whole rounds, and single steps to the end: (head, rounds' steps, tail).
pub fn split_block(step0: u64, steps: u64, round: u64) -> (u64, u64, u64) {
    let head = ((round - step0 % round) % round).min(steps);
    let body = (steps - head) / round * round;
    (head, body, steps - head - body)
}

/// One dispatch of a block of steps: single steps (a SINGLE_STEPS pipeline) or whole rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Single(u64),
    Rounds(u64),
}

/// Records and submits `plan`, a block's dispatches from absolute step `step0`, in as few
/// submissions as the parts' step uniforms allow. Parts 0 and 2 run single steps and part 1
/// whole rounds; each has one uniform buffer, which `record` writes with
/// `Queue::write_buffer` (staged until the next submission), so a part records at most once
/// per submission. `record(encoder, part, at, n)` records `n` steps from absolute step `at`.
pub fn submit_plan(
    gpu: &Gpu,
    step0: u64,
    plan: &[Segment],
    mut record: impl FnMut(&mut wgpu::CommandEncoder, usize, u64, u64),
) {
    let mut at = step0;
    let mut rest = plan;
    while !rest.is_empty() {
        let mut used = [false; 3];
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        while let Some((segment, later)) = rest.split_first() {
            let (choices, n): (&[usize], u64) = match *segment {
                Segment::Single(n) => (&[0, 2], n),
                Segment::Rounds(n) => (&[1], n),
            };
            let Some(&k) = choices.iter().find(|&&k| !used[k]) else {
                break;
            };
            used[k] = true;
            rest = later;
            record(&mut encoder, k, at, n);
            at += n;
        }
        gpu.submit(encoder, Work::Stepping);
    }
}

/// The dispatches of a block of `steps` steps from `step0` (particles of dimension `dim`,
/// rounds of `round` steps starting at multiples of `round`, a power of two up to 4): the
/// head and tail of `split_block` as single steps, and the whole rounds cut so that no
/// rounds dispatch crosses a multiple of 2^32 Philox blocks of its normals (normal 2^34 k)
/// or of 2^32 steps (MALA's uniforms are indexed by the step). The round kernel keeps both
/// high words fixed through its loop (shaders/common/philox.wgsl, `block_in_word`); a round
/// whose normals straddle such a multiple (dimensions 3, 5, 6 and 7) runs as single steps,
/// whose blocks carry into the high word.
pub fn dispatch_plan(step0: u64, steps: u64, round: u64, dim: u32) -> Vec<Segment> {
    let (head, body, tail) = split_block(step0, steps, round);
    let mut out = Vec::new();
    let single = |out: &mut Vec<Segment>, n: u64| match out.last_mut() {
        Some(Segment::Single(m)) => *m += n,
        _ if n > 0 => out.push(Segment::Single(n)),
        _ => {}
    };
    single(&mut out, head);
    let d = u128::from(dim);
    let (mut at, end) = (step0 + head, step0 + head + body);
    while at < end {
        let g = u128::from(at) * d;
        // Steps whose normals all lie below the next multiple of 2^34, and steps before the
        // next multiple of 2^32 (a multiple of `round`, as `at` is).
        let by_noise = ((((g >> 34) + 1) << 34) - g) / d;
        let by_step = (1u128 << 32) - u128::from(at & 0xFFFF_FFFF);
        let n = (by_noise.min(by_step).min(u128::from(end - at)) as u64) / round * round;
        if n > 0 {
            out.push(Segment::Rounds(n));
            at += n;
        } else {
            single(&mut out, round);
            at += round;
        }
    }
    single(&mut out, tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_at_round_boundaries() {
        assert_eq!(split_block(0, 10, 4), (0, 8, 2));
        assert_eq!(split_block(3, 10, 4), (1, 8, 1));
        assert_eq!(split_block(3, 1, 4), (1, 0, 0));
        assert_eq!(split_block(5, 2, 4), (2, 0, 0));
        assert_eq!(split_block(7, 9, 1), (0, 9, 0));
        for dim in 1..=8 {
            // Whole rounds start where step * dim is a multiple of 4.
            let r = u64::from(round_steps(dim));
            assert_eq!(r * u64::from(dim) % 4, 0);
            assert!((1..r).all(|k| k * u64::from(dim) % 4 != 0));
        }
    }

    /// Checks a dispatch plan against what the round kernel assumes: the segments cover the
    /// block in order; a rounds segment starts at a multiple of `round`, holds whole rounds,
    /// and keeps the high words of its normals' blocks and of its steps; single steps
    /// appear only at either end or for a round that straddles such a boundary.
    fn check_plan(step0: u64, steps: u64, round: u64, dim: u32) {
        let plan = dispatch_plan(step0, steps, round, dim);
        let d = u128::from(dim);
        let mut at = step0;
        for (i, seg) in plan.iter().enumerate() {
            match *seg {
                Segment::Rounds(n) => {
                    assert!(
                        n > 0 && n.is_multiple_of(round) && at.is_multiple_of(round),
                        "{plan:?}"
                    );
                    let (first, last) = (u128::from(at) * d, u128::from(at + n) * d - 1);
                    assert_eq!(first >> 34, last >> 34, "{step0} {steps} {dim}: {plan:?}");
                    assert_eq!(at >> 32, (at + n - 1) >> 32, "{plan:?}");
                    at += n;
                }
                Segment::Single(n) => {
                    assert!(n > 0, "{plan:?}");
                    // Consecutive single segments are merged.
                    assert!(
                        i == 0 || matches!(plan[i - 1], Segment::Rounds(_)),
                        "{plan:?}"
                    );
                    at += n;
                }
            }
        }
        assert_eq!(at, step0 + steps, "{plan:?}");
        // Away from the boundaries the plan is split_block's.
        let (head, body, tail) = split_block(step0, steps, round);
        let crosses = |a: u64, b: u64| {
            b > a
                && ((u128::from(a) * d) >> 34 != (u128::from(b) * d - 1) >> 34
                    || a >> 32 != (b - 1) >> 32)
        };
        if !crosses(step0 + head, step0 + head + body) {
            let want: Vec<Segment> = if body == 0 {
                vec![Segment::Single(head + tail)]
            } else {
                vec![
                    Segment::Single(head),
                    Segment::Rounds(body),
                    Segment::Single(tail),
                ]
            };
            let want: Vec<Segment> = want
                .into_iter()
                .filter(|s| !matches!(s, Segment::Single(0)))
                .collect();
            assert_eq!(plan, want);
        }
    }

    #[test]
    fn dispatch_plans_keep_the_high_words_fixed_in_every_rounds_dispatch() {
        for dim in 1..=8u32 {
            for round in [u64::from(round_steps(dim)), 4] {
                let boundary = (1u64 << 34) / u64::from(dim);
                for start in [
                    0,
                    5,
                    boundary - 9,
                    boundary - 4,
                    boundary - 1,
                    (1 << 32) - 7,
                ] {
                    for steps in [0, 1, 3, 4, 8, 13, 1000] {
                        check_plan(start, steps, round, dim);
                    }
                }
            }
        }
        // Dimension 3: rounds of 4 steps are 3 blocks, and 2^32 blocks are not a whole
        // number of rounds, so the round over normal 2^34 runs as single steps.
        let round = 4;
        let straddle = (1u64 << 34) / 3 / round * round;
        assert_eq!(
            dispatch_plan(straddle - 8, 16, round, 3),
            vec![Segment::Rounds(8), Segment::Single(4), Segment::Rounds(4)]
        );
    }

    proptest::proptest! {
        #[test]
        fn dispatch_plans_hold_for_any_block(
            step0 in 0u64..(1 << 40),
            steps in 0u64..5000,
            dim in 1u32..=8,
            mala in proptest::bool::ANY,
            near in proptest::bool::ANY,
        ) {
            let round = if mala { 4 } else { u64::from(round_steps(dim)) };
            // Half the cases start within a few thousand steps of a noise-word boundary.
            let start = if near {
                let k = (step0 >> 34).max(1);
                ((k << 34) / u64::from(dim)).saturating_sub(step0 % 4096)
            } else {
                step0
            };
            check_plan(start, steps, round, dim);
        }
    }
}
