//! The journal: what the run records for its [`Outcome`](super::Outcome) besides traffic, the
//! log of what istiod and the operator did, the deviations from the plan, and one report per
//! phase. Also [`Env`], the parts a reaction of istiod or an operator's step acts on.

use time::OffsetDateTime;

use super::queue::Queue;
use super::world::{ClusterId, World};
use super::{LogEntry, PhaseReport};

/// The log, the deviations and the phase reports.
#[derive(Default)]
pub(super) struct Journal {
    log: Vec<LogEntry>,
    deviations: Vec<LogEntry>,
    reports: Vec<PhaseReport>,
    /// Events that changed something.
    pub events: u64,
}

impl Journal {
    /// The phase in effect (the last report's).
    pub(super) fn phase_name(&self) -> &str {
        self.reports.last().map_or("", |r| r.name.as_str())
    }

    /// The report of the phase in effect.
    pub(super) fn report(&mut self) -> Option<&mut PhaseReport> {
        self.reports.last_mut()
    }

    /// Logs `message` about `cluster` at `time`.
    fn log(&mut self, time: OffsetDateTime, cluster: String, message: String) {
        let phase = self.phase_name().to_owned();
        self.log.push(LogEntry {
            time,
            phase,
            cluster,
            message,
        });
    }

    /// The log, the deviations and the phase reports.
    pub(super) fn into_parts(self) -> (Vec<LogEntry>, Vec<LogEntry>, Vec<PhaseReport>) {
        (self.log, self.deviations, self.reports)
    }
}

/// What istiod's reactions and the operator's steps act on (besides the clusters): the world,
/// the schedule and the journal.
pub(super) struct Env<'a> {
    pub world: &'a mut World,
    pub queue: &'a mut Queue,
    pub journal: &'a mut Journal,
}

impl Env<'_> {
    /// Now (milliseconds since the start).
    pub(super) fn now(&self) -> i64 {
        self.queue.now()
    }

    /// Logs `message` now, about `cluster`.
    pub(super) fn log(&mut self, cluster: Option<ClusterId>, message: String) {
        let name = self.world.cluster_name(cluster);
        let at = self.queue.clock().instant();
        self.journal.log(at, name, message);
    }

    /// Something that did not go as the plan says: logged, and listed in the outcome.
    pub(super) fn deviate(&mut self, cluster: Option<ClusterId>, message: String) {
        self.log(cluster, message);
        if let Some(entry) = self.journal.log.last() {
            self.journal.deviations.push(entry.clone());
        }
    }

    /// Ends the report of the phase in effect now, with the census of the proxies.
    pub(super) fn close_report(&mut self) {
        let census = self.world.census();
        let end = self.queue.clock().instant();
        if let Some(r) = self.journal.report() {
            r.ended = end;
            r.census = census;
        }
    }

    /// Starts the report of phase `name` now (ending the one before).
    pub(super) fn open_report(&mut self, name: String, title: String) {
        if !self.journal.reports.is_empty() {
            self.close_report();
        }
        let t = self.queue.clock().instant();
        self.journal.reports.push(PhaseReport {
            name,
            title,
            started: t,
            ended: t,
            events: 0,
            connections: 0,
            failed_connections: 0,
            rotations: 0,
            reissued_on_push: 0,
            restarts: 0,
            pushes: 0,
            census: Vec::new(),
        });
    }
}
