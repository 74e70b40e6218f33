//! `meshtrust simulate [--json] [--workloads N] [--seed S] [profile flags] PLAN_DIR`: runs a plan
//! on a simulated mesh and checks every connection at every event.

use std::path::PathBuf;

use serde::Serialize;

use meshtrust::istio::Severity;
use meshtrust::plan::{self, CheckOptions, Code, Finding, PlanOptions};
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
    verifier: meshtrust::verify::Policy,
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
    /// Whether `plan check` calls this plan safe (the simulation samples one schedule; the
    /// check covers all of them).
    plan_check_ok: bool,
    /// The error findings of `plan check`.
    plan_check_errors: Vec<&'a Finding>,
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

fn report<'a>(o: &'a Outcome, check_errors: &'a [Finding]) -> Report<'a> {
    Report {
        plan_check_ok: check_errors.is_empty(),
        plan_check_errors: check_errors.iter().collect(),
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
                verifier: f.verifier,
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
    let plan::PlanDir {
        plan: mut p,
        has_json,
        findings,
        ..
    } = plan::read_plan_dir(&a.dir).map_err(|e| CliError(e.to_string()))?;
    p.profile = a
        .profile
        .over_recorded(has_json.then(|| p.profile.clone()))
        .map_err(CliError)?;
    for f in findings.iter().filter(|f| f.severity > Severity::Info) {
        eprintln!("meshtrust: {}: {f}", a.dir.display());
    }
    // What would be applied is not what was read (secret.yaml or plan.json's hashes differ
    // from the phase files): simulating the files would prove nothing about the apply.
    if plan::has_errors(&findings) {
        eprintln!(
            "meshtrust: {}: refusing to simulate: the files the runbook applies are not the files checked (see above); re-seal a deliberate edit with `meshtrust plan seal`",
            a.dir.display()
        );
        return Ok(Exit::CheckFailed);
    }
    if !has_json {
        eprintln!(
            "meshtrust: {}: no plan.json: the profile is the flags', and each phase gets the planner's steps and waits",
            a.dir.display()
        );
    }
    let now = time::OffsetDateTime::now_utc();
    let cfg = SimConfig::new(now, a.seed, a.workloads);
    let outcome =
        sim::simulate(&p, &cfg).map_err(|e| CliError(format!("{}: {e}", a.dir.display())))?;
    let check = CheckOptions {
        now,
        margin: PlanOptions::default().margin,
        waits_known: has_json,
    };
    let check_errors: Vec<Finding> = plan::check_plan(&p, &check)
        .into_iter()
        .chain(plan::check_rollback(&p, &check))
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if a.json {
        common::print_json(&report(&outcome, &check_errors))?;
    } else {
        let mut text = outcome.story();
        if !check_errors.is_empty() {
            text.push_str(&check_disagreement(
                &outcome,
                &check_errors,
                a.seed,
                a.workloads,
            ));
        }
        common::write_stdout(text.as_bytes())?;
    }
    // simulate and plan check agree: a plan the check refuses never exits 0.
    Ok(Exit::from_ok(outcome.ok() && check_errors.is_empty()))
}

/// Why a plan `plan check` refuses can still simulate without a failed connection, said
/// next to the simulation's result so that "Result: OK" never stands alone.
fn check_disagreement(o: &Outcome, errors: &[Finding], seed: u64, workloads: usize) -> String {
    let mut s = format!(
        "\nBUT plan check refuses this plan ({} error(s)):\n",
        errors.len()
    );
    for f in errors {
        s.push_str(&format!("  {f}\n"));
    }
    if o.ok() {
        s.push_str(&format!(
            "The simulated mesh survived only because this run (seed {seed}, {workloads} workloads) did not meet the case the check guards against: "
        ));
        let why: Vec<&str> = errors
            .iter()
            .map(|f| match f.code {
                Code::EarlyRootRemoval => "the recorded wait is shorter than a leaf lifetime, and in this run every leaf under the dropped root had already been renewed or had expired before the removal (the simulated leaf ages and renewal instants); a proxy whose leaf is older or renews later loses mTLS",
                Code::MissingTrigger => "proxies renewed under the new signer at their normal rotation before any connection needed it; without the trigger a proxy renews only at its own rotation",
                Code::CrossMatrix | Code::SignerNotTrusted => "no simulated connection paired the two proxies whose certificates disagree at that moment",
                _ => "the simulation replays one schedule of one mesh; the check covers every schedule and proxy the plan allows",
            })
            .collect();
        let mut seen = Vec::new();
        for w in why {
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
        s.push_str(&seen.join("; "));
        s.push_str(".\nTreat the plan as NOT safe (exit 1).\n");
    }
    s
}
