//! Plans on disk: `DIR/NN-slug/` phase directories (each with the four cacerts files and
//! `secret.yaml`; `DIR/NN-slug/<cluster>/` for multi-cluster plans), `DIR/plan.json` and
//! `DIR/RUNBOOK.md`. Writing is all-or-nothing; reading works from the phase directories
//! alone, plan.json being optional (and cross-checked when present).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::runbook;
pub use super::runbook::RunbookOptions;
use super::{Action, ClusterPhase, DEFAULT_CLUSTER, Gate, Phase, Plan, RotationKind};
use crate::cert::{Certificate, Fingerprint};
use crate::finding::{Code, Finding, Severity};
use crate::fsio::{self, OutFile};
use crate::istio::{self, CaSecret, IstioProfile, format_duration};

/// The machine-readable plan (plan.json). Keys are a contract for scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PlanJson {
    /// Format version (1).
    pub format: u32,
    /// Rotation kind.
    pub kind: RotationKind,
    /// The mesh the plan was made for.
    pub profile: IstioProfile,
    /// Cluster names.
    pub clusters: Vec<String>,
    /// Roots retired by the rotation.
    pub old_roots: Vec<Fingerprint>,
    /// Roots trusted at the end.
    pub new_roots: Vec<Fingerprint>,
    /// The phases, in order.
    pub phases: Vec<PhaseJson>,
    /// The kube context of each cluster (`--context`), when given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
}

/// One phase in plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PhaseJson {
    /// Directory name.
    pub name: String,
    /// What it does.
    pub title: String,
    /// Whether the root bytes change on purpose to re-issue leaves.
    pub trigger: bool,
    /// Every file of the phase (path relative to the phase directory) and its SHA-256.
    pub files: BTreeMap<String, Fingerprint>,
    /// Union of the trust sets of the phase's clusters (SHA-256 fingerprints, sorted).
    pub trust_set: Vec<Fingerprint>,
    /// The signing CA (single-cluster plans; null for multi-cluster, see `clusters`).
    pub signer: Option<Fingerprint>,
    /// Per cluster: trust set and signer.
    pub clusters: Vec<ClusterJson>,
    /// What to do to enter the phase, in order.
    pub actions: Vec<ActionJson>,
    /// What to wait for and verify before the next phase.
    pub gate: Option<Gate>,
}

/// One cluster of a phase in plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ClusterJson {
    /// Cluster name.
    pub cluster: String,
    /// Its trust set.
    pub trust_set: Vec<Fingerprint>,
    /// Its signer.
    pub signer: Option<Fingerprint>,
}

/// An action with its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ActionJson {
    /// The action.
    #[serde(flatten)]
    pub action: Action,
    /// The command to run from the phase directory.
    pub command: String,
}

fn phase_dir(root: &Path, phase: &Phase, cluster: &str, multi: bool) -> PathBuf {
    let d = root.join(&phase.name);
    if multi { d.join(cluster) } else { d }
}

fn signer_of(s: &CaSecret) -> Option<Certificate> {
    s.ca_cert().ok()
}

/// plan.json for a plan.
pub fn render_plan_json(plan: &Plan) -> String {
    render_plan_json_with(plan, &RunbookOptions::default())
}

/// plan.json for a plan whose commands carry each cluster's `--context` (recorded in
/// `contexts`).
pub fn render_plan_json_with(plan: &Plan, opts: &RunbookOptions) -> String {
    let multi = plan.is_multi_cluster();
    let phases = plan
        .phases
        .iter()
        .map(|p| {
            let mut files = BTreeMap::new();
            let mut union: Vec<Fingerprint> = Vec::new();
            let mut clusters = Vec::new();
            for c in &p.clusters {
                let prefix = if multi {
                    format!("{}/", c.cluster)
                } else {
                    String::new()
                };
                for name in c.secret.file_names() {
                    files.insert(
                        format!("{prefix}{name}"),
                        Fingerprint::of(c.secret.file(name).unwrap_or_default()),
                    );
                }
                files.insert(
                    format!("{prefix}secret.yaml"),
                    Fingerprint::of(c.secret.to_manifest_yaml().as_bytes()),
                );
                let ts: Vec<Fingerprint> = c
                    .secret
                    .root_bundle()
                    .map(|b| b.trust_set().fingerprints().copied().collect())
                    .unwrap_or_default();
                for fp in &ts {
                    if !union.contains(fp) {
                        union.push(*fp);
                    }
                }
                clusters.push(ClusterJson {
                    cluster: c.cluster.clone(),
                    trust_set: ts,
                    signer: signer_of(&c.secret).map(|s| s.fingerprint()),
                });
            }
            union.sort();
            PhaseJson {
                name: p.name.clone(),
                title: p.title.clone(),
                trigger: p.trigger,
                files,
                trust_set: union,
                signer: if multi {
                    None
                } else {
                    clusters.first().and_then(|c| c.signer)
                },
                clusters,
                actions: p
                    .actions
                    .iter()
                    .map(|a| ActionJson {
                        action: a.clone(),
                        command: a.command_in(opts.context(plan, a.cluster())),
                    })
                    .collect(),
                gate: p.gate.clone(),
            }
        })
        .collect();
    let json = PlanJson {
        format: 1,
        kind: plan.kind,
        profile: plan.profile.clone(),
        clusters: plan.clusters.clone(),
        old_roots: plan.old_roots.clone(),
        new_roots: plan.new_roots.clone(),
        phases,
        contexts: opts.contexts.clone(),
    };
    let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
    s.push('\n');
    s
}

/// RUNBOOK.md: the steps an operator follows, with the exact commands and fingerprints.
pub fn render_runbook(plan: &Plan) -> String {
    render_runbook_with(plan, &RunbookOptions::default())
}

/// RUNBOOK.md with every kubectl/istioctl line carrying its cluster's `--context`: the
/// backup, the preconditions, per phase a drift check before each apply, server-side apply,
/// the restarts, and how to go back; after a self-signed -> plugged-in rotation, retiring
/// istio-ca-secret.
pub fn render_runbook_with(plan: &Plan, opts: &RunbookOptions) -> String {
    let multi = plan.is_multi_cluster();
    let p = &plan.profile;
    let mut s = String::new();
    s.push_str(&format!(
        "# Runbook: {} ({})\n\n",
        plan.kind,
        if multi {
            plan.clusters.join(", ")
        } else {
            "one cluster".to_owned()
        }
    ));
    s.push_str(&format!(
        "Made for Istio {}, ISTIO_MULTIROOT_MESH={}, PROXY_CONFIG_XDS_AGENT={}, data plane {}{}, leaf TTL {}, grace ratio {}.\n",
        p.istio_version,
        p.multiroot,
        p.xds_agent,
        p.data_plane,
        if p.data_plane.has_ztunnel() { format!(" (ztunnel {})", p.ztunnel()) } else { String::new() },
        format_duration(p.leaf_ttl),
        p.grace_ratio
    ));
    s.push_str(&format!(
        "Minimum total duration: {}.\n\n",
        format_duration(plan.min_duration())
    ));
    s.push_str(&plan.costs().map(|c| c + "\n").unwrap_or_default());
    if !plan.old_roots.is_empty() {
        s.push_str(&format!(
            "Old root(s): {}\n",
            plan.old_roots
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s.push_str(&format!(
        "New root(s): {}\n\n",
        plan.new_roots
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s.push_str("Before each step: `meshtrust plan check .` (from this directory) must exit 0. `meshtrust simulate .` replays the plan on a simulated mesh.\n\n");
    s.push_str(&runbook::before_you_start(plan, opts));
    for (k, phase) in plan.phases.iter().enumerate() {
        s.push_str(&format!("## {}: {}\n\n", phase.name, phase.title));
        for c in &phase.clusters {
            let dir = if multi {
                format!("{}/{}", phase.name, c.cluster)
            } else {
                phase.name.clone()
            };
            let roots = c.secret.root_bundle().ok();
            let signer = signer_of(&c.secret);
            if multi {
                s.push_str(&format!("Cluster `{}`:\n\n", c.cluster));
            }
            s.push_str(&format!(
                "- files: `{dir}/` ({})\n",
                c.secret.file_names().collect::<Vec<_>>().join(", ")
            ));
            if let Some(sg) = &signer {
                s.push_str(&format!(
                    "- signer: {} sha256 `{}`\n",
                    sg.subject(),
                    sg.fingerprint()
                ));
            }
            if let Some(r) = &roots {
                s.push_str(&format!(
                    "- root-cert.pem: {} blocks, trust set:\n",
                    r.len()
                ));
                for cert in r.trust_set().iter() {
                    s.push_str(&format!(
                        "  - {} sha256 `{}`\n",
                        cert.subject(),
                        cert.fingerprint()
                    ));
                }
            }
            s.push('\n');
        }
        if phase.name == "00-current" {
            s.push_str("This is the state the plan starts from; nothing to apply.\n\n");
        }
        if !phase.actions.is_empty() {
            s.push_str("Steps, in order:\n\n");
            let mut n = 0;
            for a in &phase.actions {
                let dir = if multi {
                    format!("{}/{}", phase.name, a.cluster())
                } else {
                    phase.name.clone()
                };
                if matches!(a, Action::ApplySecret { .. }) {
                    let drift = runbook::drift_check(plan, k, a.cluster(), opts);
                    if !drift.is_empty() {
                        n += 1;
                        s.push_str(&format!(
                            "{n}. drift check: the live secret still equals the previous phase (else stop: someone changed it)\n\n   ```sh\n   (cd {dir} && {drift})\n   ```\n\n"
                        ));
                    }
                }
                n += 1;
                s.push_str(&format!(
                    "{n}. {}\n\n   ```sh\n   (cd {dir} && {})\n   ```\n\n",
                    a.describe(),
                    a.command_in(opts.context(plan, a.cluster()))
                ));
            }
        }
        if k > 0 {
            s.push_str(&runbook::rollback(plan, k, opts));
        }
        if let Some(g) = &phase.gate {
            s.push_str(&format!(
                "Before the next phase{}: wait at least **{}** after applying this one. {}\n\n",
                if g.barrier {
                    " (barrier: every cluster)"
                } else {
                    ""
                },
                format_duration(g.min_wait),
                g.reason
            ));
            for c in &g.checks {
                // In each cluster's context (one line per cluster in a multi-cluster plan).
                let command = plan
                    .clusters
                    .iter()
                    .map(|cl| opts.command(plan, cl, &c.command))
                    .collect::<Vec<_>>()
                    .join("\n  ");
                s.push_str(&format!(
                    "- {}:\n\n  ```sh\n  {command}\n  ```\n",
                    c.description
                ));
                if !c.expect.is_empty() {
                    s.push_str(&format!(
                        "  expect sha256: {}\n",
                        c.expect
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                s.push('\n');
            }
        }
    }
    if let Some(last) = plan.phases.last() {
        s.push_str(&runbook::after_last_phase(plan, last, opts));
    }
    s
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
    let io = |path: &Path, source: std::io::Error| PlanDirError::Io {
        path: path.to_owned(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_phase_name(n))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(PlanDirError::NoPhases(dir.to_owned()));
    }
    let json_path = dir.join("plan.json");
    let json: Option<PlanJson> = match std::fs::read(&json_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|source| PlanDirError::Json {
                path: json_path.clone(),
                line: source.line(),
                source,
            })?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&json_path, e)),
    };
    let mut findings = Vec::new();
    let mut phases = Vec::new();
    let mut cluster_names: Vec<String> = Vec::new();
    for name in &names {
        let pdir = dir.join(name);
        let has_files = istio::KNOWN_KEYS.iter().any(|k| pdir.join(k).is_file());
        let mut clusters = Vec::new();
        if has_files {
            let secret = istio::read_dir(&pdir).map_err(|source| PlanDirError::Secret {
                path: pdir.clone(),
                source,
            })?;
            clusters.push(ClusterPhase {
                cluster: DEFAULT_CLUSTER.to_owned(),
                secret,
            });
        } else {
            let mut subs: Vec<String> = std::fs::read_dir(&pdir)
                .map_err(|e| io(&pdir, e))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            subs.sort();
            if let Some(j) = &json {
                // Keep plan.json's cluster order when it names the same clusters.
                let mut ordered: Vec<String> = j
                    .clusters
                    .iter()
                    .filter(|c| subs.contains(c))
                    .cloned()
                    .collect();
                ordered.extend(subs.iter().filter(|s| !j.clusters.contains(s)).cloned());
                subs = ordered;
            }
            for sub in subs {
                let sdir = pdir.join(&sub);
                let secret = istio::read_dir(&sdir).map_err(|source| PlanDirError::Secret {
                    path: sdir.clone(),
                    source,
                })?;
                clusters.push(ClusterPhase {
                    cluster: sub,
                    secret,
                });
            }
            if clusters.is_empty() {
                return Err(PlanDirError::Secret {
                    path: pdir,
                    source: istio::ReadError::NotASecret {
                        line: 1,
                        message: "no CA files and no cluster directories".to_owned(),
                    },
                });
            }
        }
        for c in &clusters {
            if !cluster_names.contains(&c.cluster) {
                cluster_names.push(c.cluster.clone());
            }
        }
        let recorded = json
            .as_ref()
            .and_then(|j| j.phases.iter().find(|p| &p.name == name));
        if let Some(r) = recorded {
            let multi = clusters.len() > 1
                || clusters
                    .first()
                    .is_some_and(|c| c.cluster != DEFAULT_CLUSTER);
            for (file, want) in &r.files {
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
                        .in_phase(name.clone()),
                    );
                    continue;
                }
                let path = pdir.join(file);
                let got = std::fs::read(&path).ok().map(|b| Fingerprint::of(&b));
                if got.as_ref() != Some(want) {
                    let message = match got {
                        Some(g) => format!(
                            "{file} has sha256 {g}, plan.json recorded {want}: the file was changed after planning"
                        ),
                        None => format!("{file} is missing (plan.json records it)"),
                    };
                    findings.push(
                        Finding::error(Code::PlanJsonMismatch, message)
                            .in_phase(name.clone())
                            .in_cluster(if multi {
                                file.split('/').next().map(str::to_owned)
                            } else {
                                None
                            }),
                    );
                }
            }
        } else if json.is_some() {
            findings.push(
                Finding::error(
                    Code::PlanJsonMismatch,
                    "this phase directory is not in plan.json",
                )
                .in_phase(name.clone()),
            );
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
    if let Some(j) = &json {
        for p in &j.phases {
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
