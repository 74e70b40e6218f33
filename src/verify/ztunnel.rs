//! [`Policy::Ztunnel`](super::Policy::Ztunnel): rustls-webpki 0.103 as ztunnel runs it
//! (rustls/webpki `src/verify_cert.rs`: `ChainOptions::build_chain_inner`,
//! `check_signed_chain`, `check_issuer_independent_properties`, `check_basic_constraints`,
//! `check_validity`, `KeyUsage::validate`, `Budget`, `PartialPath::push`). Modelled, not copied:
//! depth first over every same-named trust anchor, then every same-named intermediate;
//! signatures are checked only once an anchor closes a path, the whole path each time.

use crate::cert::Certificate;
use crate::signature::SignatureError;

use super::error::{PathError, PathFailure};
use super::policy::{Found, Policy, eku_error};
use super::{CertPool, MAX_RECORDED_FAILURES, RequiredEku, VerifiedPath, VerifyOptions};

/// webpki's `MAX_SUB_CA_COUNT`: at most six intermediates between end entity and anchor.
pub(crate) const MAX_SUB_CA_COUNT: usize = 6;
/// webpki's `Budget::build_chain_calls`.
pub(crate) const BUILD_CHAIN_CALLS: usize = 200_000;

struct Search<'a> {
    roots: &'a CertPool,
    intermediates: &'a CertPool,
    opts: &'a VerifyOptions,
    at: i64,
    all: bool,
    signatures_left: usize,
    calls_left: usize,
    found: Found,
}

/// Verifies as ztunnel does; `all` keeps searching after the first valid path.
pub(crate) fn search(
    target: &Certificate,
    intermediates: &CertPool,
    roots: &CertPool,
    opts: &VerifyOptions,
    all: bool,
) -> Found {
    let mut s = Search {
        roots,
        intermediates,
        opts,
        at: opts.at.unix_timestamp(),
        all,
        signatures_left: opts.signature_budget,
        calls_left: BUILD_CHAIN_CALLS,
        found: Found {
            paths: Vec::new(),
            failures: Vec::new(),
            omitted: 0,
            signature_checks: 0,
            complete: true,
        },
    };
    let path = vec![target.clone()];
    // Parsing the end entity (`EndEntityCert::try_from`) refuses what `Cert::from_der` does.
    match parse_checks(target).or_else(|| spiffe_error(target, opts)) {
        Some(e) => s.fail(&path, e),
        None => {
            s.extend(&path, 0);
        }
    }
    s.found
}

/// What webpki's certificate parser refuses among what meshtrust parses: an unprocessed
/// critical extension, an outer signature algorithm different from the inner one.
fn parse_checks(c: &Certificate) -> Option<PathError> {
    let unknown = c.unhandled_critical_extensions();
    if !unknown.is_empty() {
        return Some(PathError::UnknownCriticalExtension {
            cert: c.clone(),
            extensions: unknown,
        });
    }
    (!c.signature_algorithms_match())
        .then(|| PathError::SignatureAlgorithmMismatch { cert: c.clone() })
}

fn spiffe_error(target: &Certificate, opts: &VerifyOptions) -> Option<PathError> {
    let id = opts.require_spiffe_id.as_ref()?;
    (!target.spiffe_ids().iter().any(|x| x == id)).then(|| PathError::SpiffeIdMismatch {
        cert: target.clone(),
        required: id.clone(),
    })
}

/// Control flow of the depth-first search.
enum Flow {
    /// Keep trying other candidates.
    Continue,
    /// Stop everything: the first path was found (and only one is wanted) or a budget ran out.
    Stop,
}

impl Search<'_> {
    fn fail(&mut self, path: &[Certificate], error: PathError) {
        if self.found.failures.len() >= MAX_RECORDED_FAILURES {
            self.found.omitted += 1;
            return;
        }
        self.found.failures.push(PathFailure {
            path: path.to_vec(),
            error,
        });
    }

    fn exhausted(&mut self, path: &[Certificate], what: &'static str, limit: usize) -> Flow {
        self.found.complete = false;
        self.fail(path, PathError::BudgetExhausted { what, limit });
        Flow::Stop
    }

    /// `check_issuer_independent_properties` for the head of `path`: validity (both bounds
    /// inclusive), basicConstraints by role and sub-CA count, extended key usage (the
    /// required purpose, or with none both serverAuth and clientAuth: ztunnel calls webpki
    /// with `KeyUsage::server_auth` as a client and `client_auth` as a server).
    fn check_head(&self, path: &[Certificate], sub_ca_count: usize) -> Option<PathError> {
        let head = &path[path.len() - 1];
        if self.at < head.not_before_unix() {
            return Some(PathError::NotYetValid {
                cert: head.clone(),
                at: self.at,
            });
        }
        if self.at > head.not_after_unix() {
            return Some(PathError::Expired {
                cert: head.clone(),
                at: self.at,
            });
        }
        let bc = head.basic_constraints();
        let is_ca = bc.is_some_and(|b| b.ca);
        if path.len() == 1 && is_ca {
            return Some(PathError::CaAsEndEntity { cert: head.clone() });
        }
        if path.len() > 1 {
            if !is_ca {
                return Some(PathError::IssuerNotCa {
                    issuer: head.clone(),
                    cert: path[path.len() - 2].clone(),
                });
            }
            if let Some(n) = bc.and_then(|b| b.path_len) {
                if sub_ca_count > n as usize {
                    return Some(PathError::PathLenExceeded {
                        issuer: head.clone(),
                        path_len: n,
                        intermediates: sub_ca_count,
                    });
                }
            }
        }
        // ztunnel verifies a peer as a client (server usage) and as a server (client usage):
        // without an explicit purpose an mTLS connection needs both.
        const BOTH: [RequiredEku; 2] = [RequiredEku::ServerAuth, RequiredEku::ClientAuth];
        let required = match &self.opts.require_eku {
            Some(r) => std::slice::from_ref(r),
            None => &BOTH,
        };
        required
            .iter()
            .find_map(|&r| eku_error(Policy::Ztunnel, head, r))
    }

    /// `check_signed_chain`: every signature of the path, from the anchor down.
    fn check_signatures(&mut self, path: &[Certificate], anchor: &Certificate) -> Result<(), Sig> {
        let mut issuer = anchor;
        for c in path.iter().rev() {
            if self.signatures_left == 0 {
                return Err(Sig::Budget);
            }
            self.signatures_left -= 1;
            self.found.signature_checks += 1;
            match c.verify_signed_by(issuer) {
                Ok(()) => {}
                Err(SignatureError::Unsupported(detail)) => {
                    return Err(Sig::Failed(PathError::UnsupportedAlgorithm {
                        cert: c.clone(),
                        issuer: Some(issuer.clone()),
                        detail,
                    }));
                }
                Err(reason) => {
                    return Err(Sig::Failed(PathError::BadSignature {
                        cert: c.clone(),
                        issuer: issuer.clone(),
                        reason,
                    }));
                }
            }
            issuer = c;
        }
        Ok(())
    }

    /// `build_chain_inner` for the head of `path`.
    fn extend(&mut self, path: &[Certificate], sub_ca_count: usize) -> Flow {
        if let Some(e) = self.check_head(path, sub_ca_count) {
            self.fail(path, e);
            return Flow::Continue;
        }
        let head = path[path.len() - 1].clone();
        // rustls keeps only the roots webpki can parse as trust anchors
        // (`anchor_from_trusted_cert`: unknown critical extensions are tolerated, an
        // outer/inner signature algorithm mismatch is not).
        let mut anchors: Vec<Certificate> = Vec::new();
        for a in self.roots.with_subject(head.issuer_der()) {
            if a.signature_algorithms_match() {
                anchors.push(a.clone());
            } else {
                let mut p = path.to_vec();
                p.push(a.clone());
                self.fail(
                    &p,
                    PathError::SignatureAlgorithmMismatch { cert: a.clone() },
                );
            }
        }
        let no_anchor = anchors.is_empty();
        for anchor in anchors {
            match self.check_signatures(path, &anchor) {
                Ok(()) => {
                    let mut certs = path.to_vec();
                    certs.push(anchor);
                    self.found.paths.push(VerifiedPath {
                        certs,
                        signature_checks: self.found.signature_checks,
                    });
                    if !self.all {
                        return Flow::Stop;
                    }
                }
                Err(Sig::Failed(e)) => {
                    let mut p = path.to_vec();
                    p.push(anchor);
                    self.fail(&p, e);
                }
                Err(Sig::Budget) => {
                    let limit = self.opts.signature_budget;
                    return self.exhausted(path, "signature-check", limit);
                }
            }
        }
        let candidates: Vec<Certificate> = self
            .intermediates
            .with_subject(head.issuer_der())
            .cloned()
            .collect();
        if candidates.is_empty() && no_anchor {
            self.fail(path, PathError::UnknownIssuer { cert: head.clone() });
        }
        for candidate in candidates {
            // `Cert::from_der` runs first, then the loop guard (RFC 4158 5.2: same key and
            // subject as a certificate on the path), the call budget, the depth limit.
            let mut p = path.to_vec();
            p.push(candidate.clone());
            if let Some(e) = parse_checks(&candidate) {
                self.fail(&p, e);
                continue;
            }
            if path.iter().any(|c| {
                c.spki_der() == candidate.spki_der() && c.subject_der() == candidate.subject_der()
            }) {
                self.fail(&p, PathError::Loop { cert: candidate });
                continue;
            }
            if self.calls_left == 0 {
                return self.exhausted(path, "candidate", BUILD_CHAIN_CALLS);
            }
            self.calls_left -= 1;
            if path.len() > MAX_SUB_CA_COUNT {
                let error = PathError::TooDeep {
                    cert: head.clone(),
                    max_depth: MAX_SUB_CA_COUNT + 2,
                };
                self.fail(path, error);
                continue;
            }
            let next = if path.len() == 1 {
                sub_ca_count
            } else {
                sub_ca_count + 1
            };
            if let Flow::Stop = self.extend(&p, next) {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

enum Sig {
    Failed(PathError),
    Budget,
}
