//! The applied artifact is the checked artifact: each phase's `secret.yaml` (the file the
//! runbook applies) read back, decoded and compared with the phase's PEM files, which are what
//! [`super::check_plan`] proves safe; and `meshtrust plan seal`, which rewrites secret.yaml,
//! plan.json and RUNBOOK.md from the PEM files after a deliberate hand edit, but only when the
//! edited plan checks safe.
//!
//! | code | what |
//! |---|---|
//! | `secret-yaml-missing` | a phase (cluster) directory has no secret.yaml |
//! | `secret-yaml-unreadable` | secret.yaml does not read as a Secret |
//! | `secret-yaml-mismatch` | secret.yaml applies other bytes (or another secret) than the phase's files |
//! | `mixed-line-endings` | (warning) a root file mixes CRLF and LF: istiod up to 1.29 compares bytes |

use std::path::{Path, PathBuf};

use super::io::{PlanDir, read_plan_dir, recorded_runbook_options};
use super::json::render_plan_json_with;
use super::runbook::render_runbook_with;
use super::{CheckOptions, DEFAULT_CLUSTER, Phase, Plan, PlanDirError, check_plan};
use crate::cert::Fingerprint;
use crate::finding::{Code, Finding, Severity};
use crate::fsio::{self, OutFile};
use crate::istio::{self, CaSecret, IstioProfile};

/// The file each phase (cluster) directory holds for `kubectl apply`.
pub const SECRET_YAML: &str = "secret.yaml";

fn finding(
    code: Code,
    severity: Severity,
    phase: &Phase,
    cluster: &str,
    message: String,
) -> Finding {
    Finding::new(code, severity, message)
        .in_phase(phase.name.clone())
        .in_cluster((cluster != DEFAULT_CLUSTER).then(|| cluster.to_owned()))
}

/// The directory holding a cluster's files in a phase: the phase directory itself for a
/// single-cluster plan, `PHASE/CLUSTER/` otherwise.
pub(crate) fn cluster_dir(root: &Path, phase: &Phase, cluster: &str) -> PathBuf {
    let pdir = root.join(&phase.name);
    let direct = istio::KNOWN_KEYS
        .iter()
        .chain([&SECRET_YAML])
        .any(|k| pdir.join(k).is_file());
    if direct && cluster == DEFAULT_CLUSTER {
        pdir
    } else {
        pdir.join(cluster)
    }
}

/// What one file holds, for a message: size, certificate blocks, SHA-256 prefix.
fn describe_bytes(bytes: &[u8]) -> String {
    let certs = crate::pem::blocks(bytes)
        .filter(|b| {
            b.as_ref()
                .is_ok_and(|b| b.label == crate::pem::Label::Certificate)
        })
        .count();
    format!(
        "{} bytes, {certs} certificate block(s), sha256 {}",
        bytes.len(),
        Fingerprint::of(bytes).short()
    )
}

/// How secret.yaml (`applied`) differs from the phase's files (`files`), one line per
/// difference; empty when it applies exactly those files to the same secret.
pub fn applied_differences(applied: &CaSecret, files: &CaSecret) -> Vec<String> {
    let mut out = Vec::new();
    if applied.name != files.name {
        out.push(format!(
            "it applies secret {:?}, the phase's files are {:?}",
            applied.name, files.name
        ));
    }
    for key in files.file_names() {
        match applied.file(key) {
            None => out.push(format!("{key}: absent from secret.yaml")),
            Some(a) => {
                let f = files.file(key).unwrap_or_default();
                if a != f {
                    let what = if istio::CA_KEY == key || key == istio::TLS_KEY {
                        "differs".to_owned()
                    } else {
                        format!(
                            "secret.yaml holds {}, the file holds {}",
                            describe_bytes(a),
                            describe_bytes(f)
                        )
                    };
                    out.push(format!("{key}: {what}"));
                }
            }
        }
    }
    for key in applied.file_names() {
        if files.file(key).is_none() && istio::KNOWN_KEYS.contains(&key) {
            out.push(format!(
                "{key}: in secret.yaml but not among the phase's files"
            ));
        }
    }
    out
}

/// True when `bytes` holds both a CRLF and a bare LF line ending.
pub fn mixed_line_endings(bytes: &[u8]) -> bool {
    let crlf = bytes.windows(2).filter(|w| w == b"\r\n").count();
    let lf = bytes.iter().filter(|&&b| b == b'\n').count();
    crlf > 0 && lf > crlf
}

/// Reads every phase's secret.yaml under `dir` and compares it with the phase's files (as
/// read into `plan`): a finding per phase and cluster whose secret.yaml is missing, unreadable
/// or applies anything else. Where secret.yaml reads, its namespace and Secret type are
/// adopted into `plan` (the files do not record them), so a sealed secret.yaml keeps them.
/// Root files mixing CRLF and LF get a warning.
pub fn check_applied(dir: &Path, plan: &mut Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    for phase in &mut plan.phases {
        let snapshot = phase.clone();
        for c in &mut phase.clusters {
            let root_file = c.secret.root_file();
            if c.secret.file(root_file).is_some_and(mixed_line_endings) {
                out.push(finding(
                    Code::MixedLineEndings,
                    Severity::Warning,
                    &snapshot,
                    &c.cluster,
                    format!("{root_file} mixes CRLF and LF line endings: istiod up to 1.29 compares the file's bytes, and an editor that normalises them makes the next change a different file"),
                ));
            }
            let path = cluster_dir(dir, &snapshot, &c.cluster).join(SECRET_YAML);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    out.push(finding(
                        Code::SecretYamlMissing,
                        Severity::Error,
                        &snapshot,
                        &c.cluster,
                        format!("{}: {e}: the runbook applies this file", path.display()),
                    ));
                    continue;
                }
            };
            let applied = match istio::parse_manifest(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    out.push(finding(
                        Code::SecretYamlUnreadable,
                        Severity::Error,
                        &snapshot,
                        &c.cluster,
                        format!("{}: {e}", path.display()),
                    ));
                    continue;
                }
            };
            let diffs = applied_differences(&applied, &c.secret);
            if !diffs.is_empty() {
                out.push(finding(
                    Code::SecretYamlMismatch,
                    Severity::Error,
                    &snapshot,
                    &c.cluster,
                    format!(
                        "{} is not what plan check checked (the phase's PEM files): {}; re-seal a deliberate edit with `meshtrust plan seal`",
                        path.display(),
                        diffs.join("; ")
                    ),
                ));
            }
            c.secret.namespace = applied.namespace.clone();
            c.secret.type_as_read = applied.type_as_read.clone();
        }
    }
    out
}

/// True for the read findings that [`seal_plan_dir`] repairs: a changed file hash in
/// plan.json, and a secret.yaml that is missing, unreadable or stale.
fn sealable(f: &Finding) -> bool {
    matches!(
        f.code,
        Code::SecretYamlMissing | Code::SecretYamlUnreadable | Code::SecretYamlMismatch
    ) || (f.code == Code::PlanJsonMismatch
        && (f.message.contains(" has sha256 ") || f.message.ends_with("(plan.json records it)")))
}

/// What [`seal_plan_dir`] did.
#[derive(Debug, Clone)]
pub struct SealReport {
    /// Every finding of the re-check (the repaired ones included, as info).
    pub findings: Vec<Finding>,
    /// The files rewritten; empty when the plan was refused.
    pub written: Vec<PathBuf>,
}

impl SealReport {
    /// True when the plan was sealed.
    pub fn sealed(&self) -> bool {
        !self.written.is_empty()
    }
}

/// Seals a hand-edited plan: the phases' PEM files are the source of truth. The plan (with
/// `profile` when given, else plan.json's) is re-checked with [`check_plan`]; when it is not
/// safe, or plan.json is absent or names phases that do not exist, nothing changes. Otherwise
/// every phase's secret.yaml is rewritten from its PEM files (keeping the namespace and type
/// secret.yaml had), and plan.json (hashes, trust sets, signers; kind, waits and actions as
/// recorded) and RUNBOOK.md are rewritten, all or nothing.
pub fn seal_plan_dir(
    dir: &Path,
    profile: Option<IstioProfile>,
    opts: &CheckOptions,
) -> Result<SealReport, PlanDirError> {
    let PlanDir {
        mut plan,
        has_json,
        findings: read,
    } = read_plan_dir(dir)?;
    if let Some(p) = profile {
        plan.profile = p;
    }
    let mut findings: Vec<Finding> = read
        .into_iter()
        .map(|mut f| {
            if sealable(&f) {
                f.severity = Severity::Info;
                f.message = format!("sealed: {}", f.message);
            }
            f
        })
        .collect();
    if !has_json {
        findings.push(
            Finding::error(
                Code::PlanJsonMissing,
                "no plan.json: the waits and actions are unknown, nothing to seal (plan again)",
            )
            .in_phase("plan.json"),
        );
    }
    let opts = CheckOptions {
        waits_known: has_json,
        ..opts.clone()
    };
    findings.extend(check_plan(&plan, &opts));
    findings.extend(super::check_rollback(&plan, &opts));
    if super::has_errors(&findings) {
        return Ok(SealReport {
            findings,
            written: Vec::new(),
        });
    }
    let runbook = recorded_runbook_options(dir);
    let mut files = Vec::new();
    for phase in &plan.phases {
        for c in &phase.clusters {
            let d = cluster_dir(dir, phase, &c.cluster);
            files.push(OutFile::secret(
                d.join(SECRET_YAML),
                zeroize::Zeroizing::new(c.secret.to_manifest_yaml().as_bytes().to_vec()),
            ));
        }
    }
    files.push(OutFile::public(
        dir.join("plan.json"),
        render_plan_json_with(&plan, &runbook).into_bytes(),
    ));
    files.push(OutFile::public(
        dir.join("RUNBOOK.md"),
        render_runbook_with(&plan, &runbook).into_bytes(),
    ));
    let written = fsio::write_all(&files, true)?
        .into_iter()
        .map(|w| w.path)
        .collect();
    Ok(SealReport { findings, written })
}
