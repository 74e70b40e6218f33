//! istiod's own load checks of a CA secret, by version, plus the warnings an operator needs
//! before a rotation. Each finding has a stable code, a severity and a message.
//!
//! | code | severity | what |
//! |---|---|---|
//! | `missing-file` | error | a file istiod needs is absent |
//! | `missing-ca-key` | warning (1.22.0-1.26.0) | no ca-key.pem: before 1.26.1 an istiod started with it silently runs its self-signed CA |
//! | `incomplete-ca-bundle` | error (1.26.1+) | a partial set: "incomplete signing CA bundle detected" |
//! | `unreadable-file` | error | a file does not parse (PEM, certificate or key), with the line |
//! | `empty-root-cert` | error | root-cert.pem holds no certificate |
//! | `private-key-in-bundle` | error | a private key inside root-cert.pem or cert-chain.pem (they are published) |
//! | `ca-cert-extra-blocks` | warning | ca-cert.pem holds more than one block: istiod uses only the first |
//! | `ca-cert-not-ca` | error | ca-cert is not a CA ("certificate is not authorized to sign other certificates") |
//! | `ca-key-mismatch` | error | ca-key.pem does not belong to ca-cert.pem |
//! | `ca-cert-unverified` | error | ca-cert does not verify against root-cert.pem with cert-chain.pem |
//! | `cert-chain-not-ca-cert-first` | warning | cert-chain.pem does not start with ca-cert: wrong CA expiry metric and leaf TTL cap |
//! | `cert-chain-root-repeated` | info | the root is in cert-chain.pem too: sent twice to peers (istio issue 39001) |
//! | `multiple-roots-without-multiroot` | error | several roots while ISTIO_MULTIROOT_MESH is off: a root change is ignored |
//! | `ca-expired` | error | a CA certificate is expired or not yet valid |
//! | `ca-expiring` | warning | a CA certificate has under 90 days left |
//! | `ca-shorter-than-leaf-ttl` | warning | the signing CA expires before a full leaf TTL: istiod caps leaves from 1.28.7/1.29.3/1.30.0, before they outlive it |
//! | `intermediate-outlives-root` | error (info when by under a day) | ca-cert's notAfter is after its root's (root-transition.sh `check-root`) |
//! | `ztunnel-multiroot-unsupported` | error | ambient where ztunnel trusts only the first root (ztunnel before 1.24.6/1.25.3/1.26.0) or the last (istiod 1.24.4/1.25.1) of a multi-root bundle |
//! | `same-name-roots-without-aki` | warning | an intermediate without AKI under one of several same-named roots: Envoy (BoringSSL) selects issuers by AKI and may pick the wrong root |
//! | `self-signed-root-mismatch` | error | istio-ca-secret whose ca-cert.pem is not its root-cert.pem |
//! | `istio-generated` | info | cacerts holding `istio-generated`: the self-signed CA's storage, not a plugged-in CA |
//! | `ca-crl-unsigned` | error (1.27.0+) | ca-crl.pem lacks a CRL signed by every cert of cert-chain.pem ("missing CRL signed by certificates") |
//! | `kubernetes-tls-layout` | info | tls.crt/tls.key/ca.crt layout (chain = tls.crt + ca.crt) |

use time::OffsetDateTime;

use super::behaviour::{self, Completeness, Proxy, RootsTaken};
use super::profile::IstioProfile;
use super::secret::{self, CaSecret, FileError, Layout, SecretKind};
use crate::bundle::Bundle;
use crate::cert::{Certificate, Role};
use crate::finding::{Code, Finding, Severity};
use crate::key::PrivateKey;
use crate::verify::{self, CertPool, VerifyOptions};

const EXPIRY_WARNING_DAYS: i64 = 90;
/// How far an intermediate may outlive its root before it is an error (Istio's own tools make
/// it outlive the root by the seconds between the two `openssl` runs).
const OUTLIVE_TOLERANCE_SECS: i64 = 86_400;

/// Runs istiod's load checks for `profile`'s version, and the rotation warnings, at `now`.
///
/// ```
/// use meshtrust::istio::{self, IstioProfile};
/// let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples"));
/// let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
/// let s = istio::CaSecret::cacerts(&read("ca-cert.pem"), &read("ca-key.pem"), &read("cert-chain.pem"), &read("root-cert.pem"));
/// let findings = istio::check(&s, &IstioProfile::default(), time::OffsetDateTime::now_utc());
/// assert!(!istio::has_errors(&findings), "{findings:?}");
/// ```
pub fn check(secret: &CaSecret, profile: &IstioProfile, now: OffsetDateTime) -> Vec<Finding> {
    let mut out = notes(secret);
    if !completeness(secret, profile, &mut out) {
        return out;
    }
    published_keys(secret, &mut out);
    let mut cx = Parsed::read(secret, profile, now, &mut out);
    for step in STEPS {
        step(&mut cx, &mut out);
    }
    out
}

/// The checks that run on the parsed files, in the order their findings are reported.
const STEPS: [fn(&mut Parsed<'_>, &mut Vec<Finding>); 10] = [
    signer,
    empty_roots,
    load_verify,
    crl,
    chain_order,
    multi_root,
    same_named_roots,
    self_signed,
    expiry,
    signer_lifetime,
];

/// The secret's files as istiod reads them (None: absent or unreadable, already reported).
struct Parsed<'a> {
    secret: &'a CaSecret,
    profile: &'a IstioProfile,
    now: OffsetDateTime,
    ca_cert: Option<Certificate>,
    key: Option<PrivateKey>,
    roots: Option<Bundle>,
    chain: Option<Bundle>,
    /// The root ca-cert verified to ([`load_verify`]).
    anchor: Option<Certificate>,
}

impl<'a> Parsed<'a> {
    /// Parses every file, reporting each that is present but unreadable
    /// (`unreadable-file`) and a ca-cert.pem of several blocks (`ca-cert-extra-blocks`).
    fn read(
        secret: &'a CaSecret,
        profile: &'a IstioProfile,
        now: OffsetDateTime,
        out: &mut Vec<Finding>,
    ) -> Parsed<'a> {
        fn ok<T>(r: Result<T, FileError>, out: &mut Vec<Finding>) -> Option<T> {
            r.map_err(|e| {
                if !matches!(e, FileError::Missing { .. }) {
                    out.push(Finding::new(
                        Code::UnreadableFile,
                        Severity::Error,
                        e.to_string(),
                    ));
                }
            })
            .ok()
        }
        let ca_cert = ok(secret.ca_cert(), out);
        if let Ok(b) = secret.ca_cert_bundle() {
            if b.len() > 1 || !b.other_blocks().is_empty() {
                out.push(Finding::new(
                    Code::CaCertExtraBlocks,
                    Severity::Warning,
                    format!(
                        "{} holds {} blocks; istiod uses only the first",
                        secret.signing_cert_file(),
                        b.len() + b.other_blocks().len()
                    ),
                ));
            }
        }
        let key = ok(secret.ca_key(), out);
        let roots = ok(secret.root_bundle(), out);
        let has_chain =
            secret.file(secret::CERT_CHAIN).is_some() || secret.layout == Layout::KubernetesTls;
        let chain = if has_chain {
            ok(secret.cert_chain(), out)
        } else {
            None
        };
        Parsed {
            secret,
            profile,
            now,
            ca_cert,
            key,
            roots,
            chain,
            anchor: None,
        }
    }
}

/// `istio-generated` and `kubernetes-tls-layout`: what kind of secret this is.
fn notes(secret: &CaSecret) -> Vec<Finding> {
    let mut out = Vec::new();
    if secret.file(secret::ISTIO_GENERATED).is_some() {
        out.push(Finding::new(
            Code::IstioGenerated,
            Severity::Info,
            "holds `istio-generated`: this is the self-signed CA's storage (USE_CACERTS_FOR_SELF_SIGNED_CA), not a plugged-in CA",
        ));
    }
    if secret.layout == Layout::KubernetesTls {
        out.push(Finding::new(
            Code::KubernetesTlsLayout,
            Severity::Info,
            "kubernetes.io/tls layout: signing cert tls.crt, key tls.key, roots ca.crt, chain = tls.crt + ca.crt",
        ));
    }
    out
}

/// Completeness, as each version sees it (the one model: [`behaviour::completeness`]).
/// False when nothing more can be said (before 1.26.1 without the key istiod runs its
/// self-signed CA).
fn completeness(secret: &CaSecret, profile: &IstioProfile, out: &mut Vec<Finding>) -> bool {
    let v = profile.istio_version;
    let completeness = behaviour::completeness(secret, v);
    let message = completeness.message(v).unwrap_or_default();
    match completeness {
        Completeness::Complete => {}
        Completeness::Incomplete { .. } => {
            out.push(Finding::new(
                Code::IncompleteCaBundle,
                Severity::Error,
                message,
            ));
        }
        Completeness::SelfSignedFallback { .. } => {
            out.push(Finding::new(Code::MissingCaKey, Severity::Warning, message));
            return false;
        }
        Completeness::Missing { .. } => {
            out.push(Finding::new(Code::MissingFile, Severity::Error, message));
        }
    }
    true
}

/// `private-key-in-bundle`: published bundles must never carry a key.
fn published_keys(secret: &CaSecret, out: &mut Vec<Finding>) {
    for f in [secret.root_file(), secret::CERT_CHAIN] {
        if secret.file(f).is_some_and(secret::holds_private_key) {
            out.push(Finding::new(
                Code::PrivateKeyInBundle,
                Severity::Error,
                format!("{f} holds a private key block; it is published to every namespace: remove it and rotate that key"),
            ));
        }
    }
}

/// `ca-cert-not-ca`, `ca-key-mismatch`.
fn signer(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let Some(c) = &cx.ca_cert else {
        return;
    };
    if !c.is_ca() {
        out.push(Finding::new(
            Code::CaCertNotCa,
            Severity::Error,
            format!(
                "{} ({}) is not a CA: \"certificate is not authorized to sign other certificates\"",
                cx.secret.signing_cert_file(),
                describe(c)
            ),
        ));
    }
    if let Some(Err(e)) = cx.key.as_ref().map(|k| k.check_matches(c)) {
        out.push(Finding::new(
            Code::CaKeyMismatch,
            Severity::Error,
            format!("{}: {e}", cx.secret.key_file()),
        ));
    }
}

/// `empty-root-cert`.
fn empty_roots(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    if cx.roots.as_ref().is_some_and(|r| r.is_empty()) {
        out.push(Finding::new(
            Code::EmptyRootCert,
            Severity::Error,
            format!("{} holds no certificate", cx.secret.root_file()),
        ));
    }
}

/// `ca-cert-unverified`: the load check, ca-cert against all of root-cert.pem with
/// cert-chain.pem (Go's x509.Verify, [`behaviour::go_server_auth_ok`]).
fn load_verify(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let (Some(c), Some(r)) = (&cx.ca_cert, &cx.roots) else {
        return;
    };
    if r.is_empty() {
        return;
    }
    let (cert_f, root_f) = (cx.secret.signing_cert_file(), cx.secret.root_file());
    let root_pool = CertPool::from_certificates(r.certificates());
    let inter_pool = CertPool::from_certificates(cx.chain.iter().flat_map(|b| b.certificates()));
    match verify::verify(c, &inter_pool, &root_pool, &VerifyOptions::at(cx.now)) {
        Ok(path) if !behaviour::go_server_auth_ok(path.certificates()) => {
            out.push(Finding::new(
                Code::CaCertUnverified,
                Severity::Error,
                format!("{cert_f} does not verify against {root_f} for istiod (Go x509.Verify, 1.22.0+): a certificate of its chain has an extendedKeyUsage without serverAuth (\"incompatible key usage\")"),
            ));
        }
        Ok(path) => cx.anchor = Some(path.anchor().clone()),
        Err(e) => out.push(Finding::new(
            Code::CaCertUnverified,
            Severity::Error,
            format!("{cert_f} does not verify against {root_f} with cert-chain.pem: {e}"),
        )),
    }
}

/// `ca-crl-unsigned`: from 1.27.0 a present ca-crl.pem must be signed by every cert of
/// cert-chain.pem ([`behaviour::crl_problem`]).
fn crl(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let Some(ch) = &cx.chain else {
        return;
    };
    let certs: Vec<Certificate> = ch.certificates().cloned().collect();
    if let Some(e) = behaviour::crl_problem(cx.secret, &certs, cx.profile.istio_version) {
        out.push(Finding::new(
            Code::CaCrlUnsigned,
            Severity::Error,
            e.to_string(),
        ));
    }
}

/// `cert-chain-not-ca-cert-first`, `cert-chain-root-repeated`: cert-chain.pem's order and
/// contents.
fn chain_order(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let secret = cx.secret;
    if let (Some(c), Some(ch)) = (&cx.ca_cert, &cx.chain) {
        if secret.layout == Layout::Istio && secret.kind == SecretKind::PluggedIn {
            match ch.certificates().next() {
                Some(first) if first == c => {}
                Some(first) => out.push(Finding::new(
                    Code::CertChainNotCaCertFirst,
                    Severity::Warning,
                    format!(
                        "cert-chain.pem starts with {} instead of ca-cert: istiod reports that certificate's expiry as the CA's and caps leaf TTL on it",
                        describe(first)
                    ),
                )),
                None if c.role() != Role::Root => out.push(Finding::new(
                    Code::CertChainNotCaCertFirst,
                    Severity::Warning,
                    "cert-chain.pem is empty although ca-cert is not a root: peers get no intermediates",
                )),
                None => {}
            }
        }
        let root_in_chain = ch.certificates().any(|x| x.role() == Role::Root);
        if root_in_chain && ch.len() > 1 {
            out.push(Finding::new(
                Code::CertChainRootRepeated,
                Severity::Info,
                "cert-chain.pem includes the root: every leaf response carries it twice (istio issue 39001); harmless",
            ));
        }
    }
}

/// `multiple-roots-without-multiroot`, `ztunnel-multiroot-unsupported`: several roots need
/// ISTIO_MULTIROOT_MESH and, in ambient mode, a ztunnel that takes them all
/// ([`behaviour::roots_taken`]).
fn multi_root(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let (profile, root_f) = (cx.profile, cx.secret.root_file());
    if let Some(r) = &cx.roots {
        let distinct = r.trust_set().len();
        if distinct > 1 && !profile.multiroot {
            out.push(Finding::new(
                Code::MultipleRootsWithoutMultiroot,
                Severity::Error,
                format!(
                    "{root_f} holds {distinct} roots but ISTIO_MULTIROOT_MESH is off: istiod ignores root changes (\"updating new ROOT-CA not supported\"), so a rotation cannot proceed"
                ),
            ));
        }
        if distinct > 1 && profile.data_plane.has_ztunnel() {
            let (i, z) = (profile.istio_version, profile.ztunnel());
            let which = match behaviour::roots_taken(i, z, Proxy::Ztunnel, false) {
                RootsTaken::All => None,
                RootsTaken::FirstOnly => Some("only the first root"),
                RootsTaken::LastOnly => Some("only the last root"),
            };
            if let Some(which) = which {
                out.push(Finding::new(
                    Code::ZtunnelMultirootUnsupported,
                    Severity::Error,
                    format!(
                        "with istiod {i}, ztunnel {z} trusts {which} of a multi-root bundle ({distinct} roots here): istiod 1.24.4 and 1.25.1 send only the last root (move istiod to 1.24.5+ or 1.25.2+), and ztunnel before {} takes only the first",
                        behaviour::ztunnel_multi_root_fixed_in()
                    ),
                ));
            }
        }
    }
}

/// `same-name-roots-without-aki`: Envoy (BoringSSL) picks among same-named trusted roots by
/// AKI only, without trying the others: an intermediate without AKI under one of two
/// same-named roots may fail there, although meshtrust, Go and webpki (which try every
/// candidate) accept it.
fn same_named_roots(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let root_f = cx.secret.root_file();
    if let Some(r) = &cx.roots {
        let set = r.trust_set();
        let named_twice =
            |subject: &[u8]| set.iter().filter(|x| x.subject_der() == subject).count() > 1;
        let mut issuers: Vec<&Certificate> = cx.ca_cert.iter().collect();
        issuers.extend(
            cx.chain
                .iter()
                .flat_map(|b| b.certificates())
                .filter(|c| c.is_ca() && !c.is_self_issued()),
        );
        for c in issuers {
            if c.authority_key_id().is_none() && named_twice(c.issuer_der()) {
                out.push(Finding::new(
                    Code::SameNameRootsWithoutAki,
                    Severity::Warning,
                    format!(
                        "{} has no authorityKeyIdentifier and {root_f} holds several roots named \"{}\": Envoy (BoringSSL) may pick the wrong one and refuse peers; reissue the intermediate with AKI or give the new root a distinct name",
                        describe(c),
                        c.issuer()
                    ),
                ));
                break;
            }
        }
    }
}

/// `self-signed-root-mismatch`: istio-ca-secret's ca-cert.pem is its root.
fn self_signed(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let secret = cx.secret;
    if secret.kind == SecretKind::SelfSigned {
        if let (Some(c), Some(r)) = (&cx.ca_cert, &cx.roots) {
            if !r.trust_set().contains(&c.fingerprint()) {
                out.push(Finding::new(
                    Code::SelfSignedRootMismatch,
                    Severity::Error,
                    format!(
                        "{} is the self-signed CA but its ca-cert.pem is not in root-cert.pem",
                        secret.name
                    ),
                ));
            }
        }
    }
}

/// `ca-expired`, `ca-expiring`: every CA certificate of the secret.
fn expiry(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let (cert_f, root_f, now) = (cx.secret.signing_cert_file(), cx.secret.root_file(), cx.now);
    let mut cas: Vec<(&'static str, Certificate)> = Vec::new();
    if let Some(c) = &cx.ca_cert {
        cas.push((cert_f, c.clone()));
    }
    for b in cx.chain.iter() {
        for c in b.certificates().filter(|c| c.is_ca()) {
            if !cas.iter().any(|(_, x)| x == c) {
                cas.push((secret::CERT_CHAIN, c.clone()));
            }
        }
    }
    for b in cx.roots.iter() {
        for c in b.trust_set().iter() {
            if !cas.iter().any(|(_, x)| x == c) {
                cas.push((root_f, c.clone()));
            }
        }
    }
    let t = now.unix_timestamp();
    for (file, c) in &cas {
        if !c.is_valid_at(now) {
            let when = if t < c.not_before_unix() {
                "is not valid before"
            } else {
                "expired on"
            };
            let date = if t < c.not_before_unix() {
                c.not_before()
            } else {
                c.not_after()
            };
            out.push(Finding::new(
                Code::CaExpired,
                Severity::Error,
                format!("{file}: {} {when} {}", describe(c), date.date()),
            ));
        } else {
            let days = (c.not_after_unix() - t) / 86_400;
            if days < EXPIRY_WARNING_DAYS {
                out.push(Finding::new(
                    Code::CaExpiring,
                    Severity::Warning,
                    format!(
                        "{file}: {} expires in {days} days ({})",
                        describe(c),
                        c.not_after().date()
                    ),
                ));
            }
        }
    }
}

/// `ca-shorter-than-leaf-ttl` (with istiod's clamp by version, [`behaviour::clamps_leaf_to_signer`])
/// and `intermediate-outlives-root`.
fn signer_lifetime(cx: &mut Parsed<'_>, out: &mut Vec<Finding>) {
    let (cert_f, profile, v) = (
        cx.secret.signing_cert_file(),
        cx.profile,
        cx.profile.istio_version,
    );
    let t = cx.now.unix_timestamp();
    let anchor = &cx.anchor;
    if let Some(c) = &cx.ca_cert {
        let left = c.not_after_unix() - t;
        if left > 0 && (left as u64) < profile.leaf_ttl.as_secs() {
            out.push(Finding::new(
                Code::CaShorterThanLeafTtl,
                Severity::Warning,
                format!(
                    "{cert_f} expires in {}h, less than the {}h leaf TTL: {}",
                    left / 3600,
                    profile.leaf_ttl.as_secs() / 3600,
                    if behaviour::clamps_leaf_to_signer(v) {
                        format!("istiod {v} caps workload certificates at its notAfter (from {})", behaviour::clamp_fixed_in())
                    } else {
                        format!("istiod {v} (before {}) issues leaves that outlive it, and keeps signing once it has expired", behaviour::clamp_fixed_in())
                    }
                ),
            ));
        }
        if let Some(a) = anchor.as_ref().filter(|a| *a != c) {
            let over = c.not_after_unix() - a.not_after_unix();
            if over > 0 && over <= OUTLIVE_TOLERANCE_SECS {
                // Istio's tools/certs make the intermediate seconds after the root with the same
                // lifetime, so it always overshoots a little: harmless, but say so.
                out.push(Finding::new(
                    Code::IntermediateOutlivesRoot,
                    Severity::Info,
                    format!("{cert_f} ends {over} s after its root (as Istio's tools/certs make them); harmless under a day"),
                ));
            } else if over > OUTLIVE_TOLERANCE_SECS {
                out.push(Finding::new(
                    Code::IntermediateOutlivesRoot,
                    Severity::Error,
                    format!(
                        "{cert_f} ({}) is valid until {}, after its root {} ({}): leaves would outlive their trust",
                        describe(c),
                        c.not_after().date(),
                        describe(a),
                        a.not_after().date()
                    ),
                ));
            }
        }
    }
}

/// A certificate named in messages: [`crate::verify::Named`] (the one describer: subject,
/// or the SAN of an empty-subject workload leaf, and the fingerprint's first 8 bytes).
pub(crate) fn describe(c: &Certificate) -> String {
    verify::Named(c).to_string()
}
