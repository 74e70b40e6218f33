//! The path builder: depth-first over every issuer candidate, bounded by depth and budgets.

use crate::cert::{Certificate, ExtendedKeyUsage, Fingerprint, KeyUsage};
use crate::signature::{SignatureAlgorithm, SignatureError};

use super::error::{PathError, PathFailure};
use super::{CertPool, MAX_RECORDED_FAILURES, RequiredEku, VerifiedPath, VerifyOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Stop at the first valid path.
    First,
    /// Find every valid path (within the budgets).
    All,
}

/// What a search found.
pub(crate) struct Outcome {
    pub paths: Vec<VerifiedPath>,
    pub failures: Vec<PathFailure>,
    pub omitted: usize,
    pub signature_checks: usize,
    pub exhausted: bool,
}

enum Sig {
    Ok,
    Failed(PathError),
    Budget,
}

struct Search<'a> {
    roots: &'a CertPool,
    intermediates: &'a CertPool,
    opts: &'a VerifyOptions,
    at: i64,
    mode: Mode,
    signatures_left: usize,
    candidates_left: usize,
    signature_checks: usize,
    /// Signature results already computed in this search: (child, issuer) -> result.
    cache: Vec<(Fingerprint, Fingerprint, Result<(), SignatureError>)>,
    out: Outcome,
}

pub(crate) fn search(
    target: &Certificate,
    intermediates: &CertPool,
    roots: &CertPool,
    opts: &VerifyOptions,
    mode: Mode,
) -> Outcome {
    let mut s = Search {
        roots,
        intermediates,
        opts,
        at: opts.at.unix_timestamp(),
        mode,
        signatures_left: opts.signature_budget,
        candidates_left: opts.candidate_budget,
        signature_checks: 0,
        cache: Vec::new(),
        out: Outcome {
            paths: Vec::new(),
            failures: Vec::new(),
            omitted: 0,
            signature_checks: 0,
            exhausted: false,
        },
    };
    s.run(target);
    s.out.signature_checks = s.signature_checks;
    s.out
}

impl Search<'_> {
    fn fail(&mut self, path: &[Certificate], extra: Option<&Certificate>, error: PathError) {
        if self.out.failures.len() >= MAX_RECORDED_FAILURES {
            self.out.omitted += 1;
            return;
        }
        let mut p = Vec::with_capacity(path.len() + 1);
        p.extend_from_slice(path);
        if let Some(c) = extra {
            p.push(c.clone());
        }
        self.out.failures.push(PathFailure { path: p, error });
    }

    fn found(&mut self, path: &[Certificate]) {
        self.out.paths.push(VerifiedPath {
            certs: path.to_vec(),
            signature_checks: self.signature_checks,
        });
    }

    fn run(&mut self, target: &Certificate) {
        let path = [target.clone()];
        if let Err(e) = self.check_certificate(target) {
            self.fail(&path, None, e);
            return;
        }
        if let Err(e) = self.check_target_options(target) {
            self.fail(&path, None, e);
            return;
        }
        if self.roots.contains(&target.fingerprint()) {
            self.found(&path);
            return;
        }
        let mut path = path.to_vec();
        self.extend(&mut path);
    }

    /// Checks every certificate on a path gets, the trust anchor included: validity at the
    /// validation time, no unprocessed critical extension, consistent signature algorithms.
    fn check_certificate(&self, c: &Certificate) -> Result<(), PathError> {
        if self.at < c.not_before_unix() {
            return Err(PathError::NotYetValid {
                cert: c.clone(),
                at: self.at,
            });
        }
        if self.at > c.not_after_unix() {
            return Err(PathError::Expired {
                cert: c.clone(),
                at: self.at,
            });
        }
        let unknown = c.unhandled_critical_extensions();
        if !unknown.is_empty() {
            return Err(PathError::UnknownCriticalExtension {
                cert: c.clone(),
                extensions: unknown,
            });
        }
        if !c.signature_algorithms_match() {
            return Err(PathError::SignatureAlgorithmMismatch { cert: c.clone() });
        }
        Ok(())
    }

    fn check_target_options(&self, target: &Certificate) -> Result<(), PathError> {
        if let Some(required) = self.opts.require_eku {
            if !eku_allows(target, required) {
                return Err(PathError::EkuNotAllowed {
                    cert: target.clone(),
                    required,
                });
            }
        }
        if let Some(id) = &self.opts.require_spiffe_id {
            if !target.spiffe_ids().iter().any(|x| x == id) {
                return Err(PathError::SpiffeIdMismatch {
                    cert: target.clone(),
                    required: id.clone(),
                });
            }
        }
        Ok(())
    }

    /// Checks `issuer` may issue the last certificate of `path`.
    fn check_issuer(
        &self,
        issuer: &Certificate,
        path: &[Certificate],
        is_anchor: bool,
    ) -> Result<(), PathError> {
        let child = path.last().unwrap_or(issuer);
        // A version 1 certificate has no basicConstraints; as a trust anchor it is a CA
        // (Go, OpenSSL without -x509_strict), elsewhere it is not.
        let v1_anchor = is_anchor && issuer.version() == 1;
        if !issuer.is_ca() && !v1_anchor {
            return Err(PathError::IssuerNotCa {
                issuer: issuer.clone(),
                cert: child.clone(),
            });
        }
        if let Some(ku) = issuer.key_usage() {
            if !ku.contains(KeyUsage::KEY_CERT_SIGN) {
                return Err(PathError::MissingKeyCertSign {
                    issuer: issuer.clone(),
                });
            }
        }
        if let Some(n) = issuer.basic_constraints().and_then(|b| b.path_len) {
            // Every certificate between the target and this CA is an intermediate CA; the
            // target itself never counts, whether or not it is a CA.
            let intermediates = path.len().saturating_sub(1);
            if intermediates > n as usize {
                return Err(PathError::PathLenExceeded {
                    issuer: issuer.clone(),
                    path_len: n,
                    intermediates,
                });
            }
        }
        if let Some(required) = self.opts.require_eku {
            if !eku_allows(issuer, required) {
                return Err(PathError::EkuNotAllowed {
                    cert: issuer.clone(),
                    required,
                });
            }
        }
        Ok(())
    }

    fn check_signature(&mut self, child: &Certificate, issuer: &Certificate) -> Sig {
        let key = (child.fingerprint(), issuer.fingerprint());
        let cached = self
            .cache
            .iter()
            .find(|(c, i, _)| (*c, *i) == key)
            .map(|(_, _, r)| r.clone());
        let result = match cached {
            Some(r) => r,
            None => {
                if self.signatures_left == 0 {
                    return Sig::Budget;
                }
                let r = child.verify_signed_by(issuer);
                // Refusals decided before any cryptography cost nothing.
                if !matches!(
                    r,
                    Err(SignatureError::Unsupported(_) | SignatureError::KeyMismatch { .. })
                ) {
                    self.signatures_left -= 1;
                    self.signature_checks += 1;
                }
                self.cache.push((key.0, key.1, r.clone()));
                r
            }
        };
        match result {
            Ok(()) => Sig::Ok,
            Err(SignatureError::Unsupported(detail)) => {
                Sig::Failed(PathError::UnsupportedAlgorithm {
                    cert: child.clone(),
                    issuer: Some(issuer.clone()),
                    detail,
                })
            }
            Err(reason) => Sig::Failed(PathError::BadSignature {
                cert: child.clone(),
                issuer: issuer.clone(),
                reason,
            }),
        }
    }

    /// The issuer candidates of `child`: roots (as trust anchors) and intermediates not
    /// also among the roots, those whose subjectKeyIdentifier matches the child's
    /// authorityKeyIdentifier first, then those without one, then the rest. The hint only
    /// orders; nothing is excluded.
    fn candidates(&self, child: &Certificate) -> Vec<(Certificate, bool)> {
        let name = child.issuer_der();
        let mut v: Vec<(Certificate, bool)> = self
            .roots
            .with_subject(name)
            .map(|c| (c.clone(), true))
            .collect();
        v.extend(
            self.intermediates
                .with_subject(name)
                .filter(|c| !self.roots.contains(&c.fingerprint()))
                .map(|c| (c.clone(), false)),
        );
        if let Some(aki) = child.authority_key_id() {
            if v.len() > 1 {
                v.sort_by_key(|(c, _)| match c.subject_key_id() {
                    Some(ski) if ski == aki => 0u8,
                    None => 1,
                    Some(_) => 2,
                });
            }
        }
        v
    }

    /// Extends `path` (target first) towards a trust anchor. Returns true to stop the whole
    /// search (first path found in [`Mode::First`], or a budget ran out).
    fn extend(&mut self, path: &mut Vec<Certificate>) -> bool {
        let Some(child) = path.last().cloned() else {
            return false;
        };
        if path.len() >= self.opts.max_depth {
            self.fail(
                path,
                None,
                PathError::TooDeep {
                    cert: child,
                    max_depth: self.opts.max_depth,
                },
            );
            return false;
        }
        if let SignatureAlgorithm::Unsupported { oid, reason } = child.signature_algorithm() {
            let detail = format!("signature algorithm {oid}: {reason}");
            self.fail(
                path,
                None,
                PathError::UnsupportedAlgorithm {
                    cert: child.clone(),
                    issuer: None,
                    detail,
                },
            );
            return false;
        }
        let candidates = self.candidates(&child);
        if candidates.is_empty() {
            self.fail(path, None, PathError::UnknownIssuer { cert: child });
            return false;
        }
        for (candidate, is_anchor) in candidates {
            if self.candidates_left == 0 {
                self.out.exhausted = true;
                let limit = self.opts.candidate_budget;
                self.fail(
                    path,
                    None,
                    PathError::BudgetExhausted {
                        what: "candidate",
                        limit,
                    },
                );
                return true;
            }
            self.candidates_left -= 1;
            // A certificate with the same name and key as one already on the path closes
            // a loop: any path through it has a shorter valid equivalent, so nothing is lost
            // (RFC 4158 2.4.2; rustls-webpki does the same).
            if path.iter().any(|c| {
                c.subject_der() == candidate.subject_der() && c.spki_der() == candidate.spki_der()
            }) {
                self.fail(
                    path,
                    Some(&candidate),
                    PathError::Loop {
                        cert: candidate.clone(),
                    },
                );
                continue;
            }
            let checked = self
                .check_certificate(&candidate)
                .and_then(|()| self.check_issuer(&candidate, path, is_anchor));
            if let Err(e) = checked {
                self.fail(path, Some(&candidate), e);
                continue;
            }
            match self.check_signature(&child, &candidate) {
                Sig::Ok => {}
                Sig::Failed(e) => {
                    self.fail(path, Some(&candidate), e);
                    continue;
                }
                Sig::Budget => {
                    self.out.exhausted = true;
                    let limit = self.opts.signature_budget;
                    self.fail(
                        path,
                        Some(&candidate),
                        PathError::BudgetExhausted {
                            what: "signature-check",
                            limit,
                        },
                    );
                    return true;
                }
            }
            path.push(candidate);
            let stop = if is_anchor {
                self.found(path);
                self.mode == Mode::First
            } else {
                self.extend(path)
            };
            path.pop();
            if stop {
                return true;
            }
        }
        false
    }
}

/// True when `c` may be used for `required`: no extendedKeyUsage extension (no
/// restriction), or one listing the purpose or anyExtendedKeyUsage.
pub(crate) fn eku_allows(c: &Certificate, required: RequiredEku) -> bool {
    match c.extended_key_usage() {
        None => true,
        Some(list) => list.iter().any(|e| {
            matches!(
                (e, required),
                (ExtendedKeyUsage::Any, _)
                    | (ExtendedKeyUsage::ServerAuth, RequiredEku::ServerAuth)
                    | (ExtendedKeyUsage::ClientAuth, RequiredEku::ClientAuth)
            )
        }),
    }
}
