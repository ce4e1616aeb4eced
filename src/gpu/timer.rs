//! GPU time of submitted work by timestamp queries, where the device has them
//! (`TIMESTAMP_QUERY` + `TIMESTAMP_QUERY_INSIDE_ENCODERS`): [`Gpu::submit`] brackets each
//! submission with two timestamps written in command buffers of their own (before and after
//! the work, in the same submission, so in order), and the pairs are resolved and summed per
//! [`Work`] when the query set is full or the totals are asked for. The manifest's timings
//! then separate kernel time from host-side submission, waiting and readback
//! (docs/architecture.md, "Timings").

use super::Gpu;
use crate::error::Result;
use std::sync::Mutex;

/// What a submission does, for the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Advancing the particles (dynamics kernels).
    Stepping,
    /// Histograms, moments and other observers, and their readback copies.
    Observing,
    /// Initial sampling and anything else.
    Other,
}

/// Timestamp pairs one query set holds before it is resolved.
const PAIRS: u32 = 256;

/// Seconds of GPU time per kind of work since the device was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuSeconds {
    pub stepping: f64,
    pub observing: f64,
    pub other: f64,
}

pub(crate) struct Timer {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The work of each pair written since the last resolve.
    pending: Vec<Work>,
    totals: GpuSeconds,
}

impl Timer {
    /// The features a timer needs.
    pub(crate) const FEATURES: wgpu::Features =
        wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);

    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Timer {
        Timer {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * PAIRS,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps resolved"),
                size: u64::from(2 * PAIRS) * wgpu::QUERY_SIZE as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            period: f64::from(queue.get_timestamp_period()),
            state: Mutex::new(State::default()),
        }
    }
}

impl Gpu {
    /// Submits `encoder`'s work, timed as `work` where the device has timestamp queries.
    /// A failure to read the timestamps back is reported by the next [`Gpu::wait`] or
    /// [`Gpu::check`], as the device's other errors are.
    pub fn submit(&self, encoder: wgpu::CommandEncoder, work: Work) {
        let Some(timer) = &self.timer else {
            self.queue.submit([encoder.finish()]);
            return;
        };
        let full = lock(timer).pending.len() as u32 == PAIRS;
        if full && let Err(e) = self.resolve_timestamps(timer) {
            self.report(format!("timestamp queries: {e}"));
        }
        let mut state = lock(timer);
        let pair = state.pending.len() as u32;
        let stamp = |index: u32| {
            let mut e = self.device.create_command_encoder(&Default::default());
            e.write_timestamp(&timer.set, index);
            e.finish()
        };
        self.queue
            .submit([stamp(2 * pair), encoder.finish(), stamp(2 * pair + 1)]);
        state.pending.push(work);
    }

    /// GPU seconds per kind of work so far; `None` without timestamp queries. Waits for the
    /// work submitted so far.
    pub fn gpu_seconds(&self) -> Result<Option<GpuSeconds>> {
        let Some(timer) = &self.timer else {
            return Ok(None);
        };
        self.resolve_timestamps(timer)?;
        Ok(Some(lock(timer).totals))
    }

    fn resolve_timestamps(&self, timer: &Timer) -> Result<()> {
        let mut state = lock(timer);
        let pairs = state.pending.len() as u32;
        if pairs == 0 {
            return Ok(());
        }
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.resolve_query_set(&timer.set, 0..2 * pairs, &timer.resolve, 0);
        self.queue.submit([encoder.finish()]);
        let bytes = self.read_bytes(&timer.resolve, 0, u64::from(2 * pairs) * 8)?;
        let ticks: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect();
        let pending = std::mem::take(&mut state.pending);
        for (work, pair) in pending.into_iter().zip(ticks.chunks_exact(2)) {
            // A counter that wrapped or stamps taken out of order count as nothing.
            let seconds = pair[1].saturating_sub(pair[0]) as f64 * timer.period * 1e-9;
            match work {
                Work::Stepping => state.totals.stepping += seconds,
                Work::Observing => state.totals.observing += seconds,
                Work::Other => state.totals.other += seconds,
            }
        }
        Ok(())
    }
}

fn lock(timer: &Timer) -> std::sync::MutexGuard<'_, State> {
    timer
        .state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
