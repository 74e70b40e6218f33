//! `meshtrust simulate [--json] [--workloads N] [--seed S] [profile flags] PLAN_DIR`: runs a plan
//! on a simulated mesh and checks every connection at every event.

use std::path::PathBuf;

use serde::Serialize;

use meshtrust::plan;
use meshtrust::sim::{self, Direction, LogEntry, Outcome, SimConfig};

use super::common::{self, CliError, Outcome as Exit};
use super::profile::ProfileArgs;

/// At most this many failures in the JSON output.
const JSON_FAILURES: usize = 100;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a JSON object: ok, events, connections, failures (at most 100), and more.
    #[arg(long)]
    json: bool,
    /// Proxies in the simulated mesh, spread over the plan's clusters.
    #[arg(long, value_name = "N", default_value_t = 100)]
    workloads: usize,
    /// Seed of the schedule (initial leaf ages, jitter, push and restart instants).
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    profile: ProfileArgs,
    /// The plan directory (NN-name phase directories; plan.json optional: without it the
    /// flags are the profile, and steps and waits follow the planner's rules).
    #[arg(value_name = "PLAN_DIR")]
    dir: PathBuf,
}

#[derive(Serialize)]
struct JsonFailure<'a> {
    time: String,
    phase: &'a str,
    from: &'a str,
    to: &'a str,
    reason: &'a str,
    direction: Direction,
    reason_kind: &'a str,
    signer: &'a str,
    trusts: &'a [String],
}

#[derive(Serialize)]
struct JsonDeviation<'a> {
    time: String,
    phase: &'a str,
    cluster: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    events: u64,
    connections: u64,
    failures: Vec<JsonFailure<'a>>,
    failed_connections: u64,
    failures_recorded: usize,
    ran_as_planned: bool,
    deviations: Vec<JsonDeviation<'a>>,
    workloads: usize,
    seed: u64,
    start: String,
    end: String,
    phases: Vec<&'a str>,
}

fn deviation(d: &LogEntry) -> JsonDeviation<'_> {
    JsonDeviation {
        time: common::rfc3339(d.time),
        phase: &d.phase,
        cluster: &d.cluster,
        message: &d.message,
    }
}

fn report(o: &Outcome) -> Report<'_> {
    Report {
        ok: o.ok(),
        events: o.events,
        connections: o.connections,
        failures: o
            .failures
            .iter()
            .take(JSON_FAILURES)
            .map(|f| JsonFailure {
                time: common::rfc3339(f.time),
                phase: &f.phase,
                from: &f.from,
                to: &f.to,
                reason: &f.reason,
                direction: f.direction,
                reason_kind: f.reason_kind,
                signer: &f.signer,
                trusts: &f.trusts,
            })
            .collect(),
        failed_connections: o.failed_connections,
        failures_recorded: o.failures.len(),
        ran_as_planned: o.ran_as_planned(),
        deviations: o.deviations.iter().map(deviation).collect(),
        workloads: o.proxies,
        seed: o.seed,
        start: common::rfc3339(o.start),
        end: common::rfc3339(o.end),
        phases: o.phases.iter().map(|p| p.name.as_str()).collect(),
    }
}

pub(crate) fn run(a: Args) -> Result<Exit, CliError> {
    let (mut p, has_json, findings) =
        plan::read_plan_dir(&a.dir).map_err(|e| CliError(e.to_string()))?;
    p.profile = a
        .profile
        .over_recorded(has_json.then(|| p.profile.clone()))
        .map_err(CliError)?;
    for f in findings
        .iter()
        .filter(|f| f.severity > meshtrust::istio::Severity::Info)
    {
        eprintln!("meshtrust: {}: {f}", a.dir.display());
    }
    if !has_json {
        eprintln!(
            "meshtrust: {}: no plan.json: the profile is the flags', and each phase gets the planner's steps and waits",
            a.dir.display()
        );
    }
    let cfg = SimConfig::new(time::OffsetDateTime::now_utc(), a.seed, a.workloads);
    let outcome =
        sim::simulate(&p, &cfg).map_err(|e| CliError(format!("{}: {e}", a.dir.display())))?;
    if a.json {
        common::print_json(&report(&outcome))?;
    } else {
        common::write_stdout(outcome.story().as_bytes())?;
    }
    Ok(Exit::from_ok(outcome.ok()))
}
