//! The audit sinks: memory (tests), JSON Lines files, `tracing`, and the summarizing sink for
//! the request path. They implement the token layer's [`AuditSink`].

mod json_lines;
mod summary;

pub use json_lines::{FsyncPolicy, JsonLinesOptions, JsonLinesSink};
pub use summary::{SummarizingSink, SummaryConfig};

use crate::token::audit::{AuditError, AuditEvent, AuditSink};
#[cfg(feature = "tracing")]
use crate::token::claims::TokenId;
use std::sync::Mutex;

/// Keeps events in memory, for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of every event so far, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }
}

/// Emits events as `tracing` events at INFO level with target `scopekey::audit`, the event's
/// JSON in the field `audit`, and its kind, `jti` and `sub` as fields of their own.
#[cfg(feature = "tracing")]
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

#[cfg(feature = "tracing")]
impl AuditSink for TracingSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        tracing::info!(
            target: "scopekey::audit",
            event = event.kind.name(),
            jti = event.jti.as_ref().map(TokenId::as_str),
            sub = event.sub.as_deref(),
            audit = %event.to_json(),
        );
        Ok(())
    }
}
