//! Fuzz entry points: `fn(&[u8])` functions that must never panic, whatever the input. Our
//! own `fuzz/` targets call them; a downstream crate can wire the same functions into its own
//! fuzzer (`libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtrust::testkit::fuzz::pem(data));`).
//!
//! Each entry point also checks the invariants that must hold for the inputs it accepts,
//! with the checkers of [`super::invariants`] where one exists: a violated invariant panics,
//! which is what a fuzzer reports.
//!
//! | entry point | input | what it asserts on accepted input |
//! |---|---|---|
//! | [`pem()`] | any bytes | block spans, lines and text are consistent; canonical re-encoding frames back |
//! | [`certificate`] | DER | the original DER is kept; every accessor works |
//! | [`bundle()`] | a PEM file | byte round trip, dedup, append and the deliberate duplicate |
//! | [`cacerts_manifest`] | a Secret as YAML or JSON | istiod's checks under several profiles; no key material in findings or `Debug`; the manifest written back reads back the same |
//! | [`cacerts_dir`] | files in [`split_files`] form | the same, on a directory's files |
//! | [`plan_check`] | a plan's phase files in [`split_files`] form | [`check_plan`] is the union of the single-invariant checks; plan.json and the runbook hold no key |
//! | [`plan_scenario`] | structure-aware ([`PlanScenario`]) | [`PlanScenario::run`]: refusals, plan invariants, mutations caught |
//! | [`observe()`] | one tool output (dump, table, kubectl) | refusals are located; the evaluation runs; trusted roots were reported |
//! | [`observe_files`] | several outputs in [`split_files`] form | the same, across inputs read by one reader |
//!
//! ```
//! meshtrust::testkit::fuzz::pem(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n");
//! meshtrust::testkit::fuzz::bundle(b"\xff\xfe garbage");
//! meshtrust::testkit::fuzz::cacerts_manifest(b"kind: Secret\ndata:\n  ca-cert.pem: Zm9v\n");
//! meshtrust::testkit::fuzz::plan_check(b"==> 00-current/root-cert.pem <==\nnot a certificate\n");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::invariants::{self, Violation};
use super::plans::{self, PlanScenario};
use crate::bundle::Bundle;
use crate::cert::Certificate;
use crate::istio::{self, CaSecret, DataPlane, IstioProfile, IstioVersion};
use crate::pem;
use crate::plan::{
    self, CheckOptions, ClusterPhase, DEFAULT_CLUSTER, Gate, Invariant, Phase, Plan, RotationKind,
    check_invariants, check_plan,
};

fn holds(v: Result<(), Violation>, what: &str) {
    if let Err(v) = v {
        panic!("{what}: {v}");
    }
}

/// Frames PEM; accepted blocks must have consistent spans, lines and text.
///
/// ```
/// meshtrust::testkit::fuzz::pem(b"-----BEGIN X-----\nAAAA\n-----END X-----\n");
/// meshtrust::testkit::fuzz::pem(&[0xff; 64]);
/// ```
pub fn pem(data: &[u8]) {
    if let Ok(blocks) = pem::parse(data) {
        let mut last_end = 0;
        for b in &blocks {
            assert!(
                b.span.start >= last_end && b.span.end <= data.len(),
                "block spans overlap or overflow"
            );
            assert_eq!(&data[b.span.clone()], b.text, "text is not the span");
            assert!(b.begin_line < b.end_line, "END before BEGIN");
            assert!(!b.der.is_empty(), "empty DER accepted");
            last_end = b.span.end;
            // Re-encoding the DER canonically must frame back to the same DER.
            let again = pem::encode(&b.label, &b.der);
            let re = pem::parse(again.as_bytes()).expect("canonical PEM must parse");
            assert_eq!(re.len(), 1);
            assert_eq!(re[0].der, b.der);
        }
    }
}

/// Parses a DER certificate and exercises every accessor.
///
/// ```
/// let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem")).unwrap();
/// meshtrust::testkit::fuzz::certificate(&meshtrust::pem::parse(&pem).unwrap()[0].der);
/// meshtrust::testkit::fuzz::certificate(b"\x30\x03\x02\x01\x00");
/// ```
pub fn certificate(data: &[u8]) {
    if let Ok(c) = Certificate::from_der(data) {
        assert_eq!(c.der(), data);
        let _ = (
            c.role(),
            c.subject().len(),
            c.issuer().len(),
            c.serial_hex(),
            c.spiffe_ids(),
        );
        let _ = (
            c.key_usage(),
            c.extended_key_usage(),
            c.unhandled_critical_extensions(),
            c.check_strict(),
        );
        let _ = c.extensions().count();
        let _ = c.verify_signed_by(&c);
        let _ = (c.not_before(), c.not_after());
    }
}

/// Parses a bundle and checks the byte-exact invariants on what it accepts: round trip
/// (invariant 1), dedup (idempotent, same trust set, agrees with `dedup_pem`), append (keeps
/// the prefix, so istiod accepts it: invariant 3) and the deliberate duplicate (invariant 2).
///
/// ```
/// let abb = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert-combined-2.pem")).unwrap();
/// meshtrust::testkit::fuzz::bundle(&abb);
/// ```
pub fn bundle(data: &[u8]) {
    if let Ok(b) = Bundle::parse(data) {
        holds(invariants::round_trip(data, &b), "round trip");
        let d = b.dedup();
        assert_eq!(d.dedup().bytes(), d.bytes(), "dedup not idempotent");
        assert_eq!(d.trust_set(), b.trust_set(), "dedup changed the trust set");
        assert_eq!(
            crate::bundle::dedup_pem(data).ok().as_deref(),
            Some(d.bytes()),
            "dedup_pem disagrees"
        );
        let doubled = b.append(&b);
        assert!(doubled.bytes().starts_with(data), "append lost the prefix");
        assert_eq!(doubled.trust_set(), b.trust_set());
        holds(
            invariants::root_file_accepted(data, doubled.bytes(), IstioVersion::new(1, 29, 0)),
            "append",
        );
        if !b.is_empty() {
            // From 1.30 the rule compares sets, and an empty new set is refused.
            holds(
                invariants::root_file_accepted(data, doubled.bytes(), IstioVersion::NEWEST),
                "append",
            );
        }
        if let Ok(t) = b.with_last_duplicated() {
            holds(
                invariants::deliberate_duplicate(&b, &t),
                "deliberate duplicate",
            );
            holds(
                invariants::root_file_accepted(b.bytes(), t.bytes(), IstioVersion::new(1, 29, 0)),
                "deliberate duplicate",
            );
        }
    }
}

/// Splits `data` into named files, the way `tail -n +1 FILE...` prints several files: each
/// file starts with a header line `==> NAME <==`; its content runs to the next header line
/// (less the one newline that separates them) or to the end. Text before the first header is
/// ignored. [`join_files`] is the inverse.
///
/// ```
/// use meshtrust::testkit::fuzz::{join_files, split_files};
/// let data = b"==> ca-cert.pem <==\nAAA\n\n==> root-cert.pem <==\nBBB";
/// let files = split_files(data);
/// assert_eq!(files, vec![("ca-cert.pem".to_owned(), &b"AAA\n"[..]), ("root-cert.pem".to_owned(), &b"BBB"[..])]);
/// assert_eq!(join_files(&files), data);
/// ```
pub fn split_files(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut headers: Vec<(usize, usize, String)> = Vec::new(); // (line start, content start, name)
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
        let line = &data[start..end];
        if let Some(name) = line
            .strip_prefix(b"==> ")
            .and_then(|l| l.strip_suffix(b" <=="))
            .filter(|n| !n.is_empty())
        {
            headers.push((
                start,
                (end + 1).min(data.len()),
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        start = end + 1;
    }
    let mut out = Vec::with_capacity(headers.len());
    for (i, (_, content, name)) in headers.iter().enumerate() {
        let end = match headers.get(i + 1) {
            // The separator newline before the next header is not content.
            Some((next, _, _)) => next.saturating_sub(1).max(*content),
            None => data.len(),
        };
        out.push((name.clone(), data.get(*content..end).unwrap_or_default()));
    }
    out
}

/// Joins named files into the [`split_files`] form (for seed corpora and tests).
///
/// ```
/// let data = meshtrust::testkit::fuzz::join_files(&[("a", &b"x\n"[..]), ("b", &b""[..])]);
/// assert_eq!(data, b"==> a <==\nx\n\n==> b <==\n");
/// ```
pub fn join_files<N: AsRef<str>, B: AsRef<[u8]>>(files: &[(N, B)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, content)) in files.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(format!("==> {} <==\n", name.as_ref()).as_bytes());
        out.extend_from_slice(content.as_ref());
    }
    out
}

/// Profiles the secret checks run under: istiod's defaults, the oldest release with
/// multi-root on, ambient with a first-root-only ztunnel, and the newest with both planes.
fn profiles() -> [IstioProfile; 4] {
    [
        IstioProfile::default(),
        IstioProfile {
            istio_version: IstioVersion::OLDEST,
            multiroot: true,
            ..IstioProfile::default()
        },
        IstioProfile {
            istio_version: IstioVersion::new(1, 24, 0),
            multiroot: true,
            data_plane: DataPlane::Ambient,
            ..IstioProfile::default()
        },
        IstioProfile {
            multiroot: true,
            xds_agent: true,
            data_plane: DataPlane::Both,
            ..IstioProfile::default()
        },
    ]
}

const KEY_FILES: [&str; 3] = [istio::CA_KEY, istio::TLS_KEY, istio::KEY];

/// Base64 lines of the secret's key files, long enough not to occur by chance, that occur
/// nowhere else in the secret (a line copied into a certificate file or the namespace may
/// rightly be shown).
fn key_lines(secret: &CaSecret) -> Vec<String> {
    let mut public = format!("{}\n{}\n", secret.name, secret.namespace);
    for n in secret.file_names().filter(|n| !KEY_FILES.contains(n)) {
        public.push_str(&String::from_utf8_lossy(secret.file(n).unwrap_or_default()));
        public.push('\n');
    }
    KEY_FILES
        .iter()
        .filter_map(|k| secret.file(k))
        .flat_map(|bytes| bytes.split(|&b| b == b'\n'))
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .filter(|l| {
            l.len() >= 24
                && l.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                && !public.contains(l.as_str())
        })
        .collect()
}

fn assert_no_key(text: &str, keys: &[String], where_: &str) {
    for k in keys {
        assert!(!text.contains(k.as_str()), "key material in {where_}");
    }
}

/// Exercises a CA secret as meshtrust's users do: istiod's checks under several profiles,
/// the parsed files, and writing the Secret back as YAML and JSON.
fn exercise_secret(secret: &CaSecret) {
    let keys = key_lines(secret);
    assert_no_key(&format!("{secret:?}"), &keys, "Debug");
    let now = plans::test_now();
    for profile in profiles() {
        for f in istio::check(secret, &profile, now) {
            assert_no_key(&f.to_string(), &keys, "a finding");
        }
    }
    if let Some(root) = secret.file(secret.root_file()) {
        if let Ok(b) = Bundle::parse(root) {
            holds(invariants::round_trip(root, &b), "root file round trip");
        }
    }
    if let Err(e) = secret.ca_key() {
        assert_no_key(&e.to_string(), &keys, "a key error");
    }
    let _ = (
        secret.ca_cert(),
        secret.cert_chain(),
        secret.chain_bytes(),
        secret.ca_cert_bundle(),
    );
    for (form, text) in [
        ("YAML", secret.to_manifest_yaml()),
        ("JSON", secret.to_manifest_json()),
    ] {
        let back = istio::parse_manifest(text.as_bytes())
            .unwrap_or_else(|e| panic!("the {form} meshtrust writes does not read back: {e}"));
        assert_eq!(
            (&back.name, &back.namespace, back.kind, back.layout),
            (&secret.name, &secret.namespace, secret.kind, secret.layout),
            "{form} round trip changed the secret's identity"
        );
        let files = |s: &CaSecret| -> Vec<(String, Vec<u8>)> {
            s.file_names()
                .map(|n| (n.to_owned(), s.file(n).unwrap_or_default().to_vec()))
                .collect()
        };
        assert!(
            files(&back) == files(secret),
            "{form} round trip changed the files"
        );
    }
}

/// Parses a CA Secret manifest (`kubectl get secret -o yaml|json`, a List, a hand-written
/// manifest) and exercises what it accepts (see the module docs).
///
/// ```
/// let s = meshtrust::istio::CaSecret::cacerts(b"c", b"k", b"ch", b"r");
/// meshtrust::testkit::fuzz::cacerts_manifest(s.to_manifest_yaml().as_bytes());
/// meshtrust::testkit::fuzz::cacerts_manifest(b"{\"kind\": [");
/// ```
pub fn cacerts_manifest(data: &[u8]) {
    if let Ok(secret) = istio::parse_manifest(data) {
        exercise_secret(&secret);
    }
}

/// Reads a CA directory from the files of `data` ([`split_files`] form, e.g. the output of
/// `tail -n +1 cacerts/*`) with [`istio::from_dir_files`] and exercises what it accepts.
///
/// ```
/// use meshtrust::testkit::fuzz::{cacerts_dir, join_files};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let files: Vec<(&str, Vec<u8>)> = ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
///     .iter().map(|f| (*f, std::fs::read(format!("{dir}{f}")).unwrap())).collect();
/// cacerts_dir(&join_files(&files));
/// ```
pub fn cacerts_dir(data: &[u8]) {
    let files = split_files(data);
    if let Ok(secret) = istio::from_dir_files(files.iter().map(|(n, b)| (n.as_str(), b.to_vec()))) {
        exercise_secret(&secret);
    }
}

/// Most phases and clusters [`plan_from_files`] keeps (bounds the work per input).
const MAX_PHASES: usize = 8;
const MAX_CLUSTERS: usize = 3;

/// A plan made from files in [`split_files`] form, as a plan directory holds them:
/// `NN-slug/FILE` (one cluster) or `NN-slug/CLUSTER/FILE`, where FILE is a CA file
/// ([`istio::KNOWN_KEYS`]), `min-wait` (the gate's wait in seconds) or `trigger` (marks the
/// trigger phase); `profile.json` is the profile as plan.json records it (default: multi-root
/// and XDS agent on). Phases sort by name; at most 8 phases of 3 clusters are kept. Returns
/// the plan and whether any wait was given, or None when no phase holds a CA file.
///
/// ```
/// use meshtrust::testkit::fuzz::{join_files, plan_from_files};
/// let root = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem"))?;
/// let data = join_files(&[("00-current/root-cert.pem", &root), ("01-next/root-cert.pem", &root)]);
/// let (plan, waits) = plan_from_files(&data).unwrap();
/// assert_eq!(plan.phases.len(), 2);
/// assert!(!waits);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn plan_from_files(data: &[u8]) -> Option<(Plan, bool)> {
    type Cluster<'a> = BTreeMap<String, Vec<(&'a str, Vec<u8>)>>;
    let mut phases: BTreeMap<String, (Cluster<'_>, Option<u64>, bool)> = BTreeMap::new();
    let mut profile = IstioProfile {
        multiroot: true,
        xds_agent: true,
        ..IstioProfile::default()
    };
    let files = split_files(data);
    for (name, bytes) in &files {
        if name == "profile.json" {
            if let Ok(p) = serde_json::from_slice::<IstioProfile>(bytes) {
                profile = p;
            }
            continue;
        }
        let parts: Vec<&str> = name.split('/').collect();
        let (phase, cluster, file) = match parts.as_slice() {
            [p, f] => (*p, DEFAULT_CLUSTER, *f),
            [p, c, f] => (*p, *c, *f),
            _ => continue,
        };
        if phases.len() >= MAX_PHASES && !phases.contains_key(phase) {
            continue;
        }
        let entry = phases.entry(phase.to_owned()).or_default();
        match file {
            "min-wait" => {
                entry.1 = std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            }
            "trigger" => entry.2 = true,
            f => {
                if entry.0.len() < MAX_CLUSTERS || entry.0.contains_key(cluster) {
                    if let Some(&k) = istio::KNOWN_KEYS.iter().find(|k| **k == f) {
                        entry
                            .0
                            .entry(cluster.to_owned())
                            .or_default()
                            .push((k, bytes.to_vec()));
                    }
                }
            }
        }
    }
    let mut plan_phases = Vec::new();
    let mut cluster_names: Vec<String> = Vec::new();
    let mut waits = false;
    for (name, (clusters, wait, trigger)) in phases {
        let clusters: Vec<ClusterPhase> = clusters
            .into_iter()
            .filter_map(|(c, files)| {
                istio::from_dir_files(files)
                    .ok()
                    .map(|secret| ClusterPhase { cluster: c, secret })
            })
            .collect();
        if clusters.is_empty() {
            continue;
        }
        for c in &clusters {
            if !cluster_names.contains(&c.cluster) {
                cluster_names.push(c.cluster.clone());
            }
        }
        waits |= wait.is_some();
        plan_phases.push(Phase {
            name,
            title: String::new(),
            clusters,
            trigger,
            actions: Vec::new(),
            gate: wait.map(|s| Gate {
                min_wait: Duration::from_secs(s),
                reason: String::new(),
                barrier: false,
                checks: Vec::new(),
            }),
        });
    }
    if plan_phases.is_empty() {
        return None;
    }
    Some((
        Plan {
            kind: if cluster_names.len() > 1 {
                RotationKind::MultiCluster
            } else {
                RotationKind::RootRotation
            },
            profile,
            clusters: cluster_names,
            phases: plan_phases,
            old_roots: Vec::new(),
            new_roots: Vec::new(),
        },
        waits,
    ))
}

/// Checks a plan made from arbitrary files ([`plan_from_files`]): [`check_plan`] never
/// panics, reports exactly the union of the single-invariant checks ([`check_invariants`]
/// with one [`Invariant`] at a time, what [`super::invariants`] relies on), and the rendered
/// plan.json and runbook never hold key material.
///
/// ```
/// use meshtrust::testkit::fuzz::{join_files, plan_check};
/// let root = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem")).unwrap();
/// plan_check(&join_files(&[("00-current/root-cert.pem", &root[..]), ("01-x/root-cert.pem", &b"junk"[..]), ("01-x/min-wait", &b"60"[..])]));
/// ```
pub fn plan_check(data: &[u8]) {
    let Some((p, waits_known)) = plan_from_files(data) else {
        return;
    };
    let opts = CheckOptions {
        now: plans::test_now(),
        margin: Duration::from_secs(600),
        waits_known,
    };
    type Key = (
        crate::finding::Code,
        istio::Severity,
        Option<String>,
        Option<String>,
    );
    let key = |f: &crate::finding::Finding| -> Key {
        (f.code, f.severity, f.phase.clone(), f.cluster.clone())
    };
    let all: BTreeSet<Key> = check_plan(&p, &opts).iter().map(key).collect();
    let mut union = BTreeSet::new();
    for i in Invariant::ALL {
        union.extend(check_invariants(&p, &opts, &[i]).iter().map(key));
    }
    assert!(
        all == union,
        "check_plan differs from its invariants one by one: {:?}",
        all.symmetric_difference(&union).collect::<Vec<_>>()
    );
    let keys: Vec<String> = p
        .phases
        .iter()
        .flat_map(|ph| ph.clusters.iter().flat_map(|c| key_lines(&c.secret)))
        .collect();
    assert_no_key(&plan::render_plan_json(&p), &keys, "plan.json");
    assert_no_key(&plan::render_runbook(&p), &keys, "the runbook");
}

/// Structure-aware: draws a [`PlanScenario`] from the bytes and runs it
/// ([`PlanScenario::run`]); any failure panics with what broke.
///
/// ```
/// meshtrust::testkit::fuzz::plan_scenario(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
/// ```
pub fn plan_scenario(data: &[u8]) {
    use arbitrary::{Arbitrary, Unstructured};
    if let Ok(s) = PlanScenario::arbitrary(&mut Unstructured::new(data)) {
        if let Err(e) = s.run() {
            panic!("{s:?}: {e}");
        }
    }
}

/// Reads one input as `meshtrust status` does ([`crate::observe::Reader::read`]: Envoy and
/// istioctl secret dumps, ztunnel dumps, istioctl tables, kubectl Secrets and ConfigMaps) and
/// evaluates what it holds. Refusals must name a location; accepted input must evaluate, with
/// every proxy's trusted roots among the certificates it reported.
///
/// ```
/// meshtrust::testkit::fuzz::observe(b"{\"configs\": [{\"dynamic_active_secrets\": []}]}");
/// meshtrust::testkit::fuzz::observe(b"CERTIFICATE NAME  TYPE  STATUS  VALID CERT  SERIAL NUMBER  NOT AFTER\nx  Leaf  Available  true  zz  NA\n");
/// ```
pub fn observe(data: &[u8]) {
    observe_inputs(&[("input.json".to_owned(), data)]);
}

/// Several inputs in [`split_files`] form, read by one [`crate::observe::Reader`] and
/// evaluated together (table serials resolve against the other inputs' certificates).
///
/// ```
/// meshtrust::testkit::fuzz::observe_files(b"==> a.txt <==\nRESOURCE NAME  TYPE  STATUS  VALID CERT  SERIAL NUMBER  NOT AFTER\n");
/// ```
pub fn observe_files(data: &[u8]) {
    observe_inputs(&split_files(data));
}

/// Fingerprints of every certificate the observations carry in full (not by serial).
fn carried_certificates(
    observations: &[crate::observe::Observation],
) -> BTreeSet<crate::cert::Fingerprint> {
    use crate::observe::Observation;
    let mut known = BTreeSet::new();
    let add = |known: &mut BTreeSet<_>, b: Bundle| {
        known.extend(b.certificates().map(Certificate::fingerprint));
    };
    for o in observations {
        match o {
            Observation::Proxies(ps) => {
                for c in ps.iter().flat_map(|p| p.chain.iter().chain(&p.roots)) {
                    if let Some(c) = c.cert() {
                        known.insert(c.fingerprint());
                    }
                }
            }
            Observation::ConfigMaps(cms) => cms
                .iter()
                .filter_map(|cm| Bundle::parse(&cm.root_cert).ok())
                .for_each(|b| add(&mut known, b)),
            Observation::CaSecret(s) => [s.ca_cert_bundle(), s.cert_chain(), s.root_bundle()]
                .into_iter()
                .flatten()
                .for_each(|b| add(&mut known, b)),
        }
    }
    known
}

fn observe_inputs(files: &[(String, &[u8])]) {
    use crate::observe::{MeshState, Observation, Reader};
    let mut reader = Reader::new();
    let mut observations = Vec::new();
    for (name, bytes) in files {
        match reader.read(name, bytes) {
            Ok(o) => observations.push(o),
            Err(e) => {
                assert!(!e.location.is_empty(), "an error without location: {e}");
                assert_eq!(&e.input, name, "an error naming another input: {e}");
            }
        }
    }
    // A table names roots by serial, matched against every certificate any input carries
    // (other proxies' chains and roots, secrets, ConfigMaps): a proxy may trust only those.
    let known = carried_certificates(&observations);
    let exact: Vec<Option<Vec<crate::cert::Fingerprint>>> = observations
        .iter()
        .filter_map(|o| match o {
            Observation::Proxies(p) => Some(p),
            _ => None,
        })
        .flatten()
        .map(|p| {
            p.roots
                .iter()
                .map(|c| c.cert().map(Certificate::fingerprint))
                .collect()
        })
        .collect();
    let at = time::macros::datetime!(2026-06-01 12:00 UTC);
    let mesh = MeshState::evaluate(observations, &[], &IstioProfile::default(), at);
    assert_eq!(mesh.proxies.len(), exact.len(), "a proxy lost or invented");
    for (p, exact) in mesh.proxies.iter().zip(&exact) {
        assert!(
            p.trusts.iter().all(|f| known.contains(f)),
            "{}: trusts a root no input carries",
            p.name
        );
        if let Some(exact) = exact {
            assert_eq!(
                &p.trusts, exact,
                "{}: trusts other roots than it reported",
                p.name
            );
        }
    }
    let _ = mesh.is_consistent();
    let _ = serde_json::to_string(&mesh.proxies);
}
