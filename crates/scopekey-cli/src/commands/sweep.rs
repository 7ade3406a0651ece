//! `scopekey sweep`: delete what the store no longer needs to keep (expired tokens'
//! revocations and inventory rows, old audit events), in bounded batches.

use crate::args::{JsonOutput, Retention, StoreArg};
use crate::common::{Outcome, store_error};
use clap::Args;

/// `scopekey sweep --store URL [retention flags] [--json]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey sweep --store sqlite://scopekey.db --audit-retention 180d --export-audit audit-archive.jsonl"
)]
pub(crate) struct SweepArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    retention: Retention,
    #[command(flatten)]
    output: JsonOutput,
}

/// Runs one sweep and prints what it deleted.
pub(crate) fn exec(a: SweepArgs) -> Outcome {
    let policy = a.retention.policy()?;
    let store = a.store.open()?;
    let r = store.sweep(&policy).map_err(store_error)?;
    if a.output.json {
        println!(
            "{}",
            serde_json::json!({
                "revocations": r.revocations,
                "tokens": r.tokens,
                "families": r.families,
                "audit_events": r.audit_events,
                "token_uses": r.token_uses,
                "dpop_proofs": r.dpop_proofs,
                "batches": r.batches,
            })
        );
    } else {
        println!(
            "swept {} rows in {} batches: {} revocations, {} inventory rows, {} refresh families, \
             {} audit events, {} use counts, {} DPoP proofs",
            r.total(),
            r.batches,
            r.revocations,
            r.tokens,
            r.families,
            r.audit_events,
            r.token_uses,
            r.dpop_proofs
        );
    }
    Ok(())
}
