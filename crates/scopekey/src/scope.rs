//! Scopes: what a token may touch.
//!
//! A scope is `resource:action`. A [`Resource`] is a path of segments separated by `/`
//! (`projects`, `projects/42`, `projects/42/comments`); an [`Action`] is a lowercase verb
//! (`read`, `write`, `delete`, `admin`, or a custom one such as `publish`).
//!
//! A granted scope covers its resource **and every descendant**, for its own action only:
//! `projects:read` allows `read` on `projects/42` and on `projects/42/comments/7`, but not
//! `write` on anything and not `read` on `projects-archive` (segments match whole, never by
//! prefix). A `*` segment in a granted resource matches exactly one segment
//! (`projects/*/comments:read`), and `*` as an action matches every action. Both are *broad*
//! and must be asked for explicitly when minting.
//!
//! ```
//! use scopekey::{Action, Resource, ScopeSet};
//!
//! let granted: ScopeSet = "projects:read projects/42/comments:write".parse()?;
//! let project = Resource::from_segments(["projects", "42"])?;
//! assert!(granted.allows(&project, &Action::read()));
//! assert!(!granted.allows(&project, &Action::write()));
//! assert!(granted.allows(&project.child("comments")?, &Action::write()));
//!
//! // An id taken from a request can never smuggle a separator into the grammar.
//! assert!(Resource::from_segments(["projects", "42 comments:write"]).is_err());
//! # Ok::<(), scopekey::ScopeError>(())
//! ```
//!
//! The grammar is strict ASCII and case-sensitive; there is no normalisation step before
//! comparison. See `docs/scopes.md` for the full guide.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// Longest accepted resource segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 128;
/// Most segments a resource may have.
pub const MAX_SEGMENTS: usize = 16;
/// Longest accepted resource, in bytes.
pub const MAX_RESOURCE_LEN: usize = 1024;
/// Longest accepted action, in bytes.
pub const MAX_ACTION_LEN: usize = 64;
/// Most scopes a [`ScopeSet`] may hold.
pub const MAX_SCOPES: usize = 256;
/// Longest accepted space-separated scope string, in bytes.
pub const MAX_SCOPE_STRING_LEN: usize = 16 * 1024;

/// How many characters of a refused input an error message quotes.
const QUOTE_CHARS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

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
    /// A resource segment was longer than [`MAX_SEGMENT_LEN`].
    SegmentTooLong,
    /// A resource had more than [`MAX_SEGMENTS`] segments.
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
    /// A set held more than [`MAX_SCOPES`] scopes.
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
    fn new(what: &'static str, input: &str, fault: Fault) -> Self {
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
struct Fault {
    at: usize,
    kind: ScopeErrorKind,
    found: Option<char>,
}

impl Fault {
    fn at(at: usize, kind: ScopeErrorKind) -> Self {
        Self {
            at,
            kind,
            found: None,
        }
    }

    fn char(at: usize, kind: ScopeErrorKind, c: char) -> Self {
        Self {
            at,
            kind,
            found: Some(c),
        }
    }

    fn shift(self, by: usize) -> Self {
        Self {
            at: self.at + by,
            ..self
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Grammar checks
// ---------------------------------------------------------------------------------------------

/// `s.split(sep)` for an ASCII separator, scanning bytes: no character decoding and no `memchr`
/// call per piece, which is what short segments and scopes want.
fn split_byte(s: &str, sep: u8) -> SplitByte<'_> {
    SplitByte { rest: Some(s), sep }
}

/// The space-separated parts of `text` that start with the ASCII byte `first`.
fn parts_starting_with(text: &str, first: u8) -> impl Iterator<Item = &str> {
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let at = from + text.get(from..)?.find(char::from(first))?;
            let rest = text.get(at..)?;
            let len = rest.find(' ').unwrap_or(rest.len());
            from = at + len.max(1);
            if at == 0 || text.as_bytes().get(at - 1) == Some(&b' ') {
                return rest.get(..len);
            }
        }
    })
}

/// The iterator of [`split_byte`].
#[derive(Clone)]
struct SplitByte<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == self.sep) {
            Some(i) => {
                // `sep` is ASCII, so both sides of it are character boundaries.
                self.rest = rest.get(i + 1..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

const fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

fn check_segment(seg: &str, allow_wildcard: bool) -> Result<(), Fault> {
    if seg.is_empty() {
        return Err(Fault::at(0, ScopeErrorKind::EmptySegment));
    }
    if seg == "*" {
        return if allow_wildcard {
            Ok(())
        } else {
            Err(Fault::char(0, ScopeErrorKind::WildcardNotAllowed, '*'))
        };
    }
    if seg.len() > MAX_SEGMENT_LEN {
        return Err(Fault::at(MAX_SEGMENT_LEN, ScopeErrorKind::SegmentTooLong));
    }
    if seg.bytes().all(is_segment_byte) {
        // The common case, in one pass; the passes below only find what to report.
        return if seg == "." || seg == ".." {
            Err(Fault::at(0, ScopeErrorKind::DotSegment))
        } else {
            Ok(())
        };
    }
    if let Some((i, c)) = seg.char_indices().find(|&(_, c)| !c.is_ascii()) {
        return Err(Fault::char(i, ScopeErrorKind::NotAscii, c));
    }
    if let Some(i) = seg.bytes().position(|b| !is_segment_byte(b)) {
        let c = char::from(seg.as_bytes()[i]);
        return Err(Fault::char(i, ScopeErrorKind::InvalidCharacter, c));
    }
    if seg == "." || seg == ".." {
        return Err(Fault::at(0, ScopeErrorKind::DotSegment));
    }
    Ok(())
}

fn check_resource(s: &str, allow_wildcard: bool) -> Result<(), Fault> {
    if s.is_empty() {
        return Err(Fault::at(0, ScopeErrorKind::Empty));
    }
    if s.len() > MAX_RESOURCE_LEN {
        return Err(Fault::at(MAX_RESOURCE_LEN, ScopeErrorKind::TooLong));
    }
    let mut start = 0;
    for (n, seg) in split_byte(s, b'/').enumerate() {
        if n >= MAX_SEGMENTS {
            return Err(Fault::at(start, ScopeErrorKind::TooManySegments));
        }
        check_segment(seg, allow_wildcard).map_err(|f| f.shift(start))?;
        start += seg.len() + 1;
    }
    Ok(())
}

fn check_action(s: &str) -> Result<(), Fault> {
    if s.is_empty() {
        return Err(Fault::at(0, ScopeErrorKind::Empty));
    }
    if s == "*" {
        return Ok(());
    }
    if s.len() > MAX_ACTION_LEN {
        return Err(Fault::at(MAX_ACTION_LEN, ScopeErrorKind::TooLong));
    }
    let bytes = s.as_bytes();
    let action_byte =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    if bytes[0].is_ascii_lowercase() && bytes.iter().all(|&b| action_byte(b)) {
        return Ok(());
    }
    if let Some((i, c)) = s.char_indices().find(|&(_, c)| !c.is_ascii()) {
        return Err(Fault::char(i, ScopeErrorKind::NotAscii, c));
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err(Fault::char(
            0,
            ScopeErrorKind::InvalidAction,
            char::from(bytes[0]),
        ));
    }
    if let Some(i) = bytes.iter().position(|&b| !action_byte(b)) {
        return Err(Fault::char(
            i,
            ScopeErrorKind::InvalidAction,
            char::from(bytes[i]),
        ));
    }
    Ok(())
}

/// Whether `s` is a valid scope (`resource:action`, wildcards allowed), checked at compile time.
///
/// This is the grammar of [`Scope::from_str`](std::str::FromStr) as a `const fn`, so macros can
/// refuse an invalid scope literal when the program is compiled:
///
/// ```
/// const _: () = assert!(scopekey::scope::is_valid_scope_literal("billing/invoices:read"));
/// const _: () = assert!(!scopekey::scope::is_valid_scope_literal("billing/:read"));
/// ```
pub const fn is_valid_scope_literal(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > MAX_RESOURCE_LEN + 1 + MAX_ACTION_LEN {
        return false;
    }
    // Find the first ':'.
    let mut colon = 0;
    while colon < b.len() && b[colon] != b':' {
        colon += 1;
    }
    if colon == 0 || colon >= b.len() || colon > MAX_RESOURCE_LEN {
        return false;
    }
    // Resource: segments separated by '/'.
    let mut start = 0;
    let mut segments = 0;
    while start <= colon {
        let mut end = start;
        while end < colon && b[end] != b'/' {
            end += 1;
        }
        let len = end - start;
        segments += 1;
        if len == 0 || len > MAX_SEGMENT_LEN || segments > MAX_SEGMENTS {
            return false;
        }
        let star = len == 1 && b[start] == b'*';
        let dots = (len == 1 && b[start] == b'.')
            || (len == 2 && b[start] == b'.' && b[start + 1] == b'.');
        if dots {
            return false;
        }
        if !star {
            let mut i = start;
            while i < end {
                if !is_segment_byte(b[i]) {
                    return false;
                }
                i += 1;
            }
        }
        start = end + 1;
    }
    // Action.
    let action_len = b.len() - colon - 1;
    if action_len == 1 && b[colon + 1] == b'*' {
        return true;
    }
    if action_len == 0 || action_len > MAX_ACTION_LEN || !b[colon + 1].is_ascii_lowercase() {
        return false;
    }
    let mut i = colon + 1;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Resource
// ---------------------------------------------------------------------------------------------

/// A resource path such as `projects/42/comments`.
///
/// Segments are ASCII letters, digits, `_`, `-` and `.` (never `.` or `..` alone), at most
/// [`MAX_SEGMENT_LEN`] bytes each, case-sensitive. In a *granted* resource (parsed with
/// [`FromStr`]) a segment may be `*`, matching exactly one segment. A resource built from
/// request data with [`Resource::from_segments`] or [`Resource::child`] is always concrete.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource(Box<str>);

impl Resource {
    /// Builds a concrete resource from segments, typically with ids taken from a request:
    /// `Resource::from_segments(["projects", id])`.
    ///
    /// # Errors
    /// Refuses a segment that is empty, `.` or `..`, `*`, longer than [`MAX_SEGMENT_LEN`], or that
    /// contains anything outside `[A-Za-z0-9_.-]` (so `/`, `:`, `*`, whitespace, control and
    /// non-ASCII characters), and more than [`MAX_SEGMENTS`] segments.
    ///
    /// # Security
    /// This is the safe way to put untrusted ids into a resource: an id can never add a segment,
    /// a scope separator or a wildcard (docs/threats.md F1).
    pub fn from_segments<I, S>(segments: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut path = String::new();
        for (n, seg) in segments.into_iter().enumerate() {
            let seg = seg.as_ref();
            if n >= MAX_SEGMENTS {
                return Err(ScopeError::new(
                    "resource",
                    &path,
                    Fault::at(path.len(), ScopeErrorKind::TooManySegments),
                ));
            }
            check_segment(seg, false).map_err(|f| ScopeError::new("resource segment", seg, f))?;
            if n > 0 {
                path.push('/');
            }
            path.push_str(seg);
        }
        if path.is_empty() {
            return Err(ScopeError::new(
                "resource",
                "",
                Fault::at(0, ScopeErrorKind::Empty),
            ));
        }
        Ok(Self(path.into_boxed_str()))
    }

    /// The concrete child resource `self/segment`, e.g. `projects` → `projects/42`.
    ///
    /// # Errors
    /// The same refusals as [`Resource::from_segments`] for `segment`, and
    /// [`ScopeErrorKind::TooManySegments`] past [`MAX_SEGMENTS`].
    pub fn child(&self, segment: &str) -> Result<Self, ScopeError> {
        check_segment(segment, false)
            .map_err(|f| ScopeError::new("resource segment", segment, f))?;
        if self.segments().count() >= MAX_SEGMENTS {
            return Err(ScopeError::new(
                "resource",
                &self.0,
                Fault::at(self.0.len(), ScopeErrorKind::TooManySegments),
            ));
        }
        let path = format!("{}/{}", self.0, segment);
        if path.len() > MAX_RESOURCE_LEN {
            return Err(ScopeError::new(
                "resource",
                &path,
                Fault::at(MAX_RESOURCE_LEN, ScopeErrorKind::TooLong),
            ));
        }
        Ok(Self(path.into_boxed_str()))
    }

    /// The resource as written, e.g. `projects/42`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> + Clone + '_ {
        split_byte(&self.0, b'/')
    }

    /// Whether any segment is the wildcard `*`.
    pub fn has_wildcard(&self) -> bool {
        self.segments().any(|s| s == "*")
    }

    /// Whether a grant on `self` covers `other`: `self` is a segment-wise prefix of `other`,
    /// where a `*` segment of `self` matches any one segment. A `*` in `other` is only matched
    /// by a `*` in `self` (a grant on one project does not cover "every project").
    pub fn covers(&self, other: &Resource) -> bool {
        covers(&self.0, other)
    }
}

/// The resource part of the checked scope `scope` if its action is `action`.
fn strip_action<'s>(scope: &'s str, action: &str) -> Option<&'s str> {
    scope
        .strip_suffix(action)?
        .strip_suffix(':')
        // The resource never holds `:`, so this `:` is the separator.
        .filter(|pattern| !pattern.is_empty())
}

/// Whether a grant on the resource pattern `pattern` covers `other` (see [`Resource::covers`]).
fn covers(pattern: &str, other: &Resource) -> bool {
    let (p, r) = (pattern.as_bytes(), other.0.as_bytes());
    if !p.contains(&b'*') {
        // Without a wildcard, a segment-wise prefix is a byte prefix ending at a `/`.
        return r.starts_with(p) && (r.len() == p.len() || r.get(p.len()) == Some(&b'/'));
    }
    let mut theirs = other.segments();
    split_byte(pattern, b'/').all(|mine| match theirs.next() {
        Some(t) => mine == "*" || mine == t,
        None => false,
    })
}

impl FromStr for Resource {
    type Err = ScopeError;

    /// Parses a resource pattern; `*` segments are allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_resource(s, true).map_err(|f| ScopeError::new("resource", s, f))?;
        Ok(Self(s.into()))
    }
}

impl TryFrom<&str> for Resource {
    type Error = ScopeError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resource({:?})", &*self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Action
// ---------------------------------------------------------------------------------------------

/// An action: a lowercase ASCII verb (`read`, `write`, `delete`, `admin`, `publish`, …) or
/// `*`, which matches every action and is broad.
///
/// Actions do not imply one another: `admin` does not include `read`, and `write` does not
/// include `read`. Each escalation is granted on purpose.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(Cow<'static, str>);

impl Action {
    /// `read`: the default, least-privilege action.
    pub const fn read() -> Self {
        Self(Cow::Borrowed("read"))
    }

    /// `write`: an escalation beyond read.
    pub const fn write() -> Self {
        Self(Cow::Borrowed("write"))
    }

    /// `delete`: an escalation beyond read.
    pub const fn delete() -> Self {
        Self(Cow::Borrowed("delete"))
    }

    /// `admin`: an escalation beyond read. It does not imply the other actions.
    pub const fn admin() -> Self {
        Self(Cow::Borrowed("admin"))
    }

    /// `*`: every action. Broad; minting it needs an explicit opt-in.
    pub const fn any() -> Self {
        Self(Cow::Borrowed("*"))
    }

    /// The action as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the `*` action.
    pub fn is_wildcard(&self) -> bool {
        &*self.0 == "*"
    }

    /// Whether this is `read`.
    pub fn is_read(&self) -> bool {
        &*self.0 == "read"
    }

    /// Whether a grant of `self` covers `other`: equal, or `self` is `*`.
    pub fn covers(&self, other: &Action) -> bool {
        self.is_wildcard() || self == other
    }
}

impl FromStr for Action {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_action(s).map_err(|f| ScopeError::new("action", s, f))?;
        Ok(Self::from_checked(s))
    }
}

impl Action {
    /// An action from text that passed `check_action`; the standard ones are not allocated.
    fn from_checked(s: &str) -> Self {
        match s {
            "read" => Self::read(),
            "write" => Self::write(),
            "delete" => Self::delete(),
            "admin" => Self::admin(),
            "*" => Self::any(),
            other => Self(Cow::Owned(other.to_owned())),
        }
    }

    /// The bit of a standard action in a compiled node, if it is one.
    fn standard_bit(&self) -> Option<u8> {
        standard_bit(self.as_str())
    }
}

impl TryFrom<&str> for Action {
    type Error = ScopeError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Action({:?})", &*self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Scope
// ---------------------------------------------------------------------------------------------

/// One grant: an [`Action`] on a [`Resource`] and everything below it, written
/// `resource:action`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    resource: Resource,
    action: Action,
}

impl Scope {
    /// A scope from its parts.
    pub fn new(resource: Resource, action: Action) -> Self {
        Self { resource, action }
    }

    /// `resource:read`, the least-privilege scope.
    pub fn read(resource: Resource) -> Self {
        Self::new(resource, Action::read())
    }

    /// `resource:write`.
    pub fn write(resource: Resource) -> Self {
        Self::new(resource, Action::write())
    }

    /// `resource:delete`.
    pub fn delete(resource: Resource) -> Self {
        Self::new(resource, Action::delete())
    }

    /// `resource:admin`.
    pub fn admin(resource: Resource) -> Self {
        Self::new(resource, Action::admin())
    }

    /// The resource part.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// The action part.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// Whether this scope is broad: a `*` action or a `*` resource segment.
    pub fn is_broad(&self) -> bool {
        self.action.is_wildcard() || self.resource.has_wildcard()
    }

    /// Whether this scope allows `action` on `resource`.
    pub fn allows(&self, resource: &Resource, action: &Action) -> bool {
        self.action.covers(action) && self.resource.covers(resource)
    }

    /// Whether everything `other` allows, `self` allows too.
    pub fn covers(&self, other: &Scope) -> bool {
        self.allows(&other.resource, &other.action)
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_scope(s).map_err(|f| ScopeError::new("scope", s, f))
    }
}

fn parse_scope(s: &str) -> Result<Scope, Fault> {
    let colon = check_scope(s)?;
    Ok(scope_from_checked(s, colon))
}

/// Checks the grammar of one written scope and returns the position of its `:`.
fn check_scope(s: &str) -> Result<usize, Fault> {
    if s.is_empty() {
        return Err(Fault::at(0, ScopeErrorKind::Empty));
    }
    if s.len() > MAX_RESOURCE_LEN + 1 + MAX_ACTION_LEN {
        return Err(Fault::at(
            MAX_RESOURCE_LEN + 1 + MAX_ACTION_LEN,
            ScopeErrorKind::TooLong,
        ));
    }
    let Some(colon) = s.bytes().position(|b| b == b':') else {
        // Report a bad character first if there is one: it is the likelier mistake.
        check_resource(s, true)?;
        return Err(Fault::at(s.len(), ScopeErrorKind::MissingAction));
    };
    check_resource(&s[..colon], true)?;
    check_action(&s[colon + 1..]).map_err(|f| f.shift(colon + 1))?;
    Ok(colon)
}

/// Byte classes of scope text for [`scan_scopes`]: bit 0 a resource segment byte (not `*`),
/// bit 1 an action byte, bit 2 a byte an action may start with.
static SCOPE_BYTES: [u8; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut class = 0;
        if is_segment_byte(b) {
            class |= SEGMENT_BYTE;
        }
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' {
            class |= ACTION_BYTE;
        }
        if b.is_ascii_lowercase() {
            class |= ACTION_START;
        }
        table[i] = class;
        i += 1;
    }
    table
};
const SEGMENT_BYTE: u8 = 1;
const ACTION_BYTE: u8 = 2;
const ACTION_START: u8 = 4;

/// One pass over scope text that is certainly a canonical set: scopes [`check_scope`]
/// accepts, one space apart, in strictly increasing byte order (so no duplicates), at most
/// [`MAX_SCOPES`]. Returns how many; `None` when the text may be invalid or is not canonical,
/// and then the scope-by-scope check decides and says what is wrong. Tokens carry their
/// scopes this way, so verifying reads each byte once with a table lookup.
fn scan_scopes(s: &[u8]) -> Option<usize> {
    let class = |b: u8| SCOPE_BYTES[usize::from(b)];
    let mut i = 0;
    let mut count = 0;
    let mut previous: &[u8] = &[];
    loop {
        let start = i;
        // The resource: segments up to the `:`.
        let mut segment_start = i;
        let mut segments = 0;
        loop {
            let b = *s.get(i)?;
            if class(b) & SEGMENT_BYTE != 0 {
                i += 1;
                continue;
            }
            let mut separator = b;
            if b == b'*' && i == segment_start {
                // A wildcard is a whole segment.
                i += 1;
                separator = *s.get(i)?;
            } else {
                let len = i - segment_start;
                let dots = len <= 2 && s.get(segment_start..i)?.iter().all(|&c| c == b'.');
                if len == 0 || len > MAX_SEGMENT_LEN || dots {
                    return None;
                }
            }
            if separator != b'/' && separator != b':' {
                return None;
            }
            segments += 1;
            if segments > MAX_SEGMENTS {
                return None;
            }
            i += 1;
            if separator == b':' {
                break;
            }
            segment_start = i;
        }
        if i - 1 - start > MAX_RESOURCE_LEN {
            return None;
        }
        // The action: `*`, or a lowercase letter and action bytes.
        let action_start = i;
        let first = *s.get(i)?;
        i += 1;
        if first != b'*' {
            if class(first) & ACTION_START == 0 {
                return None;
            }
            while s.get(i).is_some_and(|&b| class(b) & ACTION_BYTE != 0) {
                i += 1;
            }
            if i - action_start > MAX_ACTION_LEN {
                return None;
            }
        }
        let scope = s.get(start..i)?;
        if count > 0 {
            // Strictly after the previous scope; the first bytes nearly always decide.
            let ordered = match previous.first().cmp(&scope.first()) {
                std::cmp::Ordering::Equal => previous < scope,
                order => order.is_lt(),
            };
            if !ordered {
                return None;
            }
        }
        count += 1;
        if count > MAX_SCOPES {
            return None;
        }
        previous = scope;
        match s.get(i) {
            None => return Some(count),
            Some(b' ') => i += 1,
            Some(_) => return None,
        }
    }
}

/// A scope from text that passed [`check_scope`], whose `:` is at `colon`.
fn scope_from_checked(s: &str, colon: usize) -> Scope {
    Scope {
        resource: Resource(s[..colon].into()),
        action: Action::from_checked(&s[colon + 1..]),
    }
}

/// Splits checked scope text at its first `:` (a resource never contains one).
fn split_checked(s: &str) -> (&str, &str) {
    // A byte loop, not `split_once(':')`: scopes are short (see `Resource::segments`).
    match s.bytes().position(|b| b == b':') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

impl TryFrom<&str> for Scope {
    type Error = ScopeError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Ord for Scope {
    /// Canonical order: byte order of the written form `resource:action`.
    fn cmp(&self, other: &Self) -> Ordering {
        // Equivalent to comparing the bytes of `resource:action`, without iterating byte by
        // byte: resources never contain `:`, so when one resource is a prefix of the other,
        // the `:` that follows the shorter one decides.
        let (a, b) = (self.resource.0.as_bytes(), other.resource.0.as_bytes());
        let n = a.len().min(b.len());
        match a[..n].cmp(&b[..n]) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        match (a.get(n), b.get(n)) {
            (None, None) => self.action.as_str().cmp(other.action.as_str()),
            (None, Some(next)) => b':'.cmp(next),
            (Some(next), _) => next.cmp(&b':'),
        }
    }
}

impl PartialOrd for Scope {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope(\"{self}\")")
    }
}

// ---------------------------------------------------------------------------------------------
// ScopeSet
// ---------------------------------------------------------------------------------------------

/// A set of scopes, compiled once into a tree for fast checks.
///
/// Written as the OAuth `scope` string: scopes separated by single spaces, in canonical
/// (byte) order. Parsing accepts any order but refuses duplicates, empty entries and any
/// separator other than a single space; [`Display`](fmt::Display) and serde always write the
/// canonical form.
///
/// The set keeps its canonical string once. Checks against a set of up to
/// [`ScopeSet::LINEAR_MAX`] scopes scan that string (a one-off check after verifying a token
/// needs nothing more); a larger set, or one prepared with [`ScopeSet::compile`], is checked
/// through a tree whose segments point into the string. Both answer the same (a property
/// test holds them to the definition). The scopes as [`Scope`] values are built on first use
/// of [`ScopeSet::iter`] (or of a method that returns them).
#[derive(Default)]
pub struct ScopeSet {
    /// The canonical written form.
    text: Arc<str>,
    /// How many scopes `text` holds.
    len: usize,
    /// The compiled tree, built on demand.
    root: OnceLock<Node>,
    /// The scopes as values, built on demand.
    scopes: OnceLock<Vec<Scope>>,
}

/// A segment of a set's canonical text, by position.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn of(self, text: &str) -> &str {
        let start = self.start as usize;
        text.get(start..start + self.len as usize)
            .unwrap_or_default()
    }
}

/// A node of the compiled tree: what is granted at this resource, and the children.
#[derive(Clone, Default)]
struct Node {
    any_action: bool,
    /// `read`, `write`, `delete`, `admin` as bits (see `Action::standard_bit`).
    standard: u8,
    /// Other actions.
    actions: Vec<Action>,
    /// Literal children, sorted by segment for binary search; segments are spans of the set's
    /// text.
    children: Vec<(Span, Node)>,
    wildcard: Option<Box<Node>>,
}

impl Node {
    fn grants(&self, action: &Action) -> bool {
        self.any_action
            || match action.standard_bit() {
                Some(bit) => self.standard & bit != 0,
                None => self.actions.iter().any(|a| a == action),
            }
    }

    /// Adds the checked scope `text[at..at + scope.len()]` (its `:` at `colon`).
    fn insert(&mut self, text: &str, at: usize, scope: &str, colon: usize) {
        let mut node = self;
        let mut start = at;
        for seg in split_byte(scope.get(..colon).unwrap_or(scope), b'/') {
            node = if seg == "*" {
                node.wildcard.get_or_insert_with(Box::default)
            } else {
                // Canonical order often adds children in order: try the end first.
                let found = match node.children.last() {
                    Some((last, _)) if last.of(text) < seg => Err(node.children.len()),
                    _ => node.children.binary_search_by(|(s, _)| s.of(text).cmp(seg)),
                };
                let i = match found {
                    Ok(i) => i,
                    Err(i) => {
                        // `text` is at most a few hundred KiB (MAX_SCOPES scopes of bounded
                        // length), far below u32::MAX.
                        let span = Span {
                            start: u32::try_from(start).unwrap_or(u32::MAX),
                            len: u32::try_from(seg.len()).unwrap_or(0),
                        };
                        node.children.insert(i, (span, Node::default()));
                        i
                    }
                };
                &mut node.children[i].1
            };
            start += seg.len() + 1;
        }
        let action = scope.get(colon + 1..).unwrap_or_default();
        if action == "*" {
            node.any_action = true;
        } else if let Some(bit) = standard_bit(action) {
            node.standard |= bit;
        } else if !node.actions.iter().any(|a| a.as_str() == action) {
            node.actions.push(Action::from_checked(action));
        }
    }

    /// The literal child named `seg`: a length-first scan when there are few children (no
    /// string comparison unless the lengths match), a binary search otherwise.
    fn child(&self, text: &str, seg: &str) -> Option<&Node> {
        if self.children.len() <= 8 {
            self.children
                .iter()
                .find(|(s, _)| s.len as usize == seg.len() && s.of(text) == seg)
                .map(|(_, n)| n)
        } else {
            self.children
                .binary_search_by(|(s, _)| s.of(text).cmp(seg))
                .ok()
                .map(|i| &self.children[i].1)
        }
    }

    /// Whether this node or a node below it on the path `segs` grants `action`. Every tree
    /// node is visited at most once, so the cost is bounded by the size of the set.
    fn allows<'a>(
        &self,
        text: &str,
        mut segs: impl Iterator<Item = &'a str> + Clone,
        action: &Action,
    ) -> bool {
        let Some(seg) = segs.next() else {
            return false;
        };
        if let Some(child) = self.child(text, seg)
            && (child.grants(action) || child.allows(text, segs.clone(), action))
        {
            return true;
        }
        match &self.wildcard {
            Some(w) => w.grants(action) || w.allows(text, segs, action),
            None => false,
        }
    }
}

/// The bit of a standard action in a compiled node, if it is one.
fn standard_bit(action: &str) -> Option<u8> {
    match action {
        "read" => Some(1),
        "write" => Some(2),
        "delete" => Some(4),
        "admin" => Some(8),
        _ => None,
    }
}

impl ScopeSet {
    /// The empty set, which allows nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from scopes.
    ///
    /// # Errors
    /// [`ScopeErrorKind::Duplicate`] if a scope appears twice, [`ScopeErrorKind::TooManyScopes`]
    /// past [`MAX_SCOPES`].
    pub fn from_scopes<I: IntoIterator<Item = Scope>>(scopes: I) -> Result<Self, ScopeError> {
        let mut list: Vec<Scope> = Vec::new();
        for scope in scopes {
            if list.len() >= MAX_SCOPES {
                return Err(ScopeError::new(
                    "scopes",
                    "",
                    Fault::at(0, ScopeErrorKind::TooManyScopes),
                ));
            }
            list.push(scope);
        }
        list.sort();
        if let Some(w) = list.windows(2).find(|w| w[0] == w[1]) {
            return Err(ScopeError::new(
                "scope",
                &w[0].to_string(),
                Fault::at(0, ScopeErrorKind::Duplicate),
            ));
        }
        let mut text = String::new();
        for (i, scope) in list.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(scope.resource.as_str());
            text.push(':');
            text.push_str(scope.action.as_str());
        }
        let set = Self::from_canonical(text.into(), list.len());
        // Already built: keep them rather than parse them again on first use.
        let _ = set.scopes.set(list);
        Ok(set)
    }

    /// Sets up to this many scopes are checked by scanning their text until
    /// [`compile`](Self::compile) is called; larger sets are compiled on their first check.
    pub const LINEAR_MAX: usize = 16;

    /// A set of canonical text holding `len` checked scopes, in byte order, without
    /// duplicates.
    fn from_canonical(text: Arc<str>, len: usize) -> Self {
        Self {
            text,
            len,
            root: OnceLock::new(),
            scopes: OnceLock::new(),
        }
    }

    /// Builds the lookup tree now, if it is not built yet.
    ///
    /// Worth calling on a set that will be checked many times (the grant cache does it for
    /// the grants it keeps); a set of more than [`LINEAR_MAX`](Self::LINEAR_MAX) scopes is
    /// compiled on its first check anyway. Compiling never changes an answer.
    pub fn compile(&self) {
        self.tree();
    }

    /// The lookup tree, built on first use.
    fn tree(&self) -> &Node {
        self.root.get_or_init(|| {
            let text = &*self.text;
            let mut root = Node {
                children: Vec::with_capacity(self.len),
                ..Node::default()
            };
            let mut at = 0;
            for part in self.parts() {
                let colon = part.bytes().position(|b| b == b':').unwrap_or(part.len());
                root.insert(text, at, part, colon);
                at += part.len() + 1;
            }
            root
        })
    }

    /// The written scopes, in canonical order.
    fn parts(&self) -> impl Iterator<Item = &str> {
        split_byte(&self.text, b' ').filter(|p| !p.is_empty())
    }

    /// The scopes as values, built on first use.
    fn scopes(&self) -> &[Scope] {
        self.scopes.get_or_init(|| {
            self.parts()
                .map(|p| {
                    let (resource, action) = split_checked(p);
                    Scope {
                        resource: Resource(resource.into()),
                        action: Action::from_checked(action),
                    }
                })
                .collect()
        })
    }

    /// Whether some scope in the set allows `action` on `resource`.
    ///
    /// A `*` segment in `resource` is matched only by a `*` in a granted scope, and the `*`
    /// action only by a `*` grant: asking about "every project" is answered yes only when
    /// every project is granted.
    pub fn allows(&self, resource: &Resource, action: &Action) -> bool {
        let root = match self.root.get() {
            Some(root) => root,
            None if self.len <= Self::LINEAR_MAX => {
                // The definition itself: some scope's action covers `action` and its resource
                // covers `resource`.
                let action = action.as_str();
                let allows = |p: &str| {
                    // `pattern:action` or `pattern:*`, recognised from the end without a search.
                    let pattern = strip_action(p, action).or_else(|| strip_action(p, "*"));
                    pattern.is_some_and(|pattern| covers(pattern, resource))
                };
                // A pattern covers the resource only if its first segment is the resource's or
                // `*`, so only scopes starting with its first byte or `*` are looked at, found
                // by a byte search rather than by splitting the whole text.
                let first = resource.0.as_bytes().first().copied().unwrap_or(b'*');
                return parts_starting_with(&self.text, first).any(allows)
                    || (first != b'*'
                        && self.text.contains('*')
                        && parts_starting_with(&self.text, b'*').any(allows));
            }
            None => self.tree(),
        };
        root.allows(&self.text, resource.segments(), action)
    }

    /// Whether some scope in the set covers `scope`.
    pub fn allows_scope(&self, scope: &Scope) -> bool {
        self.allows(&scope.resource, &scope.action)
    }

    /// Whether everything `self` allows, `other` allows too.
    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.scopes().iter().all(|s| other.allows_scope(s))
    }

    /// Whether any scope is broad (a `*` action or a `*` resource segment).
    pub fn is_broad(&self) -> bool {
        // In checked scope text a `*` is always a whole segment or the whole action.
        self.text.as_bytes().contains(&b'*')
    }

    /// The broad scopes, in canonical order.
    pub fn broad(&self) -> impl Iterator<Item = &Scope> {
        self.iter().filter(|s| s.is_broad())
    }

    /// Whether every scope is a `read` scope: the default, least-privilege posture.
    pub fn is_read_only(&self) -> bool {
        self.parts().all(|p| split_checked(p).1 == "read")
    }

    /// The scopes that go beyond read (write, delete, admin, custom actions, `*`).
    pub fn beyond_read(&self) -> impl Iterator<Item = &Scope> {
        self.iter().filter(|s| !s.action.is_read())
    }

    /// The scopes in canonical order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.scopes().iter()
    }

    /// How many scopes the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the set holds exactly this scope (set membership, not coverage).
    pub fn contains(&self, scope: &Scope) -> bool {
        self.scopes().binary_search(scope).is_ok()
    }

    /// The canonical written form, as [`Display`](fmt::Display) writes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl ScopeSet {
    /// [`FromStr`], keeping `s` as the set's text when it is already canonical (as tokens carry
    /// it) instead of copying it.
    pub(crate) fn parse_owned(s: String) -> Result<Self, ScopeError> {
        match Self::check_str(&s)? {
            Checked::Canonical(count) => Ok(Self::from_canonical(s.into(), count)),
            Checked::Sorted(set) => Ok(set),
        }
    }

    /// Checks `s`; builds the set unless `s` is already canonical.
    fn check_str(s: &str) -> Result<Checked, ScopeError> {
        let err = |fault| ScopeError::new("scopes", s, fault);
        if s.len() > MAX_SCOPE_STRING_LEN {
            return Err(err(Fault::at(
                MAX_SCOPE_STRING_LEN,
                ScopeErrorKind::TooLong,
            )));
        }
        if s.is_empty() {
            return Ok(Checked::Sorted(Self::new()));
        }
        // Tokens carry their scopes canonical: one pass with a table lookup per byte.
        if let Some(count) = scan_scopes(s.as_bytes()) {
            return Ok(Checked::Canonical(count));
        }
        // Otherwise scope by scope, to report what is wrong or sort what is not in order.
        let mut count = 0;
        let mut start = 0;
        let mut canonical = true;
        let mut previous = "";
        for part in split_byte(s, b' ') {
            if part.is_empty() {
                return Err(err(Fault::char(start, ScopeErrorKind::BadSeparator, ' ')));
            }
            if count >= MAX_SCOPES {
                return Err(err(Fault::at(start, ScopeErrorKind::TooManyScopes)));
            }
            check_scope(part).map_err(|f| err(f.shift(start)))?;
            // Byte order of the written form is the order of `Scope`.
            canonical &= count == 0 || previous < part;
            previous = part;
            count += 1;
            start += part.len() + 1;
        }
        if canonical {
            return Ok(Checked::Canonical(count));
        }
        let mut parts: Vec<&str> = s.split(' ').collect();
        parts.sort_unstable();
        if parts.windows(2).any(|w| w[0] == w[1]) {
            return Err(err(Fault::at(0, ScopeErrorKind::Duplicate)));
        }
        Ok(Checked::Sorted(Self::from_canonical(
            parts.join(" ").into(),
            count,
        )))
    }
}

/// What [`ScopeSet::check_str`] found.
enum Checked {
    /// The string is canonical and holds this many scopes.
    Canonical(usize),
    /// The string was not canonical; this is the set.
    Sorted(ScopeSet),
}

impl FromStr for ScopeSet {
    type Err = ScopeError;

    /// Parses a space-separated scope string. The empty string is the empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Self::check_str(s)? {
            Checked::Canonical(count) => Ok(Self::from_canonical(s.into(), count)),
            Checked::Sorted(set) => Ok(set),
        }
    }
}

impl TryFrom<&str> for ScopeSet {
    type Error = ScopeError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Clone for ScopeSet {
    /// Shares the text; the clone builds its own tree and scope values if it needs them (a
    /// minted token's claims are cloned from the request and rarely checked).
    fn clone(&self) -> Self {
        Self::from_canonical(self.text.clone(), self.len)
    }
}

impl PartialEq for ScopeSet {
    fn eq(&self, other: &Self) -> bool {
        // The written form is canonical: equal sets are equal strings.
        self.text == other.text
    }
}

impl Eq for ScopeSet {}

impl std::hash::Hash for ScopeSet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet(\"{self}\")")
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// ---------------------------------------------------------------------------------------------
// serde: every type as its string form, validated on the way in.
// ---------------------------------------------------------------------------------------------

macro_rules! serde_as_string {
    ($ty:ty, $expecting:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

serde_as_string!(Resource, "a resource such as \"projects/42\"");
serde_as_string!(Action, "an action such as \"read\"");
serde_as_string!(Scope, "a scope such as \"projects:read\"");
serde_as_string!(ScopeSet, "a space-separated scope string");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    /// What [`scan_scopes`] must compute, by the definition: every space-separated part a
    /// valid scope, strictly increasing, at most [`MAX_SCOPES`].
    fn canonical_count(s: &str) -> Option<usize> {
        let parts: Vec<&str> = s.split(' ').collect();
        let valid = parts.iter().all(|p| check_scope(p).is_ok());
        let increasing = parts.windows(2).all(|w| w[0] < w[1]);
        (valid && increasing && parts.len() <= MAX_SCOPES).then_some(parts.len())
    }

    proptest::proptest! {
        /// The one-pass scan agrees with the definition on arbitrary text of the scope
        /// alphabet and its neighbours (upper case, `.`, spaces, a non-ASCII letter), and on
        /// text made of pieces of scopes, which is often nearly valid.
        #[test]
        fn scan_is_the_definition(
            text in "[a-cA*/:. _é-]{0,40}",
            pieces in "(a|b|cd|/|:|:r|:w| |[*]|[.]|A|é|-|_|a:r|b/c:w|a:r |b:w ){0,14}",
        ) {
            proptest::prop_assert_eq!(scan_scopes(text.as_bytes()), canonical_count(&text));
            proptest::prop_assert_eq!(scan_scopes(pieces.as_bytes()), canonical_count(&pieces));
        }

        /// And on canonical sets of ordinary scopes, which it must accept or it saves nothing;
        /// the same sets out of order or with a duplicate are refused.
        #[test]
        fn scan_takes_canonical_sets(
            scopes in proptest::collection::btree_set(
                ("([a-z0-9_-][a-z0-9._-]{0,12}|[*])(/([a-z0-9_-][a-z0-9._-]{0,12}|[*])){0,3}",
                 "([a-z][a-z0-9_-]{0,8}|[*])")
                    .prop_map(|(r, a)| format!("{r}:{a}")),
                1..12,
            ),
        ) {
            let scopes: Vec<String> = scopes.into_iter().collect();
            let text = scopes.join(" ");
            proptest::prop_assert_eq!(scan_scopes(text.as_bytes()), Some(scopes.len()));
            proptest::prop_assert_eq!(canonical_count(&text), Some(scopes.len()));
            if scopes.len() > 1 {
                let reversed: Vec<&str> = scopes.iter().rev().map(String::as_str).collect();
                proptest::prop_assert_eq!(scan_scopes(reversed.join(" ").as_bytes()), None);
                let doubled = format!("{} {}", scopes[0], text);
                proptest::prop_assert_eq!(scan_scopes(doubled.as_bytes()), None);
            }
        }
    }

    proptest::proptest! {
        /// The byte search finds the parts a split and a filter find, in order.
        #[test]
        fn parts_starting_with_is_split_and_filter(
            text in "[ab* :]{0,24}",
            first in proptest::sample::select(vec![b'a', b'b', b'*', b':']),
        ) {
            let ours: Vec<&str> = parts_starting_with(&text, first).collect();
            let naive: Vec<&str> = text
                .split(' ')
                .filter(|p| p.as_bytes().first() == Some(&first))
                .collect();
            proptest::prop_assert_eq!(ours, naive);
        }
    }

    #[test]
    fn split_byte_is_str_split() {
        for s in [
            "",
            " ",
            "a",
            "a b",
            " a",
            "a ",
            "a  b",
            "é a ü",
            "ab/cd//e/",
            "/",
        ] {
            for sep in [b' ', b'/'] {
                let ours: Vec<&str> = split_byte(s, sep).collect();
                let std: Vec<&str> = s.split(char::from(sep)).collect();
                assert_eq!(ours, std, "{s:?} on {sep}");
            }
        }
    }

    #[test]
    fn scan_refuses_the_edges() {
        let long_segment = format!("{}:read", "a".repeat(MAX_SEGMENT_LEN + 1));
        let many = format!("{}:read", vec!["a"; MAX_SEGMENTS + 1].join("/"));
        // Ten segments of 100 and one more: 1,009 + 1 + n bytes of resource.
        let resource =
            |n: usize| format!("{}/{}", vec!["a".repeat(100); 10].join("/"), "b".repeat(n));
        assert_eq!(resource(14).len(), MAX_RESOURCE_LEN);
        let long_resource = format!("{}:read", resource(15));
        let longest_resource = format!("{}:read", resource(14));
        let long_action = format!("a:a{}", "b".repeat(MAX_ACTION_LEN));
        let too_many = (0..=MAX_SCOPES)
            .map(|i| format!("s{i:04}:read"))
            .collect::<Vec<_>>()
            .join(" ");
        let most = (0..MAX_SCOPES)
            .map(|i| format!("s{i:04}:read"))
            .collect::<Vec<_>>()
            .join(" ");
        let longest = format!(
            "{}:{}",
            vec!["a".repeat(63); 16].join("/"),
            "b".repeat(MAX_ACTION_LEN)
        );
        for bad in [
            "",
            " ",
            "a",
            ":read",
            "a:",
            "a/:read",
            "/a:read",
            "./a:read",
            "a/..:read",
            "a*:read",
            "*a:read",
            "**:read",
            "a:Read",
            "a:1x",
            "a:re ad",
            "a:r*",
            "a:**",
            "a:*x",
            "a b:read",
            "é:read",
            "a:read ",
            " a:read",
            "a:read  b:read",
            "a:read a:read",
            "b:read a:read",
            "a:write a:read",
            "a:read a/b:read",
            &long_segment,
            &many,
            &long_resource,
            &long_action,
            &too_many,
        ] {
            assert_eq!(scan_scopes(bad.as_bytes()), None, "{bad:?}");
            assert_eq!(canonical_count(bad), None, "{bad:?}");
        }
        for (good, n) in [
            ("a/.b/..c/*:x-1", 1),
            ("*:*", 1),
            ("a/b:read a:read a:write b:*", 4),
            (most.as_str(), MAX_SCOPES),
            (longest.as_str(), 1),
            (longest_resource.as_str(), 1),
        ] {
            assert_eq!(scan_scopes(good.as_bytes()), Some(n), "{good:?}");
            assert_eq!(canonical_count(good), Some(n), "{good:?}");
        }
    }

    #[test]
    fn scope_order_is_the_byte_order_of_the_written_form() {
        let written = [
            "a:read",
            "a:write",
            "a/b:read",
            "a-b:read",
            "a.b:read",
            "a0:read",
            "ab:read",
            "a/*:read",
            "a:*",
            "a/b/c:admin",
            "A:read",
            "a_:read",
            "b:read",
            "a/b:delete",
        ];
        let scopes: Vec<Scope> = written.iter().map(|s| s.parse().unwrap()).collect();
        for x in &scopes {
            for y in &scopes {
                assert_eq!(
                    x.cmp(y),
                    x.to_string().as_bytes().cmp(y.to_string().as_bytes()),
                    "{x} vs {y}"
                );
            }
        }
    }

    fn set(s: &str) -> ScopeSet {
        s.parse().unwrap()
    }
    fn res(s: &str) -> Resource {
        s.parse().unwrap()
    }
    fn act(s: &str) -> Action {
        s.parse().unwrap()
    }
    fn scope_err(s: &str) -> ScopeError {
        s.parse::<Scope>().unwrap_err()
    }

    #[test]
    fn error_message_says_where_and_why() {
        let e = scope_err("projects/:read");
        assert_eq!(e.kind(), ScopeErrorKind::EmptySegment);
        assert_eq!(e.position(), 9);
        assert_eq!(
            e.to_string(),
            "scope \"projects/:read\": empty segment at byte 9"
        );
    }

    #[test]
    fn grammar_accepts_the_documented_forms() {
        for ok in [
            "projects:read",
            "projects/42:read",
            "projects/42/comments:write",
            "projects/*/comments:read",
            "billing/invoices:publish",
            "a_b-c.d/E9:custom-verb_2",
            "projects:*",
            "*:read",
            "...:read",
        ] {
            let s: Scope = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(s.to_string(), ok);
        }
    }

    #[test]
    fn grammar_refusals_name_the_kind() {
        use ScopeErrorKind as K;
        let cases: &[(&str, K, usize)] = &[
            ("", K::Empty, 0),
            ("projects", K::MissingAction, 8),
            ("projects:", K::Empty, 9),
            (":read", K::Empty, 0),
            ("/projects:read", K::EmptySegment, 0),
            ("projects/:read", K::EmptySegment, 9),
            ("projects//x:read", K::EmptySegment, 9),
            ("projects/.:read", K::DotSegment, 9),
            ("projects/..:read", K::DotSegment, 9),
            ("projects:read:extra", K::InvalidAction, 13),
            ("projects:read*", K::InvalidAction, 13),
            ("projects:READ", K::InvalidAction, 9),
            ("projects:Read", K::InvalidAction, 9),
            ("projects:1read", K::InvalidAction, 9),
            ("projects/4*:read", K::InvalidCharacter, 10),
            ("pro jects:read", K::InvalidCharacter, 3),
            ("projects\t:read", K::InvalidCharacter, 8),
            ("projects/%2e%2e:read", K::InvalidCharacter, 9),
            ("projects\0:read", K::InvalidCharacter, 8),
            ("projects\u{FF1A}read", K::NotAscii, 8),
            ("projects\u{2236}read", K::NotAscii, 8),
            ("pr\u{043E}jects:read", K::NotAscii, 2),
            ("projects:wr\u{0131}te", K::NotAscii, 11),
            ("projects/\u{212A}:read", K::NotAscii, 9),
            ("projects:\u{017F}ign", K::NotAscii, 9),
            ("projects\u{200B}:read", K::NotAscii, 8),
            ("projects\u{202E}:read", K::NotAscii, 8),
            ("projects:re\u{200D}ad", K::NotAscii, 11),
        ];
        for &(input, kind, at) in cases {
            let e = scope_err(input);
            assert_eq!((e.kind(), e.position()), (kind, at), "{input:?}: {e}");
        }
    }

    #[test]
    fn segment_length_and_count_are_bounded() {
        let long = "a".repeat(MAX_SEGMENT_LEN);
        assert!(format!("{long}:read").parse::<Scope>().is_ok());
        let e = scope_err(&format!("{long}a:read"));
        assert_eq!(e.kind(), ScopeErrorKind::SegmentTooLong);
        let deep = vec!["a"; MAX_SEGMENTS].join("/");
        assert!(format!("{deep}:read").parse::<Scope>().is_ok());
        let e = scope_err(&format!("{deep}/a:read"));
        assert_eq!(e.kind(), ScopeErrorKind::TooManySegments);
        let e = scope_err(&"a/".repeat(10_000));
        assert_eq!(e.kind(), ScopeErrorKind::TooLong);
        let e = format!("x:{}", "a".repeat(MAX_ACTION_LEN + 1))
            .parse::<Scope>()
            .unwrap_err();
        assert_eq!(e.kind(), ScopeErrorKind::TooLong);
    }

    #[test]
    fn error_messages_quote_a_bounded_escaped_input() {
        let e = scope_err(&format!("{}\n:read", "x".repeat(1000)));
        let msg = e.to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(!msg.contains('\n'));
        let e = scope_err("evil\u{202E}:read");
        assert!(e.to_string().contains("U+202E"), "{e}");
        assert!(!e.to_string().contains('\u{202E}'), "{e}");
    }

    #[test]
    fn from_segments_refuses_every_injection() {
        for id in [
            "",
            ".",
            "..",
            "*",
            "42/comments",
            "42:write",
            "42 comments:write",
            "%2e%2e",
            "%3a",
            "a\0",
            "a\t",
            "a\r\n",
            "a b",
            "\u{FF1A}",
            "\u{0131}",
            "4\u{200B}2",
        ] {
            let e = Resource::from_segments(["projects", id]).unwrap_err();
            assert_ne!(e.kind(), ScopeErrorKind::TooManySegments, "{id:?}");
            let root = res("projects");
            assert!(root.child(id).is_err(), "{id:?}");
        }
        let r = Resource::from_segments(["projects", "42", "comments"]).unwrap();
        assert_eq!(r.as_str(), "projects/42/comments");
        assert!(!r.has_wildcard());
        assert!(Resource::from_segments(Vec::<&str>::new()).is_err());
        let too_deep = vec!["a"; MAX_SEGMENTS + 1];
        assert_eq!(
            Resource::from_segments(too_deep).unwrap_err().kind(),
            ScopeErrorKind::TooManySegments
        );
    }

    #[test]
    fn a_grant_covers_descendants_for_its_own_action_only() {
        let s = set("projects:read");
        assert!(s.allows(&res("projects"), &act("read")));
        assert!(s.allows(&res("projects/42"), &act("read")));
        assert!(s.allows(&res("projects/42/comments/7"), &act("read")));
        assert!(!s.allows(&res("projects/42"), &act("write")));
        assert!(!s.allows(&res("projects-archive"), &act("read")));
        assert!(!s.allows(&res("project"), &act("read")));
        assert!(!s.allows(&res("users/42"), &act("read")));
        assert!(!set("projects:read").allows(&res("projects"), &act("readwrite")));
        assert!(!set("projects/42:read").allows(&res("projects"), &act("read")));
        assert!(!set("projects/42:read").allows(&res("projects/420"), &act("read")));
    }

    #[test]
    fn matching_is_case_sensitive_without_normalisation() {
        let s = set("projects:read");
        assert!(!s.allows(&res("Projects"), &act("read")));
        assert!(!s.allows(&res("PROJECTS/1"), &act("read")));
    }

    #[test]
    fn wildcards_match_one_segment_and_are_broad() {
        let s = set("projects/*/comments:read");
        assert!(s.is_broad());
        assert!(s.allows(&res("projects/42/comments"), &act("read")));
        assert!(s.allows(&res("projects/42/comments/9"), &act("read")));
        assert!(!s.allows(&res("projects/42"), &act("read")));
        assert!(!s.allows(&res("projects/42/x/comments"), &act("read")));
        assert!(!s.allows(&res("projects/42/comments"), &act("write")));

        let any = set("projects:*");
        assert!(any.is_broad());
        assert!(any.allows(&res("projects/1"), &act("delete")));
        assert!(any.allows(&res("projects/1"), &Action::any()));
        assert!(!set("projects:read").allows(&res("projects/1"), &Action::any()));

        // Asking about every project is only granted by a grant on every project.
        assert!(!set("projects/1:read").allows(&res("projects/*"), &act("read")));
        assert!(set("projects/*:read").allows(&res("projects/*"), &act("read")));
        assert!(!set("projects:read").is_broad());
    }

    #[test]
    fn both_literal_and_wildcard_branches_are_searched() {
        let s = set("a/b/c:read a/*/d:read");
        assert!(s.allows(&res("a/b/d"), &act("read")));
        assert!(s.allows(&res("a/b/c/e"), &act("read")));
        assert!(!s.allows(&res("a/b/e"), &act("read")));
    }

    #[test]
    fn scope_set_string_is_canonical_and_strict() {
        let s = set("projects:read comments:write projects/42:read");
        assert_eq!(
            s.to_string(),
            "comments:write projects/42:read projects:read"
        );
        assert_eq!(s, set(&s.to_string()));
        assert_eq!(set("").len(), 0);
        use ScopeErrorKind as K;
        for (input, kind) in [
            (" a:read", K::BadSeparator),
            ("a:read ", K::BadSeparator),
            ("a:read  b:read", K::BadSeparator),
            ("a:read\tb:read", K::InvalidAction),
            ("a:read a:read", K::Duplicate),
            ("123 comments:write", K::MissingAction),
        ] {
            let e = input.parse::<ScopeSet>().unwrap_err();
            assert_eq!(e.kind(), kind, "{input:?}: {e}");
        }
        let many = (0..=MAX_SCOPES)
            .map(|i| format!("r{i}:read"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            many.parse::<ScopeSet>().unwrap_err().kind(),
            K::TooManyScopes
        );
    }

    #[test]
    fn read_only_posture_is_visible() {
        let r = set("projects:read users:read");
        assert!(r.is_read_only());
        assert_eq!(r.beyond_read().count(), 0);
        let w = set("projects:read comments:write");
        assert!(!w.is_read_only());
        let beyond: Vec<String> = w.beyond_read().map(ToString::to_string).collect();
        assert_eq!(beyond, ["comments:write"]);
        assert_eq!(Scope::read(res("x")).to_string(), "x:read");
        assert_eq!(Scope::write(res("x")).to_string(), "x:write");
        assert_eq!(Scope::delete(res("x")).to_string(), "x:delete");
        assert_eq!(Scope::admin(res("x")).to_string(), "x:admin");
    }

    #[test]
    fn subset_follows_coverage() {
        let small = set("projects/42:read");
        let big = set("projects:read comments:write");
        assert!(small.is_subset_of(&big));
        assert!(!big.is_subset_of(&small));
        assert!(set("projects/*/x:read").is_subset_of(&set("projects:read")));
        assert!(!set("projects:read").is_subset_of(&set("projects/*:read")));
        assert!(set("projects:write").is_subset_of(&set("projects:*")));
        assert!(!set("projects:*").is_subset_of(&set("projects:write")));
        assert!(ScopeSet::new().is_subset_of(&small));
    }

    #[test]
    fn from_scopes_refuses_duplicates() {
        let a: Scope = "a:read".parse().unwrap();
        let e = ScopeSet::from_scopes([a.clone(), a.clone()]).unwrap_err();
        assert_eq!(e.kind(), ScopeErrorKind::Duplicate);
        let s = ScopeSet::from_scopes([a.clone()]).unwrap();
        assert!(s.contains(&a));
    }

    #[test]
    fn serde_uses_the_scope_string() {
        let s = set("b:read a:write");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"a:write b:read\"");
        let back: ScopeSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<ScopeSet>("\"a:read a:read\"").is_err());
        assert!(serde_json::from_str::<ScopeSet>("[\"a:read\"]").is_err());
        assert!(serde_json::from_str::<Resource>("\"a/../b\"").is_err());
        assert!(serde_json::from_str::<Action>("\"READ\"").is_err());
        let sc: Scope = serde_json::from_str("\"a/b:read\"").unwrap();
        assert_eq!(sc.resource().as_str(), "a/b");
    }
}
