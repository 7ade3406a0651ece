//! [`Scope`]: one grant, and the one-pass scan of a scope string.
//!
//! Imports [`error`](super::error), [`grammar`](super::grammar) and [`resource`](super::resource).

use super::error::*;
use super::grammar::*;
use super::resource::*;
use super::*;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// One grant: an [`Action`] on a [`Resource`] and everything below it, written
/// `resource:action`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub(super) resource: Resource,
    pub(super) action: Action,
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

pub(super) fn parse_scope(s: &str) -> Result<Scope, Fault> {
    let colon = check_scope(s)?;
    Ok(scope_from_checked(s, colon))
}

/// Checks the grammar of one written scope and returns the position of its `:`.
pub(super) fn check_scope(s: &str) -> Result<usize, Fault> {
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
pub(super) static SCOPE_BYTES: [u8; 256] = {
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
pub(super) const SEGMENT_BYTE: u8 = 1;
pub(super) const ACTION_BYTE: u8 = 2;
pub(super) const ACTION_START: u8 = 4;

/// One pass over scope text that is certainly a canonical set: scopes [`check_scope`]
/// accepts, one space apart, in strictly increasing byte order (so no duplicates), at most
/// [`MAX_SCOPES`]. Returns how many; `None` when the text may be invalid or is not canonical,
/// and then the scope-by-scope check decides and says what is wrong. Tokens carry their
/// scopes this way, so verifying reads each byte once with a table lookup.
pub(super) fn scan_scopes(s: &[u8]) -> Option<usize> {
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
pub(super) fn scope_from_checked(s: &str, colon: usize) -> Scope {
    Scope {
        resource: Resource(s[..colon].into()),
        action: Action::from_checked(&s[colon + 1..]),
    }
}

/// Splits checked scope text at its first `:` (a resource never contains one).
pub(super) fn split_checked(s: &str) -> (&str, &str) {
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
