//! Certificate pools indexed by subject: the roots of a bundle, or candidate intermediates.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::bundle::{Bundle, TrustSet};
use crate::cert::{Certificate, Fingerprint};

/// A certificate keyed by its raw subject Name bytes.
#[derive(Clone)]
struct BySubject(Certificate);

impl Hash for BySubject {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `[u8]` does, for the `Borrow<[u8]>` lookups.
        self.0.subject_der().hash(state);
    }
}

impl PartialEq for BySubject {
    fn eq(&self, other: &Self) -> bool {
        self.0.subject_der() == other.0.subject_der()
    }
}
impl Eq for BySubject {}

impl Borrow<[u8]> for BySubject {
    fn borrow(&self) -> &[u8] {
        self.0.subject_der()
    }
}

/// A set of distinct certificates indexed by subject Name (raw DER) and by fingerprint.
///
/// Build it once from a [`Bundle`], a [`TrustSet`] or any iterator; looking up the issuers
/// of a certificate then costs one hash of its issuer Name, however many certificates the
/// pool holds. Duplicates (same DER) are kept once, at their first position; certificates
/// with the same subject and different keys or validity (re-keyed or re-issued CAs) are all
/// kept, in insertion order.
///
/// ```
/// use meshtrust::{Bundle, verify::CertPool};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let abb = Bundle::parse(&std::fs::read(format!("{dir}root-cert-combined-2.pem"))?)?;
/// let pool = CertPool::from(&abb);
/// assert_eq!((abb.len(), pool.len()), (3, 2)); // A + B + B: two distinct roots
/// let b = abb.certificates().nth(1).unwrap();
/// assert_eq!(pool.with_subject(b.subject_der()).count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct CertPool {
    certs: Vec<Certificate>,
    /// Per subject: the first and last index of its certificates in `certs`.
    by_subject: HashMap<BySubject, (u32, u32)>,
    /// For each certificate, the next one with the same subject (`u32::MAX`: none). A linked
    /// list through one vector instead of a vector per subject: indexing 10,000 roots makes
    /// no per-root allocation.
    next: Vec<u32>,
    by_fingerprint: HashMap<Fingerprint, u32, FingerprintHash>,
}

/// Fingerprints are SHA-256 digests, uniformly distributed: their first eight bytes are a
/// hash already (and an attacker cannot aim at collisions without breaking SHA-256).
#[derive(Clone, Copy, Default)]
struct FingerprintHash;

impl std::hash::BuildHasher for FingerprintHash {
    type Hasher = FingerprintHasher;
    fn build_hasher(&self) -> FingerprintHasher {
        FingerprintHasher(0)
    }
}

#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Called with the 32 digest bytes (after a length prefix through write_usize).
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

const NONE: u32 = u32::MAX;

impl fmt::Debug for CertPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertPool")
            .field("certificates", &self.certs.len())
            .field("subjects", &self.by_subject.len())
            .finish()
    }
}

impl CertPool {
    /// An empty pool.
    pub fn new() -> CertPool {
        CertPool::default()
    }

    /// An empty pool with room for `n` certificates.
    pub fn with_capacity(n: usize) -> CertPool {
        CertPool {
            certs: Vec::with_capacity(n),
            by_subject: HashMap::with_capacity(n),
            next: Vec::with_capacity(n),
            by_fingerprint: HashMap::with_capacity_and_hasher(n, FingerprintHash),
        }
    }

    /// The pool of these certificates (cloning is cheap: certificates are shared).
    pub fn from_certificates<'a>(certs: impl IntoIterator<Item = &'a Certificate>) -> CertPool {
        let iter = certs.into_iter();
        let mut pool = CertPool::with_capacity(iter.size_hint().0);
        for c in iter {
            pool.insert(c.clone());
        }
        pool
    }

    /// Adds a certificate; returns false (and changes nothing) when it is already present,
    /// or when the pool already holds `u32::MAX - 1` certificates.
    pub fn insert(&mut self, cert: Certificate) -> bool {
        let Ok(index) = u32::try_from(self.certs.len()) else {
            return false;
        };
        if index == NONE {
            return false;
        }
        match self.by_fingerprint.entry(cert.fingerprint()) {
            Entry::Occupied(_) => return false,
            Entry::Vacant(v) => {
                v.insert(index);
            }
        }
        match self.by_subject.entry(BySubject(cert.clone())) {
            Entry::Occupied(mut o) => {
                let (_, last) = o.get_mut();
                if let Some(n) = self.next.get_mut(*last as usize) {
                    *n = index;
                }
                *last = index;
            }
            Entry::Vacant(v) => {
                v.insert((index, index));
            }
        }
        self.next.push(NONE);
        self.certs.push(cert);
        true
    }

    /// Number of distinct certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// True when the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// True when the certificate with this fingerprint is in the pool.
    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.by_fingerprint.contains_key(fingerprint)
    }

    /// The certificate with this fingerprint.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&Certificate> {
        self.position(fingerprint).and_then(|i| self.certs.get(i))
    }

    /// Where the certificate stands in insertion order (for a pool built from a bundle: the
    /// index among the bundle's distinct certificates).
    pub fn position(&self, fingerprint: &Fingerprint) -> Option<usize> {
        self.by_fingerprint.get(fingerprint).map(|&i| i as usize)
    }

    /// The certificates in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Certificate> + '_ {
        self.certs.iter()
    }

    /// The certificates whose subject Name is exactly these DER bytes, in insertion order.
    pub fn with_subject<'a>(
        &'a self,
        subject_der: &[u8],
    ) -> impl Iterator<Item = &'a Certificate> + 'a {
        let mut cursor = self
            .by_subject
            .get(subject_der)
            .map_or(NONE, |&(first, _)| first);
        std::iter::from_fn(move || {
            let cert = self.certs.get(cursor as usize)?;
            cursor = self.next.get(cursor as usize).copied().unwrap_or(NONE);
            Some(cert)
        })
    }
}

impl From<&Bundle> for CertPool {
    fn from(bundle: &Bundle) -> CertPool {
        CertPool::from_certificates(bundle.certificates())
    }
}

impl From<&TrustSet> for CertPool {
    fn from(set: &TrustSet) -> CertPool {
        CertPool::from_certificates(set.iter())
    }
}

impl FromIterator<Certificate> for CertPool {
    fn from_iter<I: IntoIterator<Item = Certificate>>(iter: I) -> CertPool {
        let mut pool = CertPool::new();
        pool.extend(iter);
        pool
    }
}

impl Extend<Certificate> for CertPool {
    fn extend<I: IntoIterator<Item = Certificate>>(&mut self, iter: I) {
        for c in iter {
            self.insert(c);
        }
    }
}
