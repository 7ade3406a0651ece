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

mod error;
mod grammar;
mod resource;
mod set;
mod single;

pub use error::{ScopeError, ScopeErrorKind};
pub use grammar::is_valid_scope_literal;
pub use resource::{Action, Resource};
pub use set::ScopeSet;
pub use single::Scope;

use std::fmt;

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

// serde: every type as its string form, validated on the way in.
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
mod tests;
