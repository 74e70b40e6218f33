//! `meshtrust inspect [--json] FILE...`
use std::path::PathBuf;

use std::collections::HashMap;

use serde::Serialize;

use meshtrust::{Fingerprint, Role};

use super::common::{self, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    json: bool,
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
    spiffe_ids: Vec<String>,
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
                sha256: fp,
                spiffe_ids: c.spiffe_ids().iter().map(ToString::to_string).collect(),
                duplicate_of,
            });
        }
    }
    if args.json {
        common::print_json(&rows)?;
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
        common::print_table(
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
