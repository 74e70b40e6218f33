//! `meshtrust plan --current PATH --new PATH --out DIR [profile flags] [--json]`
//! and `meshtrust plan check [profile flags] [--json] DIR`.

use std::path::PathBuf;

use serde::Serialize;

use meshtrust::istio::{self, Severity, format_duration};
use meshtrust::plan::{self, CheckOptions, ClusterInput, PlanFinding, PlanOptions, RotationKind};

use super::common::{self, CliError, Outcome};
use super::profile::ProfileArgs;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
    #[command(flatten)]
    make: MakeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Check a plan on disk (also a hand-edited one): exit 0 when safe, 1 with the findings.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct MakeArgs {
    /// The CA secret the cluster uses now: a cacerts or istio-ca-secret directory, or
    /// `kubectl get secret -o yaml|json` output.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    current: Option<PathBuf>,
    /// The new CA: a cacerts-layout directory (ca-cert.pem, ca-key.pem, cert-chain.pem,
    /// root-cert.pem, where root-cert.pem is the new root).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    new: Option<PathBuf>,
    /// Multi-cluster: NAME=CURRENT_PATH,NEW_PATH (repeat for every cluster).
    #[arg(long, value_name = "NAME=CURRENT,NEW")]
    cluster: Vec<String>,
    /// Where to write the plan (must not exist, or be empty).
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// Force the rotation kind instead of inferring it.
    #[arg(long, value_name = "KIND")]
    kind: Option<RotationKind>,
    /// Intermediate rotation: make every proxy re-issue at once (roots A -> A+A, then a
    /// clean-up phase) instead of waiting for the normal leaf rotation.
    #[arg(long)]
    reissue_now: bool,
    /// Print plan.json on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    profile: ProfileArgs,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Print a JSON object `{"ok": bool, "findings": [...]}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    profile: ProfileArgs,
    /// The plan directory (NN-name phase directories, plan.json optional).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

pub(crate) fn run(args: Args) -> Result<Outcome, CliError> {
    match args.sub {
        Some(Sub::Check(c)) => check(c),
        None => make(args.make),
    }
}

fn read_secret(path: &std::path::Path) -> Result<istio::CaSecret, CliError> {
    istio::read_path(path).map_err(|e| CliError::in_file(path, e))
}

fn make(a: MakeArgs) -> Result<Outcome, CliError> {
    let profile = a.profile.profile().map_err(CliError)?;
    let mut inputs = Vec::new();
    if a.cluster.is_empty() {
        let (Some(cur), Some(new)) = (&a.current, &a.new) else {
            return Err(CliError(
                "--current and --new are required (or --cluster NAME=CURRENT,NEW)".to_owned(),
            ));
        };
        inputs.push(ClusterInput::single(read_secret(cur)?, read_secret(new)?));
    } else {
        for spec in &a.cluster {
            let (name, paths) = spec.split_once('=').ok_or_else(|| {
                CliError(format!(
                    "--cluster {spec:?}: expected NAME=CURRENT_PATH,NEW_PATH"
                ))
            })?;
            let (cur, new) = paths.split_once(',').ok_or_else(|| {
                CliError(format!(
                    "--cluster {spec:?}: expected NAME=CURRENT_PATH,NEW_PATH"
                ))
            })?;
            inputs.push(ClusterInput {
                name: name.to_owned(),
                current: read_secret(cur.as_ref())?,
                new: read_secret(new.as_ref())?,
            });
        }
    }
    let opts = PlanOptions {
        kind: a.kind,
        reissue_now: a.reissue_now,
        ..PlanOptions::default()
    };
    let out = a.out.unwrap_or_default();
    let plan = match plan::plan(&inputs, &profile, &opts, time::OffsetDateTime::now_utc()) {
        Ok(p) => p,
        Err(plan::PlanError::Refused(findings)) => {
            print_findings(&findings, a.json, false)?;
            eprintln!(
                "meshtrust: refusing to plan: {} finding(s); nothing written",
                findings.len()
            );
            return Ok(Outcome::CheckFailed);
        }
        Err(e) => return Err(CliError(e.to_string())),
    };
    plan::write_plan_dir(&plan, &out).map_err(|e| CliError(e.to_string()))?;
    if a.json {
        common::write_stdout(plan::render_plan_json(&plan).as_bytes())?;
    } else {
        let mut s = format!(
            "{} plan written to {} ({} phases, at least {}):\n",
            plan.kind,
            out.display(),
            plan.phases.len(),
            format_duration(plan.min_duration())
        );
        for p in &plan.phases {
            let wait = p
                .gate
                .as_ref()
                .map(|g| format!("  [then wait {}]", format_duration(g.min_wait)))
                .unwrap_or_default();
            s.push_str(&format!("  {:<20} {}{wait}\n", p.name, p.title));
        }
        s.push_str(&format!(
            "Follow {}/RUNBOOK.md; check with `meshtrust plan check {}`.\n",
            out.display(),
            out.display()
        ));
        common::write_stdout(s.as_bytes())?;
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct CheckReport<'a> {
    ok: bool,
    findings: &'a [PlanFinding],
}

fn print_findings(findings: &[PlanFinding], json: bool, ok: bool) -> Result<(), CliError> {
    if json {
        common::print_json(&CheckReport { ok, findings })
    } else {
        let mut s = String::new();
        for f in findings {
            s.push_str(&format!("{f}\n"));
        }
        common::write_stdout(s.as_bytes())
    }
}

fn check(c: CheckArgs) -> Result<Outcome, CliError> {
    let (mut plan, has_json, mut findings) =
        plan::read_plan_dir(&c.dir).map_err(|e| CliError(e.to_string()))?;
    let recorded = plan.profile.clone();
    plan.profile = c
        .profile
        .over_recorded(has_json.then(|| recorded.clone()))
        .map_err(CliError)?;
    if has_json && plan.profile != recorded {
        findings.push(PlanFinding {
            code: "profile-override",
            severity: Severity::Info,
            phase: "plan.json".to_owned(),
            cluster: None,
            message: "checking with a profile that differs from the one recorded in plan.json"
                .to_owned(),
        });
    }
    let opts = CheckOptions {
        now: time::OffsetDateTime::now_utc(),
        margin: PlanOptions::default().margin,
        waits_known: has_json,
    };
    findings.extend(plan::check_plan(&plan, &opts));
    let ok = !plan::has_errors(&findings);
    print_findings(&findings, c.json, ok)?;
    if !c.json {
        let verdict = if ok { "safe" } else { "NOT safe" };
        common::write_stdout(
            format!(
                "{}: {} plan with {} phases is {verdict}\n",
                c.dir.display(),
                plan.kind,
                plan.phases.len()
            )
            .as_bytes(),
        )?;
    }
    Ok(Outcome::from_ok(ok))
}
