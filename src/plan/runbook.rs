//! The operator's sections of RUNBOOK.md: the kube contexts, the backup before the first apply,
//! the preconditions checked on what runs, the drift check before each apply, how to go back
//! from each phase, and retiring `istio-ca-secret` after a self-signed -> plugged-in rotation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::rollback::{rollback_actions, rollback_root_change_accepted};
use super::{Action, CheckOptions, Gate, Phase, Plan, RotationKind, with_context};
use crate::istio::{self, SecretKind, format_duration};

/// How the runbook addresses each cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunbookOptions {
    /// The kube context of each cluster (`plan --context CTX` names the one cluster
    /// [`super::DEFAULT_CLUSTER`]; `--cluster NAME=CURRENT,NEW,CONTEXT`). A multi-cluster plan
    /// without one uses the cluster's name, as before.
    pub contexts: BTreeMap<String, String>,
}

impl RunbookOptions {
    /// The context every command of `cluster` carries, if any.
    pub fn context<'a>(&'a self, plan: &Plan, cluster: &'a str) -> Option<&'a str> {
        self.contexts
            .get(cluster)
            .map(String::as_str)
            .or_else(|| plan.is_multi_cluster().then_some(cluster))
    }

    /// `cmd` for `cluster` (with its `--context`).
    pub fn command(&self, plan: &Plan, cluster: &str, cmd: &str) -> String {
        match self.context(plan, cluster) {
            Some(c) => with_context(cmd, c),
            None => cmd.to_owned(),
        }
    }
}

fn sh(out: &mut String, indent: &str, cmd: &str) {
    out.push_str(&format!("\n{indent}```sh\n{indent}{cmd}\n{indent}```\n\n"));
}

/// The backup and precondition section, before the first phase.
pub(crate) fn before_you_start(plan: &Plan, opts: &RunbookOptions) -> String {
    let mut s = String::from("## Before you start\n\n");
    s.push_str("1. Save the live CA secrets (they hold the CA keys: keep the directory private). Going back to `00-current` applies `00-current/secret.yaml`, which equals them; the backup is what you restore if anything else changed them.\n");
    let mut cmds = vec!["umask 077 && mkdir -p backup".to_owned()];
    for c in &plan.clusters {
        let dir = if plan.is_multi_cluster() {
            format!("backup/{c}")
        } else {
            "backup".to_owned()
        };
        if plan.is_multi_cluster() {
            cmds.push(format!("mkdir -p {dir}"));
        }
        for name in ["cacerts", "istio-ca-secret"] {
            cmds.push(opts.command(
                plan,
                c,
                &format!(
                    "kubectl get secret {name} -n istio-system -o yaml --ignore-not-found > {dir}/{name}.yaml"
                ),
            ));
        }
    }
    sh(&mut s, "   ", &cmds.join("\n   "));
    s.push_str("2. Check the preconditions on what runs (the `00-current` gate below lists the commands): ISTIO_MULTIROOT_MESH is `\"true\"` on EVERY istiod Deployment (each revision, `istio.io/rev`) in each cluster; PROXY_CONFIG_XDS_AGENT is in the environment of the running proxies, not only in the mesh ConfigMap: a pod injected before the flag was set lacks it until it is restarted.\n");
    if plan.profile.xds_agent {
        s.push_str("   Pods whose istio-proxy lacks PROXY_CONFIG_XDS_AGENT=true (restart them, e.g. with the sidecar restart step of 01, before starting):\n");
        let list = "kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{\" \"}{.spec.containers[?(@.name==\"istio-proxy\")].env[?(@.name==\"PROXY_CONFIG_XDS_AGENT\")].value}{.spec.initContainers[?(@.name==\"istio-proxy\")].env[?(@.name==\"PROXY_CONFIG_XDS_AGENT\")].value}{\" \"}{.spec.containers[?(@.name==\"istio-proxy\")].name}{.spec.initContainers[?(@.name==\"istio-proxy\")].name}{\"\\n\"}{end}' | awk '$NF == \"istio-proxy\" && $2 != \"true\" { print $1 }'";
        let cmds: Vec<String> = plan
            .clusters
            .iter()
            .map(|c| opts.command(plan, c, list))
            .collect();
        sh(&mut s, "   ", &cmds.join("\n   "));
    }
    s.push_str("3. Before every apply, the runbook checks that the live secret still equals the previous phase (`meshtrust plan drift`): if someone changed it meanwhile, stop.\n\n");
    s
}

/// The drift check before applying phase `k` in `cluster`: the live secret (the one phase
/// `k - 1` applied) must still hold exactly phase `k - 1`'s files.
pub(crate) fn drift_check(plan: &Plan, k: usize, cluster: &str, opts: &RunbookOptions) -> String {
    let Some(prev) = k.checked_sub(1).and_then(|j| plan.phases.get(j)) else {
        return String::new();
    };
    let Some(secret) = prev.secret(cluster) else {
        return String::new();
    };
    let up = if plan.is_multi_cluster() {
        format!("../../{}/{cluster}", prev.name)
    } else {
        format!("../{}", prev.name)
    };
    opts.command(
        plan,
        cluster,
        &format!(
            "kubectl get secret {} -n {} -o yaml | meshtrust plan drift --expect {up} -",
            secret.name,
            istio::shell_word(&secret.namespace)
        ),
    )
}

/// How to go back from phase `k` to phase `k - 1` (k >= 1), as [`super::check_rollback`]
/// checks it.
pub(crate) fn rollback(plan: &Plan, k: usize, opts: &RunbookOptions) -> String {
    let (Some(cur), Some(prev)) = (plan.phases.get(k), plan.phases.get(k - 1)) else {
        return String::new();
    };
    let mut s = format!("Going back from {} to {}:\n\n", cur.name, prev.name);
    let check = CheckOptions {
        // The root-change rule reads no clock.
        now: time::OffsetDateTime::UNIX_EPOCH,
        margin: Duration::ZERO,
        waits_known: true,
    };
    let multi = plan.is_multi_cluster();
    for c in &prev.clusters {
        let dir = if multi {
            format!("{}/{}", prev.name, c.cluster)
        } else {
            prev.name.clone()
        };
        let to_self_signed = c.secret.kind == SecretKind::SelfSigned
            && cur
                .secret(&c.cluster)
                .is_some_and(|x| x.kind != SecretKind::SelfSigned);
        let who = if multi {
            format!(" in cluster {}", c.cluster)
        } else {
            String::new()
        };
        if to_self_signed {
            s.push_str(&format!("- delete `cacerts`{who} and restart istiod: without it istiod starts on its self-signed CA (`istio-ca-secret`, kept until the end of the rotation) and its root again:\n"));
            let cmd = format!(
                "kubectl delete secret cacerts -n istio-system && {}",
                Action::RestartIstiod {
                    cluster: c.cluster.clone(),
                    reason: String::new()
                }
                .command_in(None)
            );
            sh(&mut s, "  ", &opts.command(plan, &c.cluster, &cmd));
        } else {
            s.push_str(&format!(
                "- re-apply `{dir}/secret.yaml`{who} (drift check first: the live secret must equal this phase):\n"
            ));
            // Run from the earlier phase's directory: the live secret must still be phase k's.
            let cmd = format!(
                "(cd {dir} && {} && {})",
                drift_check(plan, k + 1, &c.cluster, opts),
                Action::ApplySecret {
                    cluster: c.cluster.clone(),
                    secret: c.secret.name.clone()
                }
                .command_in(opts.context(plan, &c.cluster))
            );
            sh(&mut s, "  ", &cmd);
        }
        let v = plan.profile.istio_version;
        match rollback_root_change_accepted(plan, k, &c.cluster, &check) {
            None => s.push_str(&format!("  istiod {v}: the root file keeps its bytes (or istiod restarts), so it reloads the signer.\n")),
            Some(true) => s.push_str(&format!("  istiod {v} accepts this root-file change (one file contains the other), pushes the earlier bundle and, when the bytes change, every proxy re-issues its leaf from that phase's signer.\n")),
            Some(false) => s.push_str(&format!("  istiod {v} REFUSES this root-file change: it keeps the current CA; do not go back this way (plan check reports it as rollback-unsafe).\n")),
        }
        if let (Ok(signer), Some(now_signer)) = (
            c.secret.ca_cert(),
            cur.secret(&c.cluster).and_then(|x| x.ca_cert().ok()),
        ) {
            if signer.fingerprint() != now_signer.fingerprint() {
                s.push_str(&format!(
                    "  It signs with {} again: safe only while that CA is valid (until {}).\n",
                    istio::describe(&signer),
                    crate::text::rfc3339(signer.not_after())
                ));
            }
        }
    }
    let restarts: Vec<String> = rollback_actions(plan, k)
        .iter()
        .filter(|a| !matches!(a, Action::ApplySecret { .. } | Action::RestartIstiod { .. }))
        .map(|a| {
            let dir = if multi {
                format!("{}/{}", prev.name, a.cluster())
            } else {
                prev.name.clone()
            };
            format!(
                "  - {}\n\n    ```sh\n    (cd {dir} && {})\n    ```\n",
                a.describe(),
                a.command_in(opts.context(plan, a.cluster()))
            )
        })
        .collect();
    if !restarts.is_empty() {
        s.push_str("  Then, as going forward (the earlier phase's files):\n\n");
        s.push_str(&restarts.join("\n"));
    }
    if let Some(warning) = no_longer_safe(plan, k) {
        s.push_str(&format!("  {warning}\n"));
    }
    s.push('\n');
    s
}

/// When going back from `k` becomes unsafe: a step back that drops a root from the bundle
/// breaks the leaves still issued under it, so it waits until they expired.
fn no_longer_safe(plan: &Plan, k: usize) -> Option<String> {
    let (cur, prev) = (plan.phases.get(k)?, plan.phases.get(k - 1)?);
    let dropped = cur.clusters.iter().any(|c| {
        let (Some(a), Some(b)) = (
            c.secret.root_bundle().ok(),
            prev.secret(&c.cluster).and_then(|s| s.root_bundle().ok()),
        ) else {
            return false;
        };
        a.trust_set()
            .fingerprints()
            .any(|fp| !b.trust_set().contains(fp))
    });
    dropped.then(|| format!(
        "This step back removes a root from the bundle: it is safe only while no leaf under that root is in use. If you came back to {} from a later phase that signed under the removed root, going further back is no longer safe until one leaf lifetime ({}) plus the margin has passed since then.",
        cur.name,
        format_duration(plan.profile.leaf_ttl)
    ))
}

/// The last section of a self-signed -> plugged-in plan: retire istio-ca-secret.
pub(crate) fn after_last_phase(plan: &Plan, last: &Phase, opts: &RunbookOptions) -> String {
    if plan.kind != RotationKind::SelfSignedToPluggedIn {
        return String::new();
    }
    let mut s = format!("## After {}: retire istio-ca-secret\n\n", last.name);
    s.push_str("`istio-ca-secret` still holds the old self-signed root's PRIVATE KEY, and istiod falls back to it at start whenever `cacerts` is missing or unusable (a different root: traffic would break). Once every proxy trusts only the new root, back it up (the backup of \"Before you start\" holds it too) and delete it:\n");
    let cmds: Vec<String> = plan
        .clusters
        .iter()
        .map(|c| {
            opts.command(
                plan,
                c,
                "kubectl get secret istio-ca-secret -n istio-system -o yaml > backup/istio-ca-secret-retired.yaml && kubectl delete secret istio-ca-secret -n istio-system",
            )
        })
        .collect();
    sh(&mut s, "", &cmds.join("\n"));
    s.push_str("Restarts: this plan restarts istiod once, at 01, where it enters plugged-in mode (istiod runs its self-signed CA until a restart finds `cacerts`, and the self-signed CA never watches /etc/cacerts). From then on istiod watches /etc/cacerts and reloads every later secret by itself, so the later phases need no istiod restart; the manual procedure restarts istiod at each step because it does not rely on that watch.\n");
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
    let mut s = header(plan);
    s.push_str(&before_you_start(plan, opts));
    for (k, phase) in plan.phases.iter().enumerate() {
        s.push_str(&format!("## {}: {}\n\n", phase.name, phase.title));
        s.push_str(&phase_files(plan, phase));
        if phase.name == "00-current" {
            s.push_str("This is the state the plan starts from; nothing to apply.\n\n");
        }
        s.push_str(&phase_steps(plan, k, opts));
        if k > 0 {
            s.push_str(&rollback(plan, k, opts));
        }
        if let Some(g) = &phase.gate {
            s.push_str(&gate_section(plan, g, opts));
        }
    }
    if let Some(last) = plan.phases.last() {
        s.push_str(&after_last_phase(plan, last, opts));
    }
    s
}

/// The title, the profile the plan was made for, its duration, costs and roots.
fn header(plan: &Plan) -> String {
    let p = &plan.profile;
    let join = |fps: &[crate::cert::Fingerprint]| {
        fps.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut s = format!(
        "# Runbook: {} ({})\n\n",
        plan.kind,
        if plan.is_multi_cluster() {
            plan.clusters.join(", ")
        } else {
            "one cluster".to_owned()
        }
    );
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
        s.push_str(&format!("Old root(s): {}\n", join(&plan.old_roots)));
    }
    s.push_str(&format!("New root(s): {}\n\n", join(&plan.new_roots)));
    s.push_str("Before each step: `meshtrust plan check .` (from this directory) must exit 0. `meshtrust simulate .` replays the plan on a simulated mesh.\n\n");
    s
}

/// The phase directory of `cluster` as the runbook names it.
fn phase_path(plan: &Plan, phase: &Phase, cluster: &str) -> String {
    if plan.is_multi_cluster() {
        format!("{}/{cluster}", phase.name)
    } else {
        phase.name.clone()
    }
}

/// Per cluster: the phase's files, its signer and its root file's trust set.
fn phase_files(plan: &Plan, phase: &Phase) -> String {
    let mut s = String::new();
    for c in &phase.clusters {
        if plan.is_multi_cluster() {
            s.push_str(&format!("Cluster `{}`:\n\n", c.cluster));
        }
        s.push_str(&format!(
            "- files: `{}/` ({})\n",
            phase_path(plan, phase, &c.cluster),
            c.secret.file_names().collect::<Vec<_>>().join(", ")
        ));
        if let Ok(sg) = c.secret.ca_cert() {
            s.push_str(&format!(
                "- signer: {} sha256 `{}`\n",
                sg.subject(),
                sg.fingerprint()
            ));
        }
        if let Ok(r) = c.secret.root_bundle() {
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
    s
}

/// Phase `k`'s actions, numbered, each apply preceded by its drift check.
fn phase_steps(plan: &Plan, k: usize, opts: &RunbookOptions) -> String {
    let phase = &plan.phases[k];
    if phase.actions.is_empty() {
        return String::new();
    }
    let mut s = "Steps, in order:\n\n".to_owned();
    let mut n = 0;
    for a in &phase.actions {
        let dir = phase_path(plan, phase, a.cluster());
        if matches!(a, Action::ApplySecret { .. }) {
            let drift = drift_check(plan, k, a.cluster(), opts);
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
    s
}

/// The wait before the next phase and its checks, run in each cluster's context.
fn gate_section(plan: &Plan, g: &Gate, opts: &RunbookOptions) -> String {
    let mut s = format!(
        "Before the next phase{}: wait at least **{}** after applying this one. {}\n\n",
        if g.barrier {
            " (barrier: every cluster)"
        } else {
            ""
        },
        format_duration(g.min_wait),
        g.reason
    );
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
    s
}
