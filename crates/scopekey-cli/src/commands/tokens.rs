//! `scopekey tokens`: list the token inventory, report on it, or prune it (`tokens prune`).

use crate::args::{By, JsonOutput, OptionalStore, StoreArg};
use crate::common::{Outcome, before_now, fmt_time, refused, store_error, usage};
use clap::{Args, Subcommand};
use scopekey::inventory::{Inventory as _, InventoryQuery, TokenRecord};
use scopekey_store::{Replica, ReplicaOptions};
use time::OffsetDateTime;

/// `scopekey tokens --store URL [filters] [--json]`, or `scopekey tokens prune …`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey tokens --store sqlite://scopekey.db --subject ci-deploy --unused-since 30d\n  scopekey tokens prune --store sqlite://scopekey.db --unused-since 30d --dry-run"
)]
#[command(args_conflicts_with_subcommands = true)]
// Required unless a subcommand (with its own --store) is given.
#[command(mut_arg("store", |a| a.required(true).help("The store")))]
pub(crate) struct TokensArgs {
    #[command(subcommand)]
    action: Option<TokensAction>,
    #[command(flatten)]
    store: OptionalStore,
    /// Report consumers holding more than this many live tokens.
    #[arg(long, value_name = "N")]
    over_limit: Option<usize>,
    /// Report live tokens whose subject is not a registered consumer.
    #[arg(long)]
    unregistered: bool,
    /// Only this consumer's tokens.
    #[arg(long)]
    subject: Option<String>,
    /// Only tokens of consumers with this owner.
    #[arg(long)]
    owner: Option<String>,
    /// Only tokens not used for this long, e.g. `30d`.
    #[arg(long, value_name = "DURATION")]
    unused_since: Option<String>,
    #[command(flatten)]
    output: JsonOutput,
}

/// `scopekey tokens …`.
#[derive(Debug, Subcommand)]
enum TokensAction {
    /// Revoke every live token not used since a cut-off (never used: since issue).
    #[command(
        after_help = "Example:\n  scopekey tokens prune --store sqlite://scopekey.db --unused-since 30d --dry-run"
    )]
    Prune(PruneArgs),
}

/// `scopekey tokens prune --store URL --unused-since DURATION [--dry-run] [--by WHO]`.
#[derive(Debug, Args)]
struct PruneArgs {
    #[command(flatten)]
    store: StoreArg,
    /// The cut-off, as a duration before now, e.g. `30d`.
    #[arg(long, value_name = "DURATION")]
    unused_since: String,
    /// Only list what would be revoked.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    by: By,
}

/// Lists, reports on or prunes the inventory.
pub(crate) fn exec(a: TokensArgs) -> Outcome {
    if let Some(TokensAction::Prune(p)) = a.action {
        return prune(&p);
    }
    let store = a.store.open()?.ok_or_else(|| usage("give --store URL"))?;
    let now = OffsetDateTime::now_utc();
    let inventory = store.inventory().map_err(|e| usage(e.to_string()))?;
    if let Some(limit) = a.over_limit {
        let over = scopekey::inventory::consumers_over_limit(&inventory, now, limit)
            .map_err(|e| usage(e.to_string()))?;
        for (subject, n) in &over {
            println!("{subject}: {n} live tokens (limit {limit})");
        }
        return none_found(over.len(), "consumer(s) over the limit");
    }
    if a.unregistered {
        let registered: std::collections::HashSet<String> = store
            .consumers()
            .map_err(store_error)?
            .into_iter()
            .map(|c| c.name().to_owned())
            .collect();
        let outside =
            scopekey::inventory::unregistered_tokens(&inventory, now, |s| registered.contains(s))
                .map_err(|e| usage(e.to_string()))?;
        for r in &outside {
            println!(
                "{} sub={} issued={} expires={}",
                r.token_id(),
                r.subject(),
                fmt_time(r.issued_at()),
                fmt_time(r.expires_at())
            );
        }
        return none_found(outside.len(), "token(s) minted outside the registry");
    }
    let mut q = InventoryQuery::all();
    if let Some(s) = a.subject {
        q = q.subject(s);
    }
    if let Some(o) = a.owner {
        q = q.owner(o);
    }
    if let Some(d) = &a.unused_since {
        q = q.unused_since(before_now(d, "--unused-since", now)?);
    }
    let records = inventory.query(&q).map_err(|e| usage(e.to_string()))?;
    if a.output.json {
        for r in &records {
            println!("{}", row(r));
        }
        return Ok(());
    }
    print_table(&records);
    Ok(())
}

/// A report's exit: success when it found nothing, a refusal (exit 1) counting what it found.
fn none_found(found: usize, what: &str) -> Outcome {
    if found == 0 {
        Ok(())
    } else {
        Err(refused(format!("{found} {what}")))
    }
}

fn row(r: &TokenRecord) -> serde_json::Value {
    serde_json::json!({
        "jti": r.token_id().as_str(), "type": r.token_type().as_str(), "subject": r.subject(),
        "owner": r.owner(), "purpose": r.purpose(), "scopes": r.scopes().to_string(),
        "issued": fmt_time(r.issued_at()), "expires": fmt_time(r.expires_at()),
        "last_used": r.last_used().map(fmt_time), "kid": r.key_id().as_str(),
    })
}

fn print_table(records: &[TokenRecord]) {
    println!(
        "{:<24} {:<16} {:<14} {:<16} {:<28} {:<20} {:<20} LAST USED",
        "JTI", "SUBJECT", "OWNER", "PURPOSE", "SCOPES", "ISSUED", "EXPIRES"
    );
    let cut = |s: &str, n: usize| -> String {
        if s.chars().count() > n {
            s.chars().take(n - 1).chain(['…']).collect()
        } else {
            s.to_owned()
        }
    };
    for r in records {
        println!(
            "{:<24} {:<16} {:<14} {:<16} {:<28} {:<20} {:<20} {}",
            r.token_id(),
            cut(r.subject(), 16),
            cut(r.owner().unwrap_or("-"), 14),
            cut(r.purpose().unwrap_or("-"), 16),
            cut(&r.scopes().to_string(), 28),
            fmt_time(r.issued_at()),
            fmt_time(r.expires_at()),
            r.last_used().map_or("never".into(), fmt_time),
        );
    }
}

fn prune(p: &PruneArgs) -> Outcome {
    let store = p.store.open()?;
    let now = OffsetDateTime::now_utc();
    let cutoff = before_now(&p.unused_since, "--unused-since", now)?;
    let inventory = store.inventory().map_err(|e| usage(e.to_string()))?;
    let replica = Replica::start(&store, ReplicaOptions::default()).map_err(store_error)?;
    let pruned =
        scopekey::inventory::prune(&inventory, &replica, cutoff, now, p.dry_run, &p.by.who())
            .map_err(|e| usage(e.to_string()))?;
    let (verb, summary) = if p.dry_run {
        ("would revoke", "would be revoked")
    } else {
        ("revoked", "revoked")
    };
    for r in &pruned {
        println!(
            "{verb} {} sub={} last_used={}",
            r.token_id(),
            r.subject(),
            r.last_used().map_or("never".into(), fmt_time)
        );
    }
    println!("{} token(s) {summary}", pruned.len());
    Ok(())
}
