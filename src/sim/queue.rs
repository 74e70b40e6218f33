//! The schedule: the simulated clock, the events that can happen, the queue they wait in (in
//! time order, ties in the order they were scheduled), and the seeded random stream every
//! scheduling draw comes from (initial leaf ages, jitter, push and restart instants).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use time::OffsetDateTime;

use super::rng::SplitMix64;
use super::world::{ClusterId, LeafId, ProxyId};

/// The longest span the clock handles (a thousand years): sums and products of spans stay far
/// from `i64` overflow whatever a plan or a configuration says.
const MAX_SPAN_MS: i64 = 1_000 * 366 * 86_400 * 1_000;

/// A span in the clock's milliseconds (at most [`MAX_SPAN_MS`]).
pub(super) fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(MAX_SPAN_MS, |v| v.min(MAX_SPAN_MS))
}

/// The instant of `unix` seconds.
pub(super) fn instant_unix(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The simulated clock: milliseconds since the run's start instant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// The start instant (Unix seconds).
    pub start_unix: i64,
    /// Now, in milliseconds since the start.
    pub now: i64,
}

impl Clock {
    /// The Unix second of clock time `t`.
    pub(super) fn unix_at(self, t: i64) -> i64 {
        self.start_unix + t.div_euclid(1000)
    }

    /// The Unix second of now.
    pub(super) fn unix(self) -> i64 {
        self.unix_at(self.now)
    }

    /// The instant of clock time `t`.
    pub(super) fn instant_at(self, t: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.start_unix)
            .ok()
            .and_then(|s| s.checked_add(time::Duration::milliseconds(t)))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The instant of now.
    pub(super) fn instant(self) -> OffsetDateTime {
        self.instant_at(self.now)
    }
}

/// Why a proxy asks istiod for a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    Rotation,
    Push,
    Restart,
    Retry,
}

/// A plan step: action `index` of phase `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Step {
    pub phase: usize,
    pub index: usize,
}

/// Something that happens at an instant.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ev {
    StartPhase(usize),
    Action(Step),
    AfterPlan,
    EndRun,
    SecretSync(ClusterId),
    Watch(ClusterId),
    IstiodReady(ClusterId),
    Push(ProxyId),
    Csr(ProxyId, Cause),
    Rotate(ProxyId, u64),
    PodRestart(ProxyId),
    NodeRestart(ClusterId, usize),
    LeafExpiry(ProxyId, LeafId),
    AwaitTimeout(Step),
}

struct Scheduled {
    time: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// The event queue, the clock and the schedule's random stream.
pub(super) struct Queue {
    heap: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    clock: Clock,
    /// Every draw of the schedule (seeded with [`super::SimConfig::seed`]).
    pub rng: SplitMix64,
}

impl Queue {
    /// An empty queue at the start instant `start_unix`, drawing from `seed`.
    pub(super) fn new(start_unix: i64, seed: u64) -> Queue {
        Queue {
            heap: BinaryHeap::new(),
            seq: 0,
            clock: Clock { start_unix, now: 0 },
            rng: SplitMix64::new(seed),
        }
    }

    /// The clock.
    pub(super) fn clock(&self) -> Clock {
        self.clock
    }

    /// Now (milliseconds since the start).
    pub(super) fn now(&self) -> i64 {
        self.clock.now
    }

    /// Schedules `ev` at `at` (now, if `at` has passed).
    pub(super) fn schedule(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled {
            time: at.max(self.clock.now),
            seq: self.seq,
            ev,
        }));
    }

    /// A uniform delay in `[0, max)` milliseconds.
    pub(super) fn delay_below(&mut self, max: i64) -> i64 {
        self.rng.ms_below(max)
    }

    /// The next event, with the clock moved to its instant.
    pub(super) fn pop(&mut self) -> Option<Ev> {
        let Reverse(next) = self.heap.pop()?;
        self.clock.now = next.time;
        Some(next.ev)
    }
}
