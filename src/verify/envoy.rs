//! [`Policy::Envoy`](super::Policy::Envoy): BoringSSL's `X509_verify_cert` as Envoy runs it
//! (google/boringssl `crypto/x509/x509_vfy.c`, `X509_verify_cert`, `check_chain_extensions`,
//! `check_trust`, `internal_verify`, `check_cert_time`; `crypto/x509/x509_lu.c`
//! `X509_STORE_CTX_get1_issuer`; `crypto/x509v3/v3_purp.c` `X509_check_issued`,
//! `X509_check_akid`, `check_ca`; default parameters `X509_V_FLAG_TRUSTED_FIRST`, depth 100,
//! no purpose; Envoy adds `X509_V_FLAG_PARTIAL_CHAIN`). Modelled, not copied: one chain is
//! built, then checked; the first error ends the verification.

use crate::cert::{Certificate, KeyUsage};
use crate::signature::SignatureError;

use super::error::{PathError, PathFailure};
use super::policy::{Found, Policy, eku_error};
use super::{CertPool, VerifiedPath, VerifyOptions};

/// BoringSSL's default verification depth (`X509_VERIFY_PARAM` "default": 100); the chain
/// stops growing at `depth + 1` certificates. Envoy leaves it unless `max_verify_depth` is set.
pub(crate) const DEPTH: usize = 100;

/// keyUsage present without keyCertSign (`ku_reject(x, KU_KEY_CERT_SIGN)`).
fn ku_rejects_cert_sign(c: &Certificate) -> bool {
    c.key_usage()
        .is_some_and(|ku| !ku.contains(KeyUsage::KEY_CERT_SIGN))
}

/// `X509_check_akid`, key identifiers only: a mismatch only when both are present.
fn akid_matches(issuer: &Certificate, child: &Certificate) -> bool {
    match (child.authority_key_id(), issuer.subject_key_id()) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => true,
    }
}

/// `X509_check_issued(issuer, child) == X509_V_OK`: name, AKID/SKID, keyCertSign. No
/// signature, no validity.
fn issued(child: &Certificate, issuer: &Certificate) -> bool {
    issuer.subject_der() == child.issuer_der()
        && akid_matches(issuer, child)
        && !ku_rejects_cert_sign(issuer)
}

/// `EXFLAG_SS`: self-issued, its AKID (if any) matches its own SKID, and keyUsage (if any)
/// allows certificate signing. The signature is not looked at.
fn self_signed(c: &Certificate) -> bool {
    c.is_self_issued() && issued(c, c)
}

/// `check_ca`: keyUsage allows keyCertSign, and a version 1 self-signed certificate or
/// basicConstraints cA.
fn is_ca(c: &Certificate) -> bool {
    !ku_rejects_cert_sign(c) && ((c.version() == 1 && self_signed(c)) || c.is_ca())
}

/// The first store certificate (insertion order) that `issued` accepts for `child`
/// (`X509_STORE_CTX_get1_issuer`).
fn store_issuer<'a>(store: &'a CertPool, child: &Certificate) -> Option<&'a Certificate> {
    store
        .with_subject(child.issuer_der())
        .find(|c| issued(child, c))
}

/// The chain BoringSSL builds, and how many of its certificates (from the target) came
/// from the peer rather than the store (`last_untrusted`).
struct Built {
    chain: Vec<Certificate>,
    untrusted: usize,
}

/// Builds the chain; `Err` is the chain-building error (BoringSSL reports it before any
/// other check).
fn build(
    target: &Certificate,
    presented: &CertPool,
    store: &CertPool,
) -> Result<Built, PathFailure> {
    // Envoy hands BoringSSL the peer's whole chain, leaf included, as the untrusted stack.
    let mut untrusted_left: Vec<Certificate> = std::iter::once(target.clone())
        .chain(presented.iter().cloned())
        .collect();
    let mut chain = vec![target.clone()];
    let mut untrusted = 1;
    // Presented issuers, until one is self-signed or the store has an issuer (TRUSTED_FIRST).
    loop {
        let x = &chain[chain.len() - 1];
        if chain.len() > DEPTH || self_signed(x) || store_issuer(store, x).is_some() {
            break;
        }
        let Some(i) = untrusted_left.iter().position(|c| issued(x, c)) else {
            break;
        };
        chain.push(untrusted_left.remove(i));
        untrusted += 1;
    }
    let fail = |chain: &[Certificate], error| PathFailure {
        path: chain.to_vec(),
        error,
    };
    let mut chain_ss = None;
    if self_signed(&chain[chain.len() - 1]) {
        if chain.len() == 1 {
            // A lone self-signed target is trusted only if it is the store's first match.
            match store_issuer(store, target) {
                Some(s) if s.der() == target.der() => untrusted = 0,
                _ => {
                    let error = PathError::SelfSignedNotTrusted {
                        cert: target.clone(),
                    };
                    return Err(fail(&chain, error));
                }
            }
        } else {
            chain_ss = chain.pop();
            untrusted -= 1;
        }
    }
    // Then store issuers only, until a self-signed certificate or none.
    loop {
        let x = &chain[chain.len() - 1];
        if chain.len() > DEPTH || self_signed(x) {
            break;
        }
        match store_issuer(store, x) {
            Some(s) => chain.push(s.clone()),
            None => break,
        }
    }
    // check_trust with PARTIAL_CHAIN: any store certificate on the chain, or the target
    // itself in the store (then every certificate counts as trusted).
    if untrusted < chain.len() {
        return Ok(Built { chain, untrusted });
    }
    if store.contains(&target.fingerprint()) {
        return Ok(Built {
            chain,
            untrusted: 0,
        });
    }
    let top = chain[chain.len() - 1].clone();
    match chain_ss {
        Some(ss) if issued(&top, &ss) => {
            chain.push(ss.clone());
            Err(fail(&chain, PathError::SelfSignedInChain { cert: ss }))
        }
        _ => Err(fail(&chain, PathError::UnknownIssuer { cert: top })),
    }
}

/// `check_chain_extensions` over the untrusted part of the chain (store certificates are
/// not checked): unhandled critical extensions, CA-ness of issuers, the purpose (when the
/// options require one), pathLenConstraint not counting self-issued certificates.
fn check_extensions(b: &Built, opts: &VerifyOptions) -> Result<(), PathError> {
    let mut plen: usize = 0;
    for (i, x) in b.chain.iter().enumerate().take(b.untrusted) {
        let unknown = x.unhandled_critical_extensions();
        if !unknown.is_empty() {
            return Err(PathError::UnknownCriticalExtension {
                cert: x.clone(),
                extensions: unknown,
            });
        }
        if i > 0 && !is_ca(x) {
            return Err(PathError::IssuerNotCa {
                issuer: x.clone(),
                cert: b.chain[i - 1].clone(),
            });
        }
        if let Some(e) = opts
            .require_eku
            .and_then(|r| eku_error(Policy::Envoy, x, r))
        {
            return Err(e);
        }
        if let Some(n) = x.basic_constraints().and_then(|bc| bc.path_len) {
            if i > 1 && !x.is_self_issued() && plen > n as usize + 1 {
                return Err(PathError::PathLenExceeded {
                    issuer: x.clone(),
                    path_len: n,
                    intermediates: plen - 1,
                });
            }
        }
        if !x.is_self_issued() {
            plen += 1;
        }
    }
    Ok(())
}

/// `internal_verify`, from the top of the chain down: each certificate's signature by the
/// one above it (never the top's own), then its validity (`check_cert_time`: notBefore <= t
/// < notAfter: BoringSSL's notAfter is exclusive). Returns the signatures checked.
fn check_signatures_and_time(chain: &[Certificate], at: i64) -> Result<usize, PathError> {
    let mut checks = 0;
    for n in (0..chain.len()).rev() {
        let xs = &chain[n];
        if let Some(xi) = chain.get(n + 1) {
            if !xs.signature_algorithms_match() {
                return Err(PathError::SignatureAlgorithmMismatch { cert: xs.clone() });
            }
            checks += 1;
            match xs.verify_signed_by(xi) {
                Ok(()) => {}
                Err(SignatureError::Unsupported(detail)) => {
                    return Err(PathError::UnsupportedAlgorithm {
                        cert: xs.clone(),
                        issuer: Some(xi.clone()),
                        detail,
                    });
                }
                Err(reason) => {
                    return Err(PathError::BadSignature {
                        cert: xs.clone(),
                        issuer: xi.clone(),
                        reason,
                    });
                }
            }
        }
        if at < xs.not_before_unix() {
            return Err(PathError::NotYetValid {
                cert: xs.clone(),
                at,
            });
        }
        if at >= xs.not_after_unix() {
            return Err(PathError::Expired {
                cert: xs.clone(),
                at,
            });
        }
    }
    Ok(checks)
}

/// Verifies as Envoy does. `presented` in the peer's order, `store` in the trust store's.
pub(crate) fn search(
    target: &Certificate,
    presented: &CertPool,
    store: &CertPool,
    opts: &VerifyOptions,
) -> Found {
    let mut found = Found {
        paths: Vec::new(),
        failures: Vec::new(),
        omitted: 0,
        signature_checks: 0,
        complete: true,
    };
    let built = match build(target, presented, store) {
        Ok(b) => b,
        Err(f) => {
            found.failures.push(f);
            return found;
        }
    };
    let checked = check_extensions(&built, opts)
        .and_then(|()| check_signatures_and_time(&built.chain, opts.at.unix_timestamp()))
        .and_then(|checks| {
            found.signature_checks = checks;
            match &opts.require_spiffe_id {
                Some(id) if !target.spiffe_ids().iter().any(|x| x == id) => {
                    Err(PathError::SpiffeIdMismatch {
                        cert: target.clone(),
                        required: id.clone(),
                    })
                }
                _ => Ok(()),
            }
        });
    match checked {
        Ok(()) => found.paths.push(VerifiedPath {
            certs: built.chain,
            signature_checks: found.signature_checks,
        }),
        Err(error) => found.failures.push(PathFailure {
            path: built.chain,
            error,
        }),
    }
    found
}
