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

use super::Label;
use super::engine::{Mesh, TRUST_DOMAIN, letters};
use crate::generate::{self, KeyType};
use crate::istio::behaviour::{self, Completeness, LoadedCa};
use crate::istio::{self, CaSecret};

impl Mesh {
    /// istiod of cluster `c` restarted with `secret`, which its load check refused with
    /// `error`: the self-signed CA it runs instead, with the sentence that says so, or None
    /// when the rollout stalls (a deviation is recorded).
    pub(super) fn without_cacerts(
        &mut self,
        c: usize,
        secret: &CaSecret,
        error: &str,
    ) -> Option<(LoadedCa, String)> {
        let version = self.profile.istio_version;
        let Completeness::SelfSignedFallback { key } = behaviour::completeness(secret, version)
        else {
            self.deviate(
                Some(c),
                format!("the new istiod cannot load cacerts ({error}): the rollout stalls and the old istiod keeps serving"),
            );
            return None;
        };
        match self.self_signed_ca(c, secret) {
            Ok((loaded, origin)) => Some((
                loaded,
                format!(
                    "istiod {version} started without {key}: runs its self-signed CA (before {}) with {origin}",
                    behaviour::completeness_checked_from()
                ),
            )),
            Err(e) => {
                self.deviate(
                    Some(c),
                    format!("istiod {version} started without {key} cannot start its self-signed CA ({e}): the rollout stalls and the old istiod keeps serving"),
                );
                None
            }
        }
    }

    /// The self-signed CA istiod of cluster `c` loads at start with the mounted `cacerts`
    /// (`mounted`), and where its root comes from.
    fn self_signed_ca(
        &mut self,
        c: usize,
        mounted: &CaSecret,
    ) -> Result<(LoadedCa, &'static str), String> {
        let at = self.instant(self.now);
        let (own, origin) = match self.istio_ca_secrets.get(&c) {
            Some(s) => (s.clone(), "the root of istio-ca-secret"),
            None => {
                // Istio's key is RSA 2048; the simulated CAs are ECDSA P-256 (the key type
                // plays no part in any verification here).
                let spec = generate::RootSpec {
                    key_type: KeyType::EcP256,
                    ..behaviour::self_signed_root_spec(TRUST_DOMAIN)
                };
                let root = generate::root(&spec, at).map_err(|e| e.to_string())?;
                self.label_root(&root.certificate);
                let s = root.istio_ca_secret();
                self.istio_ca_secrets.insert(c, s.clone());
                (s, "a new self-signed root written to istio-ca-secret")
            }
        };
        let ca_cert = own.file(istio::CA_CERT).unwrap_or_default();
        let file = behaviour::self_signed_root_file(ca_cert, mounted.file(mounted.root_file()));
        let mut serving = own.clone();
        serving.set_file(istio::ROOT_CERT, file);
        let loaded = behaviour::load(&serving, self.profile.istio_version, at)?;
        Ok((loaded, origin))
    }

    /// Gives a root the simulation made (not in the plan) the next letter, as root and as
    /// signer (a root that signs itself carries the root's letter).
    fn label_root(&mut self, root: &crate::cert::Certificate) {
        let fp = root.fingerprint();
        if self.root_labels.contains_key(&fp) {
            return;
        }
        let label = letters(self.root_labels.len());
        self.root_labels.insert(fp, label.clone());
        self.signer_labels.insert(fp, label.clone());
        for legend in [&mut self.roots_legend, &mut self.signers_legend] {
            legend.push(Label {
                label: label.clone(),
                subject: root.subject().to_owned(),
                fingerprint: fp,
            });
        }
    }
}
