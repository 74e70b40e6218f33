//! Chain validation against multi-root bundles: does this certificate chain to a root of this
//! bundle at this instant, by which path, and if not, why not, path by path.
//!
//! ```
//! use meshtrust::{Bundle, verify::{self, Chain, CertPool, VerifyOptions}};
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
//! let read = |f: &str| Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
//! let at = time::macros::datetime!(2025-06-01 0:00 UTC);
//!
//! // A workload cert file: the leaf, then its intermediate.
//! let chain = Chain::from_bundle(&read("workload-foo-cert.pem"))?;
//! let roots = CertPool::from(&read("root-cert.pem"));
//! let path = verify::verify(chain.target(), chain.intermediates(), &roots, &VerifyOptions::at(at))?;
//! assert_eq!(path.certificates().len(), 3);        // leaf -> "Istio CA" -> root A
//! assert_eq!(path.anchor(), roots.iter().next().unwrap());
//!
//! // Cluster 1's intermediate chains to root B only.
//! let ca = read("ca-cert-alt.pem").certificates().next().unwrap().clone();
//! let none = CertPool::new();
//! let err = verify::verify(&ca, &none, &roots, &VerifyOptions::at(at)).unwrap_err();
//! assert_eq!(err.failures()[0].error.kind(), "unknown-issuer");
//! println!("{err}");           // one line
//! print!("{}", err.report());  // one line per failed candidate path
//! let ab = CertPool::from(&read("root-cert-combined-2.pem"));
//! assert!(verify::verify(&ca, &none, &ab, &VerifyOptions::at(at)).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is checked
//!
//! A path runs from the target (a leaf **or** a CA certificate: checking that an
//! intermediate chains to a bundle is a core need of a rotation) through candidate
//! intermediates to a *trust anchor*: any certificate of the roots pool.
//!
//! - **Path building.** A certificate's issuer candidates are the roots and intermediates
//!   whose subject Name bytes equal its issuer Name bytes. An authorityKeyIdentifier that
//!   matches a candidate's subjectKeyIdentifier only moves that candidate to the front; no
//!   candidate is ever excluded, because rotations produce several CAs with one name
//!   (Istio's sample roots, re-keyed and cross-signed roots). Every candidate is explored,
//!   depth first, roots before intermediates; a certificate (or another with the same name and
//!   key) appears at most once per path;
//!   a path holds at most [`VerifyOptions::with_max_depth`] certificates.
//! - **Every certificate on the path, the trust anchor included**: valid at
//!   [`VerifyOptions::at`] (notBefore and notAfter inclusive, RFC 5280 4.1.2.5), no critical
//!   extension meshtrust does not process (RFC 5280 4.2; name constraints and certificate
//!   policies are among them), outer signatureAlgorithm identical to the one inside
//!   tbsCertificate (RFC 5280 4.1.1.2). The anchor is checked too: rustls-webpki does not
//!   check its trust anchors, OpenSSL and Go do, and an expired root left in a bundle must
//!   not be used silently.
//! - **Every issuer, the anchor included**: basicConstraints cA true (a version 1 trust
//!   anchor counts as a CA); if keyUsage is present it has keyCertSign; its pathLenConstraint
//!   is at least the number of intermediate CAs between it and the target.
//! - **Every link**: the issuer's key verifies the signature over the original
//!   tbsCertificate bytes (ring: RSA PKCS#1 v1.5 and PSS with SHA-256/384/512 and 2048 to
//!   8192-bit keys, ECDSA P-256/P-384 with SHA-256/384, Ed25519). The trust anchor's own
//!   signature is not checked (nobody does: it is trusted by presence).
//! - **Options for the target**: [`VerifyOptions::with_eku`] (serverAuth or clientAuth: a
//!   certificate with an extendedKeyUsage extension must list it or anyExtendedKeyUsage; no
//!   extension means no restriction, as in Go and rustls-webpki; CAs on the path that carry
//!   the extension must allow the purpose too, as in both) and
//!   [`VerifyOptions::with_spiffe_id`].
//!
//! The work is bounded like rustls-webpki's: at most [`VerifyOptions::with_signature_budget`]
//! signature checks (results are cached within one verification) and
//! [`VerifyOptions::with_candidate_budget`] issuer candidates considered, so a bundle of 10,000
//! roots with one name cannot cost 10,000 signatures; running out is a
//! [`PathError::BudgetExhausted`] failure, never a silent "invalid". Cheap checks (validity,
//! CA flag, key usage, path length) run before the signature, so expired or unusable
//! same-named roots cost no signature at all.
//!
//! Roots and intermediates are [`CertPool`]s indexed by subject: built once, a pool of
//! 10,000 roots costs one hash lookup per path step, like a pool of one. `benches/verify.rs`
//! measures a leaf -> intermediate -> root verification against 1, 100 and 10,000 roots next
//! to its two bare signature checks (the floor), and the cold path (parse a 10,001-root PEM
//! bundle, index it, verify once).
//!
//! # Policies: each data plane's own semantics
//!
//! [`VerifyOptions::policy`] chooses whose rules a verification follows. The rules above are
//! [`Policy::Strict`] (the default): the strictest union, what "every verifier accepts"
//! needs. The mesh's two proxies verify differently, and a rotation must hold for the proxy
//! that actually receives the connection (ISTIO.md, "How each data plane
//! verifies a peer's chain").
//!
//! [`Policy::Envoy`] (sidecars, gateways, waypoints): BoringSSL's `X509_verify_cert` with
//! its defaults (`X509_V_FLAG_TRUSTED_FIRST`, depth 100, no purpose) and Envoy's
//! `X509_V_FLAG_PARTIAL_CHAIN`. The `roots` pool is the trust store, in its order; the
//! `intermediates` pool is the presented chain, in the peer's order (the target is also
//! part of the untrusted stack, as Envoy passes the whole peer chain).
//! - *One chain, no backtracking.* At each step the issuer is the FIRST certificate, trust
//!   store before presented chain, whose subject equals the issuer Name and that BoringSSL's
//!   `X509_check_issued` accepts: authorityKeyIdentifier equal to its subjectKeyIdentifier
//!   when both are present, keyUsage (if any) with keyCertSign. No signature and no validity
//!   are looked at while choosing; a wrong choice fails the verification.
//! - Presented issuers are used until a store issuer exists or a "self-signed" certificate
//!   is reached (self-issued, own AKID matching own SKID, keyCertSign allowed; the signature
//!   is not checked). Then only store issuers. A presented self-signed certificate that is
//!   not in the store is set aside; if nothing in the store anchors the chain and it issued
//!   the top of the chain, the error is [`PathError::SelfSignedInChain`]. A target that is
//!   itself self-signed verifies only if it is the store's first match for its name
//!   ([`PathError::SelfSignedNotTrusted`] otherwise).
//! - *Any store certificate anchors* (PARTIAL_CHAIN), and a target found in the store is
//!   trusted as is.
//! - *Checks on the chain built*, in BoringSSL's order, the first failure being the answer:
//!   on the presented part only (store certificates are not checked: no cA, critical
//!   extension or pathLenConstraint check on the anchor), critical extensions, cA on every
//!   issuer (keyUsage with keyCertSign; version 1 self-signed counts), the required EKU when
//!   [`VerifyOptions::with_eku`] is set (meshtrust's EKU rule), pathLenConstraint not
//!   counting self-issued certificates; then from the top down, each signature by the
//!   certificate above it (never the top's own) and EVERY certificate's validity, the
//!   anchor's included, with notAfter EXCLUSIVE (BoringSSL `check_cert_time`: at the notAfter
//!   second a certificate has expired).
//! - Duplicates are ignored (a [`CertPool`] keeps a certificate once, as
//!   `X509_STORE_add_cert` does). [`VerifyOptions::with_max_depth`] and the budgets do not apply:
//!   BoringSSL's work is linear in the chain.
//! - Known remaining differences from BoringSSL itself: Names are compared as DER bytes
//!   (BoringSSL compares canonical forms: case and whitespace folded); the
//!   authorityKeyIdentifier's issuer and serial are not compared; the critical extensions
//!   understood are meshtrust's (BoringSSL also processes name constraints and policies);
//!   signature algorithms are ring's (BoringSSL also accepts SHA-1 and RSA-1024); the EKU
//!   rule is meshtrust's, not BoringSSL's purpose check (Envoy matches SANs itself).
//!
//! [`Policy::Ztunnel`]: rustls-webpki 0.103's `build_chain_inner`.
//! - *Backtracking*: for the head of the path, every trust anchor with the issuer Name, in
//!   the roots' order, then every intermediate with that Name, in the pool's order, depth
//!   first. Keys identifiers are ignored. A candidate with the same subject and key as a
//!   certificate already on the path is skipped (RFC 4158 5.2; webpki's guard). At most six
//!   intermediates; at most [`VerifyOptions::with_signature_budget`] signature checks (webpki's
//!   100) and 200,000 candidate calls, a budget running out ending the search.
//! - *Signatures only when an anchor closes a path*, the whole path each time (no cache).
//! - *Anchors carry only a name and a key*: no validity, cA, keyUsage, pathLenConstraint or
//!   critical-extension check; an expired root still anchors. A root whose outer and inner
//!   signature algorithms differ is not an anchor (webpki cannot parse it as one).
//! - *Every other certificate*: validity (both bounds inclusive), the target must not be a
//!   CA ([`PathError::CaAsEndEntity`]), issuers must have cA true, pathLenConstraint against
//!   the sub-CAs below, keyUsage ignored, unprocessed critical extensions and outer/inner
//!   algorithm mismatch refused, EKU as webpki (absent: allowed; present: must list the
//!   purpose, anyExtendedKeyUsage does not count).
//! - Known remaining differences: webpki enforces name constraints, meshtrust refuses a
//!   critical nameConstraints extension; the error reported is meshtrust's list of failed
//!   paths, not webpki's single most specific error; a [`CertPool`] holds a duplicated
//!   intermediate once where webpki searches every copy, so webpki's budget can run out
//!   first (both refuse).
//!
//! `tests/verify_boring.rs` runs BoringSSL itself (the `boring` crate) next to
//! `Policy::Envoy` and requires the same verdict, error class and chain; `tests/verify_webpki.rs`
//! runs rustls-webpki next to `Policy::Ztunnel` and requires the same verdict, webpki's error
//! among the failed paths. Both over the testkit's generated chains and topologies, Istio's
//! sample CAs and the targeted cases above: no disagreement. BoringSSL reports an outer/inner
//! algorithm mismatch as a signature failure; meshtrust names it
//! ([`PathError::SignatureAlgorithmMismatch`]).
//!
//! # Where mainstream verifiers disagree
//!
//! meshtrust answers "will the mesh's verifiers accept this chain": Go's crypto/x509 (istiod,
//! pilot-agent), BoringSSL (Envoy) and rustls-webpki (ztunnel). Where they disagree with each
//! other it takes the stricter rule that one of them applies, since a chain one of them
//! rejects breaks traffic; it does not enforce RFC 5280 profile rules that none of them
//! enforces. The deliberate differences from the two oracles of its tests:
//!
//! Against `openssl verify -x509_strict` (OpenSSL 3.0):
//! 1. *Profile rules are not enforced*: authorityKeyIdentifier present on non-self-signed
//!    certificates, subjectKeyIdentifier and keyUsage present on CAs, basicConstraints
//!    critical on CAs, key identifiers not critical, pathLenConstraint only with
//!    keyCertSign, keyCertSign only on CAs, a critical SAN when the subject is empty. The mesh's
//!    verifiers do not require them and Istio's own sample root fails several of them.
//! 2. *The authorityKeyIdentifier is a hint*: OpenSSL refuses an issuer whose
//!    subjectKeyIdentifier differs from the child's authorityKeyIdentifier ("unable to get
//!    local issuer certificate"); meshtrust lets the signature decide, as Go and
//!    rustls-webpki do.
//! 3. *Any certificate of the roots is a trust anchor*: OpenSSL without `-partial_chain`
//!    requires the path to end at a self-signed certificate; Go and rustls-webpki accept an
//!    intermediate placed among the roots as the anchor, and so does meshtrust
//!    ([`VerifiedPath::anchor_is_self_issued`] tells which case a path is).
//! 4. *notAfter is inclusive*: at exactly the notAfter second OpenSSL reports "certificate
//!    has expired"; RFC 5280, Go, rustls-webpki and meshtrust treat that second as valid.
//! 5. *Self-issued intermediates count toward pathLenConstraint*: RFC 5280 6.1.4 (l) and
//!    OpenSSL skip them; Go and rustls-webpki count them, and so does meshtrust. This is the
//!    case of a re-keyed root cross-signed by its predecessor (same name).
//! 6. *Version 1 trust anchors are CAs*, as in Go and OpenSSL without `-x509_strict`.
//! 7. *Unsupported algorithms fail*: SHA-1, MD5, RSA below 2048 bits, P-521 and non-standard
//!    PSS parameters (ring's set, which is also rustls-webpki's); OpenSSL may accept some.
//! 8. *meshtrust backtracks, OpenSSL does not*: OpenSSL takes the first certificate that
//!    matches an issuer by name (and authorityKeyIdentifier when present) and validity,
//!    without checking its signature, and fails if it was the wrong one; meshtrust tries
//!    every candidate. Seen when a root without authorityKeyIdentifier (Istio's
//!    tools/certs roots have none) is verified against a file where a re-keyed root of the
//!    same name comes first. BoringSSL builds chains the same way as OpenSSL.
//! 9. *One-certificate paths get the same checks*: when the target is itself a trusted root,
//!    OpenSSL skips its `-x509_strict` checks (algorithm consistency among them); meshtrust
//!    checks it like any certificate.
//!
//! `tests/verify_openssl.rs` generates 1,000 chains per run with one defect each and checks
//! that OpenSSL agrees with meshtrust on every case except those where one of differences 1
//! to 5, 8 and 9 applies, where it checks OpenSSL's exact error code instead; difference 7
//! is observed on RSA-PSS certificates made by OpenSSL with its "max" salt length.
//! Difference 6 is not exercised (the test-material factory makes version 3 certificates).
//!
//! Against rustls-webpki 0.103 (leaf chains, client or server usage):
//! 1. *The trust anchor is checked* (validity, cA, keyCertSign, pathLenConstraint, critical
//!    extensions, algorithm consistency); webpki keeps only an anchor's name and key.
//! 2. *keyUsage without keyCertSign fails an issuer*; webpki (like Go) ignores a CA's
//!    keyUsage, while OpenSSL and BoringSSL (Envoy) refuse such a CA.
//! 3. *The target may be a CA*; webpki refuses a CA as end entity.
//! 4. *Name constraints*: a critical nameConstraints extension fails as unprocessed; webpki
//!    enforces name constraints instead (meshes do not use them).
//!
//! Against Go's crypto/x509: keyUsage without keyCertSign fails an issuer (see above); any
//! critical extension meshtrust does not process fails whichever certificate carries it.
//! EKU handling (absent = any; CAs carrying EKU must allow the purpose) is Go's, and
//! rustls-webpki's.

mod anchoring;
mod build;
mod chain;
mod envoy;
mod error;
mod matrix;
mod policy;
mod pool;
mod ztunnel;

use std::fmt;

use time::OffsetDateTime;

use crate::cert::{Certificate, Fingerprint, SpiffeId};

pub use anchoring::{Anchoring, anchoring_roots};
pub use chain::Chain;
pub use error::{Named, PathError, PathFailure, VerifyError};
pub use matrix::{CrossMatrix, cross_matrix};
pub use policy::Policy;
pub use pool::CertPool;

/// The most failed paths a [`VerifyError`] records (the rest are only counted).
pub const MAX_RECORDED_FAILURES: usize = 256;

/// An extended key usage the target must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RequiredEku {
    /// id-kp-serverAuth: a server's certificate.
    ServerAuth,
    /// id-kp-clientAuth: a client's certificate (mTLS).
    ClientAuth,
}

impl fmt::Display for RequiredEku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequiredEku::ServerAuth => "serverAuth",
            RequiredEku::ClientAuth => "clientAuth",
        })
    }
}

/// How to verify: the instant (a parameter: meshtrust never reads the clock), leaf
/// requirements and the bounds of the search. Built with [`VerifyOptions::at`] and the
/// `with_*` methods (one way to set each option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The validation time.
    pub(crate) at: OffsetDateTime,
    /// A purpose the target (and any CA on the path carrying EKU) must allow. With none,
    /// [`Policy::Strict`] and [`Policy::Envoy`] check no purpose (Envoy sets none on
    /// BoringSSL), and [`Policy::Ztunnel`] requires both serverAuth and clientAuth (ztunnel
    /// verifies peers in both directions of mTLS, with rustls-webpki's `KeyUsage::server_auth`
    /// and `client_auth`).
    pub(crate) require_eku: Option<RequiredEku>,
    /// A SPIFFE ID the target must carry as a URI SAN.
    pub(crate) require_spiffe_id: Option<SpiffeId>,
    /// Most certificates in a path, target and anchor included (default 8: six
    /// intermediates, as rustls-webpki allows).
    pub(crate) max_depth: usize,
    /// Most signature checks per verification (default 100, as rustls-webpki).
    pub(crate) signature_budget: usize,
    /// Most issuer candidates considered per verification (default 100,000).
    pub(crate) candidate_budget: usize,
    /// Whose semantics to follow (default [`Policy::Strict`]). [`Policy::Envoy`] has
    /// BoringSSL's bounds instead of `max_depth` and the budgets (see "Policies" above);
    /// [`Policy::Ztunnel`] has webpki's depth (six intermediates) and honours
    /// `signature_budget`.
    pub(crate) policy: Policy,
}

impl VerifyOptions {
    /// Default of [`VerifyOptions::with_max_depth`].
    pub const DEFAULT_MAX_DEPTH: usize = 8;
    /// Default of [`VerifyOptions::with_signature_budget`].
    pub const DEFAULT_SIGNATURE_BUDGET: usize = 100;
    /// Default of [`VerifyOptions::with_candidate_budget`].
    pub const DEFAULT_CANDIDATE_BUDGET: usize = 100_000;

    /// Options for validation at `at`, with no leaf requirement and the default bounds.
    pub fn at(at: OffsetDateTime) -> VerifyOptions {
        VerifyOptions {
            at,
            require_eku: None,
            require_spiffe_id: None,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            signature_budget: Self::DEFAULT_SIGNATURE_BUDGET,
            candidate_budget: Self::DEFAULT_CANDIDATE_BUDGET,
            policy: Policy::Strict,
        }
    }

    /// Verifies with `policy`'s semantics (see [`Policy`]).
    pub fn with_policy(mut self, policy: Policy) -> VerifyOptions {
        self.policy = policy;
        self
    }

    /// Requires the purpose `eku`.
    pub fn with_eku(mut self, eku: RequiredEku) -> VerifyOptions {
        self.require_eku = Some(eku);
        self
    }

    /// Requires the target to carry `id`.
    pub fn with_spiffe_id(mut self, id: SpiffeId) -> VerifyOptions {
        self.require_spiffe_id = Some(id);
        self
    }

    /// Sets the maximum path length (certificates).
    pub fn with_max_depth(mut self, max_depth: usize) -> VerifyOptions {
        self.max_depth = max_depth;
        self
    }

    /// Sets the signature-check budget.
    pub fn with_signature_budget(mut self, budget: usize) -> VerifyOptions {
        self.signature_budget = budget;
        self
    }

    /// Sets the issuer-candidate budget.
    pub fn with_candidate_budget(mut self, budget: usize) -> VerifyOptions {
        self.candidate_budget = budget;
        self
    }

    /// The validation time.
    pub fn instant(&self) -> OffsetDateTime {
        self.at
    }

    /// The semantics followed.
    pub fn policy(&self) -> Policy {
        self.policy
    }
}

/// A valid path: the target first, the trust anchor last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPath {
    certs: Vec<Certificate>,
    signature_checks: usize,
}

impl VerifiedPath {
    /// The certificates, target first, trust anchor last (one element when the target is
    /// itself a root of the pool).
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// The SHA-256 fingerprints, target first.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.certs.iter().map(Certificate::fingerprint).collect()
    }

    /// The verified certificate.
    pub fn target(&self) -> &Certificate {
        // A path is never empty: it starts with the target.
        &self.certs[0]
    }

    /// The trust anchor (a certificate of the roots pool).
    pub fn anchor(&self) -> &Certificate {
        self.certs.last().unwrap_or_else(|| self.target())
    }

    /// True when the anchor is self-issued (a root proper), false when an intermediate placed
    /// among the roots served as the anchor (see the module docs, difference 3).
    pub fn anchor_is_self_issued(&self) -> bool {
        self.anchor().is_self_issued()
    }

    /// Signature checks spent by the search up to finding this path.
    pub fn signature_checks(&self) -> usize {
        self.signature_checks
    }
}

impl fmt::Display for VerifiedPath {
    /// `"leaf" [sha256:…] -> "CA" [sha256:…] -> "root" [sha256:…]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.certs.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{}", Named(c))?;
        }
        Ok(())
    }
}

/// Verifies `target` against `roots` with candidate `intermediates` (see the module docs):
/// the first valid path found, or every failed candidate path with its reason. Follows
/// [`VerifyOptions::policy`]; for [`Policy::Envoy`] the pools' insertion orders are the
/// trust store's order (`roots`) and the presented chain's (`intermediates`).
pub fn verify(
    target: &Certificate,
    intermediates: &CertPool,
    roots: &CertPool,
    options: &VerifyOptions,
) -> Result<VerifiedPath, VerifyError> {
    policy::run(target, intermediates, roots, options, false).into_result(target)
}

#[cfg(all(test, feature = "testkit"))]
mod policy_tests;
#[cfg(all(test, feature = "testkit"))]
mod tests;
