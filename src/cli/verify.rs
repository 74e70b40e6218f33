//! `meshtrust verify [--json] --roots BUNDLE [--chain FILE]... [--at RFC3339] CERT`

use std::path::PathBuf;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use meshtrust::verify::{CertPool, Chain, Named, RequiredEku, VerifyOptions};
use meshtrust::{Fingerprint, SpiffeId};

use super::common::{self, CliError, Outcome};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Eku {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a JSON object: `valid`, `path` (SHA-256 fingerprints, target first), `error`,
    /// plus `at`, `anchor` and `failures` (one per failed candidate path).
    #[arg(long)]
    json: bool,
    /// The trust bundle (any number of roots; duplicates are harmless), e.g. root-cert.pem.
    #[arg(long, value_name = "BUNDLE")]
    roots: PathBuf,
    /// Candidate intermediates, in any order (repeatable), e.g. cert-chain.pem.
    #[arg(long = "chain", value_name = "FILE")]
    chains: Vec<PathBuf>,
    /// Validation time, RFC 3339 (e.g. 2026-01-01T00:00:00Z). Default: now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    at: Option<OffsetDateTime>,
    /// Require this extended key usage of the target (and of CAs that carry EKU).
    #[arg(long, value_enum)]
    eku: Option<Eku>,
    /// Require the target to carry this SPIFFE ID.
    #[arg(long, value_name = "ID", value_parser = parse_spiffe_id)]
    spiffe_id: Option<SpiffeId>,
    /// The certificate to verify: a leaf or a CA. When the file holds several certificates
    /// (a workload cert followed by its chain), the first is verified and the others join the
    /// intermediates. `-` reads stdin.
    #[arg(value_name = "CERT")]
    cert: PathBuf,
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("not an RFC 3339 time ({e})"))
}

fn parse_spiffe_id(s: &str) -> Result<SpiffeId, String> {
    s.parse::<SpiffeId>().map_err(|e| e.to_string())
}

/// The JSON output; `valid`, `path` and `error` are the contract of issue 3.
#[derive(Debug, Serialize)]
struct Report {
    valid: bool,
    path: Vec<Fingerprint>,
    error: Option<String>,
    at: String,
    anchor: Option<Fingerprint>,
    failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
struct Failure {
    kind: &'static str,
    message: String,
    path: Vec<Fingerprint>,
}

pub(crate) fn run(args: Args) -> Result<Outcome, CliError> {
    let roots_file = common::read_bundle(&args.roots)?;
    common::note_other_blocks(&args.roots, &roots_file);
    let roots = CertPool::from(&roots_file);
    let cert_file = common::read_bundle(&args.cert)?;
    common::note_other_blocks(&args.cert, &cert_file);
    let mut chain = Chain::from_bundle(&cert_file)
        .map_err(|_| CliError::in_file(&args.cert, "holds no certificate"))?;
    for path in &args.chains {
        let b = common::read_bundle(path)?;
        common::note_other_blocks(path, &b);
        chain = chain.with_intermediates(b.certificates());
    }
    let at = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let mut options = VerifyOptions::at(at);
    if let Some(e) = args.eku {
        options = options.with_eku(match e {
            Eku::ServerAuth => RequiredEku::ServerAuth,
            Eku::ClientAuth => RequiredEku::ClientAuth,
        });
    }
    if let Some(id) = args.spiffe_id {
        options = options.with_spiffe_id(id);
    }
    let result = meshtrust::verify::verify(chain.target(), chain.intermediates(), &roots, &options);

    // Where the anchor stands in the roots file, for the text output.
    let anchor_entry = |fp: Fingerprint| {
        roots_file
            .entries()
            .iter()
            .position(|e| e.cert.fingerprint() == fp)
            .map(|i| (i, roots_file.entries()[i].begin_line))
    };
    if args.json {
        let report = match &result {
            Ok(p) => Report {
                valid: true,
                path: p.fingerprints(),
                error: None,
                at: common::rfc3339(at),
                anchor: Some(p.anchor().fingerprint()),
                failures: Vec::new(),
            },
            Err(e) => Report {
                valid: false,
                path: Vec::new(),
                error: Some(e.to_string()),
                at: common::rfc3339(at),
                anchor: None,
                failures: e
                    .failures()
                    .iter()
                    .map(|f| Failure {
                        kind: f.error.kind(),
                        message: f.error.to_string(),
                        path: f.path.iter().map(|c| c.fingerprint()).collect(),
                    })
                    .collect(),
            },
        };
        common::print_json(&report)?;
    } else {
        let mut out = String::new();
        match &result {
            Ok(p) => {
                out.push_str(&format!(
                    "OK: {} chains to a trusted root at {} ({} certificates, {} signature checks)\n",
                    Named(p.target()),
                    common::rfc3339(at),
                    p.certificates().len(),
                    p.signature_checks()
                ));
                let last = p.certificates().len() - 1;
                for (i, c) in p.certificates().iter().enumerate() {
                    let role = match (i, i == last) {
                        (0, true) => "target, anchor",
                        (0, false) => "target",
                        (_, true) => "anchor",
                        _ => "",
                    };
                    let place = if i == last {
                        anchor_entry(c.fingerprint())
                            .map(|(n, line)| {
                                format!("  ({} certificate {n}, line {line})", args.roots.display())
                            })
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    let name = c.subject();
                    let name = if name.is_empty() {
                        c.san_uris()
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "(empty subject)".to_owned())
                    } else {
                        name.to_owned()
                    };
                    out.push_str(&format!(
                        "  {i}  {role:<14}  sha256:{}  {name}{place}\n",
                        c.fingerprint()
                    ));
                }
            }
            Err(e) => {
                out.push_str(&format!("INVALID: {e}\n"));
                out.push_str(&e.report());
            }
        }
        common::write_stdout(out.as_bytes())?;
    }
    Ok(Outcome::from_ok(result.is_ok()))
}
