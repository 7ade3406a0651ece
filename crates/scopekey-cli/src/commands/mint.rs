//! `scopekey mint`: mint a token and print only the token.

use crate::Failure;
use crate::args::{OptionalStore, SecretKey, TokenContext};
use crate::common::{Outcome, duration, load_roles, parse_scopes, refused, store_error, usage};
use clap::Args;
use scopekey::usage::MAX_USES;
use scopekey::{Issuer, MAX_NETWORKS, Network, TokenRequest};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `scopekey mint --secret-key FILE --issuer ISS --audience AUD --env ENV …`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey mint --secret-key keys/secret.paserk --issuer https://auth.example \\\n    --audience https://api.example --env production --subject ci-deploy \\\n    --scope projects:read --ttl 15m"
)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["subject", "consumer"])))]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["scopes", "role"])))]
#[command(mut_arg("store", |a| a.help(
    "Record the token in this store's inventory and its `issued` event in the store's trail"
)))]
pub(crate) struct MintArgs {
    #[command(flatten)]
    secret_key: SecretKey,
    #[command(flatten)]
    context: TokenContext,
    /// `sub`: the consumer (for an unregistered consumer; prefer --consumer).
    #[arg(long)]
    subject: Option<String>,
    /// A registered consumer: with --store its ceiling is enforced and it must be enabled.
    #[arg(long)]
    consumer: Option<String>,
    /// A role whose scopes to grant; repeat for more (roles from --roles FILE or the store).
    #[arg(long)]
    role: Vec<String>,
    /// Role definitions (TOML) to expand --role with, instead of the store's.
    #[arg(long, value_name = "FILE")]
    roles: Option<PathBuf>,
    /// A scope (`resource:action`); repeat for more.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Lifetime, e.g. `15m`, `1h`, `90s`.
    #[arg(long, default_value = "15m")]
    ttl: String,
    /// Who answers for the consumer.
    #[arg(long)]
    owner: Option<String>,
    /// What the token is for.
    #[arg(long)]
    purpose: Option<String>,
    /// Allow broad scopes (`*` action or `*` segment).
    #[arg(long)]
    allow_broad: bool,
    /// Allow scopes beyond `read` (write, delete, admin, custom actions) without a registered
    /// consumer whose ceiling allows them: an explicit escalation, recorded as such.
    #[arg(long)]
    escalate: bool,
    #[command(flatten)]
    store: OptionalStore,
    /// Limit the token to clients in this network (CIDR, `203.0.113.0/24`, `2001:db8::/32`; a
    /// bare address is a network of one); repeat for more, at most 32. Verifiers then refuse
    /// it from anywhere else, and wherever they know no client address.
    #[arg(long = "allow-ip", value_name = "CIDR")]
    allow_ip: Vec<String>,
    /// Limit the token to N uses (1 to 1000000; 1 for a single-use token): verifiers count
    /// each use in their usage counter (a shared store's, for several instances) and refuse
    /// it after the last, and wherever they have no counter.
    #[arg(long = "max-uses", value_name = "N")]
    max_uses: Option<u32>,
    /// Token format: `paseto` (PASETO v4.public, the default) or `jwt` (JWS, EdDSA, at+jwt).
    #[arg(long, default_value = "paseto", value_name = "FORMAT")]
    format: String,
}

/// The networks of `--allow-ip`, each a canonical CIDR block, at most [`MAX_NETWORKS`].
pub(crate) fn networks(values: &[String]) -> Result<Vec<Network>, Failure> {
    if values.len() > MAX_NETWORKS {
        return Err(usage(format!(
            "--allow-ip: a token may be limited to at most {MAX_NETWORKS} networks, {} given",
            values.len()
        )));
    }
    values
        .iter()
        .map(|v| {
            v.parse::<Network>().map_err(|e| {
                usage(format!(
                    "--allow-ip: {e} (write a CIDR block by its first address: 10.0.0.0/8)"
                ))
            })
        })
        .collect()
}

/// Mints the token; with a store, records it and its `issued` event before printing it.
pub(crate) fn exec(a: MintArgs) -> Outcome {
    let key = a.secret_key.load()?;
    let store = a.store.open()?;
    let mut listed: std::collections::BTreeSet<_> = parse_scopes(&a.scopes, "--scope")?;
    if !a.role.is_empty() {
        let defs = match (&a.roles, &store) {
            (Some(path), _) => load_roles(path)?,
            (None, Some(store)) => store.roles().map_err(store_error)?,
            (None, None) => {
                return Err(usage(
                    "--role needs role definitions: give --roles FILE or --store URL",
                ));
            }
        };
        let expanded = defs
            .expand(a.role.iter().map(String::as_str), a.allow_broad)
            .map_err(|e| refused(format!("{e} (see `scopekey roles check`)")))?;
        listed.extend(expanded.iter().cloned());
    }
    let scopes =
        scopekey::ScopeSet::from_scopes(listed).map_err(|e| usage(format!("--scope: {e}")))?;
    let networks = networks(&a.allow_ip)?;
    if let Some(n) = a.max_uses
        && !(1..=MAX_USES).contains(&n)
    {
        return Err(usage(format!(
            "--max-uses: a token may be limited to 1 to {MAX_USES} uses, not {n}"
        )));
    }
    let format: scopekey::TokenFormat = a
        .format
        .parse()
        .map_err(|e| usage(format!("--format: {e}")))?;
    let environment = a.context.environment()?;
    let mut issuer = Issuer::new(key, a.context.issuer, environment)
        .map_err(|e| usage(format!("--issuer: {e}")))?
        .with_max_ttl(Duration::from_secs(30 * 86_400))
        .with_format(format);
    let audit = match &store {
        Some(store) => {
            let audit = Arc::new(store.audit_sink().map_err(|e| usage(e.to_string()))?);
            issuer = issuer
                .with_inventory(Arc::new(
                    store.inventory().map_err(|e| usage(e.to_string()))?,
                ))
                .with_audit(audit.clone());
            Some(audit)
        }
        None => None,
    };
    let subject = a.consumer.clone().or(a.subject).unwrap_or_default();
    let mut request =
        TokenRequest::new(subject, a.context.audience, scopes).ttl(duration(&a.ttl, "--ttl")?);
    if let Some(o) = a.owner {
        request = request.owner(o);
    }
    if let Some(p) = a.purpose {
        request = request.purpose(p);
    }
    if a.allow_broad {
        request = request.allow_broad();
    }
    if a.escalate {
        request = request.escalate();
    }
    if !networks.is_empty() {
        request = request.allow_networks(networks);
    }
    if let Some(n) = a.max_uses {
        request = request.max_uses(n);
    }
    let minted = match (&a.consumer, &store) {
        (Some(name), Some(store)) => {
            let consumer = store.consumer(name).map_err(store_error)?.ok_or_else(|| {
                refused(format!(
                    "unknown consumer {name:?}: register it with `scopekey consumers add`"
                ))
            })?;
            issuer.issue_for(&consumer, &request)
        }
        _ => issuer.issue(&request),
    };
    let minted = minted.map_err(|e| match e.kind() {
        scopekey::IssueErrorKind::BroadScope => refused(format!("{e} (pass --allow-broad)")),
        scopekey::IssueErrorKind::Record => usage(e),
        _ => refused(e),
    })?;
    // The `issued` event is queued; the token is printed only once it is written.
    if let Some(audit) = audit
        && !audit.flush(Duration::from_secs(10))
    {
        return Err(usage(
            "store: the `issued` audit event could not be written; the token is withheld",
        ));
    }
    println!("{}", minted.token().as_str());
    Ok(())
}
