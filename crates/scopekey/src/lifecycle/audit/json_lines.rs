//! [`JsonLinesSink`]: an append-only file of one JSON object per line, written in batches by a
//! thread of its own, so that recording an event never waits on the disk.

use crate::token::audit::{AuditError, AuditErrorKind, AuditEvent, AuditSink};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// When [`JsonLinesSink`] forces written events to disk (`fdatasync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Never by itself: the operating system writes the file back when it chooses (a power
    /// cut may lose what it has not). [`JsonLinesSink::sync`] still forces it.
    Never,
    /// After every batch: an event is on disk at most one flush interval after it was
    /// recorded. Costs one `fdatasync` per batch.
    EveryBatch,
    /// After a batch, when the last one was at least this long ago; and when the sink closes.
    Interval(Duration),
}

/// How a [`JsonLinesSink`] batches and syncs.
///
/// Defaults: batches every 10 ms, `fdatasync` at most once a second ([`FsyncPolicy::Interval`])
/// and on close, at most 65,536 events waiting to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLinesOptions {
    flush_interval: Duration,
    fsync: FsyncPolicy,
    max_pending: usize,
}

impl Default for JsonLinesOptions {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_millis(10),
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
            max_pending: 65_536,
        }
    }
}

impl JsonLinesOptions {
    /// How long the writer gathers events after the first of a batch before writing them (at
    /// most one second; zero writes each as soon as the writer is free).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d.min(Duration::from_secs(1));
        self
    }

    /// When written events are forced to disk.
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// How many events may wait to be written (at least 1). When that many wait, recording
    /// another is refused with [`AuditErrorKind::Busy`] (a
    /// [`SummarizingSink`](crate::audit::SummarizingSink) in front keeps its summaries and
    /// tries again; other callers fail closed) until the writer catches up.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.max(1);
        self
    }
}

/// Appends events to a file, one JSON object per line, from a writer thread of its own.
///
/// [`record`](AuditSink::record) only serializes the event and appends it to an in-memory batch
/// (under a lock held for no I/O); the writer writes each batch with one `write` on a file
/// opened for appending, so lines never interleave, and syncs as [`FsyncPolicy`] says. A write
/// that fails is never dropped silently: the error (with the number of events it lost) is
/// returned by the next [`record`](AuditSink::record) or [`sync`](Self::sync), and the writer
/// goes on trying with the following batches. Dropping the sink writes and syncs what is left.
pub struct JsonLinesSink {
    path: PathBuf,
    shared: Arc<Shared>,
    file: Arc<std::fs::File>,
    max_pending: usize,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink")
            .field("path", &self.path)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer waits on this for a first event or for closing.
    work: Condvar,
    /// [`JsonLinesSink::sync`] waits on this for a batch to be written.
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Lines waiting to be written.
    batch: Vec<u8>,
    /// Events in `batch`.
    pending: usize,
    /// Events ever appended to a batch, and ever written (or lost) by the writer.
    queued: u64,
    written: u64,
    /// A failed write not yet reported: what went wrong and how many events it lost.
    failure: Option<(std::io::Error, u64)>,
    closing: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

impl JsonLinesSink {
    /// Opens (creating it with mode 0600 on Unix) `path` for appending, with the default
    /// [`JsonLinesOptions`].
    ///
    /// # Errors
    /// [`AuditError`] when the file cannot be opened or the writer thread cannot start.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        Self::open_with(path, JsonLinesOptions::default())
    }

    /// Opens `path` as [`open`](Self::open) does, batching and syncing as `options` say.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        path: impl AsRef<Path>,
        options: JsonLinesOptions,
    ) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let mut open = std::fs::OpenOptions::new();
        open.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            open.mode(0o600);
        }
        let unavailable = |message: &str, e: std::io::Error| AuditError {
            kind: AuditErrorKind::Unavailable,
            sink: path.display().to_string(),
            message: message.into(),
            source: Some(e),
        };
        let file = Arc::new(
            open.open(&path)
                .map_err(|e| unavailable("cannot open the audit log for appending", e))?,
        );
        let shared = Arc::new(Shared::default());
        let writer = {
            let (shared, file) = (shared.clone(), file.clone());
            std::thread::Builder::new()
                .name("scopekey-audit-writer".into())
                .spawn(move || write_batches(&shared, &file, options))
                .map_err(|e| unavailable("cannot start the audit writer", e))?
        };
        Ok(Self {
            path,
            shared,
            file,
            max_pending: options.max_pending,
            writer: Some(writer),
        })
    }

    /// Waits until every event recorded before the call is written, then forces the file to
    /// disk.
    ///
    /// # Errors
    /// [`AuditError`] when a write failed since the last report (the error says how many
    /// events it lost), or the operating system refuses the sync.
    pub fn sync(&self) -> Result<(), AuditError> {
        let mut state = lock(&self.shared);
        let target = state.queued;
        while state.written < target && state.failure.is_none() {
            self.shared.work.notify_one();
            state = self
                .shared
                .done
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        if let Some(failure) = state.failure.take() {
            return Err(self.error(failure));
        }
        drop(state);
        self.file.sync_data().map_err(|e| self.error((e, 0)))
    }

    fn error(&self, (e, lost): (std::io::Error, u64)) -> AuditError {
        AuditError {
            kind: AuditErrorKind::Unavailable,
            sink: self.path.display().to_string(),
            message: if lost == 0 {
                "cannot append to the audit log".into()
            } else {
                format!("cannot append to the audit log: {lost} events were lost")
            },
            source: Some(e),
        }
    }
}

impl AuditSink for JsonLinesSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let mut line = event.to_json().into_bytes();
        line.push(b'\n');
        let mut state = lock(&self.shared);
        if let Some(failure) = state.failure.take() {
            return Err(self.error(failure));
        }
        if state.pending >= self.max_pending {
            return Err(AuditError::busy(
                self.path.display().to_string(),
                format!(
                    "{} events are waiting to be written; try again",
                    state.pending
                ),
            ));
        }
        let first = state.pending == 0;
        state.batch.extend_from_slice(&line);
        state.pending += 1;
        state.queued += 1;
        drop(state);
        if first {
            self.shared.work.notify_one();
        }
        Ok(())
    }
}

impl Drop for JsonLinesSink {
    fn drop(&mut self) {
        lock(&self.shared).closing = true;
        self.shared.work.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: waits for a first event, gathers for the flush interval, writes the
/// batch with no lock held, syncs as the policy says, and reports a failure for the next
/// caller. Ends once closing and nothing is left.
fn write_batches(shared: &Shared, file: &std::fs::File, options: JsonLinesOptions) {
    let mut last_sync = Instant::now();
    let mut spare = Vec::new();
    loop {
        let mut state = lock(shared);
        while state.pending == 0 && !state.closing {
            state = shared.work.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.pending == 0 && state.closing {
            break;
        }
        if !state.closing && !options.flush_interval.is_zero() {
            // Gather the batch: later events join it meanwhile. Woken early by `sync` or
            // closing.
            state = shared
                .work
                .wait_timeout(state, options.flush_interval)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::swap(&mut state.batch, &mut spare);
        let n = std::mem::take(&mut state.pending) as u64;
        let closing = state.closing;
        drop(state);

        let mut out = file;
        let mut result = out.write_all(&spare);
        spare.clear();
        let sync_now = match options.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::EveryBatch => true,
            FsyncPolicy::Interval(d) => closing || last_sync.elapsed() >= d,
        };
        if result.is_ok() && sync_now {
            result = file.sync_data();
            last_sync = Instant::now();
        }

        let mut state = lock(shared);
        state.written += n;
        if let Err(e) = result {
            let lost = state.failure.take().map_or(0, |(_, lost)| lost) + n;
            state.failure = Some((e, lost));
        }
        drop(state);
        shared.done.notify_all();
    }
    if options.fsync != FsyncPolicy::Never {
        let _ = file.sync_data();
    }
}
