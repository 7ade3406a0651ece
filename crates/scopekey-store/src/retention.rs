//! Bounded growth: what a sweep deletes ([`RetentionPolicy`]), and the sweep itself
//! ([`Store::sweep`]), in short transactions of bounded batches.
//!
//! May import: everything below it (the crate root, `db`, `store`, `tables`); nothing
//! imports it but the crate root.

use crate::db::{Backend, DbFuture};
use crate::tables::audit::{audit_before, delete_audit};
use crate::tables::families::sweep_families;
use crate::tables::revocations::sweep_revocations;
use crate::tables::tokens::sweep_tokens;
use crate::{Store, StoreError, StoreErrorKind};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// The smallest [`RetentionPolicy::revocation_margin`]: one minute.
pub const MIN_REVOCATION_MARGIN: Duration = Duration::from_secs(60);

/// The shortest audit retention: one day (a shorter one is more likely a typo than a choice).
pub const MIN_AUDIT_RETENTION: Duration = Duration::from_secs(86_400);

/// The largest [`RetentionPolicy::batch_size`].
pub const MAX_SWEEP_BATCH: u32 = 5_000;

/// What [`Store::sweep`] deletes, and in what steps.
///
/// Defaults: single-token revocations go one hour (the margin) after their token could last
/// have verified (its expiry plus [`scopekey::MAX_LEEWAY`]); inventory rows and refresh
/// families 30 days after that; audit events after 90 days, not exported; 500 rows a batch,
/// 10 ms between batches. Use-limited tokens' counts and DPoP proofs go once expired, as they
/// already do by themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    revocation_margin: Duration,
    inventory: Duration,
    audit: Option<Duration>,
    audit_export: Option<PathBuf>,
    batch_size: u32,
    batch_pause: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            revocation_margin: Duration::from_secs(3_600),
            inventory: Duration::from_secs(30 * 86_400),
            audit: Some(Duration::from_secs(90 * 86_400)),
            audit_export: None,
            batch_size: 500,
            batch_pause: Duration::from_millis(10),
        }
    }
}

impl RetentionPolicy {
    /// How long after its token could last have verified a single-token revocation is kept
    /// (at least [`MIN_REVOCATION_MARGIN`]), and how old a revocation must be to be swept at
    /// all: every replica has read it by then unless it is stale, and a stale replica reloads
    /// everything. Cover the clock skew between the store's writers and the verifiers.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`] below [`MIN_REVOCATION_MARGIN`].
    pub fn revocation_margin(mut self, margin: Duration) -> Result<Self, StoreError> {
        if margin < MIN_REVOCATION_MARGIN {
            return Err(invalid(format!(
                "the revocation margin is at least {} s, not {margin:?}",
                MIN_REVOCATION_MARGIN.as_secs()
            )));
        }
        self.revocation_margin = margin;
        Ok(self)
    }

    /// How long the inventory keeps a token's row (and a refresh family its rows) after the
    /// token could last have verified. `Duration::ZERO` deletes them as soon as they expire.
    pub fn inventory_retention(mut self, retention: Duration) -> Self {
        self.inventory = retention;
        self
    }

    /// How long audit events are kept (at least [`MIN_AUDIT_RETENTION`]), by their time.
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`] below [`MIN_AUDIT_RETENTION`].
    pub fn audit_retention(mut self, retention: Duration) -> Result<Self, StoreError> {
        if retention < MIN_AUDIT_RETENTION {
            return Err(invalid(format!(
                "the audit retention is at least {} s, not {retention:?}",
                MIN_AUDIT_RETENTION.as_secs()
            )));
        }
        self.audit = Some(retention);
        Ok(self)
    }

    /// Keeps every audit event (no audit sweep).
    pub fn keep_audit_forever(mut self) -> Self {
        self.audit = None;
        self
    }

    /// Appends each audit event to the JSON Lines file at `path` (created with mode 0600 on
    /// Unix) and flushes it to disk before deleting it. A crash between the two exports that
    /// batch again on the next sweep: an event may appear twice in the file, never zero times.
    pub fn export_audit_to(mut self, path: impl Into<PathBuf>) -> Self {
        self.audit_export = Some(path.into());
        self
    }

    /// Rows deleted per transaction (1 to [`MAX_SWEEP_BATCH`]).
    ///
    /// # Errors
    /// [`StoreErrorKind::InvalidInput`] outside that range.
    pub fn batch_size(mut self, n: u32) -> Result<Self, StoreError> {
        if n == 0 || n > MAX_SWEEP_BATCH {
            return Err(invalid(format!(
                "the sweep batch is 1 to {MAX_SWEEP_BATCH} rows, not {n}"
            )));
        }
        self.batch_size = n;
        Ok(self)
    }

    /// The pause between two batches (at most one second), leaving the database to other
    /// writers.
    pub fn batch_pause(mut self, pause: Duration) -> Self {
        self.batch_pause = pause.min(Duration::from_secs(1));
        self
    }

    /// The audit retention, if audit events are swept.
    pub fn audit(&self) -> Option<Duration> {
        self.audit
    }

    /// Where swept audit events are exported, if anywhere.
    pub fn audit_export(&self) -> Option<&Path> {
        self.audit_export.as_deref()
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::new(StoreErrorKind::InvalidInput, message)
}

/// What one [`Store::sweep`] deleted.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Single-token revocations.
    pub revocations: u64,
    /// Inventory rows.
    pub tokens: u64,
    /// Refresh families (with their used-token rows).
    pub families: u64,
    /// Audit events (each exported first when the policy says so).
    pub audit_events: u64,
    /// Use counts of use-limited tokens.
    pub token_uses: u64,
    /// Accepted DPoP proofs.
    pub dpop_proofs: u64,
    /// Transactions it took.
    pub batches: u64,
}

impl SweepReport {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.revocations
            + self.tokens
            + self.families
            + self.audit_events
            + self.token_uses
            + self.dpop_proofs
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Store {
    /// Deletes what `policy` no longer keeps, as of now: see [`Store::sweep_at`].
    ///
    /// # Errors
    /// As [`Store::sweep_at`].
    pub fn sweep(&self, policy: &RetentionPolicy) -> Result<SweepReport, StoreError> {
        self.sweep_at(policy, OffsetDateTime::now_utc())
    }

    /// Deletes, as of `now`, in transactions of at most [`RetentionPolicy::batch_size`] rows
    /// with [`RetentionPolicy::batch_pause`] between them:
    ///
    /// - single-token revocations whose token expired more than [`scopekey::MAX_LEEWAY`]
    ///   plus the margin before `now`, made more than the margin before `now` (counted, so
    ///   replicas tell a sweep from a lost row and do not reload);
    /// - inventory rows and refresh families whose token expired more than `MAX_LEEWAY` plus
    ///   the margin plus the inventory retention before `now` (a token's row stays while its
    ///   refresh family is in the store: revoking the token finds the family through it);
    /// - audit events whose time is more than the audit retention before `now`, oldest first
    ///   (exported first, in that order, if the policy says so);
    /// - use counts and DPoP proofs that expired more than the margin before `now`.
    ///
    /// Blocks the calling thread: run it from a scheduled job, a thread of its own or
    /// `spawn_blocking`. Pass the current time (`now` is a parameter for tests); a `now` in the
    /// future deletes revocations of tokens that still verify.
    ///
    /// # Errors
    /// A query error, or [`StoreErrorKind::Export`] when the audit export cannot be written (then
    /// nothing more is deleted). Batches committed before the error stay deleted; the next
    /// sweep goes on from there.
    pub fn sweep_at(
        &self,
        policy: &RetentionPolicy,
        now: OffsetDateTime,
    ) -> Result<SweepReport, StoreError> {
        let now_s = now.unix_timestamp();
        let leeway = secs(scopekey::MAX_LEEWAY);
        let margin = secs(policy.revocation_margin);
        let limit = i64::from(policy.batch_size);
        let mut report = SweepReport::default();
        let pause = |report: &mut SweepReport| {
            report.batches += 1;
            if !policy.batch_pause.is_zero() {
                std::thread::sleep(policy.batch_pause);
            }
        };

        // Runs one kind of sweep batch after batch until one comes back short.
        let batches = |report: &mut SweepReport,
                       batch: &dyn Fn(Backend) -> DbFuture<u64>|
         -> Result<u64, StoreError> {
            let mut total = 0;
            loop {
                let n = self.block(batch)?;
                total += n;
                pause(report);
                if n < u64::from(policy.batch_size) {
                    return Ok(total);
                }
            }
        };

        let expired_before = now_s.saturating_sub(leeway).saturating_sub(margin);
        let revoked_before = now_s.saturating_sub(margin);
        report.revocations = batches(&mut report, &|b| {
            Box::pin(
                async move { sweep_revocations(&b, expired_before, revoked_before, limit).await },
            )
        })?;

        // The margin covers the clock skew here too: a row goes only once no verifier whose
        // clock is behind this one by less than the margin can still need it.
        let expired_before = now_s
            .saturating_sub(leeway)
            .saturating_sub(margin)
            .saturating_sub(secs(policy.inventory));
        report.tokens = batches(&mut report, &|b| {
            Box::pin(async move { sweep_tokens(&b, expired_before, limit).await })
        })?;
        report.families = batches(&mut report, &|b| {
            Box::pin(async move { sweep_families(&b, expired_before, limit).await })
        })?;

        if let Some(retention) = policy.audit {
            // A retention reaching before the earliest representable time keeps everything.
            let cutoff =
                OffsetDateTime::from_unix_timestamp(now_s.saturating_sub(secs(retention))).ok();
            let cutoff = cutoff.map(rfc3339).unwrap_or_default();
            while !cutoff.is_empty() {
                let c = cutoff.clone();
                let old =
                    self.block(move |b| Box::pin(async move { audit_before(&b, c, limit).await }))?;
                if old.is_empty() {
                    break;
                }
                let whole_batch = old.len() == usize::try_from(limit).unwrap_or(usize::MAX);
                if let Some(path) = &policy.audit_export {
                    export(path, old.iter().map(|(_, body)| body.as_str()))?;
                }
                let ids: Vec<i64> = old.iter().map(|(id, _)| *id).collect();
                let n =
                    self.block(move |b| Box::pin(async move { delete_audit(&b, &ids).await }))?;
                report.audit_events += n;
                pause(&mut report);
                // Nothing deleted (rows that cannot be deleted): stop rather than export the
                // same batch again and again.
                if !whole_batch || n == 0 {
                    break;
                }
            }
        }

        let skewed = now_s.saturating_sub(margin);
        report.token_uses = self.prune_token_uses(
            OffsetDateTime::from_unix_timestamp(skewed).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )?;
        report.dpop_proofs = self.prune_dpop_proofs(skewed)?;
        Ok(report)
    }
}

/// `t` as the audit trail writes times: `YYYY-MM-DDTHH:MM:SSZ`, which sorts as text.
fn rfc3339(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Appends `lines` to the file at `path` and flushes them to disk. On Unix the file must be a
/// regular file (not reached through a symbolic link) that only its owner can read: one made
/// here is created with mode 0600. A write that fails is cut back to where it began, so that a
/// later export never runs on from half a line.
fn export<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> Result<(), StoreError> {
    let fail = |e: std::io::Error| {
        StoreError::new(
            StoreErrorKind::Export,
            format!(
                "cannot export audit events to {}: {e} (nothing deleted)",
                path.display()
            ),
        )
    };
    let refuse = |why: &str| fail(std::io::Error::other(why.to_owned()));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    let opened = file.metadata().map_err(fail)?;
    if !opened.is_file() {
        return Err(refuse("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // The path, not followed, must be the file opened: a symbolic link put in its place
        // would send the audit trail elsewhere.
        let named = std::fs::symlink_metadata(path).map_err(fail)?;
        if named.file_type().is_symlink()
            || (named.dev(), named.ino()) != (opened.dev(), opened.ino())
        {
            return Err(refuse(
                "it is a symbolic link, or was replaced while opening",
            ));
        }
        if opened.mode() & 0o077 != 0 {
            return Err(refuse(
                "others than its owner may read or write it (chmod 600 it)",
            ));
        }
    }
    let start = opened.len();
    let mut buf = Vec::new();
    for line in lines {
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    let written = file.write_all(&buf).and_then(|()| file.sync_data());
    if let Err(e) = written {
        // Best effort: a disk that refused the write may refuse this too, and the error
        // already says nothing was deleted.
        let _ = file.set_len(start);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_what_would_delete_too_much() {
        let p = RetentionPolicy::default();
        assert_eq!(
            p.clone()
                .revocation_margin(Duration::from_secs(59))
                .unwrap_err()
                .kind(),
            StoreErrorKind::InvalidInput
        );
        assert_eq!(
            p.clone()
                .audit_retention(Duration::from_secs(3_600))
                .unwrap_err()
                .kind(),
            StoreErrorKind::InvalidInput
        );
        assert_eq!(
            p.clone().batch_size(0).unwrap_err().kind(),
            StoreErrorKind::InvalidInput
        );
        assert_eq!(
            p.clone()
                .batch_size(MAX_SWEEP_BATCH + 1)
                .unwrap_err()
                .kind(),
            StoreErrorKind::InvalidInput
        );
        assert!(p.batch_size(MAX_SWEEP_BATCH).is_ok());
    }

    #[test]
    fn cut_offs_are_written_as_audit_times_are() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
