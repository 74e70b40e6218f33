//! Multi-root trust bundles: byte-exact files and the trust sets they denote.
//!
//! A [`Bundle`] is the ordered list of certificates of one PEM file, together with the file's
//! exact bytes, so that an unchanged bundle renders back byte for byte. Operations build new
//! bundles from old bytes the way an operator's `cat` would, but checked:
//!
//! - [`Bundle::append`] keeps the old file as an exact prefix (adding one `\n` only when the old
//!   text lacks a final newline, as Istio's own `root-cert-combined.pem` does);
//! - [`Bundle::dedup`] removes later repeats of a certificate, keeping every other byte;
//! - [`Bundle::with_deliberate_duplicate`] appends a root already present again (A+B -> A+B+B):
//!   the bytes change, so every Istio proxy re-requests its leaf, while the trust set does not;
//! - [`Bundle::trust_set`] is what validation sees: the distinct certificates;
//! - [`diff`] says what changed between two files (bytes, sets, order); whether istiod accepts
//!   the change is [`istio::behaviour::root_change`](crate::istio::behaviour::root_change)'s
//!   to say, by version.
//!
//! ```
//! use meshtrust::bundle::{Bundle, diff};
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
//! let a = Bundle::parse(&std::fs::read(format!("{dir}root-cert.pem"))?)?;
//! let b = Bundle::parse(&std::fs::read(format!("{dir}root-cert-alt.pem"))?)?;
//! let ab = a.append(&b);                       // trust both
//! assert!(ab.bytes().starts_with(a.bytes()));
//! let abb = ab.with_last_duplicated()?;        // the deliberate duplicate
//! assert_eq!(abb.trust_set(), ab.trust_set()); // same trust...
//! assert_ne!(abb.bytes(), ab.bytes());         // ...different bytes
//! let d = diff(&ab, &abb);
//! assert!(d.bytes_changed && !d.trust_set_changed && d.added.is_empty());
//! assert_eq!(abb.dedup().bytes(), ab.bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde::Serialize;

use crate::cert::{CertError, Certificate, Fingerprint};
use crate::pem::{self, Label, PemError};

/// Why bytes are not a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The PEM framing is broken.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// A CERTIFICATE block does not hold a certificate.
    #[error("line {line}: block {block} (CERTIFICATE) is not a valid certificate: {source}")]
    Cert {
        /// PEM block index.
        block: usize,
        /// Line of its BEGIN boundary.
        line: usize,
        /// What is wrong.
        source: CertError,
    },
    /// The requested certificate is not in the bundle.
    #[error("certificate {0} is not in the bundle")]
    NotFound(Fingerprint),
    /// The operation needs at least one certificate.
    #[error("the bundle holds no certificate")]
    Empty,
}

impl BundleError {
    /// The 1-based line the error points at, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            BundleError::Pem(e) => Some(e.line()),
            BundleError::Cert { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// One certificate of a bundle, with where its block stands in the file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The certificate.
    pub cert: Certificate,
    /// Index of its PEM block among all blocks of the file (certificates and others).
    pub block: usize,
    /// Byte span of the block text in [`Bundle::bytes`].
    pub span: Range<usize>,
    /// 1-based line of its BEGIN boundary.
    pub begin_line: usize,
    /// 1-based line of its END boundary.
    pub end_line: usize,
    /// True when this entry was appended as a deliberate duplicate (the rotation trigger).
    /// Parsing cannot know intent, so entries read from a file are never marked.
    pub deliberate_duplicate: bool,
}

/// A non-certificate PEM block found in a bundle file (reported, never dropped silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherBlock {
    /// Its label (a private key in a trust bundle is a leak: see [`OtherBlock::is_private_key`]).
    pub label: Label,
    /// Index among all blocks of the file.
    pub block: usize,
    /// Byte span.
    pub span: Range<usize>,
    /// 1-based line of its BEGIN boundary.
    pub begin_line: usize,
}

impl OtherBlock {
    /// True for private-key blocks.
    pub fn is_private_key(&self) -> bool {
        self.label.is_private_key()
    }
}

/// An ordered, byte-exact certificate bundle (one PEM file).
#[derive(Debug, Clone)]
pub struct Bundle {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    others: Vec<OtherBlock>,
}

impl PartialEq for Bundle {
    /// Bundles are equal when their bytes are.
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for Bundle {}

impl Bundle {
    /// Parses a PEM file. Certificates are decoded by [`Certificate::from_der`] (the strict
    /// structural walk); use [`Bundle::parse_strict`] to also run x509-cert's full decoder.
    pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
        Self::parse_with(bytes.to_vec(), false)
    }

    /// Like [`Bundle::parse`], taking ownership of the file's bytes (no copy: what a caller
    /// that just read the file wants).
    ///
    /// ```
    /// let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert-combined-2.pem"))?;
    /// let b = meshtrust::Bundle::parse_vec(bytes)?;
    /// assert_eq!(b.len(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse_vec(bytes: Vec<u8>) -> Result<Bundle, BundleError> {
        Self::parse_with(bytes, false)
    }

    /// Like [`Bundle::parse`], also requiring every certificate to pass
    /// [`Certificate::check_strict`].
    pub fn parse_strict(bytes: &[u8]) -> Result<Bundle, BundleError> {
        Self::parse_with(bytes.to_vec(), true)
    }

    fn parse_with(bytes: Vec<u8>, strict: bool) -> Result<Bundle, BundleError> {
        // ~570 bytes of PEM per certificate in practice (P-256); over-reserving is cheap.
        let mut entries = Vec::with_capacity(bytes.len() / 500 + 1);
        let mut others = Vec::new();
        for block in pem::blocks(&bytes) {
            let block = block?;
            if block.label == Label::Certificate {
                let wrap = |source| BundleError::Cert {
                    block: block.index,
                    line: block.begin_line,
                    source,
                };
                let cert = Certificate::from_der_vec(block.der).map_err(wrap)?;
                if strict {
                    cert.check_strict().map_err(wrap)?;
                }
                entries.push(Entry {
                    cert,
                    block: block.index,
                    span: block.span,
                    begin_line: block.begin_line,
                    end_line: block.end_line,
                    deliberate_duplicate: false,
                });
            } else {
                others.push(OtherBlock {
                    label: block.label,
                    block: block.index,
                    span: block.span,
                    begin_line: block.begin_line,
                });
            }
        }
        Ok(Bundle {
            bytes,
            entries,
            others,
        })
    }

    /// A bundle of these certificates in canonical PEM (64 columns, LF), in order.
    pub fn from_certificates<'a>(certs: impl IntoIterator<Item = &'a Certificate>) -> Bundle {
        let mut b = Bundle::empty();
        for c in certs {
            b = b.append_certificate(c);
        }
        b
    }

    /// The empty bundle (zero bytes).
    pub fn empty() -> Bundle {
        Bundle {
            bytes: Vec::new(),
            entries: Vec::new(),
            others: Vec::new(),
        }
    }

    /// The exact bytes of the file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The certificate entries, in file order (duplicates included).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The certificates, in file order (duplicates included).
    pub fn certificates(&self) -> impl ExactSizeIterator<Item = &Certificate> + '_ {
        self.entries.iter().map(|e| &e.cert)
    }

    /// Non-certificate blocks of the file.
    pub fn other_blocks(&self) -> &[OtherBlock] {
        &self.others
    }

    /// Number of certificate entries (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the bundle holds no certificate.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exact original text of entry `i`.
    pub fn entry_text(&self, i: usize) -> Option<&[u8]> {
        self.entries.get(i).map(|e| &self.bytes[e.span.clone()])
    }

    /// The distinct certificates: what a verifier trusts.
    pub fn trust_set(&self) -> TrustSet {
        TrustSet::from_certificates(self.certificates())
    }

    /// Appends another bundle's whole text (explanatory text included). The old bytes are an
    /// exact prefix of the result; a `\n` is inserted only when the old text is non-empty and
    /// does not end with one.
    pub fn append(&self, other: &Bundle) -> Bundle {
        self.append_text(&other.bytes, &other.entries, &other.others, false)
    }

    /// Appends one certificate as a canonical PEM block.
    pub fn append_certificate(&self, cert: &Certificate) -> Bundle {
        let one = Bundle::single_canonical(cert);
        self.append(&one)
    }

    fn single_canonical(cert: &Certificate) -> Bundle {
        let text = cert.to_pem().into_bytes();
        let span = 0..text.len();
        let end_line = text.iter().filter(|&&b| b == b'\n').count();
        Bundle {
            bytes: text,
            entries: vec![Entry {
                cert: cert.clone(),
                block: 0,
                span,
                begin_line: 1,
                end_line,
                deliberate_duplicate: false,
            }],
            others: Vec::new(),
        }
    }

    /// The deliberate duplicate: appends again the original text of the last entry whose
    /// certificate has this fingerprint, and marks the new entry as intentional.
    pub fn with_deliberate_duplicate(
        &self,
        fingerprint: Fingerprint,
    ) -> Result<Bundle, BundleError> {
        let i = self
            .entries
            .iter()
            .rposition(|e| e.cert.fingerprint() == fingerprint)
            .ok_or(BundleError::NotFound(fingerprint))?;
        let e = &self.entries[i];
        let text = &self.bytes[e.span.clone()];
        let entry = Entry {
            span: 0..text.len(),
            begin_line: 1,
            end_line: 1 + e.end_line - e.begin_line,
            block: 0,
            ..e.clone()
        };
        Ok(self.append_text(text, std::slice::from_ref(&entry), &[], true))
    }

    /// The deliberate duplicate of the last certificate of the bundle (`bundle cat --trigger`).
    pub fn with_last_duplicated(&self) -> Result<Bundle, BundleError> {
        let last = self.entries.last().ok_or(BundleError::Empty)?;
        self.with_deliberate_duplicate(last.cert.fingerprint())
    }

    fn append_text(
        &self,
        text: &[u8],
        entries: &[Entry],
        others: &[OtherBlock],
        deliberate: bool,
    ) -> Bundle {
        let mut bytes = Vec::with_capacity(self.bytes.len() + text.len() + 1);
        bytes.extend_from_slice(&self.bytes);
        let mut out_entries = self.entries.clone();
        let mut out_others = self.others.clone();
        if !bytes.is_empty() && !bytes.ends_with(b"\n") && !text.is_empty() {
            bytes.push(b'\n');
            // The inserted newline ends the END line of a block that closed the old file.
            let end = self.bytes.len();
            for e in out_entries.iter_mut().filter(|e| e.span.end == end) {
                e.span.end += 1;
            }
            for o in out_others.iter_mut().filter(|o| o.span.end == end) {
                o.span.end += 1;
            }
        }
        let offset = bytes.len();
        let line_offset = bytes.iter().filter(|&&b| b == b'\n').count();
        let block_offset = self.entries.len() + self.others.len();
        bytes.extend_from_slice(text);
        let mut out = Bundle {
            bytes,
            entries: out_entries,
            others: out_others,
        };
        out.entries.extend(entries.iter().map(|e| Entry {
            cert: e.cert.clone(),
            block: e.block + block_offset,
            span: e.span.start + offset..e.span.end + offset,
            begin_line: e.begin_line + line_offset,
            end_line: e.end_line + line_offset,
            deliberate_duplicate: deliberate || e.deliberate_duplicate,
        }));
        out.others.extend(others.iter().map(|o| OtherBlock {
            label: o.label.clone(),
            block: o.block + block_offset,
            span: o.span.start + offset..o.span.end + offset,
            begin_line: o.begin_line + line_offset,
        }));
        out
    }

    /// Order-preserving deduplication by fingerprint: keeps the first occurrence of every
    /// certificate and every byte that is not part of a removed block. Idempotent; a bundle
    /// without duplicates comes back byte for byte.
    pub fn dedup(&self) -> Bundle {
        let mut seen = std::collections::HashSet::with_capacity(self.entries.len());
        let mut remove: Vec<usize> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if !seen.insert(e.cert.fingerprint()) {
                remove.push(i);
            }
        }
        if remove.is_empty() {
            return self.clone();
        }
        let mut bytes = Vec::with_capacity(self.bytes.len());
        let mut entries = Vec::with_capacity(self.entries.len() - remove.len());
        let mut others = Vec::with_capacity(self.others.len());
        // Walk blocks in byte order, copying the text between removed spans and rebasing spans.
        let mut cursor = 0usize;
        let mut removed_bytes = 0usize;
        let mut removed_lines = 0usize;
        let mut removed_blocks = 0usize;
        let mut other_iter = self.others.iter().peekable();
        let mut remove_iter = remove.iter().peekable();
        for (i, e) in self.entries.iter().enumerate() {
            while let Some(o) = other_iter.next_if(|o| o.span.start < e.span.start) {
                others.push(OtherBlock {
                    label: o.label.clone(),
                    block: o.block - removed_blocks,
                    span: o.span.start - removed_bytes..o.span.end - removed_bytes,
                    begin_line: o.begin_line - removed_lines,
                });
            }
            if remove_iter.next_if(|&&r| r == i).is_some() {
                bytes.extend_from_slice(&self.bytes[cursor..e.span.start]);
                cursor = e.span.end;
                removed_bytes += e.span.len();
                removed_lines += self.bytes[e.span.clone()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                removed_blocks += 1;
            } else {
                entries.push(Entry {
                    cert: e.cert.clone(),
                    block: e.block - removed_blocks,
                    span: e.span.start - removed_bytes..e.span.end - removed_bytes,
                    begin_line: e.begin_line - removed_lines,
                    end_line: e.end_line - removed_lines,
                    deliberate_duplicate: e.deliberate_duplicate,
                });
            }
        }
        for o in other_iter {
            others.push(OtherBlock {
                label: o.label.clone(),
                block: o.block - removed_blocks,
                span: o.span.start - removed_bytes..o.span.end - removed_bytes,
                begin_line: o.begin_line - removed_lines,
            });
        }
        bytes.extend_from_slice(&self.bytes[cursor..]);
        if keep_no_final_newline(&self.bytes, &mut bytes, cursor) {
            let len = bytes.len();
            for e in entries.iter_mut() {
                e.span.end = e.span.end.min(len);
            }
            for o in others.iter_mut() {
                o.span.end = o.span.end.min(len);
            }
        }
        Bundle {
            bytes,
            entries,
            others,
        }
    }

    /// Fingerprints that appear more than once, with their counts, in order of first appearance.
    pub fn duplicates(&self) -> Vec<(Fingerprint, usize)> {
        let mut counts: HashMap<Fingerprint, usize> = HashMap::with_capacity(self.entries.len());
        let mut order = Vec::new();
        for e in &self.entries {
            let c = counts.entry(e.cert.fingerprint()).or_insert(0);
            if *c == 1 {
                order.push(e.cert.fingerprint());
            }
            *c += 1;
        }
        order.into_iter().map(|fp| (fp, counts[&fp])).collect()
    }

    /// The first entry holding this certificate.
    pub fn position(&self, fingerprint: Fingerprint) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.cert.fingerprint() == fingerprint)
    }
}

/// The distinct certificates of a bundle: what a verifier trusts. Ordered by fingerprint.
#[derive(Debug, Clone, Default)]
pub struct TrustSet {
    certs: BTreeMap<Fingerprint, Certificate>,
}

impl PartialEq for TrustSet {
    fn eq(&self, other: &Self) -> bool {
        self.certs.len() == other.certs.len() && self.certs.keys().eq(other.certs.keys())
    }
}
impl Eq for TrustSet {}

impl TrustSet {
    /// The set of the given certificates.
    pub fn from_certificates<'a>(certs: impl IntoIterator<Item = &'a Certificate>) -> TrustSet {
        TrustSet {
            certs: certs
                .into_iter()
                .map(|c| (c.fingerprint(), c.clone()))
                .collect(),
        }
    }

    /// Number of distinct certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// True when the certificate is in the set.
    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.certs.contains_key(fingerprint)
    }

    /// The certificate with this fingerprint.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&Certificate> {
        self.certs.get(fingerprint)
    }

    /// The certificates, ordered by fingerprint.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Certificate> + '_ {
        self.certs.values()
    }

    /// The fingerprints, sorted.
    pub fn fingerprints(&self) -> impl ExactSizeIterator<Item = &Fingerprint> + '_ {
        self.certs.keys()
    }

    /// True when every certificate of `self` is in `other`.
    pub fn is_subset(&self, other: &TrustSet) -> bool {
        self.certs.keys().all(|k| other.certs.contains_key(k))
    }
}

/// One certificate in a [`BundleDiff`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffCert {
    /// SHA-256 fingerprint.
    pub sha256: Fingerprint,
    /// RFC 4514 subject.
    pub subject: String,
}

/// A certificate that appears more than once in the new file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffDuplicate {
    /// SHA-256 fingerprint.
    pub sha256: Fingerprint,
    /// RFC 4514 subject.
    pub subject: String,
    /// How many times it appears in the new file.
    pub count: usize,
    /// How many times it appeared in the old file.
    pub old_count: usize,
}

/// What changed from one bundle file to another (bytes, sets and order only: istiod's verdict
/// is [`istio::behaviour::root_change`](crate::istio::behaviour::root_change)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleDiff {
    /// Certificates in the new trust set only, in new-file order.
    pub added: Vec<DiffCert>,
    /// Certificates in the old trust set only, in old-file order.
    pub removed: Vec<DiffCert>,
    /// Certificates that appear more than once in the new file.
    pub duplicates: Vec<DiffDuplicate>,
    /// True when certificates present in both appear in a different relative order.
    pub reordered: bool,
    /// True when the files' bytes differ (what makes istiod and the agents react).
    pub bytes_changed: bool,
    /// True when the trust sets differ.
    pub trust_set_changed: bool,
}

/// Compares two bundle files.
pub fn diff(old: &Bundle, new: &Bundle) -> BundleDiff {
    let old_set = old.trust_set();
    let new_set = new.trust_set();
    let dc = |c: &Certificate| DiffCert {
        sha256: c.fingerprint(),
        subject: c.subject().to_owned(),
    };
    let mut added = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for c in new.certificates() {
        if !old_set.contains(&c.fingerprint()) && seen.insert(c.fingerprint()) {
            added.push(dc(c));
        }
    }
    let mut removed = Vec::new();
    for c in old.certificates() {
        if !new_set.contains(&c.fingerprint()) && seen.insert(c.fingerprint()) {
            removed.push(dc(c));
        }
    }
    let old_counts: HashMap<Fingerprint, usize> = old.duplicates().into_iter().collect();
    let duplicates = new
        .duplicates()
        .into_iter()
        .map(|(fp, count)| DiffDuplicate {
            sha256: fp,
            subject: new_set
                .get(&fp)
                .map(|c| c.subject().to_owned())
                .unwrap_or_default(),
            count,
            old_count: old_counts
                .get(&fp)
                .copied()
                .unwrap_or_else(|| usize::from(old_set.contains(&fp))),
        })
        .collect();
    let first_order = |b: &Bundle, other: &TrustSet| -> Vec<Fingerprint> {
        let mut seen = std::collections::HashSet::new();
        b.certificates()
            .map(Certificate::fingerprint)
            .filter(|fp| other.contains(fp) && seen.insert(*fp))
            .collect()
    };
    let reordered = first_order(old, &new_set) != first_order(new, &old_set);
    BundleDiff {
        added,
        removed,
        duplicates,
        reordered,
        bytes_changed: old.bytes() != new.bytes(),
        trust_set_changed: old_set != new_set,
    }
}

/// Substring test in linear time for any bytes (`memchr::memmem`, SIMD where available).
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// PEM-level deduplication without decoding certificates: frames the file, hashes each
/// CERTIFICATE block's DER and removes later repeats, returning the new bytes. Same result
/// as `Bundle::parse(bytes)?.dedup().bytes()` for well-formed certificates, at the cost of
/// base64 decoding and SHA-256 only.
pub fn dedup_pem(bytes: &[u8]) -> Result<Vec<u8>, PemError> {
    // Keyed by the DER itself: equal DER <=> equal fingerprint, without the SHA-256.
    // Sized for ~570 bytes of PEM per block so the set never rehashes its keys as it grows.
    let mut seen: std::collections::HashSet<Vec<u8>> =
        std::collections::HashSet::with_capacity(bytes.len() / 500 + 1);
    let mut out = Vec::with_capacity(bytes.len());
    let mut cursor = 0;
    for block in pem::blocks(bytes) {
        let block = block?;
        if block.label == Label::Certificate && !seen.insert(block.der) {
            out.extend_from_slice(&bytes[cursor..block.span.start]);
            cursor = block.span.end;
        }
    }
    out.extend_from_slice(&bytes[cursor..]);
    keep_no_final_newline(bytes, &mut out, cursor);
    Ok(out)
}

/// A file without a final newline keeps that style: when the removed block closed the file
/// (`cursor` is at its end), drop the line end left behind, so that dedup(A+B+B) gives back
/// A+B exactly. Returns true when it trimmed.
fn keep_no_final_newline(original: &[u8], out: &mut Vec<u8>, cursor: usize) -> bool {
    if original.ends_with(b"\n")
        || !out.ends_with(b"\n")
        || cursor != original.len()
        || out.len() == original.len()
    {
        return false;
    }
    out.pop();
    if out.ends_with(b"\r") {
        out.pop();
    }
    true
}

#[cfg(test)]
mod tests;
