//! `meshtrust inspect [--json] FILE...`
use std::path::PathBuf;

use std::collections::HashMap;

use serde::Serialize;

use meshtrust::{Fingerprint, Role};

use super::common::{self, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a JSON array of objects instead of a table (every field in full).
    #[arg(long, conflicts_with = "short")]
    json: bool,
    /// One line per certificate: file and index, role, subject, validity, short fingerprint.
    #[arg(long)]
    short: bool,
    /// PEM files (certificates; key blocks are noted on stderr, never shown). `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// One row; these keys are a contract for scripts: do not rename them.
#[derive(Debug, Serialize)]
struct Row {
    index: usize,
    file: String,
    role: Role,
    subject: String,
    issuer: String,
    serial: String,
    not_before: String,
    not_after: String,
    sha256: Fingerprint,
    /// The same fingerprint as `openssl x509 -fingerprint -sha256` prints it.
    sha256_openssl: String,
    spiffe_ids: Vec<String>,
    dns_names: Vec<String>,
    emails: Vec<String>,
    ips: Vec<String>,
    duplicate_of: Option<usize>,
}

pub(crate) fn run(args: Args) -> Result<Outcome, CliError> {
    let mut rows = Vec::new();
    let mut first_seen: HashMap<Fingerprint, usize> = HashMap::new();
    for path in &args.files {
        let bundle = common::read_bundle(path)?;
        common::note_other_blocks(path, &bundle);
        for entry in bundle.entries() {
            let c = &entry.cert;
            let index = rows.len();
            let fp = c.fingerprint();
            let duplicate_of = first_seen.get(&fp).copied();
            first_seen.entry(fp).or_insert(index);
            rows.push(Row {
                index,
                file: common::display_path(path),
                role: c.role(),
                subject: c.subject().to_owned(),
                issuer: c.issuer().to_owned(),
                serial: c.serial_hex(),
                not_before: common::rfc3339(c.not_before()),
                not_after: common::rfc3339(c.not_after()),
                sha256_openssl: fp.to_colon_hex(),
                sha256: fp,
                spiffe_ids: c.spiffe_ids().iter().map(ToString::to_string).collect(),
                dns_names: c.san_dns_names().to_vec(),
                emails: c.san_emails().to_vec(),
                ips: c.san_ips().iter().map(ToString::to_string).collect(),
                duplicate_of,
            });
        }
    }
    if rows.is_empty() {
        let files: Vec<String> = args.files.iter().map(|p| common::display_path(p)).collect();
        return Err(CliError(format!(
            "{}: no certificate found",
            files.join(", ")
        )));
    }
    if args.json {
        common::print_json(&rows)?;
    } else if args.short {
        let mut s = String::new();
        for r in &rows {
            s.push_str(&short_line(r));
            s.push('\n');
        }
        common::write_stdout(s.as_bytes())?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.index.to_string(),
                    r.file.clone(),
                    r.role.to_string(),
                    if r.subject.is_empty() {
                        "(empty)".to_owned()
                    } else {
                        r.subject.clone()
                    },
                    r.issuer.clone(),
                    r.serial.clone(),
                    r.not_before.clone(),
                    r.not_after.clone(),
                    r.sha256.to_string(),
                    r.spiffe_ids.join(","),
                    r.duplicate_of
                        .map(|d| format!("dup of {d}"))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        common::print_table_fitted(
            TABLE_WIDTH,
            &[
                "#",
                "FILE",
                "ROLE",
                "SUBJECT",
                "ISSUER",
                "SERIAL",
                "NOT BEFORE",
                "NOT AFTER",
                "SHA256",
                "SPIFFE IDS",
                "DUPLICATE",
            ],
            &table,
        )?;
    }
    Ok(Outcome::Success)
}

/// The default table fits this many columns; long cells are cut with `…` (`--json` has them
/// in full).
const TABLE_WIDTH: usize = 120;

/// `FILE[i]: ROLE "SUBJECT" NOT_BEFORE..NOT_AFTER sha256:PREFIX [dup of j]`, like `step
/// certificate inspect --short`, on one line.
fn short_line(r: &Row) -> String {
    let day = |t: &str| t.get(..10).unwrap_or(t).to_owned();
    let subject = if r.subject.is_empty() {
        "(empty subject)".to_owned()
    } else {
        r.subject.clone()
    };
    let mut s = format!(
        "{}[{}]: {} {:?} {}..{} sha256:{}",
        r.file,
        r.index,
        r.role,
        subject,
        day(&r.not_before),
        day(&r.not_after),
        r.sha256.short()
    );
    if let Some(id) = r.spiffe_ids.first() {
        s.push_str(&format!(" {id}"));
        if r.spiffe_ids.len() > 1 {
            s.push_str(&format!(" (+{})", r.spiffe_ids.len() - 1));
        }
    }
    if let Some(d) = r.duplicate_of {
        s.push_str(&format!(" dup of {d}"));
    }
    s
}
