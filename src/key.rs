//! Private keys: PKCS#8, PKCS#1 RSA and SEC1 EC, zeroized on drop and never printed.
//!
//! A [`PrivateKey`] knows its algorithm and size and its public key, so it can answer whether
//! it belongs to a certificate (the check istiod runs on `ca-key.pem` against `ca-cert.pem`).
//! Its `Debug` and `Display` show only the key type and the SHA-256 of the public key.
//!
//! ```
//! use meshtrust::{cert::Certificate, key::PrivateKey};
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
//! let key = PrivateKey::from_pem(&std::fs::read(format!("{dir}ca-key.pem"))?)?;
//! let pem = std::fs::read(format!("{dir}ca-cert.pem"))?;
//! let cert = Certificate::from_der(&meshtrust::pem::parse(&pem)?[0].der)?;
//! assert!(key.matches(&cert));
//! assert!(!format!("{key:?}").contains("MII")); // no key material in Debug
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::cert::{Certificate, Fingerprint};
use crate::derwalk::{self, Walker, tag};
use crate::pem::{self, Label, PemError};
use crate::signature::{self, KeyAlgorithm};

/// The encoding a key was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// PKCS#8 `PRIVATE KEY` (OpenSSL 3's default).
    Pkcs8,
    /// PKCS#1 `RSA PRIVATE KEY` (Istio's samples).
    Pkcs1,
    /// SEC1 `EC PRIVATE KEY`.
    Sec1,
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFormat::Pkcs8 => "PKCS#8",
            KeyFormat::Pkcs1 => "PKCS#1",
            KeyFormat::Sec1 => "SEC1",
        })
    }
}

/// Why key bytes were refused. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM framing is broken.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The input holds no private-key block.
    #[error("no private key block (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) found")]
    NoKey,
    /// The input holds more than one private-key block.
    #[error("{count} private key blocks found; expected exactly one")]
    SeveralKeys {
        /// How many.
        count: usize,
    },
    /// A key type or encoding meshtrust does not handle (encrypted PKCS#8, DSA, P-521...).
    #[error("unsupported private key: {0}")]
    Unsupported(String),
    /// The DER inside the block is malformed.
    #[error("malformed {format} private key (block {block}, line {line}): {detail}")]
    Malformed {
        /// The encoding.
        format: KeyFormat,
        /// PEM block index (0 when read from DER).
        block: usize,
        /// Line of the BEGIN boundary (0 when read from DER).
        line: usize,
        /// What is wrong (structure only, never values).
        detail: String,
    },
    /// An EC key that does not carry its public key (ring needs it, and so does the match).
    #[error("EC private key without its public key; re-export it with `openssl ec` to include it")]
    EcWithoutPublicKey,
    /// The key does not belong to the certificate.
    #[error("private key ({key}) does not match the certificate's public key ({cert})")]
    Mismatch {
        /// The key's type.
        key: String,
        /// The certificate's key type.
        cert: String,
    },
}

/// A private key, held in zeroizing buffers.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    format: KeyFormat,
    /// The key as a PKCS#8 v1 (or v2 for Ed25519 with public key) document, for ring and rcgen.
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public key in the form certificates carry it (RSAPublicKey DER, EC point, Ed25519 key).
    public: PublicKey,
}

#[derive(Clone, PartialEq, Eq)]
enum PublicKey {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Raw(Vec<u8>),
}

impl PublicKey {
    fn bytes_for_fingerprint(&self) -> Vec<u8> {
        match self {
            PublicKey::Rsa { n, e } => [n.as_slice(), e.as_slice()].concat(),
            PublicKey::Raw(b) => b.clone(),
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .field("format", &self.format)
            .field(
                "public_key_sha256",
                &self.public_key_fingerprint().to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} private key ({}, public key sha256 {})",
            self.algorithm,
            self.format,
            self.public_key_fingerprint().short()
        )
    }
}

use crate::oid;

/// The key algorithms meshtrust generates (and the testkit draws test keys from): one enum
/// for the CLI's `--key-type`, [`crate::generate`]'s specs and the test-material factory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub enum KeyType {
    /// RSA 2048 (istiod's default workload key).
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096 (Istio's CA default).
    Rsa4096,
    /// ECDSA P-256 (workloads with `ECC_SIGNATURE_ALGORITHM=ECDSA`).
    EcP256,
    /// ECDSA P-384.
    EcP384,
    /// Ed25519. istiod reads PKCS#8 Ed25519 CA keys (Go's `ParsePKCS8PrivateKey`), but Istio
    /// neither documents nor tests Ed25519 CAs: treat it as unconfirmed for production meshes.
    Ed25519,
}

impl KeyType {
    /// Every key type, in a stable order.
    pub const ALL: [KeyType; 6] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
    ];

    /// The command-line name (`rsa4096`, `ec-p256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// True for the RSA types (which need the `rsa-keygen` feature to generate).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// The [`KeyAlgorithm`] a certificate holding such a key reports.
    ///
    /// ```
    /// use meshtrust::key::KeyType;
    /// assert_eq!(KeyType::Rsa4096.algorithm().to_string(), "RSA 4096");
    /// ```
    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            KeyType::Rsa2048 => KeyAlgorithm::Rsa { bits: 2048 },
            KeyType::Rsa3072 => KeyAlgorithm::Rsa { bits: 3072 },
            KeyType::Rsa4096 => KeyAlgorithm::Rsa { bits: 4096 },
            KeyType::EcP256 => KeyAlgorithm::EcP256,
            KeyType::EcP384 => KeyAlgorithm::EcP384,
            KeyType::Ed25519 => KeyAlgorithm::Ed25519,
        }
    }

    /// True when this build can generate the type.
    pub fn available(self) -> bool {
        !self.is_rsa() || cfg!(feature = "rsa-keygen")
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key type name that is not one of [`KeyType::name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key type {0:?}; expected rsa2048, rsa3072, rsa4096, ec-p256, ec-p384 or ed25519")]
pub struct ParseKeyTypeError(pub String);

impl FromStr for KeyType {
    type Err = ParseKeyTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ParseKeyTypeError(s.to_owned()))
    }
}

impl PrivateKey {
    /// Reads the single private-key block of a PEM text (certificate blocks around it are
    /// ignored; two keys are an error).
    pub fn from_pem(text: &[u8]) -> Result<PrivateKey, KeyError> {
        let blocks = pem::parse(text)?;
        let keys: Vec<_> = blocks.iter().filter(|b| b.label.is_private_key()).collect();
        match keys.len() {
            0 => Err(KeyError::NoKey),
            1 => {
                let b = keys[0];
                let format = match &b.label {
                    Label::PrivateKey => KeyFormat::Pkcs8,
                    Label::RsaPrivateKey => KeyFormat::Pkcs1,
                    Label::EcPrivateKey => KeyFormat::Sec1,
                    other => return Err(KeyError::Unsupported(format!("{other} block"))),
                };
                Self::from_der_at(format, &b.der, b.index, b.begin_line)
            }
            count => Err(KeyError::SeveralKeys { count }),
        }
    }

    /// Reads a DER key in the given format.
    pub fn from_der(format: KeyFormat, der: &[u8]) -> Result<PrivateKey, KeyError> {
        Self::from_der_at(format, der, 0, 0)
    }

    fn from_der_at(
        format: KeyFormat,
        der: &[u8],
        block: usize,
        line: usize,
    ) -> Result<PrivateKey, KeyError> {
        let at = Where {
            format,
            block,
            line,
        };
        match format {
            KeyFormat::Pkcs1 => {
                let public = rsa_public_from_pkcs1(der).map_err(at.der())?;
                Ok(PrivateKey {
                    algorithm: rsa_algorithm(&public),
                    format,
                    pkcs8: Zeroizing::new(wrap_pkcs8(&rsa_alg_id(), der)),
                    public,
                })
            }
            KeyFormat::Sec1 => {
                let (curve, public) = sec1_parts(der).map_err(at.der())?;
                let algorithm = curve_algorithm(curve.as_deref()).ok_or_else(|| {
                    KeyError::Unsupported(
                        "EC curve other than P-256 and P-384 (or missing curve)".to_owned(),
                    )
                })?;
                let public = public.ok_or(KeyError::EcWithoutPublicKey)?;
                let curve = curve.unwrap_or_default();
                Ok(PrivateKey {
                    algorithm,
                    format,
                    pkcs8: Zeroizing::new(wrap_pkcs8(&ec_alg_id(&curve), der)),
                    public: PublicKey::Raw(public),
                })
            }
            KeyFormat::Pkcs8 => from_pkcs8_at(der, &at),
        }
    }

    /// Wraps a PKCS#8 document produced by a key generator.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, KeyError> {
        Self::from_der(KeyFormat::Pkcs8, der)
    }

    /// The key's algorithm and size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The format it was read from.
    pub fn format(&self) -> KeyFormat {
        self.format
    }

    /// The key as PKCS#8 DER (zeroized when dropped). Handle with care.
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM block (zeroized when dropped).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem::encode(&Label::PrivateKey, &self.pkcs8))
    }

    /// SHA-256 over the public key components: a safe way to name a key in logs.
    pub fn public_key_fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public.bytes_for_fingerprint())
    }

    /// True when this key's public half is the certificate's public key.
    pub fn matches(&self, cert: &Certificate) -> bool {
        self.check_matches(cert).is_ok()
    }

    /// Like [`PrivateKey::matches`], with an error that names both key types.
    pub fn check_matches(&self, cert: &Certificate) -> Result<(), KeyError> {
        let mismatch = || KeyError::Mismatch {
            key: self.algorithm.to_string(),
            cert: cert.key_algorithm().to_string(),
        };
        if self.algorithm != cert.key_algorithm() {
            return Err(mismatch());
        }
        let same = match &self.public {
            PublicKey::Rsa { n, e } => match signature::rsa_public_components(cert.public_key()) {
                Ok((cn, ce)) => {
                    signature::strip_leading_zeros(cn) == n.as_slice()
                        && signature::strip_leading_zeros(ce) == e.as_slice()
                }
                Err(_) => false,
            },
            PublicKey::Raw(p) => p.as_slice() == cert.public_key(),
        };
        if same { Ok(()) } else { Err(mismatch()) }
    }
}

fn rsa_algorithm(public: &PublicKey) -> KeyAlgorithm {
    match public {
        PublicKey::Rsa { n, .. } => KeyAlgorithm::Rsa {
            bits: n.first().map_or(0, |&top| {
                (n.len() as u32 - 1) * 8 + (8 - top.leading_zeros())
            }),
        },
        PublicKey::Raw(_) => KeyAlgorithm::Unknown,
    }
}

fn curve_algorithm(curve: Option<&[u8]>) -> Option<KeyAlgorithm> {
    match curve? {
        oid::P256 => Some(KeyAlgorithm::EcP256),
        oid::P384 => Some(KeyAlgorithm::EcP384),
        _ => None,
    }
}

/// Where a key came from, for its errors.
struct Where {
    format: KeyFormat,
    block: usize,
    line: usize,
}

impl Where {
    fn malformed(&self, detail: impl Into<String>) -> KeyError {
        KeyError::Malformed {
            format: self.format,
            block: self.block,
            line: self.line,
            detail: detail.into(),
        }
    }

    fn der(&self) -> impl Fn(derwalk::DerError) -> KeyError + '_ {
        move |e| self.malformed(e.to_string())
    }
}

/// A PKCS#8 PrivateKeyInfo (v1, or v2 with the public key): RSA, EC or Ed25519.
fn from_pkcs8_at(der: &[u8], at: &Where) -> Result<PrivateKey, KeyError> {
    let derr = at.der();
    let mut w = Walker::new(der);
    let seq = w
        .expect(tag::SEQUENCE, "expected PrivateKeyInfo SEQUENCE")
        .map_err(&derr)?;
    w.finish("trailing data after PrivateKeyInfo")
        .map_err(&derr)?;
    let mut s = seq.walker();
    let version = derwalk::small_uint(&s.expect(tag::INTEGER, "expected version").map_err(&derr)?)
        .map_err(&derr)?;
    if version > 1 {
        return Err(at.malformed(format!("unknown PKCS#8 version {version}")));
    }
    let alg = s
        .expect(tag::SEQUENCE, "expected privateKeyAlgorithm")
        .map_err(&derr)?;
    let private = s
        .expect(tag::OCTET_STRING, "expected privateKey OCTET STRING")
        .map_err(&derr)?;
    s.optional(tag::explicit(0)).map_err(&derr)?;
    let public_v2 = s.optional(tag::implicit(1)).map_err(&derr)?;
    s.finish("trailing data in PrivateKeyInfo").map_err(&derr)?;
    let mut a = alg.walker();
    let alg_oid = a
        .expect(tag::OID, "expected algorithm OID")
        .map_err(&derr)?;
    let params = if a.is_empty() {
        None
    } else {
        Some(a.any().map_err(&derr)?)
    };
    let (algorithm, public) = match alg_oid.value {
        oid::RSA_ENCRYPTION => {
            let public = rsa_public_from_pkcs1(private.value).map_err(&derr)?;
            (rsa_algorithm(&public), public)
        }
        oid::EC_PUBLIC_KEY => pkcs8_ec(params, private.value, at)?,
        oid::ED25519 => pkcs8_ed25519(private.value, public_v2, at)?,
        other => {
            return Err(KeyError::Unsupported(format!(
                "key algorithm {}",
                oid::dotted(other)
            )));
        }
    };
    Ok(PrivateKey {
        algorithm,
        format: at.format,
        pkcs8: Zeroizing::new(der.to_vec()),
        public,
    })
}

/// The EC key inside a PKCS#8 document: the curve named by the algorithm parameters, and the
/// ECPrivateKey's (which must agree when present).
fn pkcs8_ec(
    params: Option<derwalk::Tlv<'_>>,
    private: &[u8],
    at: &Where,
) -> Result<(KeyAlgorithm, PublicKey), KeyError> {
    let outer_curve = match params {
        Some(p) if p.tag == tag::OID => p.value.to_vec(),
        _ => {
            return Err(KeyError::Unsupported(
                "EC key without a named curve".to_owned(),
            ));
        }
    };
    let (inner_curve, public) = sec1_parts(private).map_err(at.der())?;
    if inner_curve.as_deref().is_some_and(|c| c != outer_curve) {
        return Err(at.malformed("curve in ECPrivateKey differs from the PKCS#8 algorithm"));
    }
    let algorithm = curve_algorithm(Some(&outer_curve))
        .ok_or_else(|| KeyError::Unsupported("EC curve other than P-256 and P-384".to_owned()))?;
    let public = public.ok_or(KeyError::EcWithoutPublicKey)?;
    Ok((algorithm, PublicKey::Raw(public)))
}

/// The Ed25519 key inside a PKCS#8 document: its seed, and the public key a v2 document
/// carries, which must be the seed's.
fn pkcs8_ed25519(
    private: &[u8],
    public_v2: Option<derwalk::Tlv<'_>>,
    at: &Where,
) -> Result<(KeyAlgorithm, PublicKey), KeyError> {
    use ring::signature::KeyPair;
    let mut inner = Walker::new(private);
    let seed = inner
        .expect(tag::OCTET_STRING, "expected CurvePrivateKey")
        .map_err(at.der())?;
    inner
        .finish("trailing data in CurvePrivateKey")
        .map_err(at.der())?;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed.value)
        .map_err(|_| at.malformed("Ed25519 seed is not 32 bytes"))?;
    let public = pair.public_key().as_ref().to_vec();
    if let Some(p) = public_v2
        && derwalk::bit_string_octets(&p).map_err(at.der())? != public.as_slice()
    {
        return Err(at.malformed("Ed25519 public key does not match its seed"));
    }
    Ok((KeyAlgorithm::Ed25519, PublicKey::Raw(public)))
}

/// The public (n, e) of an RSAPrivateKey, after checking its structure.
fn rsa_public_from_pkcs1(der: &[u8]) -> Result<PublicKey, derwalk::DerError> {
    let mut w = Walker::new(der);
    let seq = w.expect(tag::SEQUENCE, "expected RSAPrivateKey SEQUENCE")?;
    w.finish("trailing data after RSAPrivateKey")?;
    let mut s = seq.walker();
    let version = derwalk::small_uint(&s.expect(tag::INTEGER, "expected version")?)?;
    if version != 0 {
        return Err(derwalk::DerError {
            offset: 0,
            what: "multi-prime RSA keys are not supported",
        });
    }
    let mut ints = Vec::with_capacity(8);
    // modulus, publicExponent, privateExponent, prime1, prime2, exponent1, exponent2, coefficient
    for _ in 0..8 {
        let t = s.expect(tag::INTEGER, "expected RSAPrivateKey INTEGER")?;
        ints.push(derwalk::integer(&t)?);
    }
    s.finish("trailing data in RSAPrivateKey")?;
    Ok(PublicKey::Rsa {
        n: signature::strip_leading_zeros(ints[0]).to_vec(),
        e: signature::strip_leading_zeros(ints[1]).to_vec(),
    })
}

type Sec1Parts = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The curve OID ([0] parameters) and public point ([1]) of an ECPrivateKey.
fn sec1_parts(der: &[u8]) -> Result<Sec1Parts, derwalk::DerError> {
    let mut w = Walker::new(der);
    let seq = w.expect(tag::SEQUENCE, "expected ECPrivateKey SEQUENCE")?;
    w.finish("trailing data after ECPrivateKey")?;
    let mut s = seq.walker();
    let version = derwalk::small_uint(&s.expect(tag::INTEGER, "expected version")?)?;
    if version != 1 {
        return Err(derwalk::DerError {
            offset: 0,
            what: "ECPrivateKey version must be 1",
        });
    }
    s.expect(tag::OCTET_STRING, "expected privateKey OCTET STRING")?;
    let curve = match s.optional(tag::explicit(0))? {
        Some(p) => Some(
            p.walker()
                .expect(tag::OID, "expected namedCurve OID")?
                .value
                .to_vec(),
        ),
        None => None,
    };
    let public = match s.optional(tag::explicit(1))? {
        Some(p) => Some(
            derwalk::bit_string_octets(
                &p.walker()
                    .expect(tag::BIT_STRING, "expected publicKey BIT STRING")?,
            )?
            .to_vec(),
        ),
        None => None,
    };
    s.finish("trailing data in ECPrivateKey")?;
    Ok((curve, public))
}

fn rsa_alg_id() -> Vec<u8> {
    let mut v = vec![0x30, 0x0d, 0x06, 0x09];
    v.extend_from_slice(oid::RSA_ENCRYPTION);
    v.extend_from_slice(&[0x05, 0x00]);
    v
}

fn ec_alg_id(curve: &[u8]) -> Vec<u8> {
    let mut body = vec![0x06, oid::EC_PUBLIC_KEY.len() as u8];
    body.extend_from_slice(oid::EC_PUBLIC_KEY);
    body.push(0x06);
    body.push(curve.len() as u8);
    body.extend_from_slice(curve);
    tlv(0x30, &body)
}

/// PrivateKeyInfo v1 around a private key.
fn wrap_pkcs8(alg_id: &[u8], private: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(alg_id);
    body.extend_from_slice(&tlv(0x04, private));
    let out = tlv(0x30, &body);
    // `body` holds a copy of the private key: wipe it.
    zeroize::Zeroize::zeroize(&mut body);
    out
}

/// Encodes one DER TLV.
pub(crate) fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let len = value.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests;
