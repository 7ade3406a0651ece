//! `scopekey serve`: the token service (`scopekey-server`) on the given store, until Ctrl-C.

use crate::args::{Retention, SecretKey, StoreArg};
use crate::common::{Outcome, duration, environment, usage};
use clap::Args;
use scopekey_server::{METADATA_PATH, ServerConfig, TokenService};
use std::net::SocketAddr;

/// `scopekey serve --store URL --secret-key FILE --listen ADDR --issuer URL --audience AUD --env ENV`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey serve --store sqlite://scopekey.db --secret-key keys/secret.paserk \\\n    --listen 127.0.0.1:8080 --issuer http://127.0.0.1:8080 --audience https://api.example --env dev\n\nConsumers authenticate with the credentials of `scopekey consumers credentials`."
)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    secret_key: SecretKey,
    /// The address to listen on (HTTP; put TLS in front of it, or keep it on loopback).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The issuer (`iss`) this service is: its public https:// URL (http:// only on loopback).
    #[arg(long, value_name = "URL")]
    issuer: String,
    /// An audience tokens may be issued for (the RFC 8707 `resource`); repeat for more, the
    /// first is the default.
    #[arg(long = "audience", value_name = "AUD", required = true)]
    audiences: Vec<String>,
    /// The environment tokens are issued in (`env`); consumers of other environments get none.
    #[arg(long)]
    env: String,
    /// Access token lifetime, e.g. `15m` (at most 24h).
    #[arg(long, default_value = "15m")]
    ttl: String,
    /// Issue broad scopes (`*` action or segment) a consumer asks for within its ceiling (as
    /// `mint --allow-broad`); never part of the default scope.
    #[arg(long)]
    allow_broad: bool,
    /// On an empty store (no consumer yet): register the consumer `admin` with every admin
    /// scope and print an admin token for it once, on standard output. Refused on any other
    /// store.
    #[arg(long)]
    bootstrap_admin: bool,
    /// Add a refresh token to `client_credentials` answers and serve `grant_type=refresh_token`
    /// (rotated, a replay revoking the family; 24 h per token, 7 days per family). Off by
    /// default: RFC 6749 §4.4.3 says such answers SHOULD NOT carry one.
    #[arg(long)]
    refresh_tokens: bool,
    /// Sweep the store this often (e.g. `1h`) with the retention flags below, on a thread of
    /// its own; off by default (run `scopekey sweep` from a scheduler instead). With several
    /// instances on one store, give it to one of them.
    #[arg(long, value_name = "DURATION")]
    sweep_every: Option<String>,
    #[command(flatten)]
    retention: Retention,
}

/// Builds the service, then serves it on a runtime of its own until Ctrl-C.
pub(crate) fn exec(a: ServeArgs) -> Outcome {
    let mut audiences = a.audiences.iter();
    let first = audiences.next().cloned().unwrap_or_default();
    let mut config = ServerConfig::new(a.issuer.clone(), first, environment(&a.env)?)
        .map_err(|e| usage(format!("--issuer/--audience: {e}")))?;
    for aud in audiences {
        config = config
            .audience(aud.clone())
            .map_err(|e| usage(format!("--audience: {e}")))?;
    }
    let config = config
        .access_ttl(duration(&a.ttl, "--ttl")?)
        .map_err(|e| usage(format!("--ttl: {e}")))?
        .allow_broad(a.allow_broad)
        .refresh_tokens(a.refresh_tokens);
    let sweep = match &a.sweep_every {
        Some(every) => {
            let every = duration(every, "--sweep-every")?;
            if every < std::time::Duration::from_secs(60) {
                return Err(usage("--sweep-every: at least 1m"));
            }
            Some((every, a.retention.policy()?))
        }
        None if a.retention.is_given() => {
            return Err(usage(
                "the retention flags (--revocation-margin, --inventory-retention, …) apply to \
                 --sweep-every: give it too, or run `scopekey sweep`",
            ));
        }
        None => None,
    };
    let key = a.secret_key.load()?;
    let store = a.store.open()?;
    if let Some((every, policy)) = sweep {
        spawn_sweeps(store.clone(), every, policy)?;
    }
    let service =
        TokenService::new(store, key, config).map_err(|e| usage(format!("serve: {e}")))?;
    if a.bootstrap_admin {
        let Some(token) = service
            .bootstrap_admin()
            .map_err(|e| usage(format!("--bootstrap-admin: {e}")))?
        else {
            return Err(usage(
                "--bootstrap-admin: the store already has consumers; an existing operator gives \
                 admins their credentials (POST /admin/consumers/NAME/credentials)",
            ));
        };
        println!("{token}");
        eprintln!(
            "scopekey serve: the admin token above is shown once; it holds every admin scope for \
             {}/admin and expires with the access token lifetime",
            service.config().issuer()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("serve: cannot start a runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| usage(format!("--listen {}: {e}", a.listen)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| usage(format!("--listen: {e}")))?;
        eprintln!(
            "scopekey serve: listening on http://{bound}; metadata at {}{METADATA_PATH}",
            service.config().issuer()
        );
        let app = service
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| usage(format!("serve: {e}")))
    })
}

/// Sweeps `store` at start and then every `every`, on a thread of its own (the sweep blocks,
/// and pauses between batches), reporting each sweep, or its error, on standard error. A
/// failed sweep is tried again at the next interval.
fn spawn_sweeps(
    store: scopekey_store::Store,
    every: std::time::Duration,
    policy: scopekey_store::RetentionPolicy,
) -> Result<(), crate::Failure> {
    std::thread::Builder::new()
        .name("scopekey-sweep".into())
        .spawn(move || {
            loop {
                match store.sweep(&policy) {
                    Ok(r) => eprintln!(
                        "scopekey serve: swept {} rows in {} batches ({} revocations, {} inventory rows, {} audit events)",
                        r.total(),
                        r.batches,
                        r.revocations,
                        r.tokens,
                        r.audit_events
                    ),
                    Err(e) => eprintln!("scopekey serve: sweep failed: {e}"),
                }
                std::thread::sleep(every);
            }
        })
        .map(drop)
        .map_err(|e| usage(format!("--sweep-every: cannot start the sweep thread: {e}")))
}
