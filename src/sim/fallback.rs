//! A restarted istiod that cannot load the `cacerts` secret. What it does is the model's
//! answer ([`behaviour::completeness`]): before 1.26.1, without `ca-key.pem`
//! ([`Completeness::SelfSignedFallback`]), the new istiod silently runs its self-signed CA: the
//! root of `istio-ca-secret` when the cluster has one, else a root it generates
//! ([`behaviour::self_signed_root_spec`]) and writes there; it signs new leaves with it and
//! serves, in CSR responses and the `istio-ca-root-cert` ConfigMap, that root followed by the
//! mounted root-cert.pem ([`behaviour::self_signed_root_file`]). Peers that do not trust that
//! root refuse the new leaves. Otherwise (from 1.26.1 "incomplete signing CA bundle detected",
//! or any other load error) the new pod does not become ready: the rollout stalls and the old
//! istiod keeps serving.

use time::OffsetDateTime;

use super::world::{TRUST_DOMAIN, World};
use crate::generate::{self, KeyType};
use crate::istio::behaviour::{self, Completeness, LoadedCa};
use crate::istio::{self, CaSecret};

/// istiod restarted at `at` with `secret`, which its load check refused with `error`: the
/// self-signed CA it runs instead, with the sentence that says so; or, when the rollout
/// stalls, the deviation that says why. `own` is the cluster's `istio-ca-secret` (written
/// when istiod generates a root).
pub(super) fn without_cacerts(
    world: &mut World,
    own: &mut Option<CaSecret>,
    secret: &CaSecret,
    error: &str,
    at: OffsetDateTime,
) -> Result<(LoadedCa, String), String> {
    let version = world.profile.istio_version;
    let Completeness::SelfSignedFallback { key } = behaviour::completeness(secret, version) else {
        return Err(format!(
            "the new istiod cannot load cacerts ({error}): the rollout stalls and the old istiod keeps serving"
        ));
    };
    match self_signed_ca(world, own, secret, at) {
        Ok((loaded, origin)) => Ok((
            loaded,
            format!(
                "istiod {version} started without {key}: runs its self-signed CA (before {}) with {origin}",
                behaviour::completeness_checked_from()
            ),
        )),
        Err(e) => Err(format!(
            "istiod {version} started without {key} cannot start its self-signed CA ({e}): the rollout stalls and the old istiod keeps serving"
        )),
    }
}

/// The self-signed CA istiod loads at start with the mounted `cacerts` (`mounted`), and where
/// its root comes from: the cluster's `istio-ca-secret` (`own`), else a new root written there.
fn self_signed_ca(
    world: &mut World,
    own: &mut Option<CaSecret>,
    mounted: &CaSecret,
    at: OffsetDateTime,
) -> Result<(LoadedCa, &'static str), String> {
    let (own, origin) = match own {
        Some(s) => (s.clone(), "the root of istio-ca-secret"),
        None => {
            // Istio's key is RSA 2048; the simulated CAs are ECDSA P-256 (the key type
            // plays no part in any verification here).
            let spec = generate::RootSpec {
                key_type: KeyType::EcP256,
                ..behaviour::self_signed_root_spec(TRUST_DOMAIN)
            };
            let root = generate::root(&spec, at).map_err(|e| e.to_string())?;
            world.label_root(&root.certificate);
            let s = root.istio_ca_secret();
            *own = Some(s.clone());
            (s, "a new self-signed root written to istio-ca-secret")
        }
    };
    let ca_cert = own.file(istio::CA_CERT).unwrap_or_default();
    let file = behaviour::self_signed_root_file(ca_cert, mounted.file(mounted.root_file()));
    let mut serving = own.clone();
    serving.set_file(istio::ROOT_CERT, file);
    let loaded = behaviour::load(&serving, world.profile.istio_version, at)?;
    Ok((loaded, origin))
}
