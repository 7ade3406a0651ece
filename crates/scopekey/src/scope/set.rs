//! [`ScopeSet`]: a set of scopes, checked by scanning its string or through a compiled tree.
//!
//! Imports every other scope file; none imports it.

use super::error::*;
use super::grammar::*;
use super::resource::*;
use super::single::*;
use super::*;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

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
pub(super) struct Span {
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
pub(super) struct Node {
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
pub(super) enum Checked {
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
