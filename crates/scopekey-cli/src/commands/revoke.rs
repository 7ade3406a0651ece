//! `scopekey revoke`: revoke one token, a family, a consumer's tokens, a key's, or everything
//! issued before a time.

use crate::args::{Recorded, StoreArg};
use crate::common::{Outcome, fmt_time, rfc3339_opt, store_error, usage};
use clap::Args;
use scopekey::inventory::TokenRecord;
use scopekey::revocation::RevocationTarget;

/// `scopekey revoke --store URL (--jti ID | --family F | …) --reason TEXT [--by WHO]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey revoke --store sqlite://scopekey.db --subject ci-deploy --reason \"leaked in CI log\""
)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["jti", "family", "key_id", "issued_before", "subject"])))]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    store: StoreArg,
    /// One token; and, when the token service exchanged tokens from it (RFC 8693), their
    /// lineage, so that every descendant is revoked with it.
    // Ids are base64url: one in 64 starts with `-`, which is a value here, not a flag.
    #[arg(long, allow_hyphen_values = true)]
    jti: Option<String>,
    /// A refresh family.
    #[arg(long, allow_hyphen_values = true)]
    family: Option<String>,
    /// A consumer (with --issued-before: only its tokens issued before then).
    #[arg(long)]
    subject: Option<String>,
    /// A signing key (`k4.pid.…`).
    #[arg(long)]
    key_id: Option<String>,
    /// Everything issued before this RFC 3339 time (or only the --subject's tokens).
    #[arg(long, value_name = "TIME")]
    issued_before: Option<String>,
    #[command(flatten)]
    recorded: Recorded,
}

/// Records the revocation in the store and prints what it covers.
pub(crate) fn exec(a: RevokeArgs) -> Outcome {
    let store = a.store.open()?;
    let by = a.recorded.by.who();
    let before = rfc3339_opt(a.issued_before.as_deref(), "--issued-before")?;
    let target = match (a.jti, a.family, a.key_id, a.subject, before) {
        (Some(j), None, None, None, None) => RevocationTarget::Token {
            token_id: j.parse().map_err(|e| usage(format!("--jti: {e}")))?,
            expires_at: None,
        },
        (None, Some(f), None, None, None) => {
            RevocationTarget::Family(f.parse().map_err(|e| usage(format!("--family: {e}")))?)
        }
        (None, None, Some(k), None, None) => {
            RevocationTarget::Key(k.parse().map_err(|e| usage(format!("--key-id: {e}")))?)
        }
        (None, None, None, Some(subject), issued_before) => RevocationTarget::Subject {
            subject,
            issued_before,
        },
        (None, None, None, None, Some(t)) => RevocationTarget::IssuedBefore(t),
        _ => {
            return Err(usage(
                "give one of --jti, --family, --key-id, --subject (optionally with --issued-before) or --issued-before",
            ));
        }
    };
    let (target, lineage) = match target {
        RevocationTarget::Token { token_id, .. } => {
            let parent = store.token(&token_id).map_err(store_error)?;
            let lineage = descendants(&store, &token_id, parent.as_ref())?;
            // The inventory's expiry lets `scopekey sweep` delete the revocation once the token
            // can no longer verify; a token the inventory does not know is kept revoked for good.
            let expires_at = parent.as_ref().map(TokenRecord::expires_at);
            let target = RevocationTarget::Token {
                token_id,
                expires_at,
            };
            (target, lineage)
        }
        other => (other, None),
    };
    let (id, record) = store
        .revoke(target, &by, &a.recorded.reason)
        .map_err(store_error)?;
    print_revoked(id, &record);
    if let Some(lineage) = lineage {
        let (id, record) = store
            .revoke(RevocationTarget::Family(lineage), &by, &a.recorded.reason)
            .map_err(store_error)?;
        print_revoked(id, &record);
    }
    Ok(())
}

fn print_revoked(id: i64, record: &scopekey::revocation::Revocation) {
    println!(
        "revoked {} (by {}, at {}, revocation #{id}): {}",
        record.target(),
        record.by(),
        fmt_time(record.at()),
        record.reason()
    );
}

/// The lineage of tokens exchanged from `token_id` (`lin:<jti>`), when the inventory holds a
/// live one: revoked with the token, so that no descendant outlives its parent's revocation.
fn descendants(
    store: &scopekey_store::Store,
    token_id: &scopekey::TokenId,
    parent: Option<&TokenRecord>,
) -> Result<Option<scopekey::FamilyId>, crate::Failure> {
    let Some(lineage) = scopekey_server::lineage_of(token_id) else {
        return Ok(None);
    };
    let Some(parent) = parent else {
        return Ok(None);
    };
    let live = store
        .tokens(
            &scopekey::inventory::InventoryQuery::all()
                .subject(parent.subject())
                .live_at(time::OffsetDateTime::now_utc()),
        )
        .map_err(store_error)?;
    Ok(live
        .iter()
        .any(|r| r.family() == Some(&lineage))
        .then_some(lineage))
}
