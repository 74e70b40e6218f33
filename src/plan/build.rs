//! Building plans: input checks, kind inference, and the phases of each kind.

use super::gates::{
    precondition_gate, propagation_actions, root_gates, signer_check, status_gates,
};
use std::time::Duration;

use time::OffsetDateTime;

use super::{
    Action, ClusterInput, ClusterPhase, Gate, Phase, Plan, PlanError, PlanOptions, RotationKind,
    checks, cross_signed,
};
use crate::bundle::Bundle;
use crate::cert::{Certificate, Fingerprint};
use crate::finding::{Code, Finding, Severity};
use crate::istio::behaviour::{self, Proxy, RootsTaken};
use crate::istio::{self, CaSecret, IstioProfile, Layout, SecretKind, format_duration};
use crate::verify::{self, CertPool, VerifyOptions};

/// What the planner knows about one cluster's inputs, after checking them.
pub(super) struct Material {
    pub(super) name: String,
    pub(super) current: CaSecret,
    pub(super) new: CaSecret,
    /// The current signing CA's files: ca-cert, ca-key, cert-chain (as istiod would use them).
    current_files: [Vec<u8>; 3],
    pub(super) current_roots: Bundle,
    current_signer: Certificate,
    pub(super) new_roots: Bundle,
    pub(super) new_signer: Certificate,
}

/// A refusal of the planner: an error on phase `inputs` naming the cluster.
pub(super) fn refuse(code: Code, cluster: &str, message: impl Into<String>) -> Finding {
    Finding::error(code, message)
        .in_phase("inputs")
        .in_cluster(Some(cluster.to_owned()))
}

/// The planner's gates on the mesh itself, from the Istio model ([`behaviour`]): the
/// (code, message) of every reason `profile` cannot take a rotation that changes the root
/// file (`changes_roots`). [`plan`] refuses with them; the testkit expects exactly them.
///
/// - `multiroot-off`: ISTIO_MULTIROOT_MESH off ([`behaviour::root_change`]);
/// - `istiod-roots-split`: istiod 1.24.4 / 1.25.1 send only the LAST root in CSR responses
///   (istio issue 55793, [`behaviour::csr_response`]);
/// - `ztunnel-multiroot-unsupported`: ztunnel before 1.24.6 / 1.25.3 / 1.26.0 trusts only the
///   first root ([`behaviour::roots_taken`]).
pub fn profile_refusals(profile: &IstioProfile, changes_roots: bool) -> Vec<(Code, String)> {
    let mut out = Vec::new();
    if !changes_roots {
        return out;
    }
    let (i, z) = (profile.istio_version, profile.ztunnel());
    if !profile.multiroot {
        out.push((
            Code::MultirootOff,
            "ISTIO_MULTIROOT_MESH is off: istiod (1.22.0+) ignores every change of root-cert.pem (\"Multi root is disabled\"); enable it on istiod first".to_owned(),
        ));
    }
    if behaviour::csr_response(i).roots_split {
        let to = if i.minor == 24 {
            "1.24.6 (1.24.5 for sidecars only)"
        } else {
            "1.25.3 (1.25.2 for sidecars only)"
        };
        out.push((
            Code::IstiodRootsSplit,
            format!(
                "istiod {i} (only 1.24.4 and 1.25.1, istio issue 55793) sends only the LAST root in CSR responses: ztunnel and sidecars without the push trust one root while two are needed; move istiod to {to} before any root change"
            ),
        ));
    }
    if profile.data_plane.has_ztunnel()
        && behaviour::roots_taken(i, z, Proxy::Ztunnel, false) == RootsTaken::FirstOnly
    {
        out.push((
            Code::ZtunnelMultirootUnsupported,
            format!(
                "ztunnel {z} (before {}) trusts only the first root of a multi-root bundle: traffic breaks while two roots are trusted; upgrade ztunnel",
                behaviour::ztunnel_multi_root_fixed_in()
            ),
        ));
    }
    out
}

/// Makes a plan for `clusters` (one for kinds 1-3; several for a multi-cluster rotation).
///
/// Refuses, with a finding per reason, inputs that cannot be rotated safely: a root change
/// with ISTIO_MULTIROOT_MESH off, a ztunnel that does not trust every root of a multi-root
/// bundle in ambient mode, a new intermediate that does not chain to the new root, a key that
/// does not match its certificate, a "root rotation" to the same root, a new CA that expires
/// before the leaves it must cover. The finished plan is then checked with
/// [`super::check_plan`]; the planner never returns a plan its own checks reject.
pub fn plan(
    clusters: &[ClusterInput],
    profile: &IstioProfile,
    opts: &PlanOptions,
    now: OffsetDateTime,
) -> Result<Plan, PlanError> {
    if clusters.is_empty() {
        return Err(PlanError::NoCluster);
    }
    profile.validate()?;
    let mut names = std::collections::HashSet::new();
    for c in clusters {
        if c.name.is_empty()
            || c.name.starts_with('.')
            || c.name.contains(['/', '\\'])
            || !names.insert(c.name.as_str())
        {
            return Err(PlanError::ClusterName(c.name.clone()));
        }
    }

    let mut refusals = Vec::new();
    let mut material = Vec::new();
    for c in clusters {
        if let Some(m) = examine(c, now, &mut refusals) {
            material.push(m);
        }
    }
    if !refusals.is_empty() {
        return Err(PlanError::Refused(refusals));
    }

    let kind = infer_kind(&material, opts, &mut refusals);
    let cross_chain = (kind == RotationKind::CrossSigned)
        .then(|| cross_signed::inputs(&material, opts.cross_signed.as_ref(), &mut refusals))
        .flatten();
    // A cross-signed rotation never holds two roots and restarts istiod for its one change.
    let changes_roots = !matches!(
        kind,
        RotationKind::IntermediateRotation | RotationKind::CrossSigned
    ) || opts.reissue_now;
    for (code, message) in profile_refusals(profile, changes_roots) {
        refusals.push(refuse(code, &material[0].name, message));
    }
    if !refusals.is_empty() {
        return Err(PlanError::Refused(refusals));
    }

    let mut plan = match (kind, &cross_chain) {
        (RotationKind::CrossSigned, Some(chain)) => {
            cross_signed::cross_signed_plan(&material[0], chain, profile, opts)
        }
        (RotationKind::IntermediateRotation, _) => intermediate_plan(&material, profile, opts),
        _ => root_plan(kind, &material, profile, opts),
    };
    plan.old_roots = old_roots(&material, kind);
    plan.new_roots = material[0]
        .new_roots
        .trust_set()
        .fingerprints()
        .copied()
        .collect();

    // The new CA must outlive the rotation plus a leaf lifetime.
    let horizon = now + plan.min_duration() + profile.leaf_ttl;
    for m in &material {
        if m.new_signer.not_after() < horizon {
            refusals.push(refuse(
                Code::NewCaExpiresEarly,
                &m.name,
                format!(
                    "the new CA {} expires {} but must sign leaves until at least {} (rotation of {} plus one {} leaf lifetime)",
                    istio::describe(&m.new_signer),
                    m.new_signer.not_after().date(),
                    horizon.date(),
                    format_duration(plan.min_duration()),
                    format_duration(profile.leaf_ttl)
                ),
            ));
        }
    }
    if !refusals.is_empty() {
        return Err(PlanError::Refused(refusals));
    }

    status_gates(&mut plan);
    let findings = checks::check_plan(
        &plan,
        &checks::CheckOptions {
            now,
            margin: opts.margin,
            waits_known: true,
        },
    );
    if super::has_errors(&findings) {
        return Err(PlanError::Refused(
            findings
                .into_iter()
                .filter(|f| f.severity == Severity::Error)
                .collect(),
        ));
    }
    Ok(plan)
}

/// Reads and checks one cluster's inputs.
fn examine(c: &ClusterInput, now: OffsetDateTime, refusals: &mut Vec<Finding>) -> Option<Material> {
    let n = &c.name;
    let before = refusals.len();
    let (current_signer, current_roots) = examine_current(c, refusals);
    let (new_signer, new_roots, new_chain) = examine_new(c, refusals);
    if let (Ok(k), Some(s)) = (c.current.ca_key(), &current_signer)
        && let Err(e) = k.check_matches(s)
    {
        refusals.push(refuse(
            Code::CaKeyMismatch,
            n,
            format!("current {}: {e}", c.current.key_file()),
        ));
    }
    if let (Some(s), Some(r), Some(ch)) = (&new_signer, &new_roots, &new_chain) {
        if r.is_empty() {
            refusals.push(refuse(
                Code::NewUnreadable,
                n,
                "the new root-cert.pem holds no certificate",
            ));
        } else {
            let roots = CertPool::from_certificates(r.certificates());
            let inter = CertPool::from_certificates(ch.certificates());
            if let Err(e) = verify::verify(s, &inter, &roots, &VerifyOptions::at(now)) {
                refusals.push(refuse(
                    Code::NewIntermediateUnchained,
                    n,
                    format!("the new ca-cert.pem does not chain to the new root-cert.pem: {e}"),
                ));
            }
        }
    }
    if refusals.len() > before {
        return None;
    }
    Some(Material {
        name: c.name.clone(),
        current: c.current.clone(),
        new: c.new.clone(),
        current_files: current_files(&c.current),
        current_roots: current_roots?,
        current_signer: current_signer?,
        new_roots: new_roots?,
        new_signer: new_signer?,
    })
}

/// The current secret's signer and roots, refusing what cannot be read.
fn examine_current(
    c: &ClusterInput,
    refusals: &mut Vec<Finding>,
) -> (Option<Certificate>, Option<Bundle>) {
    let n = &c.name;
    let mut unreadable = |e: String| refusals.push(refuse(Code::CurrentUnreadable, n, e));
    let signer = c
        .current
        .ca_cert()
        .map_err(|e| unreadable(e.to_string()))
        .ok();
    let roots = c
        .current
        .root_bundle()
        .map_err(|e| unreadable(e.to_string()))
        .ok();
    if c.current.file(c.current.key_file()).is_none() {
        unreadable(format!(
            "the current secret has no {}",
            c.current.key_file()
        ));
    }
    (signer, roots)
}

/// The new CA's signer, roots and chain: a complete cacerts whose key is the signer's.
fn examine_new(
    c: &ClusterInput,
    refusals: &mut Vec<Finding>,
) -> (Option<Certificate>, Option<Bundle>, Option<Bundle>) {
    let n = &c.name;
    if c.new.kind != SecretKind::PluggedIn || c.new.layout != Layout::Istio {
        refusals.push(refuse(
            Code::NewNotCacerts,
            n,
            "the new CA must be a cacerts-layout directory (ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem)",
        ));
    }
    for f in istio::CACERTS_FILES {
        if c.new.file(f).is_none() {
            refusals.push(refuse(
                Code::NewIncomplete,
                n,
                format!("the new CA has no {f}"),
            ));
        }
    }
    let mut unreadable = |e: String| refusals.push(refuse(Code::NewUnreadable, n, e));
    let signer = c.new.ca_cert().map_err(|e| unreadable(e.to_string())).ok();
    let roots = c
        .new
        .root_bundle()
        .map_err(|e| unreadable(e.to_string()))
        .ok();
    let chain = c
        .new
        .cert_chain()
        .map_err(|e| unreadable(e.to_string()))
        .ok();
    match c.new.ca_key() {
        Err(e) => unreadable(e.to_string()),
        Ok(k) => {
            if let Some(s) = &signer
                && let Err(e) = k.check_matches(s)
            {
                refusals.push(refuse(
                    Code::CaKeyMismatch,
                    n,
                    format!("new ca-key.pem: {e}"),
                ));
            }
        }
    }
    (signer, roots, chain)
}

/// The current secret's signing certificate, key and chain bytes, as the first phase keeps
/// them.
fn current_files(current: &CaSecret) -> [Vec<u8>; 3] {
    let signing = current
        .file(current.signing_cert_file())
        .unwrap_or_default()
        .to_vec();
    [
        signing.clone(),
        current
            .file(current.key_file())
            .unwrap_or_default()
            .to_vec(),
        match current.kind {
            // istio-ca-secret has an empty cert-chain.pem; a cacerts needs one starting with ca-cert.
            SecretKind::SelfSigned => signing,
            SecretKind::PluggedIn => current.chain_bytes().unwrap_or_default(),
        },
    ]
}

fn infer_kind(
    material: &[Material],
    opts: &PlanOptions,
    refusals: &mut Vec<Finding>,
) -> RotationKind {
    let m = &material[0];
    let same_roots = m
        .new_roots
        .trust_set()
        .is_subset(&m.current_roots.trust_set());
    let inferred = if material.len() > 1 {
        RotationKind::MultiCluster
    } else if m.current.kind == SecretKind::SelfSigned {
        RotationKind::SelfSignedToPluggedIn
    } else if same_roots {
        RotationKind::IntermediateRotation
    } else {
        RotationKind::RootRotation
    };
    let kind = opts.kind.unwrap_or(inferred);
    for m in material {
        let same_roots = m
            .new_roots
            .trust_set()
            .is_subset(&m.current_roots.trust_set());
        if m.new_signer == m.current_signer {
            refusals.push(refuse(
                Code::NothingToRotate,
                &m.name,
                "the new ca-cert.pem is the current one",
            ));
        }
        match kind {
            RotationKind::RootRotation | RotationKind::MultiCluster | RotationKind::SelfSignedToPluggedIn | RotationKind::CrossSigned if same_roots => {
                refusals.push(refuse(
                    Code::SameRoot,
                    &m.name,
                    "the new root is already the current root: this is an intermediate rotation (use --kind intermediate-rotation)",
                ));
            }
            RotationKind::IntermediateRotation if !same_roots => refusals.push(refuse(
                Code::KindMismatch,
                &m.name,
                "an intermediate rotation keeps the root, but the new root-cert.pem holds a root the cluster does not trust",
            )),
            RotationKind::SelfSignedToPluggedIn if m.current.kind != SecretKind::SelfSigned => refusals.push(refuse(
                Code::KindMismatch,
                &m.name,
                "the current secret is a plugged-in cacerts, not istiod's self-signed istio-ca-secret",
            )),
            RotationKind::RootRotation | RotationKind::CrossSigned if m.current.kind == SecretKind::SelfSigned => refusals.push(refuse(
                Code::KindMismatch,
                &m.name,
                "the current CA is istiod's self-signed one: use --kind self-signed-to-plugged-in",
            )),
            _ => {}
        }
    }
    if material.len() > 1 {
        if kind != RotationKind::MultiCluster {
            refusals.push(refuse(
                Code::KindMismatch,
                &material[0].name,
                "several clusters make a multi-cluster rotation",
            ));
        }
        let first = material[0].new_roots.trust_set();
        for m in &material[1..] {
            if m.new_roots.trust_set() != first {
                refusals.push(refuse(
                    Code::NewRootsDiffer,
                    &m.name,
                    format!("its new root-cert.pem differs from cluster {}'s: the clusters must move to one shared root", material[0].name),
                ));
            }
        }
    } else if kind == RotationKind::MultiCluster {
        refusals.push(refuse(
            Code::KindMismatch,
            &material[0].name,
            "a multi-cluster rotation needs two clusters or more",
        ));
    }
    kind
}

fn old_roots(material: &[Material], kind: RotationKind) -> Vec<Fingerprint> {
    if kind == RotationKind::IntermediateRotation {
        return Vec::new();
    }
    let new = material[0].new_roots.trust_set();
    let mut out: Vec<Fingerprint> = Vec::new();
    for m in material {
        for fp in m.current_roots.trust_set().fingerprints() {
            if !new.contains(fp) && !out.contains(fp) {
                out.push(*fp);
            }
        }
    }
    out
}

fn secret(ca_cert: &[u8], ca_key: &[u8], chain: &[u8], roots: &[u8]) -> CaSecret {
    CaSecret::cacerts(ca_cert, ca_key, chain, roots)
}

fn new_files(m: &Material) -> [&[u8]; 3] {
    [
        m.new.file(istio::CA_CERT).unwrap_or_default(),
        m.new.file(istio::CA_KEY).unwrap_or_default(),
        m.new.file(istio::CERT_CHAIN).unwrap_or_default(),
    ]
}

fn current_phase(
    material: &[Material],
    profile: &IstioProfile,
    kind: RotationKind,
    reissue_now: bool,
) -> Phase {
    Phase {
        name: "00-current".to_owned(),
        title: "what the cluster runs now, as read".to_owned(),
        clusters: material
            .iter()
            .map(|m| ClusterPhase {
                cluster: m.name.clone(),
                secret: m.current.clone(),
            })
            .collect(),
        trigger: false,
        actions: Vec::new(),
        gate: Some(precondition_gate(profile, kind, reissue_now)),
    }
}

/// Kinds 1, 2 and 4: trust both, switch signer (A+B+B), drop the old root.
fn root_plan(
    kind: RotationKind,
    material: &[Material],
    profile: &IstioProfile,
    opts: &PlanOptions,
) -> Plan {
    let mut p1 = Vec::new();
    let mut p2 = Vec::new();
    let mut p3 = Vec::new();
    let (mut a1, mut a2, mut a3) = (Vec::new(), Vec::new(), Vec::new());
    for m in material {
        let b = Bundle::parse(m.new.file(istio::ROOT_CERT).unwrap_or_default())
            .unwrap_or_else(|_| m.new_roots.clone());
        let r1 = m.current_roots.append(&b);
        let r2 = r1.append(&b);
        let [cc, ck, ch] = &m.current_files;
        p1.push(ClusterPhase {
            cluster: m.name.clone(),
            secret: secret(cc, ck, ch, r1.bytes()),
        });
        let [nc, nk, nch] = new_files(m);
        p2.push(ClusterPhase {
            cluster: m.name.clone(),
            secret: secret(nc, nk, nch, r2.bytes()),
        });
        p3.push(ClusterPhase {
            cluster: m.name.clone(),
            secret: secret(nc, nk, nch, b.bytes()),
        });

        let [x1, x2, x3] = root_actions(m, profile);
        a1.extend(x1);
        a2.extend(x2);
        a3.extend(x3);
    }
    let [gate1, gate2, gate3] = root_gates(material, profile, opts);
    let phases = vec![
        current_phase(material, profile, kind, false),
        Phase {
            name: "01-trust-both".to_owned(),
            title: "trust the old and the new root; the old intermediate keeps signing".to_owned(),
            clusters: p1,
            trigger: false,
            actions: a1,
            gate: Some(gate1),
        },
        Phase {
            name: "02-switch-signer".to_owned(),
            title: "sign with the new intermediate; the root file repeats the new root (A+B+B) so every proxy re-issues its leaf now"
                .to_owned(),
            clusters: p2,
            trigger: true,
            actions: a2,
            gate: Some(gate2),
        },
        Phase {
            name: "03-drop-old-root".to_owned(),
            title: "trust only the new root".to_owned(),
            clusters: p3,
            trigger: false,
            actions: a3,
            gate: Some(gate3),
        },
    ];
    Plan {
        kind,
        profile: profile.clone(),
        clusters: material.iter().map(|m| m.name.clone()).collect(),
        phases,
        old_roots: Vec::new(),
        new_roots: Vec::new(),
    }
}

/// One cluster's actions in the three phases of a root rotation: apply, the istiod restart
/// the current secret needs (self-signed or kubernetes.io/tls), and propagation.
fn root_actions(m: &Material, profile: &IstioProfile) -> [Vec<Action>; 3] {
    let mut a: [Vec<Action>; 3] = Default::default();
    a[0].push(Action::ApplySecret {
        cluster: m.name.clone(),
        secret: "cacerts".to_owned(),
    });
    if m.current.kind == SecretKind::SelfSigned {
        a[0].push(Action::RestartIstiod {
            cluster: m.name.clone(),
            reason: "istiod runs its self-signed CA and watches /etc/cacerts only in plugged-in mode; a restart makes it load the new cacerts"
                .to_owned(),
        });
    } else if m.current.layout == Layout::KubernetesTls {
        a[0].push(Action::RestartIstiod {
            cluster: m.name.clone(),
            reason: "the secret moves from the kubernetes.io/tls layout to Istio's; a restart loads it cleanly".to_owned(),
        });
    }
    let restarted = a[0]
        .iter()
        .any(|a| matches!(a, Action::RestartIstiod { cluster, .. } if *cluster == m.name));
    a[0].extend(propagation_actions(&m.name, profile, restarted));
    a[1].push(Action::ApplySecret {
        cluster: m.name.clone(),
        secret: "cacerts".to_owned(),
    });
    a[1].extend(propagation_actions(&m.name, profile, false));
    a[2].push(Action::ApplySecret {
        cluster: m.name.clone(),
        secret: "cacerts".to_owned(),
    });
    a[2].extend(propagation_actions(&m.name, profile, false));
    a
}

/// Kind 3: a new intermediate under the same root.
fn intermediate_plan(material: &[Material], profile: &IstioProfile, opts: &PlanOptions) -> Plan {
    let m = &material[0];
    let [nc, nk, nch] = new_files(m);
    let cluster = m.name.clone();
    let apply = Action::ApplySecret {
        cluster: cluster.clone(),
        secret: "cacerts".to_owned(),
    };
    let mut phases = vec![current_phase(
        material,
        profile,
        RotationKind::IntermediateRotation,
        opts.reissue_now,
    )];
    if opts.reissue_now {
        // The deliberate duplicate of the (unchanged) trust set: bytes change, trust does not.
        let dup = m
            .current_roots
            .with_last_duplicated()
            .unwrap_or_else(|_| m.current_roots.clone());
        let mut a1 = vec![apply.clone()];
        a1.extend(propagation_actions(&cluster, profile, false));
        phases.push(Phase {
            name: "01-new-intermediate".to_owned(),
            title: "sign with the new intermediate; the root file repeats its last root (A+A) so every proxy re-issues its leaf now"
                .to_owned(),
            clusters: vec![ClusterPhase { cluster: cluster.clone(), secret: secret(nc, nk, nch, dup.bytes()) }],
            trigger: true,
            actions: a1,
            gate: Some(Gate {
                min_wait: opts.propagation,
                reason: "let every proxy re-issue from the new intermediate".to_owned(),
                barrier: false,
                checks: signer_check(profile, &m.new_signer),
            }),
        });
        phases.push(Phase {
            name: "02-cleanup".to_owned(),
            title: "restore the original root file (the duplicate served its purpose)".to_owned(),
            clusters: vec![ClusterPhase {
                cluster: cluster.clone(),
                secret: secret(nc, nk, nch, m.current_roots.bytes()),
            }],
            trigger: false,
            actions: vec![apply],
            gate: None,
        });
    } else {
        let rotation =
            Duration::from_secs_f64(profile.rotation_after().as_secs_f64() * 1.01) + opts.margin;
        phases.push(Phase {
            name: "01-new-intermediate".to_owned(),
            title: "sign with the new intermediate; root-cert.pem is unchanged, so istiod only reloads its signer".to_owned(),
            clusters: vec![ClusterPhase { cluster: cluster.clone(), secret: secret(nc, nk, nch, m.current_roots.bytes()) }],
            trigger: false,
            actions: vec![apply],
            gate: Some(Gate {
                min_wait: rotation,
                reason: format!(
                    "leaves move to the new intermediate at their normal rotation ({} of the {} lifetime, plus jitter); nothing breaks meanwhile",
                    format_duration(profile.rotation_after()),
                    format_duration(profile.leaf_ttl)
                ),
                barrier: false,
                checks: signer_check(profile, &m.new_signer),
            }),
        });
    }
    Plan {
        kind: RotationKind::IntermediateRotation,
        profile: profile.clone(),
        clusters: vec![cluster],
        phases,
        old_roots: Vec::new(),
        new_roots: Vec::new(),
    }
}
