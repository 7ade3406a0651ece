//! Usage limits (THREATS.md G3): a token minted with
//! [`TokenRequest::max_uses`](crate::TokenRequest::max_uses) or
//! [`single_use`](crate::TokenRequest::single_use) carries the signed claim `uses`, and a
//! verifier accepts it at most that many times, counted by the [`UsageCounter`] set with
//! [`Verifier::with_usage_counter`](crate::Verifier::with_usage_counter).
//!
//! The use is counted on every verification, through the grant cache or not, after every other
//! check has passed (a token refused for its network or its revocation uses nothing). A
//! use-limited token is refused ([`UsageUnavailable`](crate::VerifyErrorKind::UsageUnavailable))
//! by a verifier without a counter, and when its counter fails: fail closed. A token used up is
//! refused as [`UsesExhausted`](crate::VerifyErrorKind::UsesExhausted). Tokens without `uses`
//! never touch the counter.
//!
//! [`MemoryUsageCounter`] counts in one process; several instances must share a count, which
//! `scopekey-store`'s `Store::usage_counter` keeps in the store (one atomic statement per use).
//! See `docs/binding.md`.

pub use crate::lifecycle::usage::{DEFAULT_USAGE_CAPACITY, MemoryUsageCounter};
pub use crate::token::usage::{Consumption, MAX_USES, UsageCounter};
