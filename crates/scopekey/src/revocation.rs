//! Revocation as incident response: kill one token, a refresh family, a consumer, everything
//! issued before a moment, or everything signed by a key, at once, without touching other
//! tokens.
//!
//! The verifier asks a [`RevocationCheck`] after the signature and claims have been checked and
//! before a [`Grant`](crate::Grant) exists. The check is synchronous and answers from memory:
//! it never waits on I/O. A durable store keeps a [`RevocationList`] current in the background
//! (as a replica) and the list reports itself stale when it cannot vouch for being current, so
//! verification fails closed.
//!
//! ```
//! use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
//!
//! let list = RevocationList::new();
//! let record = list.revoke(
//!     RevocationTarget::Subject { subject: "ci-deploy".into(), issued_before: None },
//!     "alice@example.com",
//!     "token pasted in a public issue",
//! )?;
//! assert_eq!(record.by(), "alice@example.com");
//! # Ok::<(), scopekey::revocation::RevokeError>(())
//! ```

pub use crate::lifecycle::revocation::{DEFAULT_RETENTION, RevocationList, Revoker};
pub use crate::token::revocation::{
    Revocation, RevocationCheck, RevocationStatus, RevocationTarget, RevokeError, RevokeErrorKind,
    TokenFacts,
};
