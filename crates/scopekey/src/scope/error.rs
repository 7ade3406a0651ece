//! What was wrong with a scope, resource or action that failed to parse.
//!
//! Imports nothing of the other scope files.

use std::fmt;

use super::QUOTE_CHARS;

/// What was wrong with a scope, resource or action that failed to parse.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeErrorKind {
    /// The input was empty.
    Empty,
    /// The input is longer than the grammar allows.
    TooLong,
    /// A resource had an empty segment (a leading, trailing or doubled `/`).
    EmptySegment,
    /// A resource segment was `.` or `..`.
    DotSegment,
    /// A resource segment was longer than [`MAX_SEGMENT_LEN`](crate::MAX_SEGMENT_LEN).
    SegmentTooLong,
    /// A resource had more than [`MAX_SEGMENTS`](crate::MAX_SEGMENTS) segments.
    TooManySegments,
    /// A character outside ASCII (scopes are ASCII only, so look-alikes cannot pass).
    NotAscii,
    /// An ASCII character the grammar does not allow at that place.
    InvalidCharacter,
    /// A wildcard `*` where only concrete values are accepted (request data).
    WildcardNotAllowed,
    /// A scope without `:action`.
    MissingAction,
    /// An action that is not a lowercase ASCII verb.
    InvalidAction,
    /// The same scope appeared twice in a set.
    Duplicate,
    /// A set held more than [`MAX_SCOPES`](crate::MAX_SCOPES) scopes.
    TooManyScopes,
    /// A scope string had a leading, trailing or doubled space, or another separator.
    BadSeparator,
}

impl ScopeErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Empty => "empty input",
            Self::TooLong => "input too long",
            Self::EmptySegment => "empty segment",
            Self::DotSegment => "`.` and `..` are not allowed as segments",
            Self::SegmentTooLong => "segment longer than 128 bytes",
            Self::TooManySegments => "more than 16 segments",
            Self::NotAscii => "non-ASCII character",
            Self::InvalidCharacter => "character not allowed here",
            Self::WildcardNotAllowed => "wildcard `*` not allowed in a concrete resource",
            Self::MissingAction => "missing `:action`",
            Self::InvalidAction => "action must be a lowercase ASCII verb or `*`",
            Self::Duplicate => "duplicate scope",
            Self::TooManyScopes => "more than 256 scopes",
            Self::BadSeparator => "scopes must be separated by exactly one space",
        }
    }
}

/// A scope, resource or action that failed to parse: what was parsed, where, and why.
///
/// The message quotes at most the first 64 characters of the input, escaped, so that it is
/// safe to log: `scope "projects/:read": empty segment at byte 9`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    what: &'static str,
    input: String,
    at: usize,
    kind: ScopeErrorKind,
    found: Option<char>,
}

impl ScopeError {
    pub(super) fn new(what: &'static str, input: &str, fault: Fault) -> Self {
        let mut quoted: String = input.chars().take(QUOTE_CHARS).collect();
        if quoted.len() < input.len() {
            quoted.push('…');
        }
        Self {
            what,
            input: quoted,
            at: fault.at,
            kind: fault.kind,
            found: fault.found,
        }
    }

    /// What was wrong, for matching.
    pub fn kind(&self) -> ScopeErrorKind {
        self.kind
    }

    /// The byte offset in the input where the problem was found.
    pub fn position(&self) -> usize {
        self.at
    }

    /// The offending character, when one character was the problem.
    pub fn found(&self) -> Option<char> {
        self.found
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?}: {}",
            self.what,
            self.input,
            self.kind.describe()
        )?;
        if let Some(c) = self.found {
            write!(f, ": {:?} (U+{:04X})", c, u32::from(c))?;
        }
        write!(f, " at byte {}", self.at)
    }
}

impl std::error::Error for ScopeError {}

/// A parse failure before it knows which input it belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fault {
    at: usize,
    kind: ScopeErrorKind,
    found: Option<char>,
}

impl Fault {
    pub(super) fn at(at: usize, kind: ScopeErrorKind) -> Self {
        Self {
            at,
            kind,
            found: None,
        }
    }

    pub(super) fn char(at: usize, kind: ScopeErrorKind, c: char) -> Self {
        Self {
            at,
            kind,
            found: Some(c),
        }
    }

    pub(super) fn shift(self, by: usize) -> Self {
        Self {
            at: self.at + by,
            ..self
        }
    }
}
