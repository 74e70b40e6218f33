//! Strict standard base64 (RFC 4648 section 4), the alphabet PEM and Kubernetes `data` use,
//! decoded and encoded by the `base64` crate; this module adds what a line-tracking PEM framer
//! needs around it: input fed line by line (quanta may straddle lines and blanks), and errors
//! that name the offending character's position.
//!
//! Strict means: only the standard alphabet, padding required and only at the end, and the
//! unused low bits of the last character must be zero (a canonical encoding). Go's
//! `encoding/base64.StdEncoding` (which istiod and kubectl use) accepts non-zero trailing bits;
//! we reject them, because two different texts for the same DER defeat byte comparisons.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why a base64 text was refused. Offsets count the significant characters fed (blanks
/// skipped by [`Decoder::push_line`] are not counted; the caller maps them back to a line and
/// column, see [`column_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B64Error {
    /// A byte outside the alphabet, a misplaced `=`, or data after the padding.
    BadChar { offset: usize, byte: u8 },
    /// The number of characters is not a multiple of four, or padding is misplaced.
    BadLength,
    /// The last character carries non-zero unused bits: not the canonical encoding.
    NonCanonical { offset: usize },
}

/// A strict decoder fed line by line, then [`Decoder::finish`]ed. The significant characters
/// (blanks removed) are gathered and the `base64` crate decodes them in one call: per-line
/// calls, or bookkeeping per line, cost more than the decoding itself.
#[derive(Default, Clone)]
pub(crate) struct Decoder {
    /// Wiped when dropped: for a key's block, these characters encode the key.
    chars: zeroize::Zeroizing<Vec<u8>>,
}

/// Never shows the characters: they may be a private key's.
impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("chars", &self.chars.len())
            .finish()
    }
}

/// Spaces, tabs and carriage returns: skipped inside a PEM body, as Go's `encoding/pem` does.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

impl Decoder {
    /// Empties the decoder for the next text, keeping its buffer; `chars` is a hint of how
    /// many characters will come.
    pub(crate) fn reset(&mut self, chars: usize) {
        self.chars.clear();
        self.chars.reserve(chars);
    }

    /// Feeds one line of a PEM body, blanks skipped. Returns the number of significant
    /// characters.
    pub(crate) fn push_line(&mut self, text: &[u8]) -> usize {
        if memchr::memchr3(b' ', b'\t', b'\r', text).is_none() {
            self.chars.extend_from_slice(text);
            return text.len();
        }
        let before = self.chars.len();
        self.chars
            .extend(text.iter().copied().filter(|&b| !is_blank(b)));
        self.chars.len() - before
    }

    /// Decodes everything fed since the last reset.
    pub(crate) fn finish(&self) -> Result<Vec<u8>, B64Error> {
        STANDARD
            .decode(&self.chars[..])
            .map_err(|e| locate(&self.chars, e))
    }
}

/// The column (0-based) in `line` of its significant character number `k` (blanks skipped),
/// or `None` when the line holds `k` or fewer: then the caller moves on to the next line with
/// `k` minus this line's count, which is returned as the error.
pub(crate) fn column_of(line: &[u8], k: usize) -> Result<usize, usize> {
    let mut seen = 0;
    for (col, &b) in line.iter().enumerate() {
        if is_blank(b) {
            continue;
        }
        if seen == k {
            return Ok(col);
        }
        seen += 1;
    }
    Err(k - seen)
}

/// Where the `base64` crate's refusal of `chars` points. A `=` the crate calls invalid is
/// either misplaced (fewer than two data characters before it in its quantum: the `=` is the
/// error) or in its place with data after it (the first character after the padding is).
fn locate(chars: &[u8], e: base64::DecodeError) -> B64Error {
    let bad = |k: usize| B64Error::BadChar {
        offset: k,
        byte: chars.get(k).copied().unwrap_or_default(),
    };
    match e {
        base64::DecodeError::InvalidByte(k, b'=') if k % 4 >= 2 => {
            match chars
                .get(k..)
                .and_then(|rest| rest.iter().position(|&c| c != b'='))
            {
                Some(n) => bad(k + n),
                None => B64Error::BadLength,
            }
        }
        base64::DecodeError::InvalidByte(k, _) => bad(k),
        base64::DecodeError::InvalidLastSymbol(k, _) => B64Error::NonCanonical { offset: k },
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
            B64Error::BadLength
        }
    }
}

/// Decodes a whole base64 text strictly, ignoring nothing (no whitespace allowed).
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, B64Error> {
    STANDARD.decode(text).map_err(|e| locate(text, e))
}

/// Encodes bytes as one line of padded standard base64.
pub(crate) fn encode(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..40usize {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&data);
            assert_eq!(decode(text.as_bytes()).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(decode(b"Zg==").unwrap(), b"f");
    }

    fn bad(offset: usize, byte: u8) -> B64Error {
        B64Error::BadChar { offset, byte }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode(b"Zm9v!A==").unwrap_err(), bad(4, b'!'));
        assert_eq!(decode(b"Zm9").unwrap_err(), B64Error::BadLength);
        assert_eq!(
            decode(b"Zh==").unwrap_err(),
            B64Error::NonCanonical { offset: 1 }
        );
        assert_eq!(decode(b"Zg==Zg==").unwrap_err(), bad(4, b'Z'));
        assert_eq!(decode(b"Z===").unwrap_err(), bad(1, b'='));
        assert_eq!(decode(b"Zg=a").unwrap_err(), bad(3, b'a'));
        assert_eq!(decode(b"====").unwrap_err(), bad(0, b'='));
        assert_eq!(decode(b"Zm9v Zg==").unwrap_err(), bad(4, b' '));
    }

    /// Quanta split across lines and blanks decode as one text; offsets count significant
    /// characters, and `column_of` finds them again.
    #[test]
    fn lines_and_blanks() {
        let data: Vec<u8> = (0u8..=200).collect();
        let text = encode(&data);
        for cut in [1usize, 3, 5, 7, 63, 64, 65] {
            let mut d = Decoder::default();
            let mut n = 0;
            for line in text.as_bytes().chunks(cut) {
                let spaced: Vec<u8> = line.iter().flat_map(|&b| [b, b' ']).collect();
                n += d.push_line(&spaced);
            }
            assert_eq!(n, text.len());
            assert_eq!(d.finish().unwrap(), data, "cut {cut}");
        }
        let mut d = Decoder::default();
        d.push_line(b"MA");
        d.push_line(b" A*");
        assert_eq!(d.finish().unwrap_err(), bad(3, b'*'));
        assert_eq!(column_of(b"MA", 3), Err(1));
        assert_eq!(column_of(b" A*", 1), Ok(2));
        d.reset(0);
        d.push_line(b"MAA=");
        d.push_line(b"  MAAA\r");
        assert_eq!(d.finish().unwrap_err(), bad(4, b'M'));
        d.reset(0);
        d.push_line(b"MA");
        d.push_line(b"A=");
        d.push_line(b"A");
        assert!(d.finish().is_err());
    }

    proptest::proptest! {
        /// Line by line, with blanks anywhere, the decoder accepts exactly what the `base64`
        /// crate accepts of the significant characters joined, with the same bytes, and
        /// never panics: whatever the cuts, the blanks, or a character overwritten. Every
        /// refusal's offset is found again by `column_of` on the lines, at the byte it names.
        #[test]
        fn agrees_with_the_crate_on_the_joined_text(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            cuts in proptest::collection::vec(1usize..9, 1..8),
            blank_every in 0usize..7,
            poke in proptest::option::of((0usize..64, proptest::sample::select(b"A/+=*- \r".to_vec()))),
        ) {
            let mut text = encode(&data).into_bytes();
            if let Some((at, b)) = poke && !text.is_empty() {
                let at = at % text.len();
                text[at] = b;
            }
            let joined: Vec<u8> = text.iter().copied().filter(|&b| !is_blank(b)).collect();
            let mut d = Decoder::default();
            let mut rest = &text[..];
            let mut lines = Vec::new();
            for (n, cut) in cuts.iter().cycle().enumerate() {
                if rest.is_empty() { break; }
                let (line, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                let mut spaced = line.to_vec();
                if blank_every > 0 && n % blank_every == 0 { spaced.insert(spaced.len() / 2, b'\t'); }
                d.push_line(&spaced);
                lines.push(spaced);
            }
            let ours = d.finish();
            if let Err(B64Error::BadChar { offset, byte }) = ours {
                let mut k = offset;
                let found = lines.iter().find_map(|l| match column_of(l, k) {
                    Ok(c) => Some(l[c]),
                    Err(rest) => { k = rest; None }
                });
                proptest::prop_assert_eq!(found, Some(byte));
            }
            proptest::prop_assert_eq!(ours.ok(), STANDARD.decode(&joined).ok());
        }
    }
}
