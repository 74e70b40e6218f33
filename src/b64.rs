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

/// Why a base64 text was refused. Positions are offsets into the characters fed to the
/// decoder (the caller maps them to lines and columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B64Error {
    /// A byte outside the alphabet, a misplaced `=`, or data after the padding, at this
    /// input offset.
    BadChar { offset: usize, byte: u8 },
    /// The number of characters is not a multiple of four, or padding is misplaced.
    BadLength,
    /// The last character carries non-zero unused bits: not the canonical encoding.
    NonCanonical { offset: usize },
}

/// An incremental strict decoder: feed it lines (or whole texts), then call
/// [`Decoder::finish`]. Whole quanta go to the `base64` crate straight from the input; only a
/// quantum split by a line end or a blank is gathered first, four characters at most.
pub(crate) struct Decoder {
    out: Vec<u8>,
    /// Significant characters of a quantum the input split, and their offsets.
    carry: [u8; 4],
    carry_at: [usize; 4],
    carry_len: usize,
    /// A padded quantum ended the data: any further character is refused.
    ended: bool,
}

impl Decoder {
    pub(crate) fn with_capacity(chars: usize) -> Self {
        Decoder {
            out: Vec::with_capacity(chars / 4 * 3 + 3),
            carry: [0; 4],
            carry_at: [0; 4],
            carry_len: 0,
            ended: false,
        }
    }

    /// Feeds one line of a PEM body (columns counted from `offset`). Spaces, tabs and carriage
    /// returns are skipped, as Go's `encoding/pem` does. Returns the number of significant
    /// characters consumed.
    pub(crate) fn push_line(&mut self, line: &[u8], offset: usize) -> Result<usize, B64Error> {
        // A quantum begun on an earlier line is reported at the start of this one.
        self.carry_at[..self.carry_len].fill(offset);
        let mut consumed = 0;
        let mut start = 0;
        for run in line.split(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            self.feed(run, offset + start)?;
            consumed += run.len();
            start += run.len() + 1;
        }
        Ok(consumed)
    }

    /// Feeds significant characters (no blanks allowed) found at `offset`.
    fn feed(&mut self, chars: &[u8], offset: usize) -> Result<(), B64Error> {
        let mut i = 0;
        while self.carry_len > 0 && i < chars.len() {
            self.carry_push(chars[i], offset + i)?;
            i += 1;
        }
        let whole = (chars.len() - i) / 4 * 4;
        if whole > 0 {
            if self.ended {
                return Err(B64Error::BadChar {
                    offset: offset + i,
                    byte: chars[i],
                });
            }
            self.decode_quanta(&chars[i..i + whole], offset + i)?;
            i += whole;
        }
        for (k, &b) in chars[i..].iter().enumerate() {
            self.carry_push(b, offset + i + k)?;
        }
        Ok(())
    }

    /// Decodes whole quanta with the `base64` crate, mapping its verdict to a position.
    fn decode_quanta(&mut self, quanta: &[u8], offset: usize) -> Result<(), B64Error> {
        match STANDARD.decode_vec(quanta, &mut self.out) {
            Ok(()) => {
                self.ended = quanta.last() == Some(&b'=');
                Ok(())
            }
            Err(e) => Err(locate(quanta, e, |k| offset + k)),
        }
    }

    /// Gathers one character of a quantum the input split, checking it as it comes so an
    /// error names the line it is on.
    fn carry_push(&mut self, byte: u8, offset: usize) -> Result<(), B64Error> {
        let padded = self.carry[..self.carry_len].contains(&b'=');
        let fits = if byte == b'=' {
            self.carry_len >= 2
        } else {
            is_alphabet(byte) && !padded
        };
        if self.ended || !fits {
            return Err(B64Error::BadChar { offset, byte });
        }
        self.carry[self.carry_len] = byte;
        self.carry_at[self.carry_len] = offset;
        self.carry_len += 1;
        if self.carry_len == 4 {
            self.carry_len = 0;
            let (quantum, at) = (self.carry, self.carry_at);
            if let Err(e) = STANDARD.decode_vec(quantum, &mut self.out) {
                return Err(locate(&quantum, e, |k| at[k.min(3)]));
            }
            self.ended = quantum[3] == b'=';
        }
        Ok(())
    }

    /// Ends the input. Unpadded trailing characters are refused.
    pub(crate) fn finish(self) -> Result<Vec<u8>, B64Error> {
        if self.carry_len != 0 {
            return Err(B64Error::BadLength);
        }
        Ok(self.out)
    }
}

fn is_alphabet(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Where the `base64` crate's refusal of `quanta` points, as [`B64Error`] with `at` mapping
/// an index of `quanta` to the caller's offset. A `=` the crate calls invalid is either
/// misplaced (fewer than two data characters before it in its quantum: the `=` is the error)
/// or in its place with data after it (the first character after the padding is the error).
fn locate(quanta: &[u8], e: base64::DecodeError, at: impl Fn(usize) -> usize) -> B64Error {
    match e {
        base64::DecodeError::InvalidByte(k, b'=') if k % 4 >= 2 => {
            let after = quanta[k..].iter().position(|&c| c != b'=');
            match after {
                Some(n) => B64Error::BadChar {
                    offset: at(k + n),
                    byte: quanta[k + n],
                },
                None => B64Error::BadLength,
            }
        }
        base64::DecodeError::InvalidByte(k, byte) => B64Error::BadChar {
            offset: at(k),
            byte,
        },
        base64::DecodeError::InvalidLastSymbol(k, _) => B64Error::NonCanonical { offset: at(k) },
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
            B64Error::BadLength
        }
    }
}

/// Decodes a whole base64 text strictly, ignoring nothing (no whitespace allowed).
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, B64Error> {
    let mut d = Decoder::with_capacity(text.len());
    d.feed(text, 0)?;
    d.finish()
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

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            decode(b"Zm9v!A==").unwrap_err(),
            B64Error::BadChar {
                offset: 4,
                byte: b'!'
            }
        );
        assert_eq!(decode(b"Zm9").unwrap_err(), B64Error::BadLength);
        assert!(matches!(
            decode(b"Zh=="),
            Err(B64Error::NonCanonical { offset: 1 })
        ));
        assert!(matches!(
            decode(b"Zg==Zg=="),
            Err(B64Error::BadChar { offset: 4, .. })
        ));
        assert!(matches!(
            decode(b"Z==="),
            Err(B64Error::BadChar { offset: 1, .. })
        ));
        assert!(matches!(
            decode(b"Zg=a"),
            Err(B64Error::BadChar { offset: 3, .. })
        ));
        assert!(matches!(
            decode(b"===="),
            Err(B64Error::BadChar { offset: 0, .. })
        ));
        assert!(matches!(
            decode(b"Zm9v Zg=="),
            Err(B64Error::BadChar {
                offset: 4,
                byte: b' '
            })
        ));
    }

    /// Quanta split across lines and blanks decode as one text; errors keep their column.
    #[test]
    fn lines_and_blanks() {
        let text = encode(&(0u8..=200).collect::<Vec<_>>());
        for cut in [1usize, 3, 5, 7, 63, 64, 65] {
            let mut d = Decoder::with_capacity(text.len());
            let mut n = 0;
            for line in text.as_bytes().chunks(cut) {
                let spaced: Vec<u8> = line.iter().flat_map(|&b| [b, b' ']).collect();
                n += d.push_line(&spaced, 0).unwrap();
            }
            assert_eq!(n, text.len());
            assert_eq!(
                d.finish().unwrap(),
                (0u8..=200).collect::<Vec<_>>(),
                "cut {cut}"
            );
        }
        let mut d = Decoder::with_capacity(8);
        d.push_line(b"MA", 0).unwrap();
        assert_eq!(
            d.push_line(b"A*", 0).unwrap_err(),
            B64Error::BadChar {
                offset: 1,
                byte: b'*'
            }
        );
        let mut d = Decoder::with_capacity(8);
        d.push_line(b"MAA=", 0).unwrap();
        assert_eq!(
            d.push_line(b"  MAAA", 0).unwrap_err(),
            B64Error::BadChar {
                offset: 2,
                byte: b'M'
            }
        );
        let mut d = Decoder::with_capacity(8);
        d.push_line(b"MA", 0).unwrap();
        d.push_line(b"A=", 0).unwrap();
        assert!(d.push_line(b"A", 0).is_err());
    }

    proptest::proptest! {
        /// Line by line, with blanks anywhere, the decoder accepts exactly what the `base64`
        /// crate accepts of the significant characters joined, with the same bytes, and
        /// never panics: whatever the cuts, the blanks, or a character overwritten.
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
            let joined: Vec<u8> = text.iter().copied().filter(|b| !matches!(b, b' ' | b'\r')).collect();
            let mut d = Decoder::with_capacity(text.len());
            let mut rest = &text[..];
            let mut ok = true;
            for (n, cut) in cuts.iter().cycle().enumerate() {
                if rest.is_empty() { break; }
                let (line, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                let mut spaced = line.to_vec();
                if blank_every > 0 && n % blank_every == 0 { spaced.insert(spaced.len() / 2, b'\t'); }
                if d.push_line(&spaced, 0).is_err() { ok = false; break; }
            }
            let ours = if ok { d.finish().ok() } else { None };
            proptest::prop_assert_eq!(ours, STANDARD.decode(&joined).ok());
        }
    }
}
