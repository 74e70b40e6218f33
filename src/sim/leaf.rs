//! The real certificate behind a leaf of the model: issued lazily, with [`generate::leaf`]
//! by the signer's real key at the leaf's issuance instant, when a verification needs it.
//!
//! [`generate::leaf`]: crate::generate::leaf

use super::SimError;
use super::present::PresentedRec;
use super::queue::instant_unix;
use super::world::{LeafId, RootSetId, RootSetRec, World};
use crate::cert::Certificate;
use crate::istio::behaviour as istiod;

impl World {
    /// The real certificate of a leaf: issued with generate::leaf by its signer's key, at its
    /// issuance instant.
    pub(super) fn materialize(&mut self, lid: LeafId) -> Result<Certificate, SimError> {
        let Some(leaf) = self.leaves.get(lid) else {
            return Err(SimError::Internal(format!("no leaf {lid}")));
        };
        if let Some(c) = &leaf.cert {
            return Ok(c.clone());
        }
        let (signer, owner, issued, nb, na) = (
            leaf.signer,
            leaf.owner,
            leaf.issued,
            leaf.not_before,
            leaf.not_after,
        );
        let identity = self
            .proxies
            .get(owner)
            .map(|p| p.identity.clone())
            .ok_or_else(|| SimError::Internal(format!("no proxy {owner}")))?;
        let s = self
            .signers
            .get(signer)
            .ok_or_else(|| SimError::Internal(format!("no signer {signer}")))?;
        let spec = crate::generate::LeafSpec {
            key_type: crate::generate::KeyType::EcP256,
            ttl: time::Duration::seconds(self.ttl_secs),
            ..crate::generate::LeafSpec::istio(identity)
        };
        // A leaf istiod (before 1.28.7, 1.29.3, 1.30.0) signs past its CA chain's notAfter,
        // or with an expired chain, stands in as one clamped to the chain (issued just before
        // it expires): every verification gives the same verdict, as the chain's own validity
        // is checked.
        let issued_real = issued.min(s.limit - 1);
        let (nb, na) = if issued_real == issued {
            (nb, na.min(s.limit))
        } else {
            (issued_real - istiod::BACKDATE_SECS, s.limit)
        };
        let g = crate::generate::leaf(&spec, &s.issuer, instant_unix(issued_real))
            .map_err(|e| SimError::Internal(format!("issuing a leaf with {}: {e}", s.label)))?;
        let cert = g.certificate;
        if cert.not_before_unix() != nb || cert.not_after_unix() != na {
            return Err(SimError::Internal(format!(
                "the issued leaf is valid {}..{}, the model expected {nb}..{na}",
                cert.not_before_unix(),
                cert.not_after_unix()
            )));
        }
        self.certificates_issued += 1;
        if let Some(l) = self.leaves.get_mut(lid) {
            l.cert = Some(cert.clone());
        }
        Ok(cert)
    }

    /// What a verification of `lid` against trust set `roots` needs: the leaf's real
    /// certificate, the chain it is presented with, and the receiver's trust set.
    pub(super) fn verification_inputs(
        &mut self,
        lid: LeafId,
        roots: RootSetId,
    ) -> Result<(Certificate, &PresentedRec, &RootSetRec), SimError> {
        let cert = self.materialize(lid)?;
        let presented = self
            .leaves
            .get(lid)
            .map(|l| l.presented)
            .unwrap_or_default();
        let (Some(p), Some(r)) = (self.presented.get(presented), self.root_sets.get(roots)) else {
            return Err(SimError::Internal("unknown chain or trust set".to_owned()));
        };
        Ok((cert, p, r))
    }
}
