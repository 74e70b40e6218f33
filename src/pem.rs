//! A line-tracking PEM framer over raw bytes (RFC 7468, with the tolerances Istio's Go code has).
//!
//! Unlike the `pem` crate or `rustls-pki-types`, every block keeps its label, byte span, line
//! span and its exact original text, so that bundles can be rendered back byte for byte and every
//! error names the line (and column) where the input goes wrong.
//!
//! What is accepted: LF and CRLF line ends (mixed too), trailing spaces and tabs, spaces and tabs
//! inside the base64 body (Go's `encoding/pem` removes them), explanatory text before, between and
//! after blocks, a last line without a newline, and an empty input (zero blocks).
//!
//! What is refused, with the line: a BEGIN without END (also a second BEGIN before the END), an END
//! without BEGIN, an END whose label differs from the BEGIN, a boundary that is malformed or
//! indented (Go's decoder, hence istiod, would silently skip an indented block), RFC 1421 headers
//! (`Proc-Type`, `DEK-Info`: encrypted legacy keys), bad base64 (line and column of the bad
//! character), an empty body, and a body whose DER is not one well-formed SEQUENCE.
//!
//! ```
//! use meshtrust::pem::{self, Label};
//!
//! let text = b"explanatory text\n-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
//! let blocks = pem::parse(text)?;
//! assert_eq!(blocks.len(), 1);
//! assert_eq!(blocks[0].label, Label::Certificate);
//! assert_eq!(blocks[0].begin_line, 2);
//! assert_eq!(blocks[0].end_line, 4);
//! assert_eq!(blocks[0].der, [0x30, 0x00]);
//! assert_eq!(blocks[0].text, &text[17..]);
//! # Ok::<(), meshtrust::pem::PemError>(())
//! ```

use std::fmt;
use std::ops::Range;

use crate::b64::{self, B64Error};

mod error;

pub use error::PemError;

/// The label of a PEM block, as written after `BEGIN `.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum Label {
    /// `CERTIFICATE`: an X.509 certificate.
    Certificate,
    /// `PRIVATE KEY`: a PKCS#8 private key (what OpenSSL 3 writes).
    PrivateKey,
    /// `RSA PRIVATE KEY`: a PKCS#1 RSA private key (what Istio's samples hold).
    RsaPrivateKey,
    /// `EC PRIVATE KEY`: a SEC1 elliptic-curve private key.
    EcPrivateKey,
    /// Any other label, kept verbatim (for example `X509 CRL`, `ENCRYPTED PRIVATE KEY`).
    Other(String),
}

impl Label {
    /// Maps label text to a [`Label`].
    ///
    /// ```
    /// use meshtrust::pem::Label;
    /// assert_eq!(Label::from_text("RSA PRIVATE KEY"), Label::RsaPrivateKey);
    /// assert_eq!(Label::from_text("X509 CRL"), Label::Other("X509 CRL".into()));
    /// ```
    pub fn from_text(text: &str) -> Label {
        match text {
            "CERTIFICATE" => Label::Certificate,
            "PRIVATE KEY" => Label::PrivateKey,
            "RSA PRIVATE KEY" => Label::RsaPrivateKey,
            "EC PRIVATE KEY" => Label::EcPrivateKey,
            other => Label::Other(other.to_owned()),
        }
    }

    /// The label text as written in the boundary lines.
    pub fn as_str(&self) -> &str {
        match self {
            Label::Certificate => "CERTIFICATE",
            Label::PrivateKey => "PRIVATE KEY",
            Label::RsaPrivateKey => "RSA PRIVATE KEY",
            Label::EcPrivateKey => "EC PRIVATE KEY",
            Label::Other(s) => s,
        }
    }

    /// True for the three private-key labels.
    pub fn is_private_key(&self) -> bool {
        matches!(
            self,
            Label::PrivateKey | Label::RsaPrivateKey | Label::EcPrivateKey
        ) || matches!(self, Label::Other(s) if s.contains("PRIVATE KEY"))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One PEM block, borrowed from the input it was framed from.
#[derive(Clone, PartialEq, Eq)]
pub struct PemBlock<'a> {
    /// The label of the BEGIN line.
    pub label: Label,
    /// 0-based index of this block among the blocks of the input.
    pub index: usize,
    /// Byte span in the input: from the first byte of the BEGIN line through the line end
    /// (`\n`) of the END line, when there is one.
    pub span: Range<usize>,
    /// 1-based line of the BEGIN boundary.
    pub begin_line: usize,
    /// 1-based line of the END boundary.
    pub end_line: usize,
    /// The exact original text of the block (`&input[span]`).
    pub text: &'a [u8],
    /// The decoded body.
    pub der: Vec<u8>,
}

impl fmt::Debug for PemBlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body of a private-key block is secret: never print it.
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("index", &self.index)
            .field("span", &self.span)
            .field("lines", &(self.begin_line..=self.end_line))
            .field("der_len", &self.der.len())
            .finish()
    }
}

/// Frames every PEM block of `input`, in order.
///
/// ```
/// let blocks = meshtrust::pem::parse(b"")?;
/// assert!(blocks.is_empty());
/// # Ok::<(), meshtrust::pem::PemError>(())
/// ```
pub fn parse(input: &[u8]) -> Result<Vec<PemBlock<'_>>, PemError> {
    blocks(input).collect()
}

/// An iterator over the PEM blocks of `input`; it stops after the first error.
pub fn blocks(input: &[u8]) -> Blocks<'_> {
    Blocks {
        input,
        pos: 0,
        line: 0,
        index: 0,
        failed: false,
        decoder: b64::Decoder::default(),
    }
}

/// Iterator returned by [`blocks`].
#[derive(Debug, Clone)]
pub struct Blocks<'a> {
    input: &'a [u8],
    pos: usize,
    /// Number of the line that starts at `pos`, minus one.
    line: usize,
    index: usize,
    failed: bool,
    decoder: b64::Decoder,
}

/// One physical line: its content without the terminator, and where the next line starts.
struct Line<'a> {
    start: usize,
    /// Content without `\n` and without one `\r` before it.
    content: &'a [u8],
    next: usize,
}

fn next_line(input: &[u8], pos: usize) -> Option<Line<'_>> {
    if pos >= input.len() {
        return None;
    }
    let rest = &input[pos..];
    let (len, next) = match memchr_nl(rest) {
        Some(i) => (i, pos + i + 1),
        None => (rest.len(), input.len()),
    };
    let mut content = &rest[..len];
    if let [head @ .., b'\r'] = content {
        content = head;
    }
    Some(Line {
        start: pos,
        content,
        next,
    })
}

#[inline]
fn memchr_nl(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}

fn trim_end(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 0 && matches!(s[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    &s[..end]
}

fn trim_start(s: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < s.len() && matches!(s[start], b' ' | b'\t') {
        start += 1;
    }
    &s[start..]
}

enum Boundary<'a> {
    Begin(&'a str),
    End(&'a str),
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// Classifies a line as a boundary, plain text, or an error.
fn boundary(content: &[u8], line: usize) -> Result<Option<Boundary<'_>>, PemError> {
    let trimmed = trim_end(content);
    let unindented = trim_start(trimmed);
    if !unindented.starts_with(DASHES) {
        return Ok(None);
    }
    let looks_like = unindented.starts_with(b"-----BEGIN") || unindented.starts_with(b"-----END");
    if !looks_like {
        return Ok(None);
    }
    if unindented.len() != trimmed.len() {
        return Err(PemError::IndentedBoundary { line });
    }
    let malformed = || PemError::MalformedBoundary {
        text: String::from_utf8_lossy(&trimmed[..trimmed.len().min(80)]).into_owned(),
        line,
    };
    let (kind_len, is_begin) = if trimmed.starts_with(BEGIN) {
        (BEGIN.len(), true)
    } else if trimmed.starts_with(END) {
        (END.len(), false)
    } else {
        return Err(malformed());
    };
    if trimmed.len() < kind_len + DASHES.len() || !trimmed.ends_with(DASHES) {
        return Err(malformed());
    }
    let label = &trimmed[kind_len..trimmed.len() - DASHES.len()];
    // RFC 7468 labels: printable ASCII without '-' at the ends; empty labels are refused.
    let valid = !label.is_empty()
        && label.iter().all(|&c| (0x20..0x7f).contains(&c))
        && label[0] != b'-'
        && label[0] != b' '
        && label[label.len() - 1] != b'-'
        && label[label.len() - 1] != b' ';
    if !valid {
        return Err(malformed());
    }
    // Checked printable ASCII above, so this cannot fail; map defensively anyway.
    let label = std::str::from_utf8(label).map_err(|_| malformed())?;
    Ok(Some(if is_begin {
        Boundary::Begin(label)
    } else {
        Boundary::End(label)
    }))
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<PemBlock<'a>, PemError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.next_block();
        match r {
            Some(Err(_)) => self.failed = true,
            None => self.failed = true,
            Some(Ok(_)) => {}
        }
        r
    }
}

impl<'a> Blocks<'a> {
    fn next_block(&mut self) -> Option<Result<PemBlock<'a>, PemError>> {
        let input = self.input;
        // Skip explanatory text up to the next BEGIN.
        let (begin, label) = loop {
            let line = next_line(input, self.pos)?;
            self.line += 1;
            self.pos = line.next;
            match boundary(line.content, self.line) {
                Err(e) => return Some(Err(e)),
                Ok(None) => continue,
                Ok(Some(Boundary::End(label))) => {
                    return Some(Err(PemError::EndWithoutBegin {
                        label: label.to_owned(),
                        line: self.line,
                    }));
                }
                Ok(Some(Boundary::Begin(label))) => break (line.start, label),
            }
        };
        // Size the output once: the body runs up to the next END boundary (or the end).
        static END_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"-----END"));
        let body_len = END_FINDER
            .find(&input[self.pos..])
            .unwrap_or(input.len() - self.pos);
        self.decoder.reset(body_len);
        let mut open = Open {
            label,
            block: self.index,
            begin_line: self.line,
            decoder: &mut self.decoder,
            body_chars: 0,
        };
        loop {
            let Some(line) = next_line(input, self.pos) else {
                return Some(Err(PemError::MissingEnd {
                    label: label.to_owned(),
                    block: open.block,
                    line: open.begin_line,
                }));
            };
            self.line += 1;
            self.pos = line.next;
            let step = match boundary(line.content, self.line) {
                Err(e) => Err(e),
                Ok(Some(Boundary::Begin(second))) => Err(PemError::NestedBegin {
                    label: second.to_owned(),
                    line: self.line,
                    block: open.block,
                    open_label: label.to_owned(),
                    open_line: open.begin_line,
                }),
                Ok(Some(Boundary::End(end_label))) => {
                    let span = begin..line.next;
                    let text = &input[span.clone()];
                    let done = open.close(end_label, self.line, span, text);
                    if done.is_ok() {
                        self.index += 1;
                    }
                    return Some(done);
                }
                Ok(None) => open.body_line(line.content, self.line),
            };
            if let Err(e) = step {
                return Some(Err(e));
            }
        }
    }
}

/// A block between its BEGIN line and its END line.
struct Open<'a, 'd> {
    label: &'a str,
    block: usize,
    begin_line: usize,
    /// The iterator's decoder, its buffers reused from block to block.
    decoder: &'d mut b64::Decoder,
    /// Significant base64 characters so far (none yet: the next body line may be a header).
    body_chars: usize,
}

impl<'a> Open<'a, '_> {
    /// One line of the body, number `line`: RFC 1421 headers are refused on the first one,
    /// then the base64 goes to the decoder, whose offsets become columns.
    fn body_line(&mut self, content: &[u8], line: usize) -> Result<(), PemError> {
        let (label, block) = (|| self.label.to_owned(), self.block);
        if self.body_chars == 0
            && let Some(colon) = content.iter().position(|&c| c == b':')
        {
            let header = String::from_utf8_lossy(trim_start(&content[..colon])).into_owned();
            return Err(PemError::Headers {
                label: label(),
                block,
                header,
                line,
            });
        }
        self.body_chars += self.decoder.push_line(content);
        Ok(())
    }

    /// The END line (number `line`, labelled `end_label`) closes the block spanning `span`.
    fn close(
        self,
        end_label: &str,
        line: usize,
        span: Range<usize>,
        text: &'a [u8],
    ) -> Result<PemBlock<'a>, PemError> {
        let (block, begin_line) = (self.block, self.begin_line);
        if end_label != self.label {
            return Err(PemError::LabelMismatch {
                expected: self.label.to_owned(),
                found: end_label.to_owned(),
                block,
                begin_line,
                line,
            });
        }
        if self.body_chars == 0 {
            return Err(PemError::EmptyBody {
                label: self.label.to_owned(),
                block,
                line: begin_line,
            });
        }
        let label_text = || self.label.to_owned();
        let der = self.decoder.finish().map_err(|e| {
            let at = |k| body_position(text, begin_line, k).unwrap_or((line, 0));
            match e {
                B64Error::BadChar { offset, byte } => {
                    let (line, column) = at(offset);
                    PemError::BadBase64 {
                        label: label_text(),
                        block,
                        ch: char::from(byte),
                        line,
                        column: column + 1,
                    }
                }
                B64Error::NonCanonical { offset } => {
                    let (line, column) = at(offset);
                    PemError::NonCanonicalBase64 {
                        label: label_text(),
                        block,
                        line,
                        column: column + 1,
                    }
                }
                B64Error::BadLength => PemError::BadBase64Length {
                    label: label_text(),
                    block,
                    line,
                },
            }
        })?;
        let label = Label::from_text(self.label);
        if let Err(reason) = check_der_frame(&der) {
            return Err(PemError::BadDer {
                label: label.as_str().to_owned(),
                block,
                line: begin_line,
                reason,
            });
        }
        Ok(PemBlock {
            label,
            index: block,
            begin_line,
            end_line: line,
            text,
            span,
            der,
        })
    }
}

/// The (line, 0-based column) of the body's significant base64 character number `k`, in
/// `block` (the text from the BEGIN line, which is line `begin_line`). Walked again only for
/// an error, so decoding keeps no per-line bookkeeping.
fn body_position(block: &[u8], begin_line: usize, mut k: usize) -> Option<(usize, usize)> {
    let mut pos = next_line(block, 0)?.next;
    let mut line = begin_line;
    while let Some(l) = next_line(block, pos) {
        line += 1;
        match b64::column_of(l.content, k) {
            Ok(column) => return Some((line, column)),
            Err(rest) => k = rest,
        }
        pos = l.next;
    }
    None
}

/// Checks that `der` is exactly one DER SEQUENCE with a minimal definite length.
fn check_der_frame(der: &[u8]) -> Result<(), String> {
    use der::{Decode, Header, Reader, SliceReader, Tag};
    let mut reader = SliceReader::new(der).map_err(|e| e.to_string())?;
    let header = Header::decode(&mut reader).map_err(|e| e.to_string())?;
    if header.tag() != Tag::Sequence {
        return Err(format!("expected a SEQUENCE, found {}", header.tag()));
    }
    let body_len = usize::try_from(header.length()).map_err(|e| e.to_string())?;
    let remaining = usize::try_from(reader.remaining_len()).map_err(|e| e.to_string())?;
    if body_len != remaining {
        return Err(if body_len > remaining {
            format!("truncated: the SEQUENCE announces {body_len} bytes, {remaining} follow")
        } else {
            format!("{} trailing bytes after the SEQUENCE", remaining - body_len)
        });
    }
    Ok(())
}

/// Renders DER as a PEM block the way OpenSSL and Go write it: 64 columns, LF line ends.
///
/// ```
/// use meshtrust::pem::{encode, parse, Label};
/// let text = encode(&Label::Certificate, &[0x30, 0x00]);
/// assert_eq!(text, "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n");
/// assert_eq!(parse(text.as_bytes()).unwrap()[0].der, [0x30, 0x00]);
/// ```
pub fn encode(label: &Label, der: &[u8]) -> String {
    // Wiped when dropped: for a key, this intermediate string is a copy of the key material.
    // (`out` is allocated once at its final size, so it leaves no stray copy either.)
    let body = zeroize::Zeroizing::new(b64::encode(der));
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 64);
    out.push_str("-----BEGIN ");
    out.push_str(label.as_str());
    out.push_str("-----\n");
    for chunk in body.as_bytes().chunks(64) {
        // The base64 alphabet is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label.as_str());
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests;
