//! Plans on disk: `DIR/NN-slug/` phase directories (each with the four cacerts files and
//! `secret.yaml`; `DIR/NN-slug/<cluster>/` for multi-cluster plans), `DIR/plan.json` and
//! `DIR/RUNBOOK.md`. Writing is all-or-nothing; reading works from the phase directories
//! alone, plan.json being optional (and cross-checked when present).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::json::{PlanJson, render_plan_json_with};
pub use super::runbook::RunbookOptions;
use super::runbook::render_runbook_with;
use super::{ClusterPhase, DEFAULT_CLUSTER, Phase, Plan, RotationKind};
use crate::cert::Fingerprint;
use crate::finding::{Code, Finding, Severity};
use crate::fsio::{self, OutFile};
use crate::istio::{self, CaSecret, IstioProfile};

fn phase_dir(root: &Path, phase: &Phase, cluster: &str, multi: bool) -> PathBuf {
    let d = root.join(&phase.name);
    if multi { d.join(cluster) } else { d }
}

/// Why a plan directory could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanDirError {
    /// The target exists and is not empty.
    #[error("{0}: exists and is not empty (choose a new directory)")]
    Exists(PathBuf),
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// Writing the files failed (nothing was left behind).
    #[error(transparent)]
    Fs(#[from] fsio::FsError),
    /// No phase directories.
    #[error("{0}: no phase directories (NN-name) found")]
    NoPhases(PathBuf),
    /// The profile to check with could not be settled ([`check_dir`]): the caller's error.
    #[error("{0}")]
    Profile(Box<dyn std::error::Error + Send + Sync>),
    /// A phase directory could not be read as a CA secret.
    #[error("{path}: {source}")]
    Secret {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        source: istio::ReadError,
    },
    /// plan.json is malformed.
    #[error("{path}: line {line}: {source}")]
    Json {
        /// Path.
        path: PathBuf,
        /// Line.
        line: usize,
        /// What is wrong.
        source: serde_json::Error,
    },
}

/// Writes the plan into `dir`, which must not exist or be empty. All files are written into
/// a temporary sibling directory first, then moved into place in one rename: on any error
/// nothing is left in `dir`. Keys and secret.yaml files are 0600.
pub fn write_plan_dir(plan: &Plan, dir: &Path) -> Result<Vec<PathBuf>, PlanDirError> {
    write_plan_dir_with(plan, dir, &RunbookOptions::default())
}

/// [`write_plan_dir`] with the runbook's and plan.json's commands carrying each cluster's
/// `--context`.
pub fn write_plan_dir_with(
    plan: &Plan,
    dir: &Path,
    opts: &RunbookOptions,
) -> Result<Vec<PathBuf>, PlanDirError> {
    let io = |path: &Path, source: std::io::Error| PlanDirError::Io {
        path: path.to_owned(),
        source,
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
        if entries.next().is_some() {
            return Err(PlanDirError::Exists(dir.to_owned()));
        }
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plan".to_owned());
    let staging = parent.join(format!(".{base}.meshtrust-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
    }
    let multi = plan.is_multi_cluster();
    let mut files = Vec::new();
    for phase in &plan.phases {
        for c in &phase.clusters {
            let d = phase_dir(&staging, phase, &c.cluster, multi);
            files.extend(c.secret.out_files(&d));
            files.push(OutFile::secret(
                d.join("secret.yaml"),
                zeroize::Zeroizing::new(c.secret.to_manifest_yaml().as_bytes().to_vec()),
            ));
        }
    }
    files.push(OutFile::public(
        staging.join("plan.json"),
        render_plan_json_with(plan, opts).into_bytes(),
    ));
    files.push(OutFile::public(
        staging.join("RUNBOOK.md"),
        render_runbook_with(plan, opts).into_bytes(),
    ));
    let result = fsio::write_all(&files, false)
        .map_err(|e| staging_error(e, &staging, dir))
        .and_then(|written| {
            if dir.exists() {
                std::fs::remove_dir(dir).map_err(|e| io(dir, e))?;
            }
            std::fs::rename(&staging, dir).map_err(|e| io(dir, e))?;
            Ok(written
                .into_iter()
                .filter_map(|w| w.path.strip_prefix(&staging).ok().map(|r| dir.join(r)))
                .collect())
        });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// An error writing into the staging directory, told about the output directory the user
/// named (the staging directory is an implementation detail).
fn staging_error(e: fsio::FsError, staging: &Path, dir: &Path) -> PlanDirError {
    let Ok(rel) = e.path().strip_prefix(staging) else {
        return PlanDirError::Fs(e);
    };
    let path = dir.join(rel);
    PlanDirError::Fs(match e {
        fsio::FsError::Io { op, source, .. } => fsio::FsError::Io { path, op, source },
        fsio::FsError::Exists { .. } => fsio::FsError::Exists { path },
        fsio::FsError::Duplicate { .. } => fsio::FsError::Duplicate { path },
        fsio::FsError::NotAFile { .. } => fsio::FsError::NotAFile { path },
    })
}

fn is_phase_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 3 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b'-'
}

/// Reads a plan from its phase directories. With plan.json, its profile, kind, actions and
/// gates are used and its recorded file hashes (secret.yaml's included) are cross-checked
/// (mismatches are returned as findings); without it, the kind is inferred, the profile is the
/// default (override it), and gates are unknown. Every phase's secret.yaml, the file the
/// runbook applies, is read back and compared with the phase's PEM files
/// ([`super::check_applied`]).
pub fn read_plan_dir(dir: &Path) -> Result<PlanDir, PlanDirError> {
    let names = phase_names(dir)?;
    let json = read_plan_json(dir)?;
    let mut findings = Vec::new();
    let mut phases = Vec::new();
    let mut cluster_names: Vec<String> = Vec::new();
    for name in &names {
        let pdir = dir.join(name);
        let clusters = read_phase_clusters(&pdir, json.as_ref())?;
        for c in &clusters {
            if !cluster_names.contains(&c.cluster) {
                cluster_names.push(c.cluster.clone());
            }
        }
        let recorded = json
            .as_ref()
            .and_then(|j| j.phases.iter().find(|p| &p.name == name));
        match recorded {
            Some(r) => findings.extend(recorded_files_differ(name, &pdir, &r.files, &clusters)),
            None if json.is_some() => findings.push(
                Finding::error(
                    Code::PlanJsonMismatch,
                    "this phase directory is not in plan.json",
                )
                .in_phase(name.clone()),
            ),
            None => {}
        }
        phases.push(Phase {
            name: name.clone(),
            title: recorded.map(|r| r.title.clone()).unwrap_or_default(),
            clusters,
            trigger: recorded.is_some_and(|r| r.trigger),
            actions: recorded
                .map(|r| r.actions.iter().map(|a| a.action.clone()).collect())
                .unwrap_or_default(),
            gate: recorded.and_then(|r| r.gate.clone()),
        });
    }
    for p in json.iter().flat_map(|j| &j.phases) {
        if !names.contains(&p.name) {
            findings.push(
                Finding::error(
                    Code::PlanJsonMismatch,
                    "plan.json records this phase but its directory is missing",
                )
                .in_phase(p.name.clone()),
            );
        }
    }
    let kind = json
        .as_ref()
        .map(|j| j.kind)
        .unwrap_or_else(|| infer_kind_from_phases(&phases, cluster_names.len()));
    let mut plan = Plan {
        kind,
        profile: json.as_ref().map(|j| j.profile.clone()).unwrap_or_default(),
        clusters: cluster_names,
        phases,
        old_roots: json
            .as_ref()
            .map(|j| j.old_roots.clone())
            .unwrap_or_default(),
        new_roots: json
            .as_ref()
            .map(|j| j.new_roots.clone())
            .unwrap_or_default(),
    };
    findings.extend(super::applied::check_applied(dir, &mut plan));
    Ok(PlanDir {
        plan,
        has_json: json.is_some(),
        findings,
    })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PlanDirError + '_ {
    move |source| PlanDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The phase directories (`NN-slug`) of `dir`, in order.
fn phase_names(dir: &Path) -> Result<Vec<String>, PlanDirError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_phase_name(n))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(PlanDirError::NoPhases(dir.to_owned()));
    }
    Ok(names)
}

/// plan.json, when there is one.
fn read_plan_json(dir: &Path) -> Result<Option<PlanJson>, PlanDirError> {
    let path = dir.join("plan.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| PlanDirError::Json {
                    line: source.line(),
                    path,
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// The secrets of one phase directory: its own files (one cluster), or one subdirectory per
/// cluster, in plan.json's cluster order when it names the same clusters.
fn read_phase_clusters(
    pdir: &Path,
    json: Option<&PlanJson>,
) -> Result<Vec<ClusterPhase>, PlanDirError> {
    let read = |path: &Path| {
        istio::read_dir(path).map_err(|source| PlanDirError::Secret {
            path: path.to_owned(),
            source,
        })
    };
    if istio::KNOWN_KEYS.iter().any(|k| pdir.join(k).is_file()) {
        return Ok(vec![ClusterPhase {
            cluster: DEFAULT_CLUSTER.to_owned(),
            secret: read(pdir)?,
        }]);
    }
    let mut subs: Vec<String> = std::fs::read_dir(pdir)
        .map_err(io_error(pdir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    subs.sort();
    if let Some(j) = json {
        let mut ordered: Vec<String> = j
            .clusters
            .iter()
            .filter(|c| subs.contains(c))
            .cloned()
            .collect();
        ordered.extend(subs.iter().filter(|s| !j.clusters.contains(s)).cloned());
        subs = ordered;
    }
    if subs.is_empty() {
        return Err(PlanDirError::Secret {
            path: pdir.to_owned(),
            source: istio::ReadError::NotASecret {
                line: 1,
                message: "no CA files and no cluster directories".to_owned(),
            },
        });
    }
    subs.into_iter()
        .map(|sub| {
            Ok(ClusterPhase {
                secret: read(&pdir.join(&sub))?,
                cluster: sub,
            })
        })
        .collect()
}

/// The files of phase `name` whose sha256 differs from what plan.json recorded (`files`:
/// path relative to the phase directory -> fingerprint), or that are missing.
fn recorded_files_differ(
    name: &str,
    pdir: &Path,
    files: &BTreeMap<String, Fingerprint>,
    clusters: &[ClusterPhase],
) -> Vec<Finding> {
    let multi = clusters.len() > 1
        || clusters
            .first()
            .is_some_and(|c| c.cluster != DEFAULT_CLUSTER);
    let mut findings = Vec::new();
    for (file, want) in files {
        // plan.json may be hand-edited: never read outside the phase directory.
        let inside = Path::new(file)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            findings.push(
                Finding::error(
                    Code::PlanJsonMismatch,
                    format!("plan.json names {file:?}, a path outside the phase directory"),
                )
                .in_phase(name.to_owned()),
            );
            continue;
        }
        let got = std::fs::read(pdir.join(file))
            .ok()
            .map(|b| Fingerprint::of(&b));
        if got.as_ref() != Some(want) {
            let message = match got {
                Some(g) => format!(
                    "{file} has sha256 {g}, plan.json recorded {want}: the file was changed after planning"
                ),
                None => format!("{file} is missing (plan.json records it)"),
            };
            findings.push(
                Finding::error(Code::PlanJsonMismatch, message)
                    .in_phase(name.to_owned())
                    .in_cluster(if multi {
                        file.split('/').next().map(str::to_owned)
                    } else {
                        None
                    }),
            );
        }
    }
    findings
}

/// A plan directory as [`read_plan_dir`] read it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlanDir {
    /// The plan: with plan.json, its kind, profile, actions and gates; without, the kind
    /// inferred from the phases and the default profile.
    pub plan: Plan,
    /// Whether plan.json was there (without it the waits and restarts are unknown).
    pub has_json: bool,
    /// What reading found: plan.json hashes that differ, secret.yaml files that are not the
    /// phase's PEM files.
    pub findings: Vec<Finding>,
}

/// Reads and checks a plan directory as `meshtrust plan check` does: [`read_plan_dir`], the
/// profile `profile` returns given plan.json's (None without plan.json; an `Err` is a
/// [`PlanDirError::Profile`]), a `profile-override` note when it differs from the recorded
/// one, then [`super::check_plan`] and [`super::check_rollback`] at `now`. The returned
/// findings are all of them; the plan is safe when none is an error ([`super::has_errors`]).
///
/// ```no_run
/// # fn f(dir: &std::path::Path) -> Result<(), meshtrust::plan::PlanDirError> {
/// let checked = meshtrust::plan::check_dir(
///     dir,
///     |recorded| recorded.cloned().ok_or_else(|| "no plan.json: give a profile".to_owned()),
///     time::OffsetDateTime::now_utc(),
/// )?;
/// assert!(!meshtrust::plan::has_errors(&checked.findings));
/// # Ok(()) }
/// ```
pub fn check_dir<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    dir: &Path,
    profile: impl FnOnce(Option<&IstioProfile>) -> Result<IstioProfile, E>,
    now: time::OffsetDateTime,
) -> Result<PlanDir, PlanDirError> {
    let mut read = read_plan_dir(dir)?;
    let recorded = read.has_json.then(|| read.plan.profile.clone());
    read.plan.profile = profile(recorded.as_ref()).map_err(|e| PlanDirError::Profile(e.into()))?;
    if recorded.as_ref().is_some_and(|r| *r != read.plan.profile) {
        read.findings.push(
            Finding::new(
                Code::ProfileOverride,
                Severity::Info,
                "checking with a profile that differs from the one recorded in plan.json",
            )
            .in_phase("plan.json"),
        );
    }
    let opts = super::CheckOptions {
        now,
        margin: super::PlanOptions::default().margin,
        waits_known: read.has_json,
    };
    read.findings.extend(super::check_plan(&read.plan, &opts));
    read.findings
        .extend(super::check_rollback(&read.plan, &opts));
    Ok(read)
}

fn infer_kind_from_phases(phases: &[Phase], clusters: usize) -> RotationKind {
    if clusters > 1 {
        return RotationKind::MultiCluster;
    }
    let first = phases
        .first()
        .and_then(|p| p.clusters.first())
        .map(|c| &c.secret);
    let last = phases
        .last()
        .and_then(|p| p.clusters.first())
        .map(|c| &c.secret);
    if first.is_some_and(|s| s.kind == istio::SecretKind::SelfSigned) {
        return RotationKind::SelfSignedToPluggedIn;
    }
    let roots = |s: Option<&CaSecret>| s.and_then(|s| s.root_bundle().ok()).map(|b| b.trust_set());
    match (roots(first), roots(last)) {
        (Some(a), Some(b)) if a == b => RotationKind::IntermediateRotation,
        _ if is_cross_signed(phases) => RotationKind::CrossSigned,
        _ => RotationKind::RootRotation,
    }
}

/// A cross-signed rotation, read without plan.json: no phase trusts two roots, and a phase's
/// cert-chain.pem carries B' (the last phase's root name and key, signed by another key).
fn is_cross_signed(phases: &[Phase]) -> bool {
    let secrets = || {
        phases
            .iter()
            .filter_map(|p| p.clusters.first())
            .map(|c| &c.secret)
    };
    if secrets().any(|s| s.root_bundle().is_ok_and(|b| b.trust_set().len() > 1)) {
        return false;
    }
    let Some(new_root) = secrets()
        .next_back()
        .and_then(|s| s.root_bundle().ok())
        .and_then(|b| b.certificates().next().cloned())
    else {
        return false;
    };
    secrets()
        .filter_map(|s| s.cert_chain().ok())
        .flat_map(|b| b.certificates().cloned().collect::<Vec<_>>())
        .any(|c| {
            // B's name and key, but not B itself: signed by another key (Istio's roots all
            // share one name, so the issuer name says nothing).
            c != new_root
                && c.subject() == new_root.subject()
                && c.public_key() == new_root.public_key()
                && c.verify_signed_by(&c).is_err()
        })
}

/// The runbook options plan.json records (`contexts`), for re-rendering a plan read back.
pub(crate) fn recorded_runbook_options(dir: &Path) -> RunbookOptions {
    let contexts = std::fs::read(dir.join("plan.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<PlanJson>(&b).ok())
        .map(|j| j.contexts)
        .unwrap_or_default();
    RunbookOptions { contexts }
}
