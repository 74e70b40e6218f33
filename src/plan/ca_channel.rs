//! `ztunnel-ca-channel`: ztunnel's own connection to istiod survives every signer switch.
//!
//! ztunnel asks istiod for its certificates over TLS, verifying istiod's serving certificate,
//! which istiod re-signs with its current signer when it accepts a new secret. Before ztunnel
//! 1.28.6, 1.29.2 and 1.30.0 ztunnel verifies it with the roots it read at its start
//! ([`behaviour::ztunnel_ca_client_roots`]): such a ztunnel must be restarted after the new
//! roots reach the istio-ca-root-cert ConfigMap and before the phase whose signer they alone
//! anchor, or it stops renewing (istio/ztunnel issue 1679).

use time::OffsetDateTime;

use super::{Action, Plan, checks::finding};
use crate::cert::Certificate;
use crate::finding::{Code, Finding, Severity};
use crate::istio::CaSecret;
use crate::istio::behaviour;
use crate::verify::{self, CertPool, VerifyOptions};

/// Findings for every phase whose signer the roots an older ztunnel still holds do not
/// anchor. Nothing for a mesh without ztunnel or a ztunnel that re-reads its roots.
pub(super) fn ztunnel_ca_channel(plan: &Plan, now: OffsetDateTime, multi: bool) -> Vec<Finding> {
    let profile = &plan.profile;
    let z = profile.ztunnel();
    if !profile.data_plane.has_ztunnel() || behaviour::ztunnel_watches_ca_root(z) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let Some(first) = plan.phases.first() else {
        return out;
    };
    for start in &first.clusters {
        let cluster = start.cluster.as_str();
        // What ztunnel read at its start: the current phase's roots.
        let mut held = roots_of(&start.secret);
        for phase in plan.phases.iter().skip(1) {
            let Some(secret) = phase.secret(cluster) else {
                continue;
            };
            if !reaches_istiod(secret, &held, now) {
                out.push(finding(
                    Code::ZtunnelCaChannel,
                    Severity::Error,
                    phase,
                    cluster,
                    multi,
                    format!(
                        "ztunnel {z} (before {}) verifies istiod with the roots it read at its last start, and istiod re-signs its serving certificate with the signer of {}, which those roots do not anchor: ztunnel stops renewing (istio/ztunnel issue 1679); restart ztunnel in an earlier phase, after istiod serves the new roots in the istio-ca-root-cert ConfigMap",
                        behaviour::ztunnel_watch_fixed_in(),
                        phase.name
                    ),
                ));
            }
            let restarted = phase
                .actions
                .iter()
                .any(|a| matches!(a, Action::RestartZtunnel { cluster: c } if c == cluster));
            if restarted {
                held = roots_of(secret);
            }
        }
    }
    out
}

/// The root file's distinct certificates (none when it does not parse: the load checks say
/// why).
fn roots_of(secret: &CaSecret) -> Vec<Certificate> {
    secret
        .root_bundle()
        .map(|b| b.dedup().certificates().cloned().collect())
        .unwrap_or_default()
}

/// Whether istiod's serving certificate, signed by `secret`'s signer and sent with
/// cert-chain.pem, can verify against `held`: the signer chains to one of them.
fn reaches_istiod(secret: &CaSecret, held: &[Certificate], now: OffsetDateTime) -> bool {
    let (Ok(signer), true) = (secret.ca_cert(), !held.is_empty()) else {
        // An unreadable signer is the load checks' finding; no roots read, nothing to judge.
        return true;
    };
    let chain: Vec<Certificate> = secret
        .cert_chain()
        .map(|b| b.certificates().cloned().collect())
        .unwrap_or_default();
    // The signer is the target (istiod's serving leaf is its child), so the generic path
    // check: a data plane's end-entity rules would refuse a CA certificate as the target.
    verify::verify(
        &signer,
        &CertPool::from_certificates(chain.iter()),
        &CertPool::from_certificates(held.iter()),
        &VerifyOptions::at(now),
    )
    .is_ok()
}
