//! Composed and templated scope requirements: what a route needs, when one fixed scope is not
//! the whole story.
//!
//! - [`Requirement`]: one scope, all of several, or any of several, nested as deep as needed.
//!   [`Requirement::allows`] decides over a [`ScopeSet`] alone (no keys, no tokens: a plain
//!   unit test), and [`Requirement::authorize`] decides for a [`Grant`], recording each
//!   decision it takes in the audit trail.
//! - [`RequirementTemplate`]: the same, with resource segments taken from the request, such as
//!   `projects/{id}:write`. [`RequirementTemplate::resolve`] fills them in from the route's path
//!   parameters; an id that cannot be one resource segment (`/`, `:`, `*`, `..`, empty, too long)
//!   is refused ([`TemplateErrorKind::InvalidValue`], a 400), never turned into a broader scope.
//!
//! ```
//! use scopekey::{Requirement, RequirementTemplate, Scope, ScopeSet};
//!
//! // Reading a report needs both the project and the reports it holds.
//! let both = Requirement::all_of(["projects/42:read".parse::<Scope>()?, "reports:read".parse()?])?;
//! // Admins of the project, or its owners, may delete it.
//! let either = Requirement::any_of([
//!     "projects/42:admin".parse::<Scope>()?,
//!     "owners/projects/42:delete".parse()?,
//! ])?;
//!
//! let granted: ScopeSet = "projects:read reports:read owners/projects:delete".parse()?;
//! assert!(both.allows(&granted));
//! assert!(either.allows(&granted));
//! assert!(!Requirement::from("projects/42:write".parse::<Scope>()?).allows(&granted));
//!
//! // Templated: the id comes from the request.
//! let template: RequirementTemplate = "projects/{id}:write".parse()?;
//! let params = [("id", "42")];
//! let lookup = |name: &str| params.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
//! assert_eq!(template.resolve(lookup)?.to_string(), "projects/42:write");
//! assert!(template.resolve(|_| Some("42/../7")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::scope::{Action, Resource, Scope, ScopeError, ScopeSet};
use crate::token::grant::{Denied, Grant};
use std::fmt;
use std::str::FromStr;

/// The most scopes one requirement holds (all its leaves together): 32.
pub const MAX_REQUIREMENT_SCOPES: usize = 32;

/// The deepest a requirement nests (`all_of` of `any_of` of …): 8.
pub const MAX_REQUIREMENT_DEPTH: usize = 8;

/// Why a requirement could not be built, or a template not resolved.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateErrorKind {
    /// `all_of` or `any_of` of nothing (which would allow everything, or nothing).
    Empty,
    /// More than [`MAX_REQUIREMENT_SCOPES`] scopes, or nested deeper than
    /// [`MAX_REQUIREMENT_DEPTH`].
    TooLarge,
    /// The template is not `resource:action` with segments that are either valid resource
    /// segments or `{name}` placeholders.
    InvalidTemplate,
    /// The request has no path parameter of a placeholder's name: the route and the
    /// requirement disagree (a programming error, answered as a server error, fail closed).
    UnknownParameter,
    /// A path parameter cannot be a resource segment (the request is malformed: 400).
    InvalidValue,
}

/// A requirement that could not be built or resolved, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    kind: TemplateErrorKind,
    message: String,
}

impl TemplateError {
    fn new(kind: TemplateErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Why, for matching.
    pub fn kind(&self) -> TemplateErrorKind {
        self.kind
    }
}

/// A tree of requirements whose leaves are `L`: scopes, or scope templates. A node has at
/// least one child by construction (`first`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tree<L> {
    Leaf(L),
    Node {
        /// All of the children, or any of them.
        all: bool,
        first: Box<Tree<L>>,
        rest: Vec<Tree<L>>,
    },
}

impl<L> Tree<L> {
    fn children<'a>(
        first: &'a Tree<L>,
        rest: &'a [Tree<L>],
    ) -> impl Iterator<Item = &'a Tree<L>> + Clone {
        std::iter::once(first).chain(rest)
    }

    fn depth(&self) -> usize {
        match self {
            Self::Leaf(_) => 0,
            Self::Node { first, rest, .. } => {
                1 + Self::children(first, rest)
                    .map(Self::depth)
                    .max()
                    .unwrap_or(0)
            }
        }
    }

    fn leaves(&self) -> usize {
        match self {
            Self::Leaf(_) => 1,
            Self::Node { first, rest, .. } => Self::children(first, rest).map(Self::leaves).sum(),
        }
    }

    fn combine(
        children: impl IntoIterator<Item = impl Into<Tree<L>>>,
        all: bool,
    ) -> Result<Self, TemplateError> {
        let mut children = children
            .into_iter()
            .take(MAX_REQUIREMENT_SCOPES + 1)
            .map(Into::into);
        let Some(first) = children.next() else {
            return Err(TemplateError::new(
                TemplateErrorKind::Empty,
                "a requirement of all of, or any of, nothing would decide nothing",
            ));
        };
        let tree = Self::Node {
            all,
            first: Box::new(first),
            rest: children.collect(),
        };
        if tree.leaves() > MAX_REQUIREMENT_SCOPES {
            return Err(TemplateError::new(
                TemplateErrorKind::TooLarge,
                format!("a requirement holds at most {MAX_REQUIREMENT_SCOPES} scopes"),
            ));
        }
        if tree.depth() > MAX_REQUIREMENT_DEPTH {
            return Err(TemplateError::new(
                TemplateErrorKind::TooLarge,
                format!("a requirement nests at most {MAX_REQUIREMENT_DEPTH} levels deep"),
            ));
        }
        Ok(tree)
    }

    fn fmt_with(
        &self,
        f: &mut fmt::Formatter<'_>,
        leaf: &impl Fn(&L, &mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        match self {
            Self::Leaf(l) => leaf(l, f),
            Self::Node { all, first, rest } => {
                f.write_str(if *all { "all(" } else { "any(" })?;
                for (n, child) in Self::children(first, rest).enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    child.fmt_with(f, leaf)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// What a request needs: one scope, all of several, or any of several (see
/// [the module](self)). Built from a [`Scope`] with `From`, or with [`all_of`](Self::all_of)
/// and [`any_of`](Self::any_of), which take scopes or requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement(Tree<Scope>);

impl From<Scope> for Requirement {
    fn from(scope: Scope) -> Self {
        Self(Tree::Leaf(scope))
    }
}

impl From<Requirement> for Tree<Scope> {
    fn from(r: Requirement) -> Self {
        r.0
    }
}

impl From<Scope> for Tree<Scope> {
    fn from(scope: Scope) -> Self {
        Tree::Leaf(scope)
    }
}

impl Requirement {
    /// Allowed only if every one of `requirements` is.
    ///
    /// # Errors
    /// [`TemplateErrorKind::Empty`] for none, [`TemplateErrorKind::TooLarge`] beyond
    /// [`MAX_REQUIREMENT_SCOPES`] scopes in all.
    pub fn all_of<R: Into<Requirement>>(
        requirements: impl IntoIterator<Item = R>,
    ) -> Result<Self, TemplateError> {
        Tree::combine(requirements.into_iter().map(|r| r.into().0), true).map(Self)
    }

    /// Allowed if at least one of `requirements` is.
    ///
    /// # Errors
    /// As [`all_of`](Self::all_of).
    pub fn any_of<R: Into<Requirement>>(
        requirements: impl IntoIterator<Item = R>,
    ) -> Result<Self, TemplateError> {
        Tree::combine(requirements.into_iter().map(|r| r.into().0), false).map(Self)
    }

    /// Whether `granted` meets the requirement: the pure decision, for unit tests and for
    /// deciding without recording.
    pub fn allows(&self, granted: &ScopeSet) -> bool {
        allows(&self.0, granted)
    }

    /// Decides for `grant`, at the point of action, recording what it decides when the grant's
    /// verifier has an audit sink: for all-of, each scope until the first that is missing; for
    /// any-of, the first alternative the grant meets, or (none met) the first alternative's
    /// refusal. Nothing is recorded for alternatives it does not take.
    ///
    /// # Errors
    /// [`Denied`], naming a scope that would have been needed (for any-of, one of the first
    /// alternative's), or when a decision could not be recorded.
    pub fn authorize(&self, grant: &Grant) -> Result<(), Denied> {
        authorize(&self.0, grant)
    }

    /// Every scope the requirement names, in order.
    pub fn scopes(&self) -> impl Iterator<Item = &Scope> {
        let mut out = Vec::new();
        collect(&self.0, &mut out);
        out.into_iter()
    }
}

fn collect<'a>(tree: &'a Tree<Scope>, out: &mut Vec<&'a Scope>) {
    match tree {
        Tree::Leaf(s) => out.push(s),
        Tree::Node { first, rest, .. } => {
            for c in Tree::children(first, rest) {
                collect(c, out);
            }
        }
    }
}

fn allows(tree: &Tree<Scope>, granted: &ScopeSet) -> bool {
    match tree {
        Tree::Leaf(s) => granted.allows(s.resource(), s.action()),
        Tree::Node {
            all: true,
            first,
            rest,
        } => Tree::children(first, rest).all(|c| allows(c, granted)),
        Tree::Node {
            all: false,
            first,
            rest,
        } => Tree::children(first, rest).any(|c| allows(c, granted)),
    }
}

fn authorize(tree: &Tree<Scope>, grant: &Grant) -> Result<(), Denied> {
    match tree {
        Tree::Leaf(s) => grant.authorize(s.resource(), s.action()),
        Tree::Node {
            all: true,
            first,
            rest,
        } => Tree::children(first, rest).try_for_each(|c| authorize(c, grant)),
        Tree::Node {
            all: false,
            first,
            rest,
        } => {
            let granted = grant.claims().scopes();
            // The alternative the grant meets, else the first, whose refusal is the answer.
            let chosen = Tree::children(first, rest)
                .find(|c| allows(c, granted))
                .unwrap_or(first);
            authorize(chosen, grant)
        }
    }
}

impl fmt::Display for Requirement {
    /// `projects/42:read` for a scope; `all(a b)` and `any(a b)` for the composed forms.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_with(f, &|s, f| fmt::Display::fmt(s, f))
    }
}

/// One segment of a scope template: literal, or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<str>),
    Param(Box<str>),
}

/// A scope with placeholders, `projects/{id}:write`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScopeTemplate {
    pieces: Vec<Piece>,
    action: Action,
}

impl ScopeTemplate {
    fn parse(text: &str) -> Result<Self, TemplateError> {
        let invalid = |why: String| {
            TemplateError::new(
                TemplateErrorKind::InvalidTemplate,
                format!("scope template {text:?}: {why}"),
            )
        };
        let (resource, action) = text
            .rsplit_once(':')
            .ok_or_else(|| invalid("it is not `resource:action`".into()))?;
        let action: Action = format!("x:{action}")
            .parse::<Scope>()
            .map(|s| s.action().clone())
            .map_err(|e| invalid(format!("the action is invalid: {e}")))?;
        let mut pieces = Vec::new();
        if resource.split('/').count() > crate::MAX_SEGMENTS {
            return Err(invalid(format!(
                "a resource has at most {} segments",
                crate::MAX_SEGMENTS
            )));
        }
        for segment in resource.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty()
                    || name.len() > 64
                    || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(invalid(format!(
                        "placeholder {{{name}}} must be 1 to 64 of [A-Za-z0-9_]"
                    )));
                }
                pieces.push(Piece::Param(name.into()));
            } else {
                Resource::from_segments([segment])
                    .map_err(|e| invalid(format!("segment {segment:?}: {e}")))?;
                pieces.push(Piece::Literal(segment.into()));
            }
        }
        Ok(Self { pieces, action })
    }

    fn resolve<'v>(
        &self,
        lookup: &impl Fn(&str) -> Option<&'v str>,
    ) -> Result<Scope, TemplateError> {
        let mut segments: Vec<&str> = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => segments.push(s),
                Piece::Param(name) => {
                    let value = lookup(name).ok_or_else(|| {
                        TemplateError::new(
                            TemplateErrorKind::UnknownParameter,
                            format!("the request has no path parameter `{name}`"),
                        )
                    })?;
                    segments.push(value);
                }
            }
        }
        let resource = Resource::from_segments(&segments).map_err(|e: ScopeError| {
            TemplateError::new(
                TemplateErrorKind::InvalidValue,
                format!("a path parameter cannot name a resource: {e}"),
            )
        })?;
        Ok(Scope::new(resource, self.action.clone()))
    }
}

impl fmt::Display for ScopeTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, piece) in self.pieces.iter().enumerate() {
            if n > 0 {
                f.write_str("/")?;
            }
            match piece {
                Piece::Literal(s) => f.write_str(s)?,
                Piece::Param(name) => write!(f, "{{{name}}}")?,
            }
        }
        write!(f, ":{}", self.action.as_str())
    }
}

/// A [`Requirement`] whose scopes may take resource segments from the request:
/// `projects/{id}:write` (see [the module](self)). Parse one scope template with `FromStr`;
/// compose with [`all_of`](Self::all_of) and [`any_of`](Self::any_of).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementTemplate(Tree<ScopeTemplate>);

impl FromStr for RequirementTemplate {
    type Err = TemplateError;

    /// One scope template: `resource:action`, where each resource segment is a literal
    /// segment or a `{name}` placeholder (1 to 64 of `[A-Za-z0-9_]`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScopeTemplate::parse(s).map(|t| Self(Tree::Leaf(t)))
    }
}

impl From<RequirementTemplate> for Tree<ScopeTemplate> {
    fn from(r: RequirementTemplate) -> Self {
        r.0
    }
}

impl RequirementTemplate {
    /// Met only if every one of `templates` is.
    ///
    /// # Errors
    /// As [`Requirement::all_of`].
    pub fn all_of(
        templates: impl IntoIterator<Item = RequirementTemplate>,
    ) -> Result<Self, TemplateError> {
        Tree::combine(templates, true).map(Self)
    }

    /// Met if at least one of `templates` is.
    ///
    /// # Errors
    /// As [`Requirement::all_of`].
    pub fn any_of(
        templates: impl IntoIterator<Item = RequirementTemplate>,
    ) -> Result<Self, TemplateError> {
        Tree::combine(templates, false).map(Self)
    }

    /// The requirement for one request: each `{name}` replaced by `lookup(name)`, the
    /// request's path parameter of that name (as routed and percent-decoded).
    ///
    /// # Errors
    /// [`TemplateErrorKind::UnknownParameter`] when `lookup` has no such parameter, and
    /// [`TemplateErrorKind::InvalidValue`] when a value cannot be one resource segment
    /// (the request is malformed: answer 400).
    pub fn resolve<'v>(
        &self,
        lookup: impl Fn(&str) -> Option<&'v str>,
    ) -> Result<Requirement, TemplateError> {
        resolve(&self.0, &lookup).map(Requirement)
    }
}

fn resolve<'v>(
    tree: &Tree<ScopeTemplate>,
    lookup: &impl Fn(&str) -> Option<&'v str>,
) -> Result<Tree<Scope>, TemplateError> {
    Ok(match tree {
        Tree::Leaf(t) => Tree::Leaf(t.resolve(lookup)?),
        Tree::Node { all, first, rest } => Tree::Node {
            all: *all,
            first: Box::new(resolve(first, lookup)?),
            rest: rest
                .iter()
                .map(|c| resolve(c, lookup))
                .collect::<Result<_, _>>()?,
        },
    })
}

impl fmt::Display for RequirementTemplate {
    /// As [`Requirement`]'s, with `{name}` placeholders.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_with(f, &|t, f| fmt::Display::fmt(t, f))
    }
}
