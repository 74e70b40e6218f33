//! `meshtrust bundle cat|dedup|diff`

use std::path::PathBuf;

use meshtrust::Role;
use meshtrust::bundle::{self, Bundle};
use meshtrust::istio::IstioVersion;
use meshtrust::istio::behaviour::{self, RootChange};

use super::common::{self, CliError, Outcome};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Concatenate bundles to stdout, keeping each earlier text as an exact prefix (a newline
    /// is inserted only where a file lacks its final one). An input holding a private-key
    /// block is refused (exit 1, naming the file and line): a trust bundle is published.
    Cat {
        /// Append the last root again (the deliberate duplicate, A+B -> A+B+B): the bytes change
        /// so every Istio proxy re-issues its leaf, while the trust set stays the same.
        #[arg(long)]
        trigger: bool,
        /// PEM files, in order. `-` reads stdin.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Remove later repeats of a certificate (first occurrence kept, every other byte kept).
    Dedup {
        /// The PEM file. `-` reads stdin.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Compare two bundle files: added, removed, duplicated and reordered certificates, whether
    /// the bytes changed and whether istiod accepts the change, and any private-key block
    /// (`private_keys` in JSON). Exit 1 when istiod (up to 1.29, byte containment) would
    /// refuse it or a file holds a private key.
    Diff {
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
        /// The current file.
        #[arg(value_name = "OLD")]
        old: PathBuf,
        /// The proposed file.
        #[arg(value_name = "NEW")]
        new: PathBuf,
    },
}

pub(crate) fn run(cmd: Command) -> Result<Outcome, CliError> {
    match cmd {
        Command::Cat { trigger, files } => {
            let mut out = Bundle::empty();
            let mut leaks = Vec::new();
            for f in &files {
                let b = common::read_bundle(f)?;
                leaks.extend(private_keys(f, &b));
                out = out.append(&b);
            }
            if !leaks.is_empty() {
                for l in &leaks {
                    eprintln!("meshtrust: {l}");
                }
                eprintln!(
                    "meshtrust: refusing to write a bundle holding a private key{}; nothing written",
                    if trigger { " (--trigger)" } else { "" }
                );
                return Ok(Outcome::CheckFailed);
            }
            if trigger {
                let last_root = out
                    .entries()
                    .iter()
                    .rev()
                    .find(|e| e.cert.role() == Role::Root)
                    .ok_or_else(|| {
                        CliError(
                            "--trigger: the inputs hold no root certificate to duplicate"
                                .to_owned(),
                        )
                    })?;
                out = out
                    .with_deliberate_duplicate(last_root.cert.fingerprint())
                    .map_err(|e| CliError(format!("--trigger: {e}")))?;
            }
            common::write_stdout(out.bytes())?;
            Ok(Outcome::Success)
        }
        Command::Dedup { file } => {
            let b = common::read_bundle(&file)?;
            common::write_stdout(b.dedup().bytes())?;
            Ok(Outcome::Success)
        }
        Command::Diff { json, old, new } => {
            let (old_b, new_b) = (common::read_bundle(&old)?, common::read_bundle(&new)?);
            let leaks: Vec<String> = private_keys(&old, &old_b)
                .into_iter()
                .chain(private_keys(&new, &new_b))
                .collect();
            let d = bundle::diff(&old_b, &new_b);
            // istiod's verdicts come from the one model; the JSON keys stay as they were.
            let accepts = |v: IstioVersion| {
                matches!(
                    behaviour::root_change(v, true, old_b.bytes(), new_b.bytes()),
                    RootChange::Accepted | RootChange::Unchanged
                )
            };
            let istiod_accepts = accepts(IstioVersion::new(1, 29, 0));
            let istiod_1_30_accepts = accepts(IstioVersion::new(1, 30, 0));
            if json {
                #[derive(serde::Serialize)]
                struct DiffJson<'a> {
                    #[serde(flatten)]
                    diff: &'a bundle::BundleDiff,
                    istiod_accepts: bool,
                    istiod_1_30_accepts: bool,
                    private_keys: &'a [String],
                }
                common::print_json(&DiffJson {
                    diff: &d,
                    istiod_accepts,
                    istiod_1_30_accepts,
                    private_keys: &leaks,
                })?;
            } else {
                let mut s = String::new();
                for l in &leaks {
                    s.push_str(&format!("! {l}\n"));
                }
                for c in &d.added {
                    s.push_str(&format!("+ {}  {}\n", c.sha256, c.subject));
                }
                for c in &d.removed {
                    s.push_str(&format!("- {}  {}\n", c.sha256, c.subject));
                }
                for c in &d.duplicates {
                    s.push_str(&format!(
                        "= {}  {}  appears {} times (was {})\n",
                        c.sha256, c.subject, c.count, c.old_count
                    ));
                }
                let yn = |b: bool| if b { "yes" } else { "no" };
                s.push_str(&format!("bytes changed:      {}\n", yn(d.bytes_changed)));
                s.push_str(&format!(
                    "trust set changed:  {}\n",
                    yn(d.trust_set_changed)
                ));
                s.push_str(&format!("reordered:          {}\n", yn(d.reordered)));
                s.push_str(&format!(
                    "istiod accepts:     {} (1.22.0 to 1.29.x: one file's bytes must contain the other's)\n",
                    yn(istiod_accepts)
                ));
                s.push_str(&format!(
                    "istiod 1.30 accepts: {} (1.30.0+: one set of CERTIFICATE blocks contains the other)\n",
                    yn(istiod_1_30_accepts)
                ));
                common::write_stdout(s.as_bytes())?;
            }
            Ok(Outcome::from_ok(istiod_accepts && leaks.is_empty()))
        }
    }
}

/// `FILE:LINE: block N (LABEL) is a private key` for every private-key block of a bundle.
fn private_keys(path: &std::path::Path, b: &Bundle) -> Vec<String> {
    b.other_blocks()
        .iter()
        .filter(|o| o.is_private_key())
        .map(|o| {
            format!(
                "{}:{}: block {} ({}) is a private key",
                path.display(),
                o.begin_line,
                o.block,
                o.label
            )
        })
        .collect()
}
