//! The audit trail: every decision (issued, refreshed, verified, refused, authorized, denied,
//! revoked, refresh reuse detected) as a structured event, so that afterwards one can prove what
//! a token did.
//!
//! Events carry the token's `jti`, `sub`, `kid`, `env` and `fam` where known, never the token
//! itself. The schema is documented in `docs/audit.md`.
//!
//! Sinks: [`MemorySink`] (tests), [`JsonLinesSink`] (an append-only file, one event per line,
//! written in batches by a thread of its own; a failed write is reported by the next event),
//! and `TracingSink` (feature `tracing`). A sink that cannot record returns an error, and the
//! component that asked fails closed: the token is not issued, the request is refused.
//!
//! On the request path, wrap the sink in a [`SummarizingSink`]: it folds each token's
//! `verified`, `authorized` and `denied` decisions, and every `refused` decision by reason,
//! into one exact summary per interval, so the trail's event rate is bounded by distinct facts
//! rather than by requests, and a flood of requests (valid or garbage) cannot fill the sink.

#[cfg(feature = "tracing")]
pub use crate::lifecycle::audit::TracingSink;
pub use crate::lifecycle::audit::{
    FsyncPolicy, JsonLinesOptions, JsonLinesSink, MemorySink, SummarizingSink, SummaryConfig,
};
pub use crate::token::audit::{
    AuditError, AuditErrorKind, AuditEvent, AuditKind, AuditSink, RequestContext, Touched,
};
