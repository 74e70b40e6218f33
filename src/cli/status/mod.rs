//! `meshtrust status [--json] [--plan DIR] [--at RFC3339] [profile flags] INPUT...`: where the
//! live mesh stands, from what its proxies report, and whether the next phase of a plan is
//! safe; `--collect` gathers the inputs itself with the operator's kubectl and istioctl.

mod collect;

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use meshtrust::observe::{self, Group, MeshState, Observation, ProxyState, Reader, Verdict};
use meshtrust::plan;

use super::common::{self, CliError, Outcome};
use super::profile::ProfileArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print JSON: proxies, groups, phase_reached, next_phase, safe_to_advance, blockers.
    #[arg(long)]
    json: bool,
    /// The plan directory: say which phase each proxy is in and whether the next is safe.
    #[arg(long, value_name = "DIR")]
    plan: Option<PathBuf>,
    /// Evaluate at this instant (RFC 3339; default now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    at: Option<OffsetDateTime>,
    #[command(flatten)]
    profile: ProfileArgs,
    #[command(flatten)]
    collect: collect::CollectArgs,
    /// Envoy / istioctl secret dumps, ztunnel dumps, istioctl tables, kubectl Secret or
    /// ConfigMap output: files, directories of them, or `-` for standard input.
    #[arg(value_name = "INPUT", required_unless_present = "collect")]
    inputs: Vec<PathBuf>,
}

fn parse_at(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 instant ({e}), e.g. 2026-12-02T12:00:00Z"))
}

#[derive(Serialize)]
struct Report<'a> {
    at: String,
    proxies: &'a [ProxyState],
    groups: &'a [Group],
    consistent: bool,
    phase_reached: Option<&'a str>,
    applied_phase: Option<&'a str>,
    next_phase: Option<&'a str>,
    safe_to_advance: bool,
    blockers: &'a [observe::Blocker],
    configmaps: &'a [observe::ConfigMapState],
    failed: &'a [collect::Failure],
}

/// Every file of the inputs (directories walked, sorted), as (name, bytes).
pub(crate) fn read_inputs(inputs: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, CliError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files, 0)?;
            files.sort();
            for f in files {
                out.push((common::display_path(&f), common::read_input(&f)?));
            }
        } else {
            out.push((common::display_path(p), common::read_input(p)?));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), CliError> {
    if depth > 8 {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::in_file(dir, e))?;
    for e in entries {
        let path = e.map_err(|e| CliError::in_file(dir, e))?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out, depth + 1)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses every input; the first unreadable one is an error (exit 2).
pub(crate) fn observe_all(files: &[(String, Vec<u8>)]) -> Result<Vec<Observation>, CliError> {
    let mut reader = Reader::new();
    files
        .iter()
        .map(|(name, bytes)| {
            reader
                .read(name, bytes)
                .map_err(|e| CliError(e.to_string()))
        })
        .collect()
}

pub(crate) fn run(a: Args) -> Result<Outcome, CliError> {
    let at = a.at.unwrap_or_else(OffsetDateTime::now_utc);
    let plan = match &a.plan {
        Some(dir) => {
            let read = plan::read_plan_dir(dir).map_err(|e| CliError(e.to_string()))?;
            let (p, has_json) = (read.plan, read.has_json);
            Some((p, has_json))
        }
        None => None,
    };
    // The versions come from plan.json or the flags; none is assumed.
    let recorded = plan
        .as_ref()
        .and_then(|(p, has_json)| has_json.then(|| p.profile.clone()));
    let plan = plan.map(|(p, _)| p);
    let profile = a.profile.over_recorded(recorded).map_err(CliError)?;
    let (files, failed) = if a.collect.collect {
        collect::collect(&a.collect)?
    } else {
        (read_inputs(&a.inputs)?, Vec::new())
    };
    let observations = observe_all(&files)?;
    let extra = plan
        .as_ref()
        .map(observe::plan_certificates)
        .unwrap_or_default();
    let mut mesh = MeshState::evaluate(observations, &extra, &profile, at);
    let verdict = plan.as_ref().map(|p| mesh.against(p));
    let consistent = mesh.is_consistent();
    if a.json {
        print_json(&mesh, verdict.as_ref(), &failed, consistent)?;
    } else {
        print_human(&mesh, verdict.as_ref(), &failed)?;
    }
    for f in &failed {
        eprintln!("meshtrust: {}: did not answer: {}", f.pod, f.error);
    }
    let safe = verdict
        .as_ref()
        .is_none_or(|v| v.safe_to_advance || (v.next_phase.is_none() && v.blockers.is_empty()));
    Ok(Outcome::from_ok(consistent && safe && failed.is_empty()))
}

fn print_json(
    mesh: &MeshState,
    v: Option<&Verdict>,
    failed: &[collect::Failure],
    consistent: bool,
) -> Result<(), CliError> {
    common::print_json(&Report {
        at: common::rfc3339(mesh.at),
        proxies: &mesh.proxies,
        groups: &mesh.groups,
        consistent,
        phase_reached: v.and_then(|v| v.phase_reached.as_deref()),
        applied_phase: v.and_then(|v| v.applied_phase.as_deref()),
        next_phase: v.and_then(|v| v.next_phase.as_deref()),
        safe_to_advance: v.is_some_and(|v| v.safe_to_advance),
        blockers: v.map(|v| &v.blockers[..]).unwrap_or(&[]),
        configmaps: v.map(|v| &v.configmaps[..]).unwrap_or(&[]),
        failed,
    })
}

fn short(f: &meshtrust::Fingerprint) -> String {
    f.short()
}

fn print_human(
    mesh: &MeshState,
    v: Option<&Verdict>,
    failed: &[collect::Failure],
) -> Result<(), CliError> {
    let rows: Vec<Vec<String>> = mesh
        .proxies
        .iter()
        .map(|p| {
            let leaf = p.leaf.as_ref();
            vec![
                p.name.clone(),
                p.kind.to_string(),
                p.trusts.iter().map(short).collect::<Vec<_>>().join(","),
                leaf.and_then(|l| l.signer_sha256.as_ref())
                    .map(short)
                    .unwrap_or_default(),
                leaf.and_then(|l| l.not_after)
                    .map(common::rfc3339)
                    .unwrap_or_default(),
                p.phase.clone().unwrap_or_default(),
                p.warnings
                    .iter()
                    .map(|w| {
                        serde_json::to_value(w)
                            .ok()
                            .and_then(|v| v["code"].as_str().map(str::to_owned))
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    common::print_table(
        &[
            "PROXY",
            "KIND",
            "TRUSTS",
            "SIGNER",
            "LEAF NOT AFTER",
            "PHASE",
            "WARNINGS",
        ],
        &rows,
    )?;
    let mut s = String::from("\nGroups:\n");
    for g in &mesh.groups {
        s.push_str(&format!(
            "  {} proxies trust [{}], signer {}\n",
            g.count,
            g.trusts.iter().map(short).collect::<Vec<_>>().join(", "),
            g.signer_sha256
                .as_ref()
                .map(short)
                .unwrap_or_else(|| "-".to_owned())
        ));
    }
    for p in &mesh.proxies {
        for w in &p.warnings {
            s.push_str(&format!(
                "warning: {}: {}\n",
                p.name,
                serde_json::to_string(w).unwrap_or_default()
            ));
        }
    }
    if let Some(v) = v {
        s.push_str(&format!(
            "\nPhase reached: {}; applied: {}; next: {}\n",
            v.phase_reached.as_deref().unwrap_or("none"),
            v.applied_phase.as_deref().unwrap_or("unknown"),
            v.next_phase
                .as_deref()
                .unwrap_or("none (rotation complete)")
        ));
        for b in &v.blockers {
            s.push_str(&format!(
                "blocker: {}: {}{}\n",
                b.proxy,
                b.reason,
                b.clears_at
                    .map(|t| format!(" (clears by itself at {})", common::rfc3339(t)))
                    .unwrap_or_default()
            ));
        }
        s.push_str(&match (&v.next_phase, v.safe_to_advance) {
            (Some(n), true) => format!("SAFE to apply {n}\n"),
            (Some(n), false) => format!("NOT SAFE to apply {n}: {} blocker(s)\n", v.blockers.len()),
            (None, _) => "rotation complete: no phase left to apply\n".to_owned(),
        });
    }
    if !failed.is_empty() {
        s.push_str(&format!(
            "{} pod(s) did not answer (listed on stderr)\n",
            failed.len()
        ));
    }
    common::write_stdout(s.as_bytes())
}
