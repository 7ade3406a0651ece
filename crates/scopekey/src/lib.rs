//! # scopekey
//!
//! Small, scoped, short-lived API tokens. A token says "read on projects, write on comments"
//! and nothing more; read-only is the default posture and every escalation is explicit.
//!
//! ## Quick start: scopes
//!
//! ```
//! use scopekey::{Action, Resource, ScopeSet};
//!
//! // What a token grants: the OAuth `scope` string, `resource:action` pairs.
//! let granted: ScopeSet = "projects:read projects/42/comments:write".parse()?;
//!
//! // At the point of action, build the concrete resource from request data and ask.
//! let id = "42"; // e.g. from the URL path
//! let project = Resource::from_segments(["projects", id])?;
//! assert!(granted.allows(&project, &Action::read()));
//! assert!(!granted.allows(&project, &Action::delete()));
//! assert!(!granted.is_read_only()); // it holds a write
//! # Ok::<(), scopekey::ScopeError>(())
//! ```
//!
//! ## Concepts
//!
//! - [`Scope`]: `resource:action`. A grant on a resource covers its descendants, for its own
//!   action only. See the [`scope`] module and `docs/scopes.md`.
//! - [`ScopeSet`]: the scopes of one token, compiled once for fast checks.
//!
//! ## Non-goals
//!
//! - No policy language: a token's power is its scope set, checked by exact set semantics.
//! - No normalisation of look-alike or differently-cased input: such input is refused.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod scope;

pub use scope::{Action, Resource, Scope, ScopeError, ScopeErrorKind, ScopeSet};

// The user guides' code blocks are compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/scopes.md")]
mod docs_scopes_md {}

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme_md {}
