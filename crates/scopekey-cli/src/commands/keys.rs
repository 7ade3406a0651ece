//! `scopekey keys add|retire|import|list`: the key set every instance verifies with.

use crate::args::StoreArg;
use crate::common::{Outcome, fmt_time, public_key, rfc3339_opt, store_error, usage};
use clap::Subcommand;
use scopekey::KeyId;
use std::path::PathBuf;
use time::OffsetDateTime;

/// `scopekey keys …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a public key to the shared key set.
    #[command(
        after_help = "Example:\n  scopekey keys add --store sqlite://scopekey.db --public-key keys/public.paserk"
    )]
    Add {
        #[command(flatten)]
        store: StoreArg,
        /// The public key (PASERK k4.public file).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Verify with it only from this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        not_before: Option<String>,
    },
    /// Retire a key: its tokens stop verifying everywhere from then on.
    #[command(
        after_help = "Example:\n  scopekey keys retire --store sqlite://scopekey.db --key-id k4.pid.…"
    )]
    Retire {
        #[command(flatten)]
        store: StoreArg,
        /// The key id (`k4.pid.…`).
        #[arg(long)]
        key_id: String,
        /// From this RFC 3339 time (default: now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Import the public keys of a JWKS (a scopekey issuer's published keys) into the key set.
    #[cfg(feature = "jwt")]
    #[command(
        after_help = "Example:\n  scopekey keys import --store sqlite://scopekey.db --jwks issuer-jwks.json"
    )]
    Import {
        #[command(flatten)]
        store: StoreArg,
        /// The JWKS file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        jwks: PathBuf,
    },
    /// List the key set.
    #[command(after_help = "Example:\n  scopekey keys list --store sqlite://scopekey.db")]
    List {
        #[command(flatten)]
        store: StoreArg,
    },
}

/// Runs a `keys` command.
pub(crate) fn exec(k: KeysCommand) -> Outcome {
    match k {
        KeysCommand::Add {
            store,
            public_key: path,
            not_before,
        } => {
            let key = public_key(&path)?;
            let nb = rfc3339_opt(not_before.as_deref(), "--not-before")?;
            store.open()?.add_key(&key, nb).map_err(store_error)?;
            println!("added {}", key.key_id());
            Ok(())
        }
        KeysCommand::Retire { store, key_id, at } => {
            let kid: KeyId = key_id
                .parse()
                .map_err(|e| usage(format!("--key-id: {e}")))?;
            let at = rfc3339_opt(at.as_deref(), "--at")?;
            let known = store.open()?.retire_key(&kid, at).map_err(store_error)?;
            if known {
                println!("retired {kid}");
                Ok(())
            } else {
                Err(usage(format!(
                    "{kid} is not in the key set; see `scopekey keys list`"
                )))
            }
        }
        #[cfg(feature = "jwt")]
        KeysCommand::Import { store, jwks } => import(&store, &jwks),
        KeysCommand::List { store } => {
            let set = store.open()?.key_set().map_err(store_error)?;
            let now = OffsetDateTime::now_utc();
            let mut entries: Vec<_> = set.iter().collect();
            entries.sort_by(|a, b| a.key().key_id().cmp(b.key().key_id()));
            for e in entries {
                println!(
                    "{}  {}  not-before={}  retire-at={}",
                    e.key().key_id(),
                    if e.is_active_at(now) {
                        "active "
                    } else {
                        "inactive"
                    },
                    e.not_before().map_or("-".into(), fmt_time),
                    e.retire_at().map_or("-".into(), fmt_time),
                );
            }
            Ok(())
        }
    }
}

/// `keys import`: every key of the JWKS into the store's key set.
#[cfg(feature = "jwt")]
fn import(store: &StoreArg, jwks: &std::path::Path) -> Outcome {
    use crate::common::{read_small, refused, token_arg};
    let text = if jwks.as_os_str() == "-" {
        token_arg(None)?
    } else {
        read_small(jwks)?.to_string()
    };
    let set = scopekey::KeySet::from_jwks(&text)
        .map_err(|e| refused(format!("{}: {e}", jwks.display())))?;
    let store = store.open()?;
    let mut entries: Vec<_> = set.iter().collect();
    entries.sort_by(|a, b| a.key().key_id().cmp(b.key().key_id()));
    for e in entries {
        store.add_key(e.key(), None).map_err(store_error)?;
        println!("added {}", e.key().key_id());
    }
    Ok(())
}
