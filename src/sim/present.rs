//! What a proxy presents in a handshake: the one model's answer
//! ([`behaviour::presented_chain`](crate::istio::behaviour::presented_chain)) for the proxy's
//! kind, istiod's and ztunnel's versions, the signer's cert-chain.pem and the root file of the
//! CSR response the leaf came with. Interned: the traffic check keys its verdicts on it, in
//! order (Envoy's first-match issuer choice depends on the order).

use std::collections::HashMap;

use super::ProxyKind;
use crate::cert::{Certificate, Fingerprint};
use crate::istio::IstioProfile;
use crate::istio::behaviour::{self, Proxy};
use crate::verify::CertPool;

/// An interned presented chain (what follows the leaf).
pub(super) type PresentedId = usize;

/// What determines a presented chain: the proxy, the signer (its id in the world) and the
/// SHA-256 of the CSR response's root file.
pub(super) type PresentedInput = (Proxy, usize, Fingerprint);

/// The certificates a proxy sends after its leaf, in its order.
pub(super) struct PresentedRec {
    /// In the order the proxy sends them, duplicates included.
    pub certs: Vec<Certificate>,
    /// The same as the verifier's pool of presented certificates (insertion order kept, a
    /// repeated certificate counted once, as BoringSSL and webpki ignore duplicates).
    pub pool: CertPool,
}

/// The presented chains of a run, interned by content (fingerprints in order) and by what
/// determines them (the proxy, the signer and the CSR response's root file).
#[derive(Default)]
pub(super) struct Presented {
    recs: Vec<PresentedRec>,
    by_content: HashMap<Vec<Fingerprint>, PresentedId>,
    by_input: HashMap<PresentedInput, PresentedId>,
}

impl Presented {
    /// The chain of `id`.
    pub(super) fn get(&self, id: PresentedId) -> Option<&PresentedRec> {
        self.recs.get(id)
    }

    /// The chain already interned for `input`.
    pub(super) fn by_input(&self, input: &PresentedInput) -> Option<PresentedId> {
        self.by_input.get(input).copied()
    }

    /// Interns `certs`, the chain of `input` ([`after_leaf`]).
    pub(super) fn intern_for(
        &mut self,
        input: PresentedInput,
        certs: Vec<Certificate>,
    ) -> PresentedId {
        let id = self.intern(certs);
        self.by_input.insert(input, id);
        id
    }

    /// Interns `certs` (what follows the leaf, in order).
    fn intern(&mut self, certs: Vec<Certificate>) -> PresentedId {
        let key: Vec<Fingerprint> = certs.iter().map(Certificate::fingerprint).collect();
        if let Some(&id) = self.by_content.get(&key) {
            return id;
        }
        self.recs.push(PresentedRec {
            pool: CertPool::from_certificates(certs.iter()),
            certs,
        });
        let id = self.recs.len() - 1;
        self.by_content.insert(key, id);
        id
    }
}

/// What a proxy of `kind` presents after a leaf from the signer `signer_cert` (with
/// cert-chain.pem `signer_chain`) that came with istiod's root file `roots_file`
/// (certificates in file order): [`behaviour::presented_chain`] for the profile's istiod and
/// ztunnel versions, without its first element (the leaf: the model puts it first and its
/// answer does not depend on it, so the signer's own certificate stands in for every leaf of
/// that signer).
pub(super) fn after_leaf(
    profile: &IstioProfile,
    kind: ProxyKind,
    signer_cert: &Certificate,
    signer_chain: &[Certificate],
    roots_file: &[Certificate],
) -> Vec<Certificate> {
    let chain = behaviour::presented_chain(
        kind.model(),
        profile.istio_version,
        profile.ztunnel(),
        signer_cert,
        signer_chain,
        roots_file,
    );
    chain.into_iter().skip(1).collect()
}
