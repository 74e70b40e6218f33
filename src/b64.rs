//! Strict standard base64 (RFC 4648 section 4), the alphabet PEM and Kubernetes `data` use.
//!
//! Strict means: only the standard alphabet, padding required and only at the end, and the
//! unused low bits of the last character must be zero (a canonical encoding). Go's
//! `encoding/base64.StdEncoding` (which istiod and kubectl use) accepts non-zero trailing bits;
//! we reject them, because two different texts for the same DER defeat byte comparisons.

/// Value of each byte in the standard alphabet, or `INVALID`.
const INVALID: u8 = 0xff;
const PAD: u8 = 0xfe;

const DECODE: [u8; 256] = {
    let mut t = [INVALID; 256];
    let alphabet = ALPHABET;
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t[b'=' as usize] = PAD;
    t
};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a base64 text was refused. Positions are offsets into the characters fed to the
/// decoder (the caller maps them to lines and columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B64Error {
    /// A byte outside the alphabet (or `=` before the end) at this input offset.
    BadChar { offset: usize, byte: u8 },
    /// The number of characters is not a multiple of four, or padding is misplaced.
    BadLength,
    /// The last character carries non-zero unused bits: not the canonical encoding.
    NonCanonical { offset: usize },
}

/// An incremental strict decoder: feed it the significant characters (whitespace already
/// removed) piece by piece, then call [`Decoder::finish`].
pub(crate) struct Decoder {
    out: Vec<u8>,
    acc: u32,
    n: u8,
    /// Padding characters seen; `u8::MAX` once a padded quantum ended the data.
    pad: u8,
}

impl Decoder {
    pub(crate) fn with_capacity(chars: usize) -> Self {
        Decoder {
            out: Vec::with_capacity(chars / 4 * 3 + 3),
            acc: 0,
            n: 0,
            pad: 0,
        }
    }

    /// Feeds one character found at `offset` in the caller's numbering.
    #[inline]
    pub(crate) fn push(&mut self, byte: u8, offset: usize) -> Result<(), B64Error> {
        let v = DECODE[byte as usize];
        if v == INVALID {
            return Err(B64Error::BadChar { offset, byte });
        }
        if v == PAD {
            // Padding may only complete the third or fourth position of a quantum.
            if self.n < 2 {
                return Err(B64Error::BadChar { offset, byte });
            }
            self.pad += 1;
            self.n += 1;
            self.acc <<= 6;
            if self.n == 4 {
                self.flush_padded(offset)?;
            }
            return Ok(());
        }
        if self.pad > 0 {
            // Data after padding, in the same quantum or a later one.
            return Err(B64Error::BadChar { offset, byte });
        }
        self.acc = (self.acc << 6) | u32::from(v);
        self.n += 1;
        if self.n == 4 {
            self.out.extend_from_slice(&[
                (self.acc >> 16) as u8,
                (self.acc >> 8) as u8,
                self.acc as u8,
            ]);
            self.acc = 0;
            self.n = 0;
        }
        Ok(())
    }

    fn flush_padded(&mut self, offset: usize) -> Result<(), B64Error> {
        let acc = self.acc;
        match self.pad {
            1 => {
                if acc & 0xff != 0 {
                    return Err(B64Error::NonCanonical {
                        offset: offset.saturating_sub(1),
                    });
                }
                self.out
                    .extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8]);
            }
            2 => {
                if acc & 0xffff != 0 {
                    return Err(B64Error::NonCanonical {
                        offset: offset.saturating_sub(2),
                    });
                }
                self.out.push((acc >> 16) as u8);
            }
            _ => return Err(B64Error::BadLength),
        }
        self.acc = 0;
        self.n = 0;
        self.pad = u8::MAX;
        Ok(())
    }

    /// Decodes the leading whole quanta of alphabet characters of `chars` (when the decoder is
    /// between quanta and has seen no padding); returns how many characters it consumed. The
    /// caller feeds whatever stops it (padding, a partial quantum, a bad byte) to
    /// [`Decoder::push`], which reports it.
    #[inline]
    fn push_quanta(&mut self, chars: &[u8]) -> usize {
        if self.n != 0 || self.pad != 0 {
            return 0;
        }
        let quanta = chars.len() / 4;
        let start = self.out.len();
        self.out.resize(start + quanta * 3, 0);
        let mut done = 0;
        for (src, dst) in chars[..quanta * 4]
            .chunks_exact(4)
            .zip(self.out[start..].chunks_exact_mut(3))
        {
            let (a, b, c, d) = (
                DECODE[src[0] as usize],
                DECODE[src[1] as usize],
                DECODE[src[2] as usize],
                DECODE[src[3] as usize],
            );
            if (a | b | c | d) >= 64 {
                break;
            }
            let v =
                (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
            dst[0] = (v >> 16) as u8;
            dst[1] = (v >> 8) as u8;
            dst[2] = v as u8;
            done += 1;
        }
        self.out.truncate(start + done * 3);
        done * 4
    }

    /// Feeds one line of a PEM body (columns counted from `offset`). Spaces, tabs and carriage
    /// returns are skipped, as Go's `encoding/pem` does. A fast path decodes whole quanta of
    /// alphabet characters; anything else goes through [`Decoder::push`]. Returns the number of
    /// significant characters consumed.
    #[inline]
    pub(crate) fn push_line(&mut self, line: &[u8], offset: usize) -> Result<usize, B64Error> {
        let mut i = 0;
        let mut consumed = 0;
        while i < line.len() {
            let done = self.push_quanta(&line[i..]);
            i += done;
            consumed += done;
            // One character the slow way (blank, padding, error, or a partial quantum).
            let Some(&byte) = line.get(i) else { break };
            if !matches!(byte, b' ' | b'\t' | b'\r') {
                self.push(byte, offset + i)?;
                consumed += 1;
            }
            i += 1;
        }
        Ok(consumed)
    }

    /// Ends the input. Unpadded trailing characters are refused.
    pub(crate) fn finish(self) -> Result<Vec<u8>, B64Error> {
        if self.n != 0 {
            return Err(B64Error::BadLength);
        }
        Ok(self.out)
    }
}

/// Decodes a whole base64 text strictly, ignoring nothing (no whitespace allowed).
#[cfg_attr(not(test), allow(dead_code))] // used by the Istio secret reader
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, B64Error> {
    let mut d = Decoder::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        // Whole quanta at once; the character that stops the fast path goes through `push`
        // (padding, or the error with its offset).
        i += d.push_quanta(&text[i..]);
        if let Some(&b) = text.get(i) {
            d.push(b, i)?;
            i += 1;
        }
    }
    d.finish()
}

/// Encodes bytes as one line of padded standard base64.
pub(crate) fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = [
            ALPHABET[(v >> 18) as usize & 63],
            ALPHABET[(v >> 12) as usize & 63],
            ALPHABET[(v >> 6) as usize & 63],
            ALPHABET[v as usize & 63],
        ];
        let keep = chunk.len() + 1;
        for (i, c) in chars.iter().enumerate() {
            out.push(if i < keep { *c as char } else { '=' });
        }
    }
    out
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
            Err(B64Error::NonCanonical { .. })
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
    }
}
