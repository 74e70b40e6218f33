//! The traffic check: every ordered pair of proxies at every event, decided per pair of
//! classes (see the module docs of [`super`]), with the real chain verifier.

use std::collections::{BTreeSet, HashMap};

use super::engine::{LeafId, Mesh, ProxyId, RootSetId, SignerId};
use super::present::PresentedId;
use super::{Direction, Failure, ProxyKind, SimError};
use crate::cert::Certificate;
use crate::istio::behaviour;
use crate::verify::{self, Policy, RequiredEku, VerifyOptions};

/// What a verification is about: a signer's chain (one real leaf stands for all its leaves)
/// or, with [`super::SimConfig::exact_leaves`], one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Subject {
    Chain(SignerId),
    Leaf(LeafId),
}

/// Proxies whose connections have the same outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ClassKey {
    pub subject: Subject,
    /// What the proxies present after their leaves, in order ([`super::present`]).
    pub presented: PresentedId,
    pub roots: RootSetId,
    /// The proxy's leaf is within its validity now.
    pub valid: bool,
    /// What kind of proxy it is: when it receives a connection, it verifies with its own
    /// policy ([`behaviour::verifier_policy`]).
    pub kind: ProxyKind,
}

/// The policy a proxy of `kind` verifies its peers with (the one model's answer).
fn policy(kind: ProxyKind) -> Policy {
    behaviour::verifier_policy(kind.model())
}

pub(super) struct ClassRec {
    pub members: BTreeSet<ProxyId>,
    /// Changes whenever the membership does.
    pub version: u64,
}

/// A verification result and the Unix seconds over which it holds: the span around the
/// instant it was computed at in which no certificate involved starts or stops being valid.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    ok: bool,
    from: i64,
    until: i64,
}

/// What a verification depends on: the leaf (or its signer's class), what its holder
/// presents after it, in order, the verifier's trust set, the purpose and the verifier.
type VerdictKey = (Subject, PresentedId, RootSetId, RequiredEku, Policy);

/// Verification results by [`VerdictKey`], and the last evaluation's result.
#[derive(Default)]
pub(super) struct VerdictCache {
    verdicts: HashMap<VerdictKey, Verdict>,
    last: Option<Evaluation>,
    /// Per signer, the last real leaf a class verdict was computed on: any leaf of the signer
    /// that is valid now stands for every other (only validity differs), whatever its holder
    /// presents, so classes that differ only in what they present share it.
    standins: HashMap<SignerId, LeafId>,
}

/// One evaluation of every class pair: it holds as long as the classes are the same
/// (`class_version`: a class appears, disappears, or its membership or key changes) and the
/// instant stays within every verdict's span.
#[derive(Debug, Clone, Copy)]
struct Evaluation {
    class_version: u64,
    from: i64,
    until: i64,
    checked: u64,
    failed: u64,
}

/// The verifier's reason for refusing a leaf, by (leaf, trust set, purpose), with the span
/// over which it holds.
pub(super) type Reasons =
    HashMap<(LeafId, RootSetId, RequiredEku, Policy), (i64, i64, (String, &'static str))>;

/// The span around `t` over which the validity of every certificate of `certs` stays as it
/// is at `t`.
fn stable_span<'a>(certs: impl IntoIterator<Item = &'a Certificate>, t: i64) -> (i64, i64) {
    let (mut from, mut until) = (i64::MIN, i64::MAX);
    for c in certs {
        let (nb, na) = (c.not_before_unix(), c.not_after_unix());
        if t < nb {
            until = until.min(nb - 1);
        } else if t > na {
            from = from.max(na.saturating_add(1));
        } else {
            from = from.max(nb);
            until = until.min(na);
        }
    }
    (from, until)
}

impl Mesh {
    /// Checks every connection at the current instant; returns (checked, failed).
    pub(super) fn evaluate(&mut self) -> Result<(u64, u64), SimError> {
        if self.cfg.brute_force {
            return self.evaluate_every_pair();
        }
        let n = self.proxies.len() as u64;
        let checked = n.saturating_mul(n.saturating_sub(1));
        let t = self.unix(self.now);
        if let Some(e) = self.verdicts.last {
            // Same classes, every verdict still in its span: the same outcome, and its
            // failures are already recorded (record() dedups by class versions).
            if e.class_version == self.class_version && e.from <= t && t <= e.until {
                self.stats.cache_hits += 1;
                self.connections = self.connections.saturating_add(e.checked);
                self.failed_connections = self.failed_connections.saturating_add(e.failed);
                return Ok((e.checked, e.failed));
            }
        }
        let (mut from, mut until) = (i64::MIN, i64::MAX);
        let keys: Vec<(ClassKey, u64, u64)> = self
            .classes
            .iter()
            .map(|(k, r)| (*k, r.members.len() as u64, r.version))
            .collect();
        let mut failed = 0u64;
        let mut failing = Vec::new();
        for &(client, n1, v1) in &keys {
            for &(server, n2, v2) in &keys {
                let pairs = n1 * (n2 - u64::from(client == server));
                if pairs == 0 {
                    continue;
                }
                // Each side verifies with its own policy: the server the client's chain, the
                // client the server's.
                let (client_ok, f1, u1) = self.accepts(
                    client,
                    server.roots,
                    policy(server.kind),
                    RequiredEku::ClientAuth,
                )?;
                let (server_ok, f2, u2) = self.accepts(
                    server,
                    client.roots,
                    policy(client.kind),
                    RequiredEku::ServerAuth,
                )?;
                from = from.max(f1).max(f2);
                until = until.min(u1).min(u2);
                if !(client_ok && server_ok) {
                    failed += pairs;
                    failing.push((client, v1, server, v2, client_ok, server_ok));
                }
            }
        }
        self.connections = self.connections.saturating_add(checked);
        self.failed_connections = self.failed_connections.saturating_add(failed);
        self.verdicts.last = Some(Evaluation {
            class_version: self.class_version,
            from,
            until,
            checked,
            failed,
        });
        for (client, v1, server, v2, client_ok, server_ok) in failing {
            self.record(client, v1, server, v2, client_ok, server_ok)?;
        }
        Ok((checked, failed))
    }

    /// The oracle of the class model: every ordered pair verified on its own, both ways, with
    /// the proxies' own leaves, no class and no cache.
    fn evaluate_every_pair(&mut self) -> Result<(u64, u64), SimError> {
        let n = self.proxies.len();
        let at = self.instant(self.now);
        let (mut checked, mut failed) = (0u64, 0u64);
        let mut refused = Vec::new();
        for p in 0..n {
            for q in 0..n {
                if p == q {
                    continue;
                }
                checked += 1;
                let client_ok = self.verify_leaf_of(p, q, at, RequiredEku::ClientAuth)?;
                let server_ok = self.verify_leaf_of(q, p, at, RequiredEku::ServerAuth)?;
                if !(client_ok && server_ok) {
                    failed += 1;
                }
                if !client_ok {
                    refused.push((p, q, Direction::ClientRejected));
                }
                if !server_ok {
                    refused.push((p, q, Direction::ServerRejected));
                }
            }
        }
        self.connections = self.connections.saturating_add(checked);
        self.failed_connections = self.failed_connections.saturating_add(failed);
        for (p, q, d) in refused {
            let verifier = if d == Direction::ClientRejected { q } else { p };
            let (roots, pol) = self
                .proxies
                .get(verifier)
                .map(|x| (x.roots, policy(x.kind)))
                .unwrap_or_default();
            self.record_one(p, q, d, roots, pol)?;
        }
        Ok((checked, failed))
    }

    /// Whether `verifier`'s trust set accepts `holder`'s leaf chain for `purpose` at `at`.
    fn verify_leaf_of(
        &mut self,
        holder: ProxyId,
        verifier: ProxyId,
        at: time::OffsetDateTime,
        purpose: RequiredEku,
    ) -> Result<bool, SimError> {
        let (Some(h), Some(v)) = (self.proxies.get(holder), self.proxies.get(verifier)) else {
            return Err(SimError::Internal("unknown proxy".to_owned()));
        };
        let (leaf, roots, pol) = (h.leaf, v.roots, policy(v.kind));
        let cert = self.materialize(leaf)?;
        let presented = self
            .leaves
            .get(leaf)
            .map(|l| l.presented)
            .unwrap_or_default();
        let (Some(p), Some(r)) = (self.presented.get(presented), self.root_sets.get(roots)) else {
            return Err(SimError::Internal("unknown chain or trust set".to_owned()));
        };
        self.stats.verifications += 1;
        let opts = VerifyOptions::at(at).with_eku(purpose).with_policy(pol);
        Ok(verify::verify(&cert, &p.pool, &r.pool, &opts).is_ok())
    }

    /// Whether the proxies of `class` have a leaf chain that `roots` accepts for `purpose` now,
    /// and the span of Unix seconds over which that holds (a leaf's own validity is the
    /// class's: a change of it changes the class).
    fn accepts(
        &mut self,
        class: ClassKey,
        roots: RootSetId,
        pol: Policy,
        purpose: RequiredEku,
    ) -> Result<(bool, i64, i64), SimError> {
        if !class.valid {
            return Ok((false, i64::MIN, i64::MAX));
        }
        let t = self.unix(self.now);
        let key = (class.subject, class.presented, roots, purpose, pol);
        if let Some(v) = self.verdicts.verdicts.get(&key) {
            if v.from <= t && t <= v.until {
                self.stats.cache_hits += 1;
                return Ok((v.ok, v.from, v.until));
            }
        }
        let (leaf, signer) = match class.subject {
            Subject::Leaf(l) => {
                let s = self.leaves.get(l).map(|x| x.signer).unwrap_or_default();
                (l, s)
            }
            Subject::Chain(s) => {
                let standin = self.verdicts.standins.get(&s).copied().filter(|&l| {
                    self.leaves
                        .get(l)
                        .and_then(|x| x.cert.as_ref())
                        .is_some_and(|c| c.not_before_unix() <= t && t <= c.not_after_unix())
                });
                // Else any member stands for the class: its leaf is valid now.
                let l = match standin {
                    Some(l) => l,
                    None => {
                        let member = self
                            .classes
                            .get(&class)
                            .and_then(|r| r.members.first().copied())
                            .ok_or_else(|| SimError::Internal("empty class".to_owned()))?;
                        self.proxies.get(member).map(|p| p.leaf).unwrap_or_default()
                    }
                };
                self.verdicts.standins.insert(s, l);
                (l, s)
            }
        };
        let cert = self.materialize(leaf)?;
        let (Some(s), Some(p), Some(r)) = (
            self.signers.get(signer),
            self.presented.get(class.presented),
            self.root_sets.get(roots),
        ) else {
            return Err(SimError::Internal(
                "unknown signer, chain or trust set".to_owned(),
            ));
        };
        let opts = VerifyOptions::at(self.instant(self.now))
            .with_eku(purpose)
            .with_policy(pol);
        let ok = verify::verify(&cert, &p.pool, &r.pool, &opts).is_ok();
        self.stats.verifications += 1;
        let exact = matches!(class.subject, Subject::Leaf(_));
        let (from, until) = stable_span(
            s.chain
                .iter()
                .chain(p.certs.iter())
                .chain(r.certs.iter())
                .chain(exact.then_some(&cert)),
            t,
        );
        self.verdicts
            .verdicts
            .insert(key, Verdict { ok, from, until });
        Ok((ok, from, until))
    }

    /// Records the distinct failures between the members of two classes.
    fn record(
        &mut self,
        client: ClassKey,
        v1: u64,
        server: ClassKey,
        v2: u64,
        client_ok: bool,
        server_ok: bool,
    ) -> Result<(), SimError> {
        if !self.enumerated.insert((client, v1, server, v2)) {
            return Ok(());
        }
        if self.failures.len() >= self.cfg.max_failures {
            self.failures_truncated = true;
            return Ok(());
        }
        let members = |k: &ClassKey| -> Vec<ProxyId> {
            self.classes
                .get(k)
                .map(|r| r.members.iter().copied().collect())
                .unwrap_or_default()
        };
        let (clients, servers) = (members(&client), members(&server));
        for &p in &clients {
            for &q in &servers {
                if p == q {
                    continue;
                }
                if !client_ok {
                    let pol = policy(server.kind);
                    self.record_one(p, q, Direction::ClientRejected, server.roots, pol)?;
                }
                if !server_ok {
                    let pol = policy(client.kind);
                    self.record_one(p, q, Direction::ServerRejected, client.roots, pol)?;
                }
                if self.failures_truncated {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn record_one(
        &mut self,
        from: ProxyId,
        to: ProxyId,
        direction: Direction,
        roots: RootSetId,
        pol: Policy,
    ) -> Result<(), SimError> {
        let (rejected, purpose) = match direction {
            Direction::ClientRejected => (from, RequiredEku::ClientAuth),
            Direction::ServerRejected => (to, RequiredEku::ServerAuth),
        };
        let leaf = self
            .proxies
            .get(rejected)
            .map(|p| p.leaf)
            .unwrap_or_default();
        if !self.recorded.insert((from, to, direction, leaf, roots)) {
            return Ok(());
        }
        if self.failures.len() >= self.cfg.max_failures {
            self.failures_truncated = true;
            return Ok(());
        }
        let (reason, reason_kind) = self.reason(leaf, roots, pol, purpose)?;
        let name = |p: ProxyId| {
            self.proxies
                .get(p)
                .map(|x| x.name.clone())
                .unwrap_or_default()
        };
        let signer = self
            .leaves
            .get(leaf)
            .map(|l| self.signer_label(l.signer))
            .unwrap_or_default();
        let trusts = self
            .root_sets
            .get(roots)
            .map(|r| r.labels.clone())
            .unwrap_or_default();
        let failure = Failure {
            time: self.instant(self.now),
            phase: self.phase_name(),
            from: name(from),
            to: name(to),
            direction,
            reason,
            reason_kind,
            signer,
            trusts,
            verifier: pol,
        };
        self.failures.push(failure);
        Ok(())
    }

    /// The verifier's reason for refusing this very leaf. A leaf that verifies here while
    /// its class was refused would mean the class model is wrong: that is an error.
    fn reason(
        &mut self,
        leaf: LeafId,
        roots: RootSetId,
        pol: Policy,
        purpose: RequiredEku,
    ) -> Result<(String, &'static str), SimError> {
        let t = self.unix(self.now);
        if let Some((from, until, r)) = self.reasons.get(&(leaf, roots, purpose, pol)) {
            if *from <= t && t <= *until {
                return Ok(r.clone());
            }
        }
        let cert = self.materialize(leaf)?;
        let presented = self
            .leaves
            .get(leaf)
            .map(|l| l.presented)
            .unwrap_or_default();
        let (Some(p), Some(r)) = (self.presented.get(presented), self.root_sets.get(roots)) else {
            return Err(SimError::Internal("unknown chain or trust set".to_owned()));
        };
        let opts = VerifyOptions::at(self.instant(self.now))
            .with_eku(purpose)
            .with_policy(pol);
        self.stats.verifications += 1;
        let out = match verify::verify(&cert, &p.pool, &r.pool, &opts) {
            Ok(_) => {
                return Err(SimError::Internal(format!(
                    "the leaf of {} verifies against {} although its class was refused",
                    cert.san_uris().first().cloned().unwrap_or_default(),
                    self.trust_label(roots)
                )));
            }
            Err(e) => (
                e.to_string(),
                e.primary().map_or("no-path", |f| f.error.kind()),
            ),
        };
        let (from, until) = stable_span(p.certs.iter().chain(r.certs.iter()).chain([&cert]), t);
        self.reasons
            .insert((leaf, roots, purpose, pol), (from, until, out.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{CertSpec, Issued, KeyType, TestKey};

    fn cert(nb: i64, na: i64) -> Certificate {
        let mut spec = CertSpec::root("Istio", "Root CA");
        spec.not_before = nb;
        spec.not_after = na;
        Issued::self_signed(&spec, &TestKey::pooled(KeyType::EcP256, 0))
            .unwrap()
            .cert()
            .clone()
    }

    #[test]
    fn stable_spans() {
        let (a, b) = (cert(100, 200), cert(150, 300));
        // Inside both: from the later notBefore to the earlier notAfter, bounds included.
        assert_eq!(stable_span([&a, &b], 160), (150, 200));
        // Before b: until b starts.
        assert_eq!(stable_span([&a, &b], 120), (100, 149));
        // After a expired, inside b.
        assert_eq!(stable_span([&a, &b], 250), (201, 300));
        // After both.
        assert_eq!(stable_span([&a, &b], 400), (301, i64::MAX));
        assert_eq!(stable_span([], 5), (i64::MIN, i64::MAX));
    }
}
