//! `meshtrust check [--json] [profile flags] PATH`

use std::path::PathBuf;

use serde::Serialize;

use meshtrust::istio::{self, Code, Finding};

use super::common::{self, CliError, Outcome};
use super::profile::ProfileArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a JSON object `{"findings": [{"code", "severity", "message"}...]}`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    profile: ProfileArgs,
    /// A cacerts or istio-ca-secret directory, or `kubectl get secret -o yaml|json` output;
    /// `-` reads standard input.
    #[arg(value_name = "PATH")]
    path: PathBuf,
}

#[derive(Serialize)]
struct Report<'a> {
    findings: &'a [Finding],
}

pub(crate) fn run(args: Args) -> Result<Outcome, CliError> {
    let profile = args.profile.profile().map_err(CliError)?;
    let secret = common::read_secret(None, &args.path)?;
    let findings = istio::check(&secret, &profile, time::OffsetDateTime::now_utc());
    if args.json {
        common::print_json(&Report {
            findings: &findings,
        })?;
    } else {
        let mut text = format!(
            "{} ({}, {:?} layout) checked as Istio {}{}{}\n",
            args.path.display(),
            secret.name,
            secret.layout,
            profile.istio_version,
            if profile.multiroot {
                ", ISTIO_MULTIROOT_MESH"
            } else {
                ""
            },
            if profile.data_plane.has_ztunnel() {
                format!(", ambient (ztunnel {})", profile.ztunnel())
            } else {
                String::new()
            },
        );
        if findings.is_empty() {
            text.push_str("ok: no findings\n");
        }
        for f in &findings {
            text.push_str(&format!("{f}\n"));
        }
        common::write_stdout(text.as_bytes())?;
    }
    // A file that does not parse is invalid input (exit 2), as in every other command.
    if let Some(f) = findings.iter().find(|f| f.code == Code::UnreadableFile) {
        return Err(CliError::in_file(&args.path, &f.message));
    }
    Ok(Outcome::from_ok(!istio::has_errors(&findings)))
}
