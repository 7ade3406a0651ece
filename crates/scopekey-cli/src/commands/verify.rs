//! `scopekey verify`: verify a token, optionally authorize an action, print the verified claims.

use crate::Failure;
use crate::args::{OptionalStore, PublicKeys, TokenContext};
use crate::common::{
    Outcome, deprecated, duration, fmt_time, print_json, refused, relative, store_error, token_arg,
    usage,
};
use clap::Args;
use scopekey::{Action, Resource, Verifier, VerifierConfig, VerifyErrorKind};
use scopekey_store::{Replica, ReplicaOptions};
use std::net::IpAddr;
use std::time::Duration;
use time::OffsetDateTime;

/// `scopekey verify [--public-key FILE …] --issuer ISS --audience AUD --env ENV … [TOKEN|-]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey verify --public-key keys/public.paserk --issuer https://auth.example \\\n    --audience https://api.example --env production --resource projects/42 --action read \"$TOKEN\""
)]
#[command(mut_arg("public_keys", |a| a.help(
    "A trusted public key (PASERK k4.public file); repeat for more. Without it, the store's key set"
)))]
#[command(mut_arg("store", |a| a.help(
    "Check revocations (and, without --public-key, take keys) from this store"
)))]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    public_keys: PublicKeys,
    #[command(flatten)]
    context: TokenContext,
    /// Also authorize this resource (with --action).
    #[arg(long, requires = "action")]
    resource: Option<String>,
    /// Also authorize this action (with --resource).
    #[arg(long, requires = "resource")]
    action: Option<String>,
    /// Clock skew tolerated, a duration (at most 120s). A bare number of seconds is the
    /// deprecated spelling.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    leeway: String,
    /// Check the token as if used from this client address (IPv4 or IPv6), for tokens limited
    /// to networks; without it such a token is refused, as a verifier that knows no client
    /// refuses it.
    #[arg(long = "client-ip", value_name = "ADDR")]
    client_ip: Option<String>,
    /// Count one use of a use-limited token (claim `uses`) in --store's usage counter, the
    /// count the services sharing that store keep: the token then has one use fewer. Without
    /// it such a token is refused (usage_unavailable), and no use is counted.
    #[arg(long = "consume-use", requires = "store")]
    consume_use: bool,
    #[command(flatten)]
    store: OptionalStore,
    /// Accept a JWT access token too (by default only PASETO v4.public verifies).
    #[cfg(feature = "jwt")]
    #[arg(long)]
    accept_jwt: bool,
    /// The token, or `-` (or nothing) to read it from standard input.
    token: Option<String>,
}

/// `--leeway 60s`; the deprecated `--leeway 60` still means seconds.
fn leeway(value: &str) -> Result<Duration, Failure> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        deprecated(&format!("--leeway {value}"), &format!("--leeway {value}s"));
        return duration(&format!("{value}s"), "--leeway");
    }
    duration(value, "--leeway")
}

/// Verifies the token (with the store's revocations and keys when given); prints its claims.
pub(crate) fn exec(a: VerifyArgs) -> Outcome {
    let token = token_arg(a.token)?;
    let client: Option<IpAddr> = match &a.client_ip {
        Some(ip) => Some(ip.parse().map_err(|_| {
            usage(format!(
                "--client-ip: {ip:?} is not an IPv4 or IPv6 address"
            ))
        })?),
        None => None,
    };
    let config = VerifierConfig::new(
        a.context.issuer.clone(),
        a.context.audience.clone(),
        a.context.environment()?,
    )
    .leeway(leeway(&a.leeway)?);
    #[cfg(feature = "jwt")]
    let config = config.accept_jwt(a.accept_jwt);
    let (verifier, _replica) = match a.store.open()? {
        Some(store) => {
            let replica = Replica::start(&store, ReplicaOptions::default()).map_err(store_error)?;
            let mut verifier = match a.public_keys.key_set()? {
                None => replica.verifier(config),
                Some(keys) => {
                    Verifier::new(keys, config).map(|v| v.with_revocations(replica.revocations()))
                }
            }
            .map_err(usage)?;
            if a.consume_use {
                verifier = verifier.with_usage_counter(std::sync::Arc::new(store.usage_counter()));
            }
            (verifier, Some(replica))
        }
        None => {
            let Some(keys) = a.public_keys.key_set()? else {
                return Err(usage(
                    "give --public-key FILE (or --store URL to use its key set)",
                ));
            };
            (Verifier::new(keys, config).map_err(usage)?, None)
        }
    };
    let grant = verifier.verify_from(&token, None, client).map_err(|e| {
        let hint = match (e.kind(), client) {
            (VerifyErrorKind::NetworkNotAllowed, None) => {
                " (give --client-ip ADDR to check it from a client address)"
            }
            (VerifyErrorKind::UsageUnavailable, _) if !a.consume_use => {
                " (a use-limited token: give --store URL --consume-use to count one of its uses \
                 in the store the services share; `scopekey inspect` shows it without verifying)"
            }
            _ => "",
        };
        refused(format!("{}: {e}{hint}", e.kind().as_str()))
    })?;
    if let (Some(r), Some(act)) = (&a.resource, &a.action) {
        let resource: Resource = r.parse().map_err(|e| usage(format!("--resource: {e}")))?;
        let action: Action = act.parse().map_err(|e| usage(format!("--action: {e}")))?;
        grant
            .authorize(&resource, &action)
            .map_err(|d| refused(format!("denied: {d}")))?;
    }
    let mut out = claims_json(grant.claims(), OffsetDateTime::now_utc());
    out["verified"] = true.into();
    out["kid"] = grant.key_id().as_str().into();
    print_json(&out)
}

fn claims_json(c: &scopekey::Claims, now: OffsetDateTime) -> serde_json::Value {
    serde_json::json!({
        "iss": c.issuer(), "sub": c.subject(), "aud": c.audience(), "env": c.environment().as_str(),
        "jti": c.token_id().as_str(), "scope": c.scopes().to_string(),
        "iat": fmt_time(c.issued_at()), "nbf": c.not_before().map(fmt_time), "exp": fmt_time(c.expires_at()),
        "expires": relative(c.expires_at(), now),
        "owner": c.owner(), "purpose": c.purpose(), "fam": c.family().map(|f| f.as_str()),
        "net": c.other().get("net"), "uses": c.max_uses(),
    })
}
