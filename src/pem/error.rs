//! [`PemError`]: why a PEM input was refused, and where.

/// Why a PEM input was refused, and where (1-based lines and columns, 0-based block index).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// A BEGIN boundary whose block never ends.
    #[error("line {line}: BEGIN {label} (block {block}) has no matching END line")]
    MissingEnd {
        /// Label of the unterminated block.
        label: String,
        /// Index of the unterminated block.
        block: usize,
        /// Line of its BEGIN boundary.
        line: usize,
    },
    /// A second BEGIN before the END of the open block.
    #[error(
        "line {line}: BEGIN {label} before the END of block {block} (BEGIN {open_label} at line {open_line})"
    )]
    NestedBegin {
        /// Label of the second BEGIN.
        label: String,
        /// Line of the second BEGIN.
        line: usize,
        /// Index of the open block.
        block: usize,
        /// Label of the open block.
        open_label: String,
        /// Line where the open block began.
        open_line: usize,
    },
    /// An END boundary with no open block.
    #[error("line {line}: END {label} without a BEGIN")]
    EndWithoutBegin {
        /// Label of the stray END.
        label: String,
        /// Its line.
        line: usize,
    },
    /// The END label differs from the BEGIN label.
    #[error(
        "line {line}: END {found} does not match BEGIN {expected} of block {block} (line {begin_line})"
    )]
    LabelMismatch {
        /// The BEGIN label.
        expected: String,
        /// The END label.
        found: String,
        /// Index of the block.
        block: usize,
        /// Line of the BEGIN boundary.
        begin_line: usize,
        /// Line of the END boundary.
        line: usize,
    },
    /// A line that looks like a boundary but is not one.
    #[error(
        "line {line}: malformed PEM boundary {text:?} (expected -----BEGIN LABEL----- or -----END LABEL-----)"
    )]
    MalformedBoundary {
        /// The offending line (trimmed, at most 80 characters).
        text: String,
        /// Its line.
        line: usize,
    },
    /// A boundary preceded by whitespace: Go's `encoding/pem` (istiod, kubectl) skips such a
    /// block silently, so it must not be relied upon.
    #[error(
        "line {line}: indented PEM boundary; istiod's Go PEM decoder would silently ignore this block"
    )]
    IndentedBoundary {
        /// Its line.
        line: usize,
    },
    /// RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (encrypted legacy keys).
    #[error(
        "line {line}: block {block} ({label}) has RFC 1421 headers ({header:?}); encrypted or legacy PEM is not supported"
    )]
    Headers {
        /// Label of the block.
        label: String,
        /// Index of the block.
        block: usize,
        /// The header name.
        header: String,
        /// Its line.
        line: usize,
    },
    /// A character outside the base64 alphabet, or misplaced padding.
    #[error(
        "line {line}, column {column}: invalid base64 character {ch:?} in block {block} ({label})"
    )]
    BadBase64 {
        /// Label of the block.
        label: String,
        /// Index of the block.
        block: usize,
        /// The offending character.
        ch: char,
        /// Its line.
        line: usize,
        /// Its 1-based column (in bytes).
        column: usize,
    },
    /// The base64 body has a length that is not a multiple of four (missing padding).
    #[error(
        "line {line}: base64 body of block {block} ({label}) is truncated or misses its padding"
    )]
    BadBase64Length {
        /// Label of the block.
        label: String,
        /// Index of the block.
        block: usize,
        /// Line of the END boundary.
        line: usize,
    },
    /// The last base64 character has non-zero unused bits.
    #[error("line {line}, column {column}: non-canonical base64 ending in block {block} ({label})")]
    NonCanonicalBase64 {
        /// Label of the block.
        label: String,
        /// Index of the block.
        block: usize,
        /// Its line.
        line: usize,
        /// Its 1-based column.
        column: usize,
    },
    /// A block without any body.
    #[error("line {line}: block {block} ({label}) has an empty body")]
    EmptyBody {
        /// Label of the block.
        label: String,
        /// Index of the block.
        block: usize,
        /// Line of the BEGIN boundary.
        line: usize,
    },
    /// The body does not decode to the DER its label announces.
    #[error("line {line}: block {block} ({label}) is not valid DER for its label: {reason}")]
    BadDer {
        /// Label of the block.
        label: String,
        /// Index of the block.
        block: usize,
        /// Line of the BEGIN boundary.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl PemError {
    /// The 1-based line the error points at.
    pub fn line(&self) -> usize {
        match self {
            PemError::MissingEnd { line, .. }
            | PemError::NestedBegin { line, .. }
            | PemError::EndWithoutBegin { line, .. }
            | PemError::LabelMismatch { line, .. }
            | PemError::MalformedBoundary { line, .. }
            | PemError::IndentedBoundary { line }
            | PemError::Headers { line, .. }
            | PemError::BadBase64 { line, .. }
            | PemError::BadBase64Length { line, .. }
            | PemError::NonCanonicalBase64 { line, .. }
            | PemError::EmptyBody { line, .. }
            | PemError::BadDer { line, .. } => *line,
        }
    }

    /// The 0-based index of the block the error is in, when it is in one.
    pub fn block(&self) -> Option<usize> {
        match self {
            PemError::MissingEnd { block, .. }
            | PemError::NestedBegin { block, .. }
            | PemError::LabelMismatch { block, .. }
            | PemError::Headers { block, .. }
            | PemError::BadBase64 { block, .. }
            | PemError::BadBase64Length { block, .. }
            | PemError::NonCanonicalBase64 { block, .. }
            | PemError::EmptyBody { block, .. }
            | PemError::BadDer { block, .. } => Some(*block),
            PemError::EndWithoutBegin { .. }
            | PemError::MalformedBoundary { .. }
            | PemError::IndentedBoundary { .. } => None,
        }
    }
}
