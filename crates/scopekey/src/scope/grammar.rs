//! The grammar checks: segments, resources, actions and scope literals, byte by byte.
//!
//! Imports only [`error`](super::error).

use super::error::*;
use super::*;

/// `s.split(sep)` for an ASCII separator, scanning bytes: no character decoding and no `memchr`
/// call per piece, which is what short segments and scopes want.
pub(super) fn split_byte(s: &str, sep: u8) -> SplitByte<'_> {
    SplitByte { rest: Some(s), sep }
}

/// The space-separated parts of `text` that start with the ASCII byte `first`.
pub(super) fn parts_starting_with(text: &str, first: u8) -> impl Iterator<Item = &str> {
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
pub(super) struct SplitByte<'a> {
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

pub(super) const fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

pub(super) fn check_segment(seg: &str, allow_wildcard: bool) -> Result<(), Fault> {
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

pub(super) fn check_resource(s: &str, allow_wildcard: bool) -> Result<(), Fault> {
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

pub(super) fn check_action(s: &str) -> Result<(), Fault> {
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
/// const _: () = assert!(scopekey::is_valid_scope_literal("billing/invoices:read"));
/// const _: () = assert!(!scopekey::is_valid_scope_literal("billing/:read"));
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
