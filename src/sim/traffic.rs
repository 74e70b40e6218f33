//! The traffic check: every ordered pair of proxies at every event, decided per pair of
//! classes (see the module docs of [`super`]), with the real chain verifier. [`Traffic`] owns
//! the classes, the verdict cache and the failures; it reads the proxies and their
//! certificates from the [`World`] it is given.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::present::PresentedId;
use super::queue::Clock;
use super::world::{LeafId, ProxyId, RootSetId, SignerId, World};
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

struct ClassRec {
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
struct VerdictCache {
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
type Reasons =
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

/// A refused connection: client `from`, server `to`, the side that refused.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    from: ProxyId,
    to: ProxyId,
    direction: Direction,
}

/// A pair of classes whose connections failed at an evaluation: the classes and their
/// versions then, and which side accepted.
#[derive(Debug, Clone, Copy)]
struct FailingPair {
    client: ClassKey,
    v1: u64,
    server: ClassKey,
    v2: u64,
    client_ok: bool,
    server_ok: bool,
}

/// The instant of an evaluation and the phase in effect (for the failures recorded).
#[derive(Debug, Clone, Copy)]
struct Moment<'a> {
    clock: Clock,
    phase: &'a str,
}

/// The traffic check's state: the proxies' classes, the verdicts, the connections counted and
/// the failures recorded.
pub(super) struct Traffic {
    /// One class per leaf ([`super::SimConfig::exact_leaves`]).
    exact_leaves: bool,
    /// Every pair on its own ([`super::SimConfig::brute_force`]).
    brute_force: bool,
    max_failures: usize,
    classes: BTreeMap<ClassKey, ClassRec>,
    /// Each proxy's class.
    class_of: Vec<Option<ClassKey>>,
    class_version: u64,
    verdicts: VerdictCache,
    enumerated: HashSet<(ClassKey, u64, ClassKey, u64)>,
    recorded: HashSet<(ProxyId, ProxyId, Direction, LeafId, RootSetId)>,
    reasons: Reasons,
    /// Connections checked.
    pub connections: u64,
    /// Connections that failed.
    pub failed_connections: u64,
    /// The distinct failures recorded (at most `max_failures`).
    pub failures: Vec<Failure>,
    /// More distinct failures happened than were recorded.
    pub failures_truncated: bool,
    /// Calls of the chain verifier.
    pub verifications: u64,
    /// Class pairs decided from the cache.
    pub cache_hits: u64,
}

impl Traffic {
    /// No class yet; `exact_leaves`, `brute_force` and `max_failures` as in
    /// [`super::SimConfig`].
    pub(super) fn new(exact_leaves: bool, brute_force: bool, max_failures: usize) -> Traffic {
        Traffic {
            exact_leaves,
            brute_force,
            max_failures,
            classes: BTreeMap::new(),
            class_of: Vec::new(),
            class_version: 0,
            verdicts: VerdictCache::default(),
            enumerated: HashSet::new(),
            recorded: HashSet::new(),
            reasons: HashMap::new(),
            connections: 0,
            failed_connections: 0,
            failures: Vec::new(),
            failures_truncated: false,
            verifications: 0,
            cache_hits: 0,
        }
    }

    /// The class of proxy `p`.
    pub(super) fn class_of(&self, p: ProxyId) -> Option<ClassKey> {
        self.class_of.get(p).copied().flatten()
    }

    /// The class proxy `p` belongs to now.
    fn class_key(&self, world: &World, p: ProxyId) -> Option<ClassKey> {
        let x = world.proxies.get(p)?;
        let leaf = world.leaves.get(x.leaf)?;
        Some(ClassKey {
            subject: if self.exact_leaves {
                Subject::Leaf(x.leaf)
            } else {
                Subject::Chain(leaf.signer)
            },
            presented: leaf.presented,
            roots: x.roots,
            valid: x.valid,
            kind: x.kind,
        })
    }

    /// Moves proxy `p` to the class of its leaf, roots and validity now.
    pub(super) fn reclass(&mut self, world: &World, p: ProxyId) {
        let new = self.class_key(world, p);
        let old = self.class_of(p);
        if new == old {
            return;
        }
        self.class_version += 1;
        let v = self.class_version;
        if let Some(old) = old {
            let empty = match self.classes.get_mut(&old) {
                Some(rec) => {
                    rec.members.remove(&p);
                    rec.version = v;
                    rec.members.is_empty()
                }
                None => false,
            };
            if empty {
                self.classes.remove(&old);
            }
        }
        if let Some(new) = new {
            let rec = self.classes.entry(new).or_insert_with(|| ClassRec {
                members: BTreeSet::new(),
                version: v,
            });
            rec.members.insert(p);
            rec.version = v;
        }
        if self.class_of.len() <= p {
            self.class_of.resize(p + 1, None);
        }
        if let Some(x) = self.class_of.get_mut(p) {
            *x = new;
        }
    }

    /// Checks every connection between the proxies of `world` at the clock's instant, in
    /// `phase`; returns (checked, failed).
    pub(super) fn evaluate(
        &mut self,
        world: &mut World,
        clock: Clock,
        phase: &str,
    ) -> Result<(u64, u64), SimError> {
        let m = Moment { clock, phase };
        if self.brute_force {
            return self.evaluate_every_pair(world, m);
        }
        let n = world.proxies.len() as u64;
        let checked = n.saturating_mul(n.saturating_sub(1));
        let t = clock.unix();
        if let Some(e) = self.verdicts.last {
            // Same classes, every verdict still in its span: the same outcome, and its
            // failures are already recorded (record() dedups by class versions).
            if e.class_version == self.class_version && e.from <= t && t <= e.until {
                self.cache_hits += 1;
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
                    world,
                    clock,
                    client,
                    (server.roots, policy(server.kind)),
                    RequiredEku::ClientAuth,
                )?;
                let (server_ok, f2, u2) = self.accepts(
                    world,
                    clock,
                    server,
                    (client.roots, policy(client.kind)),
                    RequiredEku::ServerAuth,
                )?;
                from = from.max(f1).max(f2);
                until = until.min(u1).min(u2);
                if !(client_ok && server_ok) {
                    failed += pairs;
                    failing.push(FailingPair {
                        client,
                        v1,
                        server,
                        v2,
                        client_ok,
                        server_ok,
                    });
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
        for f in failing {
            self.record(world, m, f)?;
        }
        Ok((checked, failed))
    }

    /// The oracle of the class model: every ordered pair verified on its own, both ways, with
    /// the proxies' own leaves, no class and no cache.
    fn evaluate_every_pair(
        &mut self,
        world: &mut World,
        m: Moment<'_>,
    ) -> Result<(u64, u64), SimError> {
        let n = world.proxies.len();
        let at = m.clock.instant();
        let (mut checked, mut failed) = (0u64, 0u64);
        let mut refused = Vec::new();
        for p in 0..n {
            for q in 0..n {
                if p == q {
                    continue;
                }
                checked += 1;
                let client_ok = self.verify_leaf_of(world, p, q, at, RequiredEku::ClientAuth)?;
                let server_ok = self.verify_leaf_of(world, q, p, at, RequiredEku::ServerAuth)?;
                if !(client_ok && server_ok) {
                    failed += 1;
                }
                if !client_ok {
                    refused.push(Refusal {
                        from: p,
                        to: q,
                        direction: Direction::ClientRejected,
                    });
                }
                if !server_ok {
                    refused.push(Refusal {
                        from: p,
                        to: q,
                        direction: Direction::ServerRejected,
                    });
                }
            }
        }
        self.connections = self.connections.saturating_add(checked);
        self.failed_connections = self.failed_connections.saturating_add(failed);
        for r in refused {
            let verifier = if r.direction == Direction::ClientRejected {
                r.to
            } else {
                r.from
            };
            let verifier = world
                .proxies
                .get(verifier)
                .map(|x| (x.roots, policy(x.kind)))
                .unwrap_or_default();
            self.record_one(world, m, r, verifier)?;
        }
        Ok((checked, failed))
    }

    /// Whether `verifier`'s trust set accepts `holder`'s leaf chain for `purpose` at `at`.
    fn verify_leaf_of(
        &mut self,
        world: &mut World,
        holder: ProxyId,
        verifier: ProxyId,
        at: time::OffsetDateTime,
        purpose: RequiredEku,
    ) -> Result<bool, SimError> {
        let (Some(h), Some(v)) = (world.proxies.get(holder), world.proxies.get(verifier)) else {
            return Err(SimError::Internal("unknown proxy".to_owned()));
        };
        let (leaf, roots, pol) = (h.leaf, v.roots, policy(v.kind));
        let (cert, p, r) = world.verification_inputs(leaf, roots)?;
        self.verifications += 1;
        let opts = VerifyOptions::at(at).with_eku(purpose).with_policy(pol);
        Ok(verify::verify(&cert, &p.pool, &r.pool, &opts).is_ok())
    }

    /// The leaf that stands for the proxies of `class` in a verification at Unix second `t`.
    fn standin(&mut self, world: &World, class: ClassKey, t: i64) -> Result<LeafId, SimError> {
        let s = match class.subject {
            Subject::Leaf(l) => return Ok(l),
            Subject::Chain(s) => s,
        };
        let standin = self.verdicts.standins.get(&s).copied().filter(|&l| {
            world
                .leaves
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
                world
                    .proxies
                    .get(member)
                    .map(|p| p.leaf)
                    .unwrap_or_default()
            }
        };
        self.verdicts.standins.insert(s, l);
        Ok(l)
    }

    /// Whether the proxies of `class` have a leaf chain that `verifier` (a trust set and a
    /// policy) accepts for `purpose` now, and the span of Unix seconds over which that holds
    /// (a leaf's own validity is the class's: a change of it changes the class).
    fn accepts(
        &mut self,
        world: &mut World,
        clock: Clock,
        class: ClassKey,
        (roots, pol): (RootSetId, Policy),
        purpose: RequiredEku,
    ) -> Result<(bool, i64, i64), SimError> {
        if !class.valid {
            return Ok((false, i64::MIN, i64::MAX));
        }
        let t = clock.unix();
        let key = (class.subject, class.presented, roots, purpose, pol);
        if let Some(v) = self.verdicts.verdicts.get(&key) {
            if v.from <= t && t <= v.until {
                self.cache_hits += 1;
                return Ok((v.ok, v.from, v.until));
            }
        }
        let leaf = self.standin(world, class, t)?;
        let signer = match class.subject {
            Subject::Chain(s) => s,
            Subject::Leaf(l) => world.leaves.get(l).map(|x| x.signer).unwrap_or_default(),
        };
        let cert = world.materialize(leaf)?;
        let (Some(s), Some(p), Some(r)) = (
            world.signers.get(signer),
            world.presented.get(class.presented),
            world.root_sets.get(roots),
        ) else {
            return Err(SimError::Internal(
                "unknown signer, chain or trust set".to_owned(),
            ));
        };
        let opts = VerifyOptions::at(clock.instant())
            .with_eku(purpose)
            .with_policy(pol);
        let ok = verify::verify(&cert, &p.pool, &r.pool, &opts).is_ok();
        self.verifications += 1;
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
    fn record(&mut self, world: &mut World, m: Moment<'_>, f: FailingPair) -> Result<(), SimError> {
        if !self.enumerated.insert((f.client, f.v1, f.server, f.v2)) {
            return Ok(());
        }
        if self.failures.len() >= self.max_failures {
            self.failures_truncated = true;
            return Ok(());
        }
        let members = |k: &ClassKey| -> Vec<ProxyId> {
            self.classes
                .get(k)
                .map(|r| r.members.iter().copied().collect())
                .unwrap_or_default()
        };
        let (clients, servers) = (members(&f.client), members(&f.server));
        let (client, server) = (f.client, f.server);
        for &p in &clients {
            for &q in &servers {
                if p == q {
                    continue;
                }
                if !f.client_ok {
                    let r = Refusal {
                        from: p,
                        to: q,
                        direction: Direction::ClientRejected,
                    };
                    self.record_one(world, m, r, (server.roots, policy(server.kind)))?;
                }
                if !f.server_ok {
                    let r = Refusal {
                        from: p,
                        to: q,
                        direction: Direction::ServerRejected,
                    };
                    self.record_one(world, m, r, (client.roots, policy(client.kind)))?;
                }
                if self.failures_truncated {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Records refusal `r` by a verifier with trust set `roots` and policy `pol`, once per
    /// (client, server, side, refused leaf, trust set).
    fn record_one(
        &mut self,
        world: &mut World,
        m: Moment<'_>,
        r: Refusal,
        (roots, pol): (RootSetId, Policy),
    ) -> Result<(), SimError> {
        let (rejected, purpose) = match r.direction {
            Direction::ClientRejected => (r.from, RequiredEku::ClientAuth),
            Direction::ServerRejected => (r.to, RequiredEku::ServerAuth),
        };
        let leaf = world
            .proxies
            .get(rejected)
            .map(|p| p.leaf)
            .unwrap_or_default();
        if !self
            .recorded
            .insert((r.from, r.to, r.direction, leaf, roots))
        {
            return Ok(());
        }
        if self.failures.len() >= self.max_failures {
            self.failures_truncated = true;
            return Ok(());
        }
        let (reason, reason_kind) = self.reason(world, m.clock, leaf, (roots, pol), purpose)?;
        let name = |p: ProxyId| {
            world
                .proxies
                .get(p)
                .map(|x| x.name.clone())
                .unwrap_or_default()
        };
        let failure = Failure {
            time: m.clock.instant(),
            phase: m.phase.to_owned(),
            from: name(r.from),
            to: name(r.to),
            direction: r.direction,
            reason,
            reason_kind,
            signer: world.leaf_signer_label(leaf),
            trusts: world.trust_labels(roots),
            verifier: pol,
        };
        self.failures.push(failure);
        Ok(())
    }

    /// The verifier's reason for refusing this very leaf. A leaf that verifies here while
    /// its class was refused would mean the class model is wrong: that is an error.
    fn reason(
        &mut self,
        world: &mut World,
        clock: Clock,
        leaf: LeafId,
        (roots, pol): (RootSetId, Policy),
        purpose: RequiredEku,
    ) -> Result<(String, &'static str), SimError> {
        let t = clock.unix();
        if let Some((from, until, r)) = self.reasons.get(&(leaf, roots, purpose, pol)) {
            if *from <= t && t <= *until {
                return Ok(r.clone());
            }
        }
        let (cert, p, r) = world.verification_inputs(leaf, roots)?;
        let opts = VerifyOptions::at(clock.instant())
            .with_eku(purpose)
            .with_policy(pol);
        self.verifications += 1;
        let out = match verify::verify(&cert, &p.pool, &r.pool, &opts) {
            Ok(_) => {
                return Err(SimError::Internal(format!(
                    "the leaf of {} verifies against {} although its class was refused",
                    cert.san_uris().first().cloned().unwrap_or_default(),
                    world.trust_label(roots)
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
