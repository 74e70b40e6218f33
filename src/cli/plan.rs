//! `meshtrust plan --current PATH --new PATH --out DIR [profile flags] [--json]`,
//! `meshtrust plan check [profile flags] [--json] DIR` and
//! `meshtrust plan seal [profile flags] [--json] DIR`.

use std::path::PathBuf;

use serde::Serialize;

use meshtrust::istio::{self, format_duration};
use meshtrust::plan::{self, CheckOptions, ClusterInput, Code, Finding, PlanOptions, RotationKind};

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
    /// Re-seal a deliberately hand-edited plan: the phases' PEM files are the source of truth.
    /// Re-checks the plan (an unsafe one is refused, exit 1, nothing changed), then rewrites
    /// each phase's secret.yaml from its PEM files, and plan.json's hashes and RUNBOOK.md,
    /// keeping the profile, waits and steps plan.json records.
    Seal(CheckArgs),
    /// Is the live secret still what the plan expects? Compares a secret (`kubectl get secret
    /// ... -o yaml`, `-` for stdin) with a phase directory's files: exit 0 equal, 1 with what
    /// differs (never key material). The runbook runs it before every apply.
    Drift(DriftArgs),
}

#[derive(Debug, clap::Args)]
struct DriftArgs {
    /// [required] The phase (cluster) directory the live secret must equal.
    #[arg(long, value_name = "DIR", required = true)]
    expect: PathBuf,
    /// The live secret: kubectl YAML/JSON output, a directory, or `-` (stdin).
    #[arg(value_name = "LIVE")]
    live: PathBuf,
}

#[derive(Debug, clap::Args)]
struct MakeArgs {
    /// [required unless --cluster] The CA secret the cluster uses now: a cacerts or
    /// istio-ca-secret directory, or `kubectl get secret -o yaml|json` output (`-`: stdin).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    current: Option<PathBuf>,
    /// [required unless --cluster] The new CA: a cacerts-layout directory (ca-cert.pem,
    /// ca-key.pem, cert-chain.pem, root-cert.pem, where root-cert.pem is the new root).
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present_any = ["cluster", "new_cert"],
        conflicts_with_all = ["cluster", "new_cert"]
    )]
    new: Option<PathBuf>,
    /// The new signing CA as a PKI hands it out (instead of --new): its certificate (PEM;
    /// more certificates after the first join the chain).
    #[arg(
        long,
        value_name = "FILE",
        requires = "new_key",
        conflicts_with = "cluster"
    )]
    new_cert: Option<PathBuf>,
    /// The new signing CA's private key (with --new-cert).
    #[arg(long, value_name = "FILE", requires = "new_cert")]
    new_key: Option<PathBuf>,
    /// The chain above --new-cert, in any order, with or without the root (Vault's
    /// `ca_chain`, AWS Private CA's `CertificateChain`); meshtrust orders it.
    #[arg(long, value_name = "FILE", requires = "new_cert")]
    new_chain: Option<PathBuf>,
    /// The new root, where --new-chain does not end in it.
    #[arg(long, value_name = "FILE", requires = "new_cert")]
    new_root: Option<PathBuf>,
    /// `--kind cross-signed`: the cross-signed certificate B' (the new root's key issued by
    /// the old root; `meshtrust generate cross-sign` writes it).
    #[arg(long, value_name = "FILE")]
    cross_signed: Option<PathBuf>,
    /// Multi-cluster: NAME=CURRENT_PATH,NEW_PATH[,CONTEXT] (repeat for every cluster); CONTEXT
    /// is the cluster's kube context (default: NAME).
    #[arg(long, value_name = "NAME=CURRENT,NEW[,CONTEXT]")]
    cluster: Vec<String>,
    /// The kube context of the (single) cluster: every kubectl/istioctl line of the runbook
    /// carries `--context CTX`.
    #[arg(long, value_name = "CTX", conflicts_with = "cluster")]
    context: Option<String>,
    /// [required] Where to write the plan (must not exist, or be empty).
    #[arg(long, value_name = "DIR", required = true)]
    out: Option<PathBuf>,
    /// Force the rotation kind instead of inferring it.
    #[arg(long, value_name = "KIND", value_parser = kind_parser())]
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

/// `--kind`'s values, listed by `--help` and in the error for any other value.
fn kind_parser() -> impl clap::builder::TypedValueParser<Value = RotationKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new([
        "root-rotation",
        "self-signed-to-plugged-in",
        "intermediate-rotation",
        "multi-cluster",
        "cross-signed",
    ])
    .try_map(|s| s.parse::<RotationKind>())
}

pub(crate) fn run(args: Args) -> Result<Outcome, CliError> {
    match args.sub {
        Some(Sub::Check(c)) => check(c),
        Some(Sub::Seal(c)) => seal(c),
        Some(Sub::Drift(d)) => drift(d),
        None => make(args.make),
    }
}

/// Refusal codes that mean an input could not be read (exit 2, not 1).
const UNREADABLE_INPUT: [Code; 3] = [
    Code::CurrentUnreadable,
    Code::NewUnreadable,
    Code::NewIncomplete,
];

fn make(a: MakeArgs) -> Result<Outcome, CliError> {
    let profile = a.profile.profile().map_err(CliError)?;
    let mut runbook = plan::RunbookOptions::default();
    if let Some(ctx) = &a.context {
        runbook
            .contexts
            .insert(plan::DEFAULT_CLUSTER.to_owned(), ctx.clone());
    }
    let inputs = read_inputs(&a, &mut runbook)?;
    let cross_signed = match &a.cross_signed {
        Some(path) => Some(
            common::read_bundle(path)?
                .certificates()
                .next()
                .cloned()
                .ok_or_else(|| CliError::in_file(path, "holds no certificate"))?,
        ),
        None => None,
    };
    if cross_signed.is_some() && a.kind != Some(RotationKind::CrossSigned) {
        return Err(CliError(
            "--cross-signed goes with --kind cross-signed".to_owned(),
        ));
    }
    let opts = PlanOptions {
        kind: a.kind,
        reissue_now: a.reissue_now,
        cross_signed,
        ..PlanOptions::default()
    };
    let out = a.out.clone().unwrap_or_default();
    let plan = match plan::plan(&inputs, &profile, &opts, time::OffsetDateTime::now_utc()) {
        Ok(p) => p,
        Err(plan::PlanError::Refused(findings)) => {
            print_findings(&findings, a.json, false)?;
            if let Some(f) = findings.iter().find(|f| UNREADABLE_INPUT.contains(&f.code)) {
                return Err(CliError(format!(
                    "invalid input ({}): {}; nothing written",
                    f.code, f.message
                )));
            }
            eprintln!(
                "meshtrust: refusing to plan: {} finding(s); nothing written",
                findings.len()
            );
            return Ok(Outcome::CheckFailed);
        }
        Err(e) => return Err(CliError(e.to_string())),
    };
    plan::write_plan_dir_with(&plan, &out, &runbook)
        .map_err(|e| CliError(format!("--out: {e}")))?;
    if a.json {
        common::write_stdout(plan::render_plan_json_with(&plan, &runbook).as_bytes())?;
    } else {
        common::write_stdout(summary(&plan, &out).as_bytes())?;
    }
    Ok(Outcome::Success)
}

/// The clusters' current and new secrets from --current/--new (or --new-cert...), or from
/// every --cluster NAME=CURRENT,NEW[,CONTEXT] (whose contexts go into `runbook`).
fn read_inputs(
    a: &MakeArgs,
    runbook: &mut plan::RunbookOptions,
) -> Result<Vec<ClusterInput>, CliError> {
    if a.cluster.is_empty() && a.new_cert.is_none() {
        let (Some(cur), Some(new)) = (&a.current, &a.new) else {
            return Err(CliError(
                "--current and --new are required (or --cluster NAME=CURRENT,NEW)".to_owned(),
            ));
        };
        return Ok(vec![ClusterInput::single(
            common::read_secret(Some("--current"), cur)?,
            common::read_secret(Some("--new"), new)?,
        )]);
    }
    if a.cluster.is_empty() {
        let Some(cur) = &a.current else {
            return Err(CliError("--current is required".to_owned()));
        };
        return Ok(vec![ClusterInput::single(
            common::read_secret(Some("--current"), cur)?,
            assemble_new(a)?,
        )]);
    }
    let mut inputs = Vec::new();
    for spec in &a.cluster {
        let malformed = || {
            CliError(format!(
                "--cluster {spec:?}: expected NAME=CURRENT_PATH,NEW_PATH"
            ))
        };
        let (name, paths) = spec.split_once('=').ok_or_else(malformed)?;
        let (cur, new) = paths.split_once(',').ok_or_else(malformed)?;
        let (new, context) = match new.split_once(',') {
            Some((n, c)) if !c.is_empty() => (n, Some(c)),
            _ => (new, None),
        };
        if let Some(c) = context {
            runbook.contexts.insert(name.to_owned(), c.to_owned());
        }
        let opt = format!("--cluster {name}=");
        inputs.push(ClusterInput {
            name: name.to_owned(),
            current: common::read_secret(Some(&opt), cur.as_ref())?,
            new: common::read_secret(Some(&opt), new.as_ref())?,
        });
    }
    Ok(inputs)
}

/// What `meshtrust plan` prints after writing the plan to `out`.
fn summary(plan: &plan::Plan, out: &std::path::Path) -> String {
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
    if let Some(c) = plan.costs() {
        s.push_str(&c);
    }
    s.push_str(&format!(
        "Follow {}/RUNBOOK.md; check with `meshtrust plan check {}`.\n",
        out.display(),
        out.display()
    ));
    s
}

/// The new CA from --new-cert, --new-key, --new-chain and --new-root, ordered into Istio's
/// layout ([`istio::assemble`]); what was reordered or completed goes to stderr.
fn assemble_new(a: &MakeArgs) -> Result<istio::CaSecret, CliError> {
    let (Some(cert_path), Some(key_path)) = (&a.new_cert, &a.new_key) else {
        return Err(CliError("--new-cert needs --new-key".to_owned()));
    };
    let read = |p: &Option<PathBuf>| p.as_deref().map(common::read_input).transpose();
    let cert = common::read_input(cert_path)?;
    let key = zeroize::Zeroizing::new(common::read_input(key_path)?);
    let (chain, root) = (read(&a.new_chain)?, read(&a.new_root)?);
    let assembled = istio::assemble(&istio::PkiMaterial {
        cert: &cert,
        key: &key,
        chain: chain.as_deref(),
        root: root.as_deref(),
    })
    .map_err(|e| {
        let path = match &e {
            istio::AssembleError::Unreadable { part, .. } => match part {
                istio::Part::Cert => Some(cert_path),
                istio::Part::Key => Some(key_path),
                istio::Part::Chain => a.new_chain.as_ref(),
                istio::Part::Root => a.new_root.as_ref(),
            },
            istio::AssembleError::NotCa { .. } => Some(cert_path),
            istio::AssembleError::KeyMismatch { .. } => Some(key_path),
            _ => None,
        };
        match path {
            Some(p) => CliError::in_file(p, e),
            None => CliError(format!("--new-cert/--new-chain/--new-root: {e}")),
        }
    })?;
    for n in &assembled.notes {
        eprintln!("note: new CA: {n}");
    }
    Ok(assembled.secret)
}

#[derive(Serialize)]
struct CheckReport<'a> {
    ok: bool,
    findings: &'a [Finding],
}

fn print_findings(findings: &[Finding], json: bool, ok: bool) -> Result<(), CliError> {
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
    let checked = plan::check_dir(
        &c.dir,
        |recorded| c.profile.over_recorded(recorded.cloned()),
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|e| CliError(e.to_string()))?;
    let (plan, findings) = (checked.plan, checked.findings);
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

fn seal(c: CheckArgs) -> Result<Outcome, CliError> {
    // The flags given override plan.json's profile (none given: plan.json's, unchanged).
    let recorded = plan::read_plan_dir(&c.dir).map_err(|e| CliError(e.to_string()))?;
    let profile = Some(
        c.profile
            .over_recorded(Some(recorded.plan.profile))
            .map_err(CliError)?,
    );
    let opts = CheckOptions {
        now: time::OffsetDateTime::now_utc(),
        margin: PlanOptions::default().margin,
        waits_known: true,
    };
    let report =
        plan::seal_plan_dir(&c.dir, profile, &opts).map_err(|e| CliError(e.to_string()))?;
    let ok = report.sealed();
    print_findings(&report.findings, c.json, ok)?;
    if !c.json {
        let text = if ok {
            format!(
                "{}: sealed: rewrote {} file(s) from the phases' PEM files (secret.yaml of each phase, plan.json, RUNBOOK.md)\n",
                c.dir.display(),
                report.written.len()
            )
        } else {
            format!(
                "{}: refusing to seal: the edited plan is NOT safe; nothing changed\n",
                c.dir.display()
            )
        };
        common::write_stdout(text.as_bytes())?;
    }
    Ok(Outcome::from_ok(ok))
}

fn drift(d: DriftArgs) -> Result<Outcome, CliError> {
    let expected = common::read_secret(Some("--expect"), &d.expect)?;
    let live = common::read_secret(None, &d.live)?;
    let diffs = plan::applied_differences(&live, &expected);
    let mut text = String::new();
    if diffs.is_empty() {
        text.push_str(&format!(
            "live secret {} equals {}\n",
            live.name,
            d.expect.display()
        ));
    } else {
        text.push_str(&format!(
            "DRIFT: live secret {} differs from {}: stop, find out who changed it\n",
            live.name,
            d.expect.display()
        ));
        for l in &diffs {
            text.push_str(&format!(
                "  {}\n",
                l.replace("secret.yaml", "the live secret")
            ));
        }
    }
    common::write_stdout(text.as_bytes())?;
    Ok(Outcome::from_ok(diffs.is_empty()))
}
