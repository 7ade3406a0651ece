//! `scopekey consumers add|list|show|disable|credentials`: the registry of consumers, their
//! ceilings and their client credentials for the token service.

use crate::args::{ConsumerName, JsonOutput, Recorded, StoreArg};
use crate::common::{
    Outcome, environment, fmt_time, parse_scopes, print_json, read_small, refused, store_error,
    usage,
};
use clap::Subcommand;
use scopekey::consumer::Consumer;
use scopekey::inventory::{Inventory as _, InventoryQuery};
use scopekey_store::{Replica, ReplicaOptions};
use time::OffsetDateTime;

/// `scopekey consumers …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConsumersCommand {
    /// Register a consumer with its owner, purpose, environment and ceiling.
    #[command(
        after_help = "Example:\n  scopekey consumers add --store sqlite://scopekey.db --name analytics --owner team-data \\\n    --purpose dashboards --env production --ceiling metrics:read"
    )]
    Add {
        #[command(flatten)]
        store: StoreArg,
        /// The consumer's name (its tokens' `sub`).
        // Only the flag: a new consumer never had the positional spelling of `show`/`disable`.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Who answers for it.
        #[arg(long)]
        owner: String,
        /// What it is for.
        #[arg(long)]
        purpose: String,
        /// Where it runs.
        #[arg(long)]
        env: String,
        /// The most it may ever be granted (a scope; repeat for more).
        #[arg(long = "ceiling", required = true)]
        ceiling: Vec<String>,
        /// Allow broad scopes in the ceiling.
        #[arg(long)]
        allow_broad: bool,
        /// Limit every token of the consumer to clients in this network (CIDR; repeat for
        /// more, at most 32), as `mint --allow-ip` limits one token: minting for it without
        /// networks gives its tokens these, and a network outside them is refused.
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allow_ip: Vec<String>,
    },
    /// List consumers.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Show one consumer, its live tokens and what it can touch right now.
    #[command(
        after_help = "Example:\n  scopekey consumers show --store sqlite://scopekey.db --name analytics"
    )]
    Show {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        name: ConsumerName,
    },
    /// Disable a consumer: no more tokens, and its live tokens are revoked in the same step.
    #[command(
        after_help = "Example:\n  scopekey consumers disable --store sqlite://scopekey.db --name analytics --reason \"vendor contract ended\""
    )]
    Disable {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        name: ConsumerName,
        #[command(flatten)]
        recorded: Recorded,
    },
    /// Create or rotate the consumer's client secret for the token service (`scopekey serve`),
    /// printed once; or, with --public-key, register its key for private_key_jwt.
    #[command(
        after_help = "Example:\n  scopekey consumers credentials --store sqlite://scopekey.db --name analytics\n\nThe secret is shown once and only its argon2id hash is stored; running the command again\nrotates it (the old secret stops working at once)."
    )]
    Credentials {
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        name: ConsumerName,
        /// Register this public key (PASERK k4.public file) for private_key_jwt client
        /// authentication instead of making a secret.
        #[arg(long = "public-key", value_name = "FILE")]
        public_key: Option<std::path::PathBuf>,
        #[command(flatten)]
        json: JsonOutput,
    },
}

/// Runs a `consumers` command.
pub(crate) fn exec(c: ConsumersCommand) -> Outcome {
    match c {
        ConsumersCommand::Add {
            store,
            name,
            owner,
            purpose,
            env,
            ceiling,
            allow_broad,
            allow_ip,
        } => {
            let scopes: Vec<scopekey::Scope> = parse_scopes(&ceiling, "--ceiling")?;
            let ceiling = scopekey::ScopeSet::from_scopes(scopes)
                .map_err(|e| usage(format!("--ceiling: {e}")))?;
            if ceiling.is_broad() && !allow_broad {
                return Err(refused(
                    "the ceiling holds a broad scope: pass --allow-broad if that is really meant",
                ));
            }
            let networks = super::mint::networks(&allow_ip)?;
            let consumer = Consumer::new(&name, &owner, &purpose, environment(&env)?, ceiling)
                .and_then(|c| c.with_networks(networks))
                .map_err(usage)?;
            store.open()?.add_consumer(&consumer).map_err(store_error)?;
            println!("registered {name} (ceiling: {})", consumer.ceiling());
            Ok(())
        }
        ConsumersCommand::List { store } => {
            for c in store.open()?.consumers().map_err(store_error)? {
                println!(
                    "{:<24} {:<8} owner={} env={} ceiling={} purpose={}",
                    c.name(),
                    if c.is_enabled() {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    c.owner(),
                    c.environment(),
                    c.ceiling(),
                    c.purpose()
                );
            }
            Ok(())
        }
        ConsumersCommand::Show { store, name } => show(&store, &name.resolve("show")),
        ConsumersCommand::Disable {
            store,
            name,
            recorded,
        } => {
            let name = name.resolve("disable");
            let record = store
                .open()?
                .disable_consumer(&name, &recorded.by.who(), &recorded.reason)
                .map_err(store_error)?
                .ok_or_else(|| refused(format!("unknown consumer {name:?}")))?;
            println!("disabled {name}; revoked {}", record.target());
            Ok(())
        }
        ConsumersCommand::Credentials {
            store,
            name,
            public_key,
            json,
        } => credentials(
            &store,
            &name.resolve("credentials"),
            public_key.as_deref(),
            json.json,
        ),
    }
}

/// An unknown consumer is a refusal (exit 1), anything else a store failure.
fn credential_error(e: scopekey_store::StoreError) -> crate::Failure {
    if e.kind() == scopekey_store::StoreErrorKind::UnknownConsumer {
        refused(e.to_string())
    } else {
        store_error(e)
    }
}

/// `consumers credentials`: a new client secret, printed once, or a registered client key.
fn credentials(
    store: &StoreArg,
    name: &str,
    public_key: Option<&std::path::Path>,
    json: bool,
) -> Outcome {
    let store = store.open()?;
    if let Some(path) = public_key {
        let key = scopekey::PublicKey::from_paserk(read_small(path)?.trim())
            .map_err(|e| usage(format!("{}: {e}", path.display())))?;
        store
            .register_client_key(name, &key)
            .map_err(credential_error)?;
        if json {
            return print_json(&serde_json::json!({
                "client_id": name, "key_id": key.key_id().as_str(),
            }));
        }
        println!(
            "registered key {} for private_key_jwt of {name}",
            key.key_id()
        );
        return Ok(());
    }
    let secret = store.rotate_client_secret(name).map_err(credential_error)?;
    if json {
        // One line, written directly: the secret is not copied into a JSON value (the id is
        // JSON-quoted; the secret is base64url and needs no escaping).
        let id = serde_json::Value::from(secret.client_id()).to_string();
        println!(
            "{{\"client_id\":{id},\"client_secret\":\"{}\"}}",
            secret.expose_secret()
        );
    } else {
        println!("client_id: {}", secret.client_id());
        println!("client_secret: {}", secret.expose_secret());
    }
    eprintln!(
        "the secret is shown once: keep it in a secret manager; running this again rotates it"
    );
    Ok(())
}

/// `consumers show`: the consumer, its live tokens and what it can touch now, as JSON.
fn show(store: &StoreArg, name: &str) -> Outcome {
    let store = store.open()?;
    let c = store
        .consumer(name)
        .map_err(store_error)?
        .ok_or_else(|| refused(format!("unknown consumer {name:?}")))?;
    let now = OffsetDateTime::now_utc();
    let inventory = store.inventory().map_err(|e| usage(e.to_string()))?;
    let replica = Replica::start(&store, ReplicaOptions::default()).map_err(store_error)?;
    let live = inventory
        .query(&InventoryQuery::all().subject(name).live_at(now))
        .map_err(|e| usage(e.to_string()))?;
    let reach = scopekey::inventory::reachable_scopes(&inventory, name, now, Some(&replica))
        .map_err(|e| usage(e.to_string()))?;
    print_json(&serde_json::json!({
        "name": c.name(), "owner": c.owner(), "purpose": c.purpose(),
        "env": c.environment().as_str(), "ceiling": c.ceiling().to_string(),
        "created": fmt_time(c.created_at()), "disabled": c.disabled_at().map(fmt_time),
        "networks": c.networks().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "live_tokens": live.iter().map(|r| r.token_id().as_str()).collect::<Vec<_>>(),
        "can_touch_now": reach.to_string(),
    }))
}
