//! Signing keys for test material: RSA from a committed pool (ring cannot generate RSA keys),
//! ECDSA and Ed25519 generated with ring.

use std::fmt;
use std::sync::{Arc, OnceLock};

use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};
use zeroize::Zeroizing;

use super::TestkitError;
pub use crate::key::KeyType;
use crate::signature::Hash;

/// The signature algorithm a key of this type signs with unless told otherwise: SHA-256
/// PKCS#1 v1.5 for RSA, ECDSA with the curve's own hash, Ed25519.
pub fn default_signature(kind: KeyType) -> SigAlg {
    match kind {
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => SigAlg::RsaPkcs1(Hash::Sha256),
        KeyType::EcP256 => SigAlg::EcdsaP256Sha256,
        KeyType::EcP384 => SigAlg::EcdsaP384Sha384,
        KeyType::Ed25519 => SigAlg::Ed25519,
    }
}

/// How many distinct keys of this type [`TestKey::pooled`] cycles through.
pub fn pool_size(kind: KeyType) -> usize {
    match kind {
        KeyType::Rsa2048 => RSA_2048.len(),
        KeyType::Rsa3072 => RSA_3072.len(),
        KeyType::Rsa4096 => RSA_4096.len(),
        KeyType::EcP256 | KeyType::EcP384 | KeyType::Ed25519 => GENERATED_POOL,
    }
}

/// A signature algorithm the factory can sign certificates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// RSA PKCS#1 v1.5 with this hash.
    RsaPkcs1(Hash),
    /// RSASSA-PSS with this hash, MGF1 with the same hash, salt length = hash length (the only
    /// PSS parameters meshtrust, Go and rustls-webpki accept).
    RsaPss(Hash),
    /// ECDSA P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384Sha384,
    /// Ed25519.
    Ed25519,
}

impl SigAlg {
    /// True when a key of `kind` can produce this signature.
    pub fn fits(self, kind: KeyType) -> bool {
        match self {
            SigAlg::RsaPkcs1(_) | SigAlg::RsaPss(_) => kind.is_rsa(),
            SigAlg::EcdsaP256Sha256 => kind == KeyType::EcP256,
            SigAlg::EcdsaP384Sha384 => kind == KeyType::EcP384,
            SigAlg::Ed25519 => kind == KeyType::Ed25519,
        }
    }

    /// The DER `AlgorithmIdentifier` (a complete SEQUENCE TLV), as OpenSSL writes it
    /// (NULL parameters for PKCS#1, explicit hash and MGF1 parameters for PSS).
    pub fn algorithm_identifier(self) -> Vec<u8> {
        use crate::key::tlv;
        use crate::oid;
        const NULL: [u8; 2] = [0x05, 0x00];
        let with_null = |o: &[u8]| tlv(0x30, &[tlv(0x06, o), NULL.to_vec()].concat());
        let hash_oid = |h: Hash| match h {
            Hash::Sha256 => oid::SHA256,
            Hash::Sha384 => oid::SHA384,
            Hash::Sha512 => oid::SHA512,
        };
        match self {
            SigAlg::RsaPkcs1(h) => with_null(match h {
                Hash::Sha256 => oid::SHA256_WITH_RSA,
                Hash::Sha384 => oid::SHA384_WITH_RSA,
                Hash::Sha512 => oid::SHA512_WITH_RSA,
            }),
            SigAlg::RsaPss(h) => {
                let hash_alg = with_null(hash_oid(h));
                let mgf1 = tlv(0x30, &[tlv(0x06, oid::MGF1), hash_alg.clone()].concat());
                let salt = match h {
                    Hash::Sha256 => 32,
                    Hash::Sha384 => 48,
                    Hash::Sha512 => 64,
                };
                let params = tlv(
                    0x30,
                    &[
                        tlv(0xa0, &hash_alg),
                        tlv(0xa1, &mgf1),
                        tlv(0xa2, &tlv(0x02, &[salt])),
                    ]
                    .concat(),
                );
                tlv(0x30, &[tlv(0x06, oid::RSA_PSS), params].concat())
            }
            SigAlg::EcdsaP256Sha256 => tlv(0x30, &tlv(0x06, oid::ECDSA_SHA256)),
            SigAlg::EcdsaP384Sha384 => tlv(0x30, &tlv(0x06, oid::ECDSA_SHA384)),
            SigAlg::Ed25519 => tlv(0x30, &tlv(0x06, oid::ED25519)),
        }
    }

    /// meshtrust's name for the algorithm (as [`crate::signature::SignatureAlgorithm::name`]).
    pub fn to_signature_algorithm(self) -> crate::signature::SignatureAlgorithm {
        use crate::signature::SignatureAlgorithm as S;
        match self {
            SigAlg::RsaPkcs1(h) => S::RsaPkcs1(h),
            SigAlg::RsaPss(h) => S::RsaPss(h),
            SigAlg::EcdsaP256Sha256 => S::Ecdsa(Hash::Sha256),
            SigAlg::EcdsaP384Sha384 => S::Ecdsa(Hash::Sha384),
            SigAlg::Ed25519 => S::Ed25519,
        }
    }
}

const RSA_2048: [&str; 8] = [
    include_str!("../../tests/fixtures/keys/rsa-2048-0.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-1.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-2.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-3.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-4.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-5.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-6.pem"),
    include_str!("../../tests/fixtures/keys/rsa-2048-7.pem"),
];
const RSA_3072: [&str; 2] = [
    include_str!("../../tests/fixtures/keys/rsa-3072-0.pem"),
    include_str!("../../tests/fixtures/keys/rsa-3072-1.pem"),
];
const RSA_4096: [&str; 3] = [
    include_str!("../../tests/fixtures/keys/rsa-4096-0.pem"),
    include_str!("../../tests/fixtures/keys/rsa-4096-1.pem"),
    include_str!("../../tests/fixtures/keys/rsa-4096-2.pem"),
];

/// Size of the generated ECDSA / Ed25519 pools.
const GENERATED_POOL: usize = 16;

enum Signer {
    Rsa(rs::RsaKeyPair),
    Ecdsa(rs::EcdsaKeyPair),
    Ed25519(rs::Ed25519KeyPair),
}

struct Inner {
    kind: KeyType,
    pkcs8: Zeroizing<Vec<u8>>,
    /// The subjectPublicKey bits: PKCS#1 RSAPublicKey, uncompressed EC point, or raw Ed25519.
    public: Vec<u8>,
    signer: Signer,
}

/// A private key for building test certificates. Cheap to clone (shared).
///
/// Never printed: `Debug` shows the kind and the public key's fingerprint only.
#[derive(Clone)]
pub struct TestKey(Arc<Inner>);

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kind", &self.0.kind)
            .field(
                "public_sha256",
                &crate::cert::Fingerprint::of(&self.0.public).short(),
            )
            .finish()
    }
}

impl PartialEq for TestKey {
    /// Keys are equal when their public keys are.
    fn eq(&self, other: &Self) -> bool {
        self.0.public == other.0.public
    }
}
impl Eq for TestKey {}

fn pool(kind: KeyType) -> &'static [TestKey] {
    static POOLS: [OnceLock<Vec<TestKey>>; 6] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = KeyType::ALL.iter().position(|&k| k == kind).unwrap_or(0);
    POOLS[slot].get_or_init(|| {
        let pems: &[&str] = match kind {
            KeyType::Rsa2048 => &RSA_2048,
            KeyType::Rsa3072 => &RSA_3072,
            KeyType::Rsa4096 => &RSA_4096,
            _ => &[],
        };
        let keys: Result<Vec<TestKey>, TestkitError> = if kind.is_rsa() {
            pems.iter()
                .map(|pem| TestKey::from_pkcs8_pem(kind, pem))
                .collect()
        } else {
            (0..GENERATED_POOL)
                .map(|_| TestKey::generate(kind))
                .collect()
        };
        // The committed RSA keys and ring's generators are known good; a failure here is a
        // broken checkout or platform, which no test could work around.
        keys.unwrap_or_else(|e| panic!("testkit key pool for {kind:?}: {e}"))
    })
}

impl TestKey {
    /// Key number `index` (modulo [`pool_size`]) of a fixed per-kind pool: the
    /// committed RSA keys, or ECDSA / Ed25519 keys generated once per process. Reusing pooled
    /// keys keeps property tests fast; distinct indices below the pool size give distinct keys.
    ///
    /// # Panics
    ///
    /// When a committed RSA key does not load or ring fails to generate a key: a broken
    /// checkout or platform, not something a test could handle.
    pub fn pooled(kind: KeyType, index: usize) -> TestKey {
        let p = pool(kind);
        p[index % p.len()].clone()
    }

    /// A fresh key from the operating system's randomness. RSA keys cannot be generated with
    /// ring: for them this is [`TestkitError::Unsupported`] (use [`TestKey::pooled`]).
    pub fn generate(kind: KeyType) -> Result<TestKey, TestkitError> {
        let rng = SystemRandom::new();
        let doc = match kind {
            KeyType::EcP256 => {
                rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            }
            KeyType::EcP384 => {
                rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
            }
            KeyType::Ed25519 => rs::Ed25519KeyPair::generate_pkcs8(&rng),
            _ => {
                return Err(TestkitError::Unsupported(format!(
                    "ring cannot generate {kind} keys; use TestKey::pooled"
                )));
            }
        }
        .map_err(|_| TestkitError::Key(format!("ring failed to generate a {kind} key")))?;
        TestKey::from_pkcs8_der(kind, doc.as_ref())
    }

    /// A key from PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(kind: KeyType, pem: &str) -> Result<TestKey, TestkitError> {
        let blocks = crate::pem::parse(pem.as_bytes())
            .map_err(|e| TestkitError::Key(format!("PKCS#8 PEM: {e}")))?;
        let block = blocks
            .first()
            .ok_or_else(|| TestkitError::Key("no PEM block".to_owned()))?;
        let der = Zeroizing::new(block.der.clone());
        TestKey::from_pkcs8_der(kind, &der)
    }

    /// A key from PKCS#8 DER.
    pub fn from_pkcs8_der(kind: KeyType, der: &[u8]) -> Result<TestKey, TestkitError> {
        let rng = SystemRandom::new();
        let bad = |e: ring::error::KeyRejected| TestkitError::Key(format!("{kind} PKCS#8: {e}"));
        let (signer, public) = match kind {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let k = rs::RsaKeyPair::from_pkcs8(der).map_err(bad)?;
                let bits = k.public().modulus_len() * 8;
                if kind.algorithm().bits() as usize != bits {
                    return Err(TestkitError::Key(format!(
                        "key has {bits} bits, expected {kind}"
                    )));
                }
                let public = k.public_key().as_ref().to_vec();
                (Signer::Rsa(k), public)
            }
            KeyType::EcP256 | KeyType::EcP384 => {
                let alg = if kind == KeyType::EcP256 {
                    &rs::ECDSA_P256_SHA256_ASN1_SIGNING
                } else {
                    &rs::ECDSA_P384_SHA384_ASN1_SIGNING
                };
                let k = rs::EcdsaKeyPair::from_pkcs8(alg, der, &rng).map_err(bad)?;
                let public = k.public_key().as_ref().to_vec();
                (Signer::Ecdsa(k), public)
            }
            KeyType::Ed25519 => {
                let k = rs::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?;
                let public = k.public_key().as_ref().to_vec();
                (Signer::Ed25519(k), public)
            }
        };
        Ok(TestKey(Arc::new(Inner {
            kind,
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
            signer,
        })))
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyType {
        self.0.kind
    }

    /// The PKCS#8 DER of the private key.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.0.pkcs8
    }

    /// The key as meshtrust's [`crate::key::PrivateKey`].
    pub fn to_private_key(&self) -> Result<crate::key::PrivateKey, TestkitError> {
        crate::key::PrivateKey::from_pkcs8_der(&self.0.pkcs8)
            .map_err(|e| TestkitError::Key(e.to_string()))
    }

    /// The subjectPublicKey bits (what a certificate's SubjectPublicKeyInfo carries).
    pub fn public_key(&self) -> &[u8] {
        &self.0.public
    }

    /// Signs `message` with `alg`; the algorithm must fit the key ([`SigAlg::fits`]).
    pub fn sign(&self, alg: SigAlg, message: &[u8]) -> Result<Vec<u8>, TestkitError> {
        let rng = SystemRandom::new();
        let failed = || TestkitError::Key(format!("signing with {alg:?} failed"));
        if !alg.fits(self.0.kind) {
            return Err(TestkitError::Unsupported(format!(
                "a {} key cannot sign {alg:?}",
                self.0.kind
            )));
        }
        match &self.0.signer {
            Signer::Rsa(k) => {
                let padding: &'static dyn rs::RsaEncoding = match alg {
                    SigAlg::RsaPkcs1(Hash::Sha256) => &rs::RSA_PKCS1_SHA256,
                    SigAlg::RsaPkcs1(Hash::Sha384) => &rs::RSA_PKCS1_SHA384,
                    SigAlg::RsaPkcs1(Hash::Sha512) => &rs::RSA_PKCS1_SHA512,
                    SigAlg::RsaPss(Hash::Sha256) => &rs::RSA_PSS_SHA256,
                    SigAlg::RsaPss(Hash::Sha384) => &rs::RSA_PSS_SHA384,
                    _ => &rs::RSA_PSS_SHA512,
                };
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(padding, &rng, message, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
            Signer::Ecdsa(k) => Ok(k
                .sign(&rng, message)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
            Signer::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// rcgen's view of the key: the public key and the algorithm family rcgen writes into the
    /// SubjectPublicKeyInfo. Its signatures are placeholders; [`super::certs`] re-signs.
    pub(crate) fn rcgen(&self) -> RcgenKey<'_> {
        RcgenKey(self)
    }
}

/// Hands out distinct pooled keys, so that no two certificates of a test case share a key
/// by accident (a shared key would let one CA's signatures verify under another's name).
///
/// [`KeyAllocator::take`] returns the next unused key of the wanted kind; when that pool is
/// used up it falls back to the generated pools (P-256, P-384, Ed25519), and only when every
/// pool is used up does it reuse a key.
///
/// ```
/// use meshtrust::testkit::{KeyAllocator, KeyType};
/// let mut keys = KeyAllocator::new();
/// let a = keys.take(KeyType::Rsa4096);
/// let b = keys.take(KeyType::Rsa4096);
/// assert_ne!(a, b);
/// // The RSA-4096 pool holds three keys: the fourth request falls back to another kind.
/// let _ = keys.take(KeyType::Rsa4096);
/// assert_eq!(keys.take(KeyType::Rsa4096).kind(), KeyType::EcP256);
/// ```
#[derive(Debug, Default, Clone)]
pub struct KeyAllocator {
    used: Vec<(KeyType, usize)>,
}

impl KeyAllocator {
    /// An allocator that has handed out nothing.
    pub fn new() -> KeyAllocator {
        KeyAllocator::default()
    }

    /// The next unused pooled key of `wanted` (or of a fallback kind, see the type docs).
    pub fn take(&mut self, wanted: KeyType) -> TestKey {
        for kind in
            std::iter::once(wanted).chain([KeyType::EcP256, KeyType::EcP384, KeyType::Ed25519])
        {
            if let Some(i) = (0..pool_size(kind)).find(|i| !self.used.contains(&(kind, *i))) {
                self.used.push((kind, i));
                return TestKey::pooled(kind, i);
            }
        }
        // Every pool is used up: reuse, round robin over the wanted kind.
        let n = self.used.len();
        self.used.push((wanted, n));
        TestKey::pooled(wanted, n)
    }

    /// How many keys were handed out.
    pub fn len(&self) -> usize {
        self.used.len()
    }

    /// True before the first [`KeyAllocator::take`].
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

/// Adapter that lets rcgen lay out a certificate around a [`TestKey`].
pub(crate) struct RcgenKey<'a>(&'a TestKey);

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.0.0.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.0.0.kind {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        // Placeholder: the certificate is re-signed with the requested algorithm afterwards.
        Ok(Vec::new())
    }
}
