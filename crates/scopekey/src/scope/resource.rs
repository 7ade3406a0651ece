//! [`Resource`] and [`Action`]: the two halves of a scope.
//!
//! Imports [`error`](super::error) and [`grammar`](super::grammar).

use super::error::*;
use super::grammar::*;
use super::*;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A resource path such as `projects/42/comments`.
///
/// Segments are ASCII letters, digits, `_`, `-` and `.` (never `.` or `..` alone), at most
/// [`MAX_SEGMENT_LEN`] bytes each, case-sensitive. In a *granted* resource (parsed with
/// [`FromStr`]) a segment may be `*`, matching exactly one segment. A resource built from
/// request data with [`Resource::from_segments`] or [`Resource::child`] is always concrete.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource(pub(super) Box<str>);

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
pub(super) fn strip_action<'s>(scope: &'s str, action: &str) -> Option<&'s str> {
    scope
        .strip_suffix(action)?
        .strip_suffix(':')
        // The resource never holds `:`, so this `:` is the separator.
        .filter(|pattern| !pattern.is_empty())
}

/// Whether a grant on the resource pattern `pattern` covers `other` (see [`Resource::covers`]).
pub(super) fn covers(pattern: &str, other: &Resource) -> bool {
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

/// An action: a lowercase ASCII verb (`read`, `write`, `delete`, `admin`, `publish`, …) or
/// `*`, which matches every action and is broad.
///
/// Actions do not imply one another: `admin` does not include `read`, and `write` does not
/// include `read`. Each escalation is granted on purpose.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(pub(super) Cow<'static, str>);

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
    pub(super) fn from_checked(s: &str) -> Self {
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
    pub(super) fn standard_bit(&self) -> Option<u8> {
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

/// The bit of a standard action in a compiled node, if it is one.
pub(super) fn standard_bit(action: &str) -> Option<u8> {
    match action {
        "read" => Some(1),
        "write" => Some(2),
        "delete" => Some(4),
        "admin" => Some(8),
        _ => None,
    }
}
