//! Argument groups that several commands share, defined once and flattened into each command
//! (`#[command(flatten)]`), so that a flag spells the same thing in every command. The
//! canonical spellings, and the deprecated ones still accepted, are listed in docs/cli.md
//! ("Spellings").

use crate::Failure;
use crate::common::{deprecated, environment, key_set, open_store, read_small, usage};
use clap::Args;
use scopekey::{Environment, KeySet, SigningKey};
use scopekey_store::Store;
use std::path::PathBuf;

/// `--store URL`, required.
#[derive(Debug, Args)]
pub(crate) struct StoreArg {
    /// The store: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, value_name = "URL")]
    store: String,
}

impl StoreArg {
    /// Opens the store.
    pub(crate) fn open(&self) -> Result<Store, Failure> {
        open_store(&self.store)
    }
}

/// `--store URL`, optional: what the store adds is said by each command's help.
#[derive(Debug, Args)]
pub(crate) struct OptionalStore {
    /// A store: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

impl OptionalStore {
    /// Opens the store, if one was given.
    pub(crate) fn open(&self) -> Result<Option<Store>, Failure> {
        self.store.as_deref().map(open_store).transpose()
    }

    /// Whether one was given.
    pub(crate) fn is_given(&self) -> bool {
        self.store.is_some()
    }
}

/// `--issuer ISS --audience AUD --env ENV`: who issues the token, for which service, in which
/// environment. `mint` writes them into the token; `verify` requires them of it.
#[derive(Debug, Args)]
pub(crate) struct TokenContext {
    /// The issuer (`iss`): written into a minted token, required of a verified one.
    #[arg(long)]
    pub(crate) issuer: String,
    /// The audience (`aud`): the service the token is for.
    #[arg(long)]
    pub(crate) audience: String,
    /// The environment the token belongs to (`env`).
    #[arg(long)]
    env: String,
}

impl TokenContext {
    /// The parsed `--env`.
    pub(crate) fn environment(&self) -> Result<Environment, Failure> {
        environment(&self.env)
    }
}

/// `--secret-key FILE`: a PASERK `k4.secret` file, read into memory cleared on drop.
#[derive(Debug, Args)]
pub(crate) struct SecretKey {
    /// The secret key (PASERK k4.secret file).
    #[arg(long, value_name = "FILE")]
    secret_key: PathBuf,
}

impl SecretKey {
    /// Reads and parses the key.
    pub(crate) fn load(&self) -> Result<SigningKey, Failure> {
        SigningKey::from_paserk(&read_small(&self.secret_key)?)
            .map_err(|e| usage(format!("{}: {e}", self.secret_key.display())))
    }
}

/// `--public-key FILE …`: trusted public keys (PASERK `k4.public` files), repeatable.
#[derive(Debug, Args)]
pub(crate) struct PublicKeys {
    /// A public key (PASERK k4.public file); repeat for more.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
}

impl PublicKeys {
    /// Whether any was given.
    pub(crate) fn is_given(&self) -> bool {
        !self.public_keys.is_empty()
    }

    /// The key set of the given keys; `None` when none was given.
    pub(crate) fn key_set(&self) -> Result<Option<KeySet>, Failure> {
        if self.public_keys.is_empty() {
            Ok(None)
        } else {
            key_set(&self.public_keys).map(Some)
        }
    }
}

/// `--by WHO`: who did it, recorded with a revocation.
#[derive(Debug, Args)]
pub(crate) struct By {
    /// Who (recorded; default: $USER).
    #[arg(long, value_name = "WHO")]
    by: Option<String>,
}

impl By {
    /// `--by`, else `$USER`, else `scopekey-cli`.
    pub(crate) fn who(&self) -> String {
        self.by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "scopekey-cli".into())
    }
}

/// `--reason TEXT [--by WHO]`: why and by whom, recorded with a revocation.
#[derive(Debug, Args)]
pub(crate) struct Recorded {
    /// Why (recorded).
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: String,
    #[command(flatten)]
    pub(crate) by: By,
}

/// `--json`: JSON Lines (one object a line) on standard output instead of text.
#[derive(Debug, Args)]
pub(crate) struct JsonOutput {
    /// JSON Lines (one object a line) instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--name NAME`: a registered consumer, in the `consumers` commands. The name as a positional
/// argument (`consumers show NAME`) is the deprecated spelling, still accepted with a warning.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ConsumerName {
    /// The consumer's name (its tokens' `sub`).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Deprecated: the consumer's name as a positional argument; use --name.
    #[arg(value_name = "NAME", hide = true)]
    positional: Option<String>,
}

impl ConsumerName {
    /// The name; warns on standard error when it came in the deprecated positional spelling of
    /// `consumers <command>`.
    pub(crate) fn resolve(self, command: &str) -> String {
        match (self.name, self.positional) {
            (Some(name), _) => name,
            (None, Some(name)) => {
                deprecated(
                    &format!("scopekey consumers {command} NAME"),
                    &format!("scopekey consumers {command} --name NAME"),
                );
                name
            }
            // The group requires one of the two; an empty name is refused by the store lookup.
            (None, None) => String::new(),
        }
    }
}

/// What a sweep deletes (`sweep`, and `serve --sweep-every`): the retention flags, with the
/// defaults of [`scopekey_store::RetentionPolicy`].
#[derive(Debug, Args)]
pub(crate) struct Retention {
    /// How long after a revoked token could last have verified its revocation is kept, and the
    /// clock skew every cut-off allows for (default 1h, at least 1m).
    #[arg(long, value_name = "DURATION")]
    revocation_margin: Option<String>,
    /// How long the inventory keeps an expired token's row, and a refresh family its rows
    /// (default 30d).
    #[arg(long, value_name = "DURATION")]
    inventory_retention: Option<String>,
    /// How long audit events are kept (default 90d, at least 1d).
    #[arg(long, value_name = "DURATION", conflicts_with = "keep_audit")]
    audit_retention: Option<String>,
    /// Keep every audit event (no audit sweep).
    #[arg(long)]
    keep_audit: bool,
    /// Append swept audit events to this JSON Lines file (mode 0600, flushed) before deleting
    /// them.
    #[arg(long, value_name = "FILE", conflicts_with = "keep_audit")]
    export_audit: Option<PathBuf>,
    /// Rows deleted per transaction (default 500, 1 to 5000).
    #[arg(long, value_name = "N")]
    batch_size: Option<u32>,
}

impl Retention {
    /// Whether any retention flag was given.
    pub(crate) fn is_given(&self) -> bool {
        self.revocation_margin.is_some()
            || self.inventory_retention.is_some()
            || self.audit_retention.is_some()
            || self.keep_audit
            || self.export_audit.is_some()
            || self.batch_size.is_some()
    }

    /// The policy these flags describe.
    pub(crate) fn policy(&self) -> Result<scopekey_store::RetentionPolicy, Failure> {
        fn flag(name: &'static str) -> impl Fn(scopekey_store::StoreError) -> Failure {
            move |e| usage(format!("{name}: {e}"))
        }
        let duration = |value: &Option<String>, name: &str| {
            value
                .as_deref()
                .map(|v| crate::common::duration(v, name))
                .transpose()
        };
        let mut policy = scopekey_store::RetentionPolicy::default();
        if let Some(margin) = duration(&self.revocation_margin, "--revocation-margin")? {
            policy = policy
                .revocation_margin(margin)
                .map_err(flag("--revocation-margin"))?;
        }
        if let Some(keep) = duration(&self.inventory_retention, "--inventory-retention")? {
            policy = policy.inventory_retention(keep);
        }
        if let Some(n) = self.batch_size {
            policy = policy.batch_size(n).map_err(flag("--batch-size"))?;
        }
        if self.keep_audit {
            policy = policy.keep_audit_forever();
        } else if let Some(keep) = duration(&self.audit_retention, "--audit-retention")? {
            policy = policy
                .audit_retention(keep)
                .map_err(flag("--audit-retention"))?;
        }
        if let Some(path) = &self.export_audit {
            policy = policy.export_audit_to(path);
        }
        Ok(policy)
    }
}
