//! istiod's rules: which files it needs, its load check, how it takes a changed root file, the
//! leaves it signs and the CSR responses it sends.

use std::collections::BTreeSet;

use serde::Serialize;
use time::OffsetDateTime;

use super::{fixed_in, fixed_list};
use crate::bundle::Bundle;
use crate::cert::{Certificate, ExtendedKeyUsage};
use crate::generate::Issuer;
use crate::istio::{self, CaSecret, ChainUse, IstioVersion, Layout, SecretKind, SignerError};
use crate::pem::{self, Label};
use crate::verify::{self, CertPool, VerifyOptions};

/// istiod back-dates a leaf's notBefore by 2 minutes (istio/istio
/// security/pkg/pki/util/generate_cert.go, `ClockSkewGracePeriod`, 1.22.0 to 1.31.0-rc.0).
pub const BACKDATE_SECS: i64 = 120;

/// The first release that refuses a partial cacerts set.
const COMPLETENESS_FROM: IstioVersion = IstioVersion::new(1, 26, 1);
/// The first release that requires `ca-crl.pem` to be signed by every cert-chain.pem cert.
const CRL_FROM: IstioVersion = IstioVersion::new(1, 27, 0);
/// The first release comparing root files as certificate sets.
const SET_RULE_FROM: IstioVersion = IstioVersion::new(1, 30, 0);
/// The patches that clamp a leaf's notAfter to the signer's (istio PR 59766).
const CLAMP_FIXED: [IstioVersion; 3] = [
    IstioVersion::new(1, 28, 7),
    IstioVersion::new(1, 29, 3),
    IstioVersion::new(1, 30, 0),
];
/// The patches that send cert-chain.pem one block per CSR-response element.
const CHAIN_SPLIT_FROM: [IstioVersion; 3] = [
    IstioVersion::new(1, 24, 4),
    IstioVersion::new(1, 25, 1),
    IstioVersion::new(1, 26, 0),
];
/// The two patches that split the root file too (istio issue 55793).
const ROOTS_SPLIT: [IstioVersion; 2] = [IstioVersion::new(1, 24, 4), IstioVersion::new(1, 25, 1)];

/// What istiod makes of the set of files in a CA secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Completeness {
    /// Every file it needs is there.
    Complete,
    /// From 1.26.1, a partial set: "incomplete signing CA bundle detected"; istiod does not
    /// load it (and keeps its old CA).
    Incomplete {
        /// The files missing.
        missing: Vec<&'static str>,
    },
    /// Before 1.26.1 istiod only stats the key: without it an istiod STARTED with this secret
    /// silently runs its self-signed CA (a different root); a running one keeps its CA.
    SelfSignedFallback {
        /// The key file's name.
        key: &'static str,
    },
    /// Before 1.26.1, the key is there but another file is missing: reading it fails.
    Missing {
        /// The files missing.
        missing: Vec<&'static str>,
    },
}

/// Which files istiod of `istiod` needs in `secret`, and what it does when some are missing.
///
/// Models istio/istio security/pkg/pki/ca/ca.go and pilot/pkg/bootstrap/istio_ca.go
/// (`createIstioCA`, `checkCABundleCompleteness`, `detectSigningCABundleAndCRL`): up to
/// 1.26.0 only `ca-key.pem` is stat'ed; from **1.26.1** a partial set fails with "incomplete
/// signing CA bundle detected". The kubernetes.io/tls layout needs `tls.crt`, `tls.key`,
/// `ca.crt`; the Istio layout also `cert-chain.pem` (not `istio-ca-secret`, whose chain is
/// empty).
pub fn completeness(secret: &CaSecret, istiod: IstioVersion) -> Completeness {
    let (cert_f, key_f, root_f) = (
        secret.signing_cert_file(),
        secret.key_file(),
        secret.root_file(),
    );
    let mut required = vec![cert_f, key_f, root_f];
    if secret.layout == Layout::Istio && secret.kind == SecretKind::PluggedIn {
        required.push(istio::CERT_CHAIN);
    }
    let missing: Vec<&'static str> = required
        .into_iter()
        .filter(|f| secret.file(f).is_none())
        .collect();
    if missing.is_empty() {
        Completeness::Complete
    } else if istiod >= COMPLETENESS_FROM {
        Completeness::Incomplete { missing }
    } else if missing.contains(&key_f) {
        Completeness::SelfSignedFallback { key: key_f }
    } else {
        Completeness::Missing { missing }
    }
}

/// The first release that refuses a partial cacerts set instead of falling back to the
/// self-signed CA ([`completeness`]), for messages.
pub fn completeness_checked_from() -> IstioVersion {
    COMPLETENESS_FROM
}

/// The root istiod's self-signed CA generates when `istio-ca-secret` does not exist yet (and
/// then writes to it, reusing it at every later start): subject `O=<trust domain>` without
/// CN, CA, keyUsage certSign, valid 10 years (SELF_SIGNED_CA_CERT_TTL), RSA 2048
/// (CITADEL_SELF_SIGNED_CA_RSA_KEY_SIZE). A different root from any plugged-in one.
///
/// Models istio/istio security/pkg/pki/ca/ca.go `NewSelfSignedIstioCAOptions` with
/// security/pkg/pki/util/generate_cert.go `GenCertKeyFromOptions` (`IsCA`, `IsSelfSigned`,
/// `Org` = the trust domain), 1.22.0 to 1.31.0-rc.0; ISTIO.md "istio-ca-secret".
///
/// ```
/// use meshtrust::istio::behaviour::self_signed_root_spec;
/// let spec = self_signed_root_spec("cluster.local");
/// assert_eq!(spec.subject.to_string(), "O=cluster.local");
/// assert_eq!(spec.days, 3650);
/// ```
pub fn self_signed_root_spec(trust_domain: &str) -> crate::generate::RootSpec {
    use crate::cert::KeyUsage;
    use crate::generate::{Attribute, KeyType, Name, RootSpec};
    RootSpec {
        subject: Name::new().with(Attribute::Organization, trust_domain),
        key_type: KeyType::Rsa2048,
        days: 3650,
        key_usage: KeyUsage(KeyUsage::KEY_CERT_SIGN),
        path_len: None,
    }
}

/// The root file istiod's self-signed CA serves (its trust anchor, what it writes to the
/// `istio-ca-root-cert` ConfigMap and what it sends in CSR responses): its own CA
/// certificate `ca_cert` (istio-ca-secret's ca-cert.pem, or the root it generated), then,
/// byte for byte, `/etc/cacerts/root-cert.pem` when that file exists (`cacerts_root`): a
/// self-signed istiod started with a cacerts secret it does not use still trusts that
/// secret's roots.
///
/// Models istio/istio pilot/pkg/bootstrap/istio_ca.go (`createSelfSignedCACertificateOptions`
/// passes the mounted root-cert.pem) and security/pkg/pki/ca/ca.go
/// `NewSelfSignedIstioCAOptions` with security/pkg/pki/util/crypto.go `AppendRootCerts` /
/// `AppendCertByte` (the certificate with one trailing newline, then the file's bytes),
/// 1.22.0 to 1.31.0-rc.0.
///
/// ```
/// use meshtrust::istio::behaviour::self_signed_root_file;
/// assert_eq!(self_signed_root_file(b"S\n", Some(b"A\n")), b"S\nA\n");
/// assert_eq!(self_signed_root_file(b"S\n\n", Some(b"A")), b"S\n\nA");
/// assert_eq!(self_signed_root_file(b"S", None), b"S\n");
/// ```
pub fn self_signed_root_file(ca_cert: &[u8], cacerts_root: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    if !ca_cert.is_empty() {
        // strings.TrimSuffix(cert, "\n") + "\n": one trailing newline removed, one added.
        out.extend_from_slice(ca_cert.strip_suffix(b"\n").unwrap_or(ca_cert));
        out.push(b'\n');
    }
    out.extend_from_slice(cacerts_root.unwrap_or_default());
    out
}

impl Completeness {
    /// The refusal as istiod of `istiod` words it, naming the version the rule applies from;
    /// None when complete.
    pub fn message(&self, istiod: IstioVersion) -> Option<String> {
        match self {
            Completeness::Complete => None,
            Completeness::Incomplete { missing } => Some(format!(
                "missing {}: istiod {istiod} refuses it (\"incomplete signing CA bundle detected\", from {COMPLETENESS_FROM})",
                missing.join(", ")
            )),
            Completeness::SelfSignedFallback { key } => Some(format!(
                "no {key}: istiod {istiod} (before {COMPLETENESS_FROM}) started with this secret silently runs its self-signed CA, a different root"
            )),
            Completeness::Missing { missing } => Some(format!(
                "missing {}: istiod cannot load the plugged-in CA",
                missing.join(", ")
            )),
        }
    }
}

/// Go's `x509.Verify` with empty `KeyUsages` means serverAuth: every certificate of the
/// verified chain that carries an extendedKeyUsage must allow serverAuth (or any).
///
/// Models istio/istio security/pkg/pki/util/keycertbundle.go, `Verify` (calls Go's
/// `x509.Certificate.Verify` with `VerifyOptions{Roots, Intermediates}`), 1.22.0 to
/// 1.31.0-rc.0; Go crypto/x509/verify.go `checkChainForKeyUsage`.
pub fn go_server_auth_ok(path: &[Certificate]) -> bool {
    path.iter().all(|c| match c.extended_key_usage() {
        None => true,
        Some(ekus) => ekus
            .iter()
            .any(|e| matches!(e, ExtendedKeyUsage::ServerAuth | ExtendedKeyUsage::Any)),
    })
}

/// True when istiod of `istiod` requires a present `ca-crl.pem` to hold a CRL signed by EVERY
/// certificate of cert-chain.pem ("missing CRL signed by certificates"): from **1.27.0**
/// (PILOT_ENABLE_CA_CRL defaults to true).
///
/// Models istio/istio security/pkg/pki/util/keycertbundle.go, `VerifyAndSetAll` / CRL
/// verification, tag 1.27.0.
pub fn crl_required(istiod: IstioVersion) -> bool {
    istiod >= CRL_FROM
}

/// A CA istiod has loaded.
#[derive(Debug)]
pub struct LoadedCa {
    /// ca-cert.pem's first certificate.
    pub ca_cert: Certificate,
    /// It, with its key, able to sign.
    pub issuer: Issuer,
    /// cert-chain.pem's certificates, in file order (what a peer receives after the leaf).
    pub chain: Vec<Certificate>,
    /// root-cert.pem's exact bytes.
    pub root_bytes: Vec<u8>,
    /// root-cert.pem's certificates in file order, duplicates included.
    pub roots: Vec<Certificate>,
}

/// istiod's load check of `secret` at `at`: the CA it loads, or why it refuses (and keeps its
/// old CA).
///
/// Models istio/istio security/pkg/pki/util/keycertbundle.go, `Verify` / `VerifyAndSetAll`
/// (root-cert.pem is the root pool, cert-chain.pem the intermediates, ca-cert must verify with
/// Go's `x509.Verify`, [`go_server_auth_ok`]; the key must match), [`completeness`], and from
/// 1.27.0 the CRL rule ([`crl_required`]), tags 1.22.0 to 1.31.0-rc.0.
pub fn load(
    secret: &CaSecret,
    istiod: IstioVersion,
    at: OffsetDateTime,
) -> Result<LoadedCa, String> {
    if let Some(m) = completeness(secret, istiod).message(istiod) {
        return Err(m);
    }
    let (cert_f, key_f, root_f) = (
        secret.signing_cert_file(),
        secret.key_file(),
        secret.root_file(),
    );
    let ca_cert = secret.ca_cert().map_err(|e| e.to_string())?;
    let key = secret.ca_key().map_err(|e| e.to_string())?;
    key.check_matches(&ca_cert)
        .map_err(|e| format!("{key_f} does not match {cert_f}: {e}"))?;
    if !ca_cert.is_ca() {
        return Err(format!(
            "{cert_f}: certificate is not authorized to sign other certificates"
        ));
    }
    let root_bundle = secret.root_bundle().map_err(|e| e.to_string())?;
    if root_bundle.is_empty() {
        return Err(format!("{root_f} holds no certificate"));
    }
    let chain_bundle = match secret.cert_chain() {
        Ok(b) => b,
        // istio-ca-secret's cert-chain.pem is empty or absent: no intermediates.
        Err(_) if secret.kind == SecretKind::SelfSigned => Bundle::empty(),
        Err(e) => return Err(e.to_string()),
    };
    let chain: Vec<Certificate> = chain_bundle.certificates().cloned().collect();
    let roots: Vec<Certificate> = root_bundle.certificates().cloned().collect();
    let path = verify::verify(
        &ca_cert,
        &CertPool::from_certificates(chain.iter()),
        &CertPool::from_certificates(roots.iter()),
        &VerifyOptions::at(at),
    )
    .map_err(|e| format!("{cert_f} does not verify against {root_f}: {e}"))?;
    if !go_server_auth_ok(path.certificates()) {
        return Err(format!(
            "{cert_f} does not verify against {root_f}: x509: certificate specifies an incompatible key usage (a certificate of its chain has an extendedKeyUsage without serverAuth)"
        ));
    }
    if let Some(e) = crl_problem(secret, &chain, istiod) {
        return Err(e.to_string());
    }
    let above: Vec<Certificate> = chain
        .iter()
        .skip_while(|c| **c == ca_cert)
        .cloned()
        .collect();
    // The chain above the signer caps leaf lifetimes; a cert-chain.pem that is not a clean
    // chain (hand-edited) still loads, and then only ca-cert caps them.
    let issuer = istio::issuer_from(ca_cert.clone(), key, above, None, ChainUse::Istiod, cert_f)
        .map_err(|e| match e {
            SignerError::Signer { source, .. } => format!("{cert_f} cannot sign: {source}"),
            other => other.to_string(),
        })?;
    Ok(LoadedCa {
        ca_cert: ca_cert.clone(),
        issuer,
        chain,
        root_bytes: secret.file(root_f).unwrap_or_default().to_vec(),
        roots,
    })
}

/// What istiod of `istiod` refuses in the secret's `ca-crl.pem`, given cert-chain.pem's
/// certificates `chain`: from 1.27.0 ([`crl_required`]) a present file must hold, for every
/// certificate of cert-chain.pem, a CRL it signed. None when there is no file, before 1.27.0,
/// or when it is fine.
pub fn crl_problem(
    secret: &CaSecret,
    chain: &[Certificate],
    istiod: IstioVersion,
) -> Option<CrlProblem> {
    let crl = secret
        .file(istio::CA_CRL)
        .filter(|_| crl_required(istiod))?;
    crl_signed_by_chain(crl, chain).err()
}

/// Why istiod (1.27.0+) refuses a secret's `ca-crl.pem` ([`crl_problem`]); the message names
/// the file and the version, as istiod's refusal does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrlProblem {
    /// The file is not PEM.
    #[error("{file} (istiod {CRL_FROM}+): {0}", file = istio::CA_CRL)]
    Pem(#[from] pem::PemError),
    /// A certificate of cert-chain.pem signed none of its CRLs.
    #[error(
        "{} (istiod {CRL_FROM}+): missing CRL signed by certificates ({subject} signs none)",
        istio::CA_CRL
    )]
    Unsigned {
        /// That certificate's subject.
        subject: String,
    },
}

fn crl_signed_by_chain(crl: &[u8], chain: &[Certificate]) -> Result<(), CrlProblem> {
    let mut crls = Vec::new();
    for b in pem::blocks(crl) {
        let b = b?;
        if b.label == Label::Other("X509 CRL".into()) {
            crls.push(b.der);
        }
    }
    for c in chain {
        if !crls.iter().any(|der| crl_signed_by(der, c)) {
            return Err(CrlProblem::Unsigned {
                subject: c.subject().to_owned(),
            });
        }
    }
    Ok(())
}

/// True when `der` is a CertificateList (RFC 5280 5.1) whose signature verifies with `issuer`'s
/// key (Go's `x509.RevocationList.CheckSignatureFrom`).
fn crl_signed_by(der: &[u8], issuer: &Certificate) -> bool {
    use crate::derwalk::{self, Walker, tag};
    /// tbsCertList (whole TLV), signatureAlgorithm (value), signature octets.
    type Parts<'a> = (&'a [u8], &'a [u8], &'a [u8]);
    let parts = || -> Result<Parts<'_>, derwalk::DerError> {
        let mut outer = Walker::new(der);
        let list = outer.expect(tag::SEQUENCE, "expected CertificateList SEQUENCE")?;
        outer.finish("trailing data after CertificateList")?;
        let mut w = list.walker();
        let tbs = w.expect(tag::SEQUENCE, "expected tbsCertList")?;
        let alg = w.expect(tag::SEQUENCE, "expected signatureAlgorithm")?;
        let sig = w.expect(tag::BIT_STRING, "expected signatureValue")?;
        w.finish("unexpected field in CertificateList")?;
        Ok((
            der.get(tbs.span()).unwrap_or_default(),
            alg.value,
            derwalk::bit_string_octets(&sig)?,
        ))
    };
    let Ok((tbs, alg, sig)) = parts() else {
        return false;
    };
    let Ok(alg) = crate::signature::SignatureAlgorithm::from_algorithm_identifier(alg) else {
        return false;
    };
    crate::signature::verify(&alg, issuer.key_algorithm(), issuer.public_key(), tbs, sig).is_ok()
}

/// Which rule istiod applies to a changed root-cert.pem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootRule {
    /// 1.22.0 to 1.29.x: `bytes.Contains(old, new) || bytes.Contains(new, old)`.
    ByteContainment,
    /// 1.30.0+: the DER of one file's CERTIFICATE blocks is a superset of the other's; an empty
    /// set is refused.
    CertificateSets,
}

impl RootRule {
    /// What the rule refused, for messages (with the versions it applies to).
    pub fn refusal(self) -> &'static str {
        match self {
            RootRule::ByteContainment => {
                "neither file's bytes contain the other's (byte containment, 1.22.0 to 1.29.x)"
            }
            RootRule::CertificateSets => {
                "neither file's certificate set contains the other's, or the new one is empty (set rule, 1.30.0+)"
            }
        }
    }
}

/// The rule istiod of `istiod` applies to a changed root file: bytes up to 1.29.x, sets from
/// 1.30.0 (istio PR 59909).
pub fn root_rule(istiod: IstioVersion) -> RootRule {
    if istiod >= SET_RULE_FROM {
        RootRule::CertificateSets
    } else {
        RootRule::ByteContainment
    }
}

/// What istiod does when the mounted root-cert.pem changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
#[non_exhaustive]
pub enum RootChange {
    /// The bytes are equal: istiod re-reads the signer (intermediate-only rotation).
    Unchanged,
    /// ISTIO_MULTIROOT_MESH is off: ignored ("Multi root is disabled"), nothing is loaded, the
    /// old CA keeps signing, not retried until the next file event.
    IgnoredMultirootOff,
    /// Accepted (the new files are then load-checked, [`load`]).
    Accepted,
    /// Refused by `rule`: the old CA is kept.
    Refused {
        /// The rule that refused.
        rule: RootRule,
    },
}

/// How istiod of `istiod`, with ISTIO_MULTIROOT_MESH `multiroot`, takes `new` root-cert.pem
/// bytes replacing `old`.
///
/// Models istio/istio pilot/pkg/bootstrap/istio_ca.go, `handleEvent`: equal bytes reload the
/// signer; different bytes with the flag off are ignored; with it on, 1.22.0 to 1.29.x
/// accept only `bytes.Contains(old,new) || bytes.Contains(new,old)`, and from 1.30.0
/// `pemBundleHasSubsetRelation` (PR 59909) compares the DER of the CERTIFICATE blocks
/// WITHOUT parsing them as X.509 (other blocks and text skipped): one set must contain the
/// other, and an empty set is refused.
pub fn root_change(istiod: IstioVersion, multiroot: bool, old: &[u8], new: &[u8]) -> RootChange {
    if old == new {
        return RootChange::Unchanged;
    }
    if !multiroot {
        return RootChange::IgnoredMultirootOff;
    }
    let rule = root_rule(istiod);
    let accepted = match rule {
        RootRule::ByteContainment => {
            crate::bundle::contains(old, new) || crate::bundle::contains(new, old)
        }
        RootRule::CertificateSets => {
            let (a, b) = (certificate_ders(old), certificate_ders(new));
            !a.is_empty() && !b.is_empty() && (a.is_subset(&b) || b.is_subset(&a))
        }
    };
    if accepted {
        RootChange::Accepted
    } else {
        RootChange::Refused { rule }
    }
}

/// The DER bodies of the CERTIFICATE blocks of `bytes`, not parsed as X.509 (Go's `pem.Decode`
/// loop of `pemBundleHasSubsetRelation`; it stops at the first malformed block).
fn certificate_ders(bytes: &[u8]) -> BTreeSet<Vec<u8>> {
    pem::blocks(bytes)
        .map_while(Result::ok)
        .filter(|b| b.label == Label::Certificate)
        .map(|b| b.der)
        .collect()
}

/// True when istiod of `istiod` clamps a leaf's notAfter to its signing certificate's:
/// from **1.28.7, 1.29.3, 1.30.0** (istio PR 59766, security/pkg/pki/ca/ca.go `sign`).
/// Before, leaves outlive an expiring CA and istiod keeps signing with an expired CA.
pub fn clamps_leaf_to_signer(istiod: IstioVersion) -> bool {
    fixed_in(istiod, &CLAMP_FIXED)
}

/// The patches from which [`clamps_leaf_to_signer`] holds, for messages.
pub fn clamp_fixed_in() -> String {
    fixed_list(&CLAMP_FIXED)
}

/// The validity istiod of `istiod` gives a leaf requested at `now` (Unix seconds) with
/// `ttl_secs`, signed under a chain whose first notAfter is `signer_not_after`: notBefore =
/// now - 2 min ([`BACKDATE_SECS`]), notAfter = now + TTL, clamped to the signer only from
/// 1.28.7, 1.29.3, 1.30.0 ([`clamps_leaf_to_signer`]); istio/istio
/// security/pkg/pki/ca/ca.go `sign` and security/pkg/pki/util/generate_cert.go.
pub fn leaf_validity(
    istiod: IstioVersion,
    now: i64,
    ttl_secs: i64,
    signer_not_after: i64,
) -> (i64, i64) {
    let not_after = now.saturating_add(ttl_secs);
    let not_after = if clamps_leaf_to_signer(istiod) {
        not_after.min(signer_not_after)
    } else {
        not_after
    };
    (now - BACKDATE_SECS, not_after)
}

/// How istiod lays out a CSR response (`[leaf, chain..., roots]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct CsrResponse {
    /// cert-chain.pem is split one PEM block per element (else it is one element).
    pub chain_split: bool,
    /// The root file is split too, so the LAST element holds only the LAST root (else the last
    /// element is the whole root file).
    pub roots_split: bool,
}

/// The istiod releases that send cert-chain.pem one block per CSR-response element, for
/// messages ([`csr_response`]).
pub fn chain_split_fixed_in() -> String {
    fixed_list(&CHAIN_SPLIT_FROM)
}

/// The CSR response layout of istiod `istiod`.
///
/// Models istio/istio security/pkg/server/ca/server.go, `CreateCertificate`: up to 1.24.3 and
/// 1.25.0, [leaf, cert-chain.pem, root file]; 1.24.4 and 1.25.1 split every PEM block, roots
/// too (issue 55793); from 1.24.5, 1.25.2, 1.26.0 the chain blocks are split and the whole
/// root file stays the last element (PR 55835).
pub fn csr_response(istiod: IstioVersion) -> CsrResponse {
    CsrResponse {
        chain_split: fixed_in(istiod, &CHAIN_SPLIT_FROM),
        roots_split: ROOTS_SPLIT.contains(&istiod),
    }
}
