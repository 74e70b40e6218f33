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
    /// The cluster of some inputs, for a multi-cluster plan: `NAME=PATH` reads PATH (a file
    /// or directory) as cluster NAME's; a bare `NAME` marks every other input (and what
    /// `--collect` gathers). Repeatable. Without it a proxy's cluster comes from its dump's
    /// CLUSTER_ID, a directory named after a plan cluster (as `--collect --save` writes
    /// them), or the signer of its leaf.
    #[arg(long = "cluster", value_name = "NAME[=PATH]")]
    clusters: Vec<String>,
    /// Envoy / istioctl secret dumps, ztunnel dumps, istioctl tables, kubectl Secret or
    /// ConfigMap output: files, directories of them, or `-` for standard input.
    #[arg(value_name = "INPUT", required_unless_present_any = ["collect", "clusters"])]
    inputs: Vec<PathBuf>,
}

/// The `--cluster` flags: (cluster, path) pairs and the cluster of every other input.
struct ClusterFlags {
    paths: Vec<(String, PathBuf)>,
    rest: Option<String>,
}

impl ClusterFlags {
    fn parse(flags: &[String], plan: Option<&plan::Plan>) -> Result<ClusterFlags, CliError> {
        let mut out = ClusterFlags {
            paths: Vec::new(),
            rest: None,
        };
        for f in flags {
            let (name, path) = match f.split_once('=') {
                Some((n, p)) => (n, Some(p)),
                None => (f.as_str(), None),
            };
            if name.is_empty() || path.is_some_and(str::is_empty) {
                return Err(CliError(format!(
                    "--cluster {f:?}: expected NAME or NAME=PATH"
                )));
            }
            if let Some(p) = plan.filter(|p| !p.clusters.iter().any(|c| c == name)) {
                return Err(CliError(format!(
                    "--cluster {name}: the plan has no such cluster (it has {})",
                    p.clusters.join(", ")
                )));
            }
            match path {
                Some(p) => out.paths.push((name.to_owned(), PathBuf::from(p))),
                None if out.rest.is_some() => {
                    return Err(CliError(
                        "--cluster NAME (without =PATH) may be given once".to_owned(),
                    ));
                }
                None => out.rest = Some(name.to_owned()),
            }
        }
        Ok(out)
    }
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

/// An input file: (name, bytes, the directory it was under, or the cluster it belongs to).
type Tagged = (String, Vec<u8>, Option<String>);

/// Every file of the inputs (directories walked, sorted), as (name, bytes), each with the
/// first directory under its input directory (the cluster or context `--collect --save`
/// files it under), if any.
fn read_tagged(inputs: &[PathBuf]) -> Result<Vec<Tagged>, CliError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files, 0)?;
            files.sort();
            for f in files {
                let rel = f.strip_prefix(p).unwrap_or(&f);
                let mut parts = rel.components();
                let dir = parts.next().filter(|_| parts.next().is_some());
                let tag = dir.and_then(|d| d.as_os_str().to_str()).map(str::to_owned);
                out.push((common::display_path(&f), common::read_input(&f)?, tag));
            }
        } else {
            out.push((common::display_path(p), common::read_input(p)?, None));
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
    let flags = ClusterFlags::parse(&a.clusters, plan.as_ref())?;
    let is_cluster = |c: &str| {
        plan.as_ref()
            .is_none_or(|p| p.clusters.iter().any(|k| k == c))
    };
    // (name, bytes, cluster) of every input: the --cluster flags first, then a directory
    // named after a plan cluster, then the context collected from.
    let (mut files, failed) = if a.collect.collect {
        let (files, failed) = collect::collect(&a.collect, flags.rest.as_deref())?;
        let ctx = flags.rest.clone().or_else(|| {
            a.collect
                .context()
                .filter(|c| is_cluster(c))
                .map(str::to_owned)
        });
        let files = files
            .into_iter()
            .map(|(n, b)| (n, b, ctx.clone()))
            .collect::<Vec<_>>();
        (files, failed)
    } else {
        let files = read_tagged(&a.inputs)?
            .into_iter()
            .map(|(n, b, tag)| {
                let c = flags
                    .rest
                    .clone()
                    .or(tag.filter(|t| plan.is_some() && is_cluster(t)));
                (n, b, c)
            })
            .collect();
        (files, Vec::new())
    };
    for (name, path) in &flags.paths {
        for (n, b, _) in read_tagged(std::slice::from_ref(path))? {
            files.push((n, b, Some(name.clone())));
        }
    }
    let named: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, b, _)| (n.clone(), b.clone()))
        .collect();
    let mut observations = observe_all(&named)?;
    for (o, (_, _, cluster)) in observations.iter_mut().zip(&files) {
        if let Some(c) = cluster {
            o.in_cluster(c);
        }
    }
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
    // The cluster column only when clusters were told apart (a multi-cluster plan, or a
    // cluster given or named by the dumps).
    let clusters = mesh.proxies.iter().any(|p| {
        p.cluster_from
            .is_some_and(|f| f != observe::ClusterEvidence::OnlyCluster)
            || p.warnings
                .iter()
                .any(|w| matches!(w, observe::Warning::ClusterUnassigned { .. }))
    });
    let rows: Vec<Vec<String>> = mesh
        .proxies
        .iter()
        .map(|p| {
            let leaf = p.leaf.as_ref();
            let mut row = vec![
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
            ];
            if clusters {
                row.insert(2, p.cluster.clone().unwrap_or_else(|| "?".to_owned()));
            }
            row
        })
        .collect();
    let mut header = vec![
        "PROXY",
        "KIND",
        "TRUSTS",
        "SIGNER",
        "LEAF NOT AFTER",
        "PHASE",
        "WARNINGS",
    ];
    if clusters {
        header.insert(2, "CLUSTER");
    }
    common::print_table(&header, &rows)?;
    let mut s = String::from("\nGroups:\n");
    for g in &mesh.groups {
        s.push_str(&format!(
            "  {} {} trust [{}], signer {}\n",
            g.count,
            if g.count == 1 { "proxy" } else { "proxies" },
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
            let at = match (&b.cluster, clusters) {
                (Some(c), true) => format!(" (cluster {c})"),
                _ => String::new(),
            };
            s.push_str(&format!(
                "blocker: {}{at}: {}{}\n",
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
