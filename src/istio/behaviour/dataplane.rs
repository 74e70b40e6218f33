//! The data plane's rules: the trust-bundle push, which roots each proxy trusts, when it
//! renews, ztunnel's own connection to istiod, and what each proxy presents.

use serde::Serialize;

use super::{Proxy, csr_response, fixed_in, fixed_list};
use crate::cert::Certificate;
use crate::istio::IstioVersion;

/// The ztunnel patches that parse every PEM block of a CSR-response element (ztunnel PR 1510,
/// `parse_cert_multi`).
const ZTUNNEL_MULTI_FROM: [IstioVersion; 3] = [
    IstioVersion::new(1, 24, 6),
    IstioVersion::new(1, 25, 3),
    IstioVersion::new(1, 26, 0),
];
/// The ztunnel patches whose CA client re-reads its root file on change (ztunnel PR 1775,
/// CA_CERT_WATCHER).
const ZTUNNEL_WATCH_FROM: [IstioVersion; 3] = [
    IstioVersion::new(1, 28, 6),
    IstioVersion::new(1, 29, 2),
    IstioVersion::new(1, 30, 0),
];
/// istio-agent's renewal jitter exists from 1.24.
const JITTER_FROM: IstioVersion = IstioVersion::new(1, 24, 0);

/// istio-agent's default SECRET_GRACE_PERIOD_RATIO_JITTER (0.01).
pub const DEFAULT_RATIO_JITTER: f64 = 0.01;

/// True when istiod's trust-bundle push (PCDS) reaches an agent: only with
/// ISTIO_MULTIROOT_MESH on istiod (`multiroot`) AND PROXY_CONFIG_XDS_AGENT at the pod
/// (`xds_agent`). With the flag off, no push ever happens, even after an istiod restart.
///
/// Models istio/istio pilot/pkg/xds/pcds.go, `pcdsNeedsPush`, and
/// pkg/istio-agent/xds_proxy.go (the agent subscribes only with PROXY_CONFIG_XDS_AGENT),
/// 1.22.0 to 1.31.0-rc.0.
pub fn push_reaches_agent(multiroot: bool, xds_agent: bool) -> bool {
    multiroot && xds_agent
}

/// True when an agent acts on a pushed bundle: its bytes differ from the PREVIOUS PUSH
/// (`previous`, None before the first), not from its current roots.
///
/// Models istio/istio security/pkg/nodeagent/cache/secretcache.go,
/// `UpdateConfigTrustBundle`, 1.22.0 to 1.31.0-rc.0.
pub fn agent_takes_push(previous: Option<&[u8]>, pushed: &[u8]) -> bool {
    previous != Some(pushed)
}

/// The agent's ROOTCA after a push: the UNION of the pushed bundle's roots and the roots of its
/// last CSR response, deduplicated and sorted by PEM text. This is also the ORDER of Envoy's
/// trust store.
///
/// Models istio/istio security/pkg/nodeagent/cache/secretcache.go,
/// `mergeConfigTrustBundle`, 1.22.0 to 1.31.0-rc.0.
pub fn agent_rootca(pushed: &[Certificate], csr_roots: &[Certificate]) -> Vec<Certificate> {
    let mut all: Vec<(String, Certificate)> = pushed
        .iter()
        .chain(csr_roots)
        .map(|c| (c.to_pem(), c.clone()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.dedup_by(|a, b| a.0 == b.0);
    all.into_iter().map(|(_, c)| c).collect()
}

/// Which roots of the root file a proxy ends up trusting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RootsTaken {
    /// Every root.
    All,
    /// Only the first root.
    FirstOnly,
    /// Only the last root.
    LastOnly,
}

/// Which roots of istiod's root file a proxy trusts, as a function of istiod's version,
/// ztunnel's, the proxy, and whether the push reaches it (`pushed`,
/// [`push_reaches_agent`]; ztunnel has no push).
///
/// Models istio/istio security/pkg/server/ca/server.go `CreateCertificate` ([`csr_response`])
/// with istio/ztunnel src/tls/certificate.rs (`parse_cert_multi`, PR 1510) and istio/istio
/// security/pkg/nodeagent/cache/secretcache.go (the agent takes `certChainPEM[len-1]`):
/// - istiod 1.24.4 or 1.25.1: ztunnel trusts only the LAST root, whatever its version;
///   sidecars without the push likewise;
/// - otherwise ztunnel 1.24.6+, 1.25.3+, 1.26.0+ trusts every root, an older one only the
///   FIRST; sidecars trust every root.
pub fn roots_taken(
    istiod: IstioVersion,
    ztunnel: IstioVersion,
    proxy: Proxy,
    pushed: bool,
) -> RootsTaken {
    let roots_split = csr_response(istiod).roots_split;
    match proxy {
        Proxy::Ztunnel if roots_split => RootsTaken::LastOnly,
        Proxy::Ztunnel if ztunnel_parses_every_block(ztunnel) => RootsTaken::All,
        Proxy::Ztunnel => RootsTaken::FirstOnly,
        _ if roots_split && !pushed => RootsTaken::LastOnly,
        _ => RootsTaken::All,
    }
}

/// ztunnel of `ztunnel` parses every PEM block of a CSR-response element (1.24.6, 1.25.3,
/// 1.26.0+), else only the first (istio/ztunnel src/tls/certificate.rs, PR 1510).
fn ztunnel_parses_every_block(ztunnel: IstioVersion) -> bool {
    fixed_in(ztunnel, &ZTUNNEL_MULTI_FROM)
}

/// True when a ztunnel of `ztunnel`, answered by istiod of `istiod`, presents every
/// certificate of cert-chain.pem after its leaf: istiod sends one block per CSR-response
/// element ([`csr_response`], 1.24.4, 1.25.1, 1.26.0+) or ztunnel parses every block of an
/// element (1.24.6, 1.25.3, 1.26.0+). Otherwise it presents only cert-chain.pem's FIRST
/// certificate, which breaks chains of three or more CA levels and cross-signed chains
/// (see [`presented_chain`]; istio/ztunnel src/tls/certificate.rs, PR 1510; istio/istio
/// security/pkg/server/ca/server.go `CreateCertificate`).
pub fn ztunnel_presents_whole_chain(istiod: IstioVersion, ztunnel: IstioVersion) -> bool {
    csr_response(istiod).chain_split || ztunnel_parses_every_block(ztunnel)
}

/// The istiod and ztunnel releases with which ztunnel presents the whole chain, for
/// messages ([`ztunnel_presents_whole_chain`]).
pub fn ztunnel_whole_chain_fixed_in() -> String {
    format!(
        "istiod {} or ztunnel {}",
        super::chain_split_fixed_in(),
        fixed_list(&ZTUNNEL_MULTI_FROM)
    )
}

/// The ztunnel releases that trust every root of a multi-root bundle, for messages.
pub fn ztunnel_multi_root_fixed_in() -> String {
    fixed_list(&ZTUNNEL_MULTI_FROM)
}

/// The roots a proxy trusts from istiod's root file `file` (in file order, duplicates
/// included), IN ITS TRUST-STORE ORDER: [`roots_taken`], deduplicated; for an Envoy proxy that
/// receives the push, the agent's ROOTCA order ([`agent_rootca`]: sorted by PEM text),
/// otherwise the file's order. The one place that builds a proxy's trust store.
pub fn trusted_roots(
    istiod: IstioVersion,
    ztunnel: IstioVersion,
    proxy: Proxy,
    pushed: bool,
    file: &[Certificate],
) -> Vec<Certificate> {
    let taken: Vec<Certificate> = match roots_taken(istiod, ztunnel, proxy, pushed) {
        RootsTaken::All => file.to_vec(),
        RootsTaken::FirstOnly => file.iter().take(1).cloned().collect(),
        RootsTaken::LastOnly => file.last().cloned().into_iter().collect(),
    };
    if proxy.is_envoy() && pushed {
        return agent_rootca(&taken, &[]);
    }
    let mut out: Vec<Certificate> = Vec::with_capacity(taken.len());
    for c in taken {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// One draw of istio-agent's renewal jitter: a fraction in [0, 1) of the configured jitter and
/// a sign that is always + or - (`rand.IntN(2)*2-1`), never 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    /// In [0, 1).
    pub fraction: f64,
    /// The sign: true for +.
    pub positive: bool,
}

/// When a proxy renews a leaf valid `not_before..expire` that it received at `created` (all in
/// the same unit, e.g. milliseconds), with SECRET_GRACE_PERIOD_RATIO `grace_ratio`.
///
/// - Envoy proxies (istio-agent, istio/istio security/pkg/nodeagent/cache/secretcache.go,
///   `rotateTime`): at `expire - (ratio + jitter) * (expire - created)`, with from 1.24 a
///   jitter of `fraction * ratio_jitter` whose sign is always + or -.
/// - ztunnel (istio/ztunnel src/tls/certificate.rs, `refresh_at`): at `not_before +
///   (expire - not_before) / 2`, no jitter, no grace-ratio setting.
#[allow(clippy::too_many_arguments)]
pub fn renewal_at(
    proxy: Proxy,
    agent: IstioVersion,
    created: i64,
    not_before: i64,
    expire: i64,
    grace_ratio: f64,
    ratio_jitter: f64,
    draw: Jitter,
) -> i64 {
    if proxy == Proxy::Ztunnel {
        return not_before + (expire - not_before) / 2;
    }
    let jitter = if agent >= JITTER_FROM {
        let sign = if draw.positive { 1.0 } else { -1.0 };
        draw.fraction * ratio_jitter * sign
    } else {
        0.0
    };
    let ratio = (grace_ratio + jitter).clamp(0.0, 1.0);
    let life = (expire - created).max(0);
    expire - (ratio * life as f64) as i64
}

/// How long after issuance a proxy renews a leaf of lifetime `ttl` (no jitter): Envoy proxies
/// at `ttl * (1 - grace_ratio)`, ztunnel at `ttl / 2` (the rule of [`renewal_at`], as a
/// duration; the planner's waits use it). A NaN or out-of-range ratio reads as renewing at the
/// end of the lifetime.
pub fn renewal_after(
    proxy: Proxy,
    ttl: std::time::Duration,
    grace_ratio: f64,
) -> std::time::Duration {
    if proxy == Proxy::Ztunnel {
        return ttl / 2;
    }
    let r = grace_ratio.clamp(0.0, 1.0);
    std::time::Duration::try_from_secs_f64(ttl.as_secs_f64() * (1.0 - r)).unwrap_or(ttl)
}

/// True when ztunnel's CA client re-reads its root file (the istio-ca-root-cert ConfigMap
/// mount) on change: from ztunnel **1.28.6, 1.29.2, 1.30.0** (CA_CERT_WATCHER, default true,
/// istio/ztunnel PR 1775, src/identity/caclient.rs). Before, it keeps the roots read at start,
/// and since istiod re-signs its serving cert with the new signer when a root change is
/// accepted, an older ztunnel started before root B reached the ConfigMap stops renewing after
/// the signer switch (istio/ztunnel issue 1679).
pub fn ztunnel_watches_ca_root(ztunnel: IstioVersion) -> bool {
    fixed_in(ztunnel, &ZTUNNEL_WATCH_FROM)
}

/// The ztunnel releases that re-read their CA root file, for messages.
pub fn ztunnel_watch_fixed_in() -> String {
    fixed_list(&ZTUNNEL_WATCH_FROM)
}

/// The roots ztunnel's CA client verifies istiod with: the ConfigMap's `current` roots when it
/// watches the file ([`ztunnel_watches_ca_root`]), else those it read at its start.
pub fn ztunnel_ca_client_roots<'a, T: ?Sized>(
    ztunnel: IstioVersion,
    read_at_start: &'a T,
    current: &'a T,
) -> &'a T {
    if ztunnel_watches_ca_root(ztunnel) {
        current
    } else {
        read_at_start
    }
}

/// What a proxy presents in a handshake after istiod of `istiod` answered its CSR with
/// `leaf`, cert-chain.pem `chain` and root file `roots` (certificates in file order).
///
/// - Envoy proxies: leaf + cert-chain.pem + ALL of root-cert.pem (istio/istio
///   security/pkg/nodeagent/cache/secretcache.go, `concatCerts` of the CSR response).
/// - ztunnel: leaf + the intermediates it parsed (istio/ztunnel src/tls/certificate.rs): the
///   middle elements of the response ([`csr_response`]: one element for the whole chain up to
///   1.24.3 and 1.25.0, one per block after, the roots but the last too in 1.24.4 and 1.25.1),
///   of each of which ztunnel before 1.24.6, 1.25.3, 1.26.0 takes only the FIRST block. So
///   with a deep cert-chain.pem (3+ CA levels) an older ztunnel with an istiod that sends it
///   as one element presents only its first certificate.
pub fn presented_chain(
    proxy: Proxy,
    istiod: IstioVersion,
    ztunnel: IstioVersion,
    leaf: &Certificate,
    chain: &[Certificate],
    roots: &[Certificate],
) -> Vec<Certificate> {
    let mut out = vec![leaf.clone()];
    if proxy.is_envoy() {
        out.extend(chain.iter().cloned());
        out.extend(roots.iter().cloned());
        return out;
    }
    let layout = csr_response(istiod);
    let mut elements: Vec<&[Certificate]> = if layout.chain_split {
        chain.chunks(1).collect()
    } else if chain.is_empty() {
        Vec::new()
    } else {
        vec![chain]
    };
    if layout.roots_split && roots.len() > 1 {
        elements.extend(roots[..roots.len() - 1].chunks(1));
    }
    let every = ztunnel_parses_every_block(ztunnel);
    for e in elements {
        if every {
            out.extend(e.iter().cloned());
        } else {
            out.extend(e.first().cloned());
        }
    }
    out
}
