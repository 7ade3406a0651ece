//! The audit sinks: memory (tests), JSON Lines files, `tracing`, and the summarizing sink for
//! the request path. They implement the token layer's [`AuditSink`].

mod summary;

pub use summary::{SummarizingSink, SummaryConfig};

use crate::token::audit::{AuditError, AuditErrorKind, AuditEvent, AuditSink};
#[cfg(feature = "tracing")]
use crate::token::claims::TokenId;
use std::io::Write as _;
use std::path::{Path, PathBuf};
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

/// Appends events to a file, one JSON object per line, each line written with one `write` call
/// on a file opened for appending, so concurrent writers never interleave within a line.
///
/// A write failure is returned to the caller, never dropped. Lines are written to the operating
/// system at once; call [`JsonLinesSink::sync`] to force them to disk.
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl JsonLinesSink {
    /// Opens (creating it with mode 0600 on Unix) `path` for appending.
    ///
    /// # Errors
    /// [`AuditError`] when the file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|e| AuditError {
            kind: AuditErrorKind::Unavailable,
            sink: path.display().to_string(),
            message: "cannot open the audit log for appending".into(),
            source: Some(e),
        })?;
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// Forces written events to disk.
    ///
    /// # Errors
    /// [`AuditError`] when the operating system reports a failure.
    pub fn sync(&self) -> Result<(), AuditError> {
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.sync_data().map_err(|e| self.error(e))
    }

    fn error(&self, e: std::io::Error) -> AuditError {
        AuditError {
            kind: AuditErrorKind::Unavailable,
            sink: self.path.display().to_string(),
            message: "cannot append to the audit log".into(),
            source: Some(e),
        }
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut line = event.to_json().into_bytes();
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line).map_err(|e| self.error(e))?;
        file.flush().map_err(|e| self.error(e))
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
