//! # scopekey-cli
//!
//! The `scopekey` command-line tool for operators: generate keys, mint tokens, inspect and
//! verify them, revoke them, manage the shared key set, list the inventory, and scan for leaked
//! tokens. See `docs/cli.md`.
//!
//! Exit codes everywhere: 0 success, 1 a refusal (invalid, expired, revoked, denied, leak
//! found), 2 a usage or I/O error. Errors go to standard error in one line; machine output goes
//! to standard output.

mod audit_cmd;
pub mod scan;
pub mod time_args;

use clap::{Args, Parser, Subcommand};
use scopekey::danger::decode_unverified;
use scopekey::inventory::{Inventory as _, InventoryQuery, TokenRecord};
use scopekey::revocation::RevocationTarget;
use scopekey::{
    Action, Environment, Issuer, KeyId, KeySet, PublicKey, Resource, SigningKey, TokenRequest,
    Verifier, VerifierConfig,
};
use scopekey_store::{Replica, ReplicaOptions, Store};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The longest input read from a file or standard input where one token or key is expected.
const MAX_SMALL_INPUT: u64 = 64 * 1024;

/// How a command ended.
#[derive(Debug)]
pub enum Failure {
    /// A refusal: exit 1.
    Refused(String),
    /// A usage or I/O error: exit 2.
    Usage(String),
}

impl Failure {
    /// The process exit code.
    pub fn code(&self) -> u8 {
        match self {
            Self::Refused(_) => 1,
            Self::Usage(_) => 2,
        }
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        match self {
            Self::Refused(m) | Self::Usage(m) => m,
        }
    }
}

fn usage(m: impl std::fmt::Display) -> Failure {
    Failure::Usage(m.to_string())
}

fn refused(m: impl std::fmt::Display) -> Failure {
    Failure::Refused(m.to_string())
}

type Outcome = Result<(), Failure>;

/// The `scopekey` command line.
#[derive(Debug, Parser)]
#[command(
    name = "scopekey",
    version,
    about = "Mint, inspect, verify, revoke and find scopekey tokens"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a signing key: DIR/secret.paserk (mode 0600) and DIR/public.paserk.
    #[command(after_help = "Example:\n  scopekey keygen --out ./keys")]
    Keygen {
        /// Folder to write the keys to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Mint a token; prints only the token.
    #[command(
        after_help = "Example:\n  scopekey mint --secret-key keys/secret.paserk --issuer https://auth.example \\\n    --audience https://api.example --env production --subject ci-deploy \\\n    --scope projects:read --ttl 15m"
    )]
    Mint(MintArgs),
    /// Show a token's footer and claims without verifying it (never needs a key).
    #[command(
        after_help = "Example:\n  scopekey inspect \"$TOKEN\"\n  echo \"$TOKEN\" | scopekey inspect -"
    )]
    Inspect {
        /// The token, or `-` (or nothing) to read it from standard input.
        token: Option<String>,
    },
    /// Verify a token (and optionally authorize an action); prints the verified claims.
    #[command(
        after_help = "Example:\n  scopekey verify --public-key keys/public.paserk --issuer https://auth.example \\\n    --audience https://api.example --env production --resource projects/42 --action read \"$TOKEN\""
    )]
    Verify(VerifyArgs),
    /// Revoke tokens in the store: one token, a family, a consumer, a key, or everything before a time.
    #[command(
        after_help = "Example:\n  scopekey revoke --store sqlite://scopekey.db --subject ci-deploy --reason \"leaked in CI log\""
    )]
    Revoke(RevokeArgs),
    /// Manage the key set every instance verifies with.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List the token inventory, report on it (--over-limit, --unregistered), or prune it.
    #[command(
        after_help = "Example:\n  scopekey tokens --store sqlite://scopekey.db --subject ci-deploy --unused-since 30d\n  scopekey tokens prune --store sqlite://scopekey.db --unused-since 30d --dry-run"
    )]
    Tokens(TokensArgs),
    /// Register, list, show and disable consumers.
    #[command(subcommand)]
    Consumers(ConsumersCommand),
    /// Check role definitions, or import them into the store.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Print the key set as a JWKS (RFC 7517) for JWT gateways: retired keys left out.
    #[cfg(feature = "jwt")]
    #[command(
        after_help = "Example:\n  scopekey jwks --store sqlite://scopekey.db > jwks.json\n  scopekey jwks --public-key keys/public.paserk"
    )]
    Jwks {
        /// A public key (PASERK k4.public file); repeat for more. Without it, the store's key set.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        /// The store whose key set to publish.
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Read the audit trail (store or JSON Lines file), filtered by token, consumer, kind and time.
    #[command(
        after_help = "Example:\n  scopekey audit --store sqlite://scopekey.db --jti \"$JTI\"\n  scopekey audit --file audit.jsonl --kind revoked --since 1d --json"
    )]
    Audit(audit_cmd::AuditArgs),
    /// Find scopekey tokens in files, folders or standard input; exits 1 when any is found.
    #[command(
        after_help = "Example:\n  scopekey scan --public-key keys/public.paserk .\n  git log -p | scopekey scan -"
    )]
    Scan(ScanArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["subject", "consumer"])))]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["scopes", "role"])))]
struct MintArgs {
    /// The secret key (PASERK k4.secret file).
    #[arg(long, value_name = "FILE")]
    secret_key: PathBuf,
    /// `iss`.
    #[arg(long)]
    issuer: String,
    /// `aud`: the service the token is for.
    #[arg(long)]
    audience: String,
    /// The environment the token belongs to.
    #[arg(long)]
    env: String,
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
    /// Record the token in this store's inventory and its `issued` event in the store's trail.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Token format: `paseto` (PASETO v4.public, the default) or `jwt` (JWS, EdDSA, at+jwt).
    #[arg(long, default_value = "paseto", value_name = "FORMAT")]
    format: String,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// A trusted public key (PASERK k4.public file); repeat for more. Without it, the store's key set.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// Expected `iss`.
    #[arg(long)]
    issuer: String,
    /// Expected `aud`.
    #[arg(long)]
    audience: String,
    /// Expected environment.
    #[arg(long)]
    env: String,
    /// Also authorize this resource (with --action).
    #[arg(long, requires = "action")]
    resource: Option<String>,
    /// Also authorize this action (with --resource).
    #[arg(long, requires = "resource")]
    action: Option<String>,
    /// Clock skew tolerated, in seconds (at most 120).
    #[arg(long, default_value_t = 60)]
    leeway: u64,
    /// Check revocations (and, without --public-key, take keys) from this store.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Accept a JWT access token too (by default only PASETO v4.public verifies).
    #[cfg(feature = "jwt")]
    #[arg(long)]
    accept_jwt: bool,
    /// The token, or `-` (or nothing) to read it from standard input.
    token: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["jti", "family", "key_id", "issued_before", "subject"])))]
struct RevokeArgs {
    /// The store.
    #[arg(long, value_name = "URL")]
    store: String,
    /// One token.
    #[arg(long)]
    jti: Option<String>,
    /// A refresh family.
    #[arg(long)]
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
    /// Why (recorded).
    #[arg(long)]
    reason: String,
    /// Who (recorded; default: $USER).
    #[arg(long)]
    by: Option<String>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a public key to the shared key set.
    #[command(
        after_help = "Example:\n  scopekey keys add --store sqlite://scopekey.db --public-key keys/public.paserk"
    )]
    Add {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
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
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
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
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The JWKS file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        jwks: PathBuf,
    },
    /// List the key set.
    #[command(after_help = "Example:\n  scopekey keys list --store sqlite://scopekey.db")]
    List {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct TokensArgs {
    #[command(subcommand)]
    action: Option<TokensAction>,
    /// The store.
    #[arg(long, value_name = "URL", required = true)]
    store: Option<String>,
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
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum TokensAction {
    /// Revoke every live token not used since a cut-off (never used: since issue).
    #[command(
        after_help = "Example:\n  scopekey tokens prune --store sqlite://scopekey.db --unused-since 30d --dry-run"
    )]
    Prune {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The cut-off, as a duration before now, e.g. `30d`.
        #[arg(long, value_name = "DURATION")]
        unused_since: String,
        /// Only list what would be revoked.
        #[arg(long)]
        dry_run: bool,
        /// Who (recorded; default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConsumersCommand {
    /// Register a consumer with its owner, purpose, environment and ceiling.
    #[command(
        after_help = "Example:\n  scopekey consumers add --store sqlite://scopekey.db --name analytics --owner team-data \\\n    --purpose dashboards --env production --ceiling metrics:read"
    )]
    Add {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The consumer's name (its tokens' `sub`).
        #[arg(long)]
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
    },
    /// List consumers.
    List {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
    },
    /// Show one consumer, its live tokens and what it can touch right now.
    Show {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The consumer.
        name: String,
    },
    /// Disable a consumer: no more tokens, and its live tokens are revoked in the same step.
    #[command(
        after_help = "Example:\n  scopekey consumers disable --store sqlite://scopekey.db analytics --reason \"vendor contract ended\""
    )]
    Disable {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The consumer.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        /// Who (recorded; default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RolesCommand {
    /// Validate a role file; errors name the file, line and scope.
    #[command(after_help = "Example:\n  scopekey roles check roles.toml")]
    Check {
        /// The role file (TOML: `[roles]` with `name = \"scope scope\"`).
        file: PathBuf,
    },
    /// Validate a role file and store its roles.
    Import {
        /// The store.
        #[arg(long, value_name = "URL")]
        store: String,
        /// The role file.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct ScanArgs {
    /// Check found tokens against these public keys (PASERK k4.public files).
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Files or folders to scan, or `-` for standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Runs the command line; returns the exit code.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 2,
            };
        }
    };
    match dispatch(cli.command) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("scopekey: {}", f.message());
            f.code()
        }
    }
}

fn dispatch(command: Command) -> Outcome {
    match command {
        Command::Keygen { out, force } => keygen(&out, force),
        Command::Mint(a) => mint(a),
        Command::Inspect { token } => inspect(token),
        Command::Verify(a) => verify(a),
        Command::Revoke(a) => revoke(a),
        Command::Keys(k) => keys(k),
        Command::Tokens(a) => tokens(a),
        Command::Consumers(c) => consumers(c),
        Command::Roles(r) => roles(r),
        Command::Scan(a) => scan_command(a),
        Command::Audit(a) => audit_cmd::audit(a),
        #[cfg(feature = "jwt")]
        Command::Jwks { public_keys, store } => jwks(&public_keys, store.as_deref()),
    }
}

// ---- helpers -----------------------------------------------------------------------------------

/// Reads a small file (a key, a token) into memory that is cleared when dropped: secret keys are
/// read through here.
fn read_small(path: &Path) -> Result<zeroize::Zeroizing<String>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    // Room for the whole bounded read up front, so no growth leaves a copy behind.
    let mut text = zeroize::Zeroizing::new(String::with_capacity(MAX_SMALL_INPUT as usize + 64));
    file.take(MAX_SMALL_INPUT)
        .read_to_string(&mut text)
        .map_err(|e| {
            usage(format!(
                "cannot read {}: {e} (is it a text file?)",
                path.display()
            ))
        })?;
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

fn token_arg(token: Option<String>) -> Result<String, Failure> {
    match token.as_deref() {
        Some(t) if t != "-" => Ok(t.trim().to_owned()),
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .take(MAX_SMALL_INPUT)
                .read_to_string(&mut text)
                .map_err(|e| usage(format!("cannot read the token from standard input: {e}")))?;
            Ok(text.trim().to_owned())
        }
    }
}

fn public_key(path: &Path) -> Result<PublicKey, Failure> {
    PublicKey::from_paserk(&read_small(path)?)
        .map_err(|e| usage(format!("{}: {e}", path.display())))
}

fn key_set(paths: &[PathBuf]) -> Result<KeySet, Failure> {
    let mut set = KeySet::new();
    for p in paths {
        set.insert(public_key(p)?);
    }
    Ok(set)
}

fn open_store(url: &str) -> Result<Store, Failure> {
    Store::open(url).map_err(|e| usage(format!("store: {e}")))
}

fn environment(s: &str) -> Result<Environment, Failure> {
    s.parse().map_err(|e| usage(format!("--env: {e}")))
}

/// Parses `90s`, `15m`, `1h`, `30d` given to `flag` (see [`time_args::duration`]).
fn duration(s: &str, flag: &str) -> Result<Duration, Failure> {
    Ok(time_args::duration(flag, s)?)
}

/// The instant a duration given to `flag` before `now` (see [`time_args::before`]).
fn before_now(s: &str, flag: &str, now: OffsetDateTime) -> Result<OffsetDateTime, Failure> {
    Ok(time_args::before(flag, s, now)?)
}

/// Parses an RFC 3339 time given to `flag`, in UTC (see [`time_args::time`]).
fn rfc3339(s: &str, flag: &str) -> Result<OffsetDateTime, Failure> {
    Ok(time_args::time(flag, s)?)
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// `in 14 min`, `expired 3 h ago`.
fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let d = (t - now).whole_seconds();
    let human = |s: i64| match s {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    };
    if d >= 0 {
        format!("expires in {}", human(d))
    } else {
        format!("expired {} ago", human(-d))
    }
}

fn print_json(v: &serde_json::Value) -> Outcome {
    let text = serde_json::to_string_pretty(v).map_err(|e| usage(e.to_string()))?;
    writeln!(std::io::stdout(), "{text}").map_err(|e| usage(format!("cannot write output: {e}")))
}

// ---- commands ----------------------------------------------------------------------------------

fn keygen(out: &Path, force: bool) -> Outcome {
    let secret_path = out.join("secret.paserk");
    let public_path = out.join("public.paserk");
    if !force && (secret_path.exists() || public_path.exists()) {
        return Err(usage(format!(
            "{} already holds keys; pass --force to overwrite them",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| usage(format!("cannot create {}: {e}", out.display())))?;
    let key = SigningKey::generate().map_err(|e| usage(e.to_string()))?;
    write_secret(&secret_path, key.to_paserk().as_bytes())?;
    std::fs::write(&public_path, format!("{}\n", key.public_key().to_paserk()))
        .map_err(|e| usage(format!("cannot write {}: {e}", public_path.display())))?;
    println!("{}", key.key_id());
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8]) -> Outcome {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // An existing file keeps its mode on open: set it explicitly.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| usage(format!("cannot restrict {}: {e}", path.display())))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

fn mint(a: MintArgs) -> Outcome {
    let key = SigningKey::from_paserk(&read_small(&a.secret_key)?)
        .map_err(|e| usage(format!("{}: {e}", a.secret_key.display())))?;
    let store = a.store.as_deref().map(open_store).transpose()?;
    let mut listed = a
        .scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<scopekey::Scope>()
                .map_err(|e| usage(format!("--scope: {e}")))
        })
        .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
    if !a.role.is_empty() {
        let defs = match (&a.roles, &store) {
            (Some(path), _) => load_roles(path)?,
            (None, Some(store)) => store.roles().map_err(|e| usage(format!("store: {e}")))?,
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
    let format: scopekey::TokenFormat = a
        .format
        .parse()
        .map_err(|e| usage(format!("--format: {e}")))?;
    let mut issuer = Issuer::new(key, a.issuer, environment(&a.env)?)
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
        TokenRequest::new(subject, a.audience, scopes).ttl(duration(&a.ttl, "--ttl")?);
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
    let minted = match (&a.consumer, &store) {
        (Some(name), Some(store)) => {
            let consumer = store
                .consumer(name)
                .map_err(|e| usage(format!("store: {e}")))?
                .ok_or_else(|| {
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

fn load_roles(path: &Path) -> Result<scopekey::consumer::Roles, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    scopekey::consumer::Roles::from_toml(&path.display().to_string(), &text).map_err(refused)
}

fn claims_json(c: &scopekey::Claims, now: OffsetDateTime) -> serde_json::Value {
    serde_json::json!({
        "iss": c.issuer(), "sub": c.subject(), "aud": c.audience(), "env": c.environment().as_str(),
        "jti": c.token_id().as_str(), "scope": c.scopes().to_string(),
        "iat": fmt_time(c.issued_at()), "nbf": c.not_before().map(fmt_time), "exp": fmt_time(c.expires_at()),
        "expires": relative(c.expires_at(), now),
        "owner": c.owner(), "purpose": c.purpose(), "fam": c.family().map(|f| f.as_str()),
    })
}

fn inspect(token: Option<String>) -> Outcome {
    let token = token_arg(token)?;
    let t = decode_unverified(&token).map_err(|e| refused(format!("{:?}: {e}", e.kind())))?;
    let now = OffsetDateTime::now_utc();
    let exp = match t.claims().ok().and_then(|c| c.get("exp")) {
        Some(serde_json::Value::String(e)) => OffsetDateTime::parse(e, &Rfc3339).ok(),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        _ => None,
    };
    let expires = exp.map(|e| relative(e, now));
    let claims = match t.claims() {
        Ok(c) => serde_json::Value::Object(c.clone()),
        Err(why) => serde_json::json!({ "error": why }),
    };
    print_json(&serde_json::json!({
        "verified": false,
        "format": t.format().as_str(),
        "header": match t.header() {
            Some(h) => serde_json::Value::Object(h.clone()),
            None => "v4.public".into(),
        },
        "footer": t.footer().map(|f| serde_json::Value::Object(f.clone())),
        "kid": t.key_id(),
        "claims": claims,
        "expires": expires,
    }))
}

fn verify(a: VerifyArgs) -> Outcome {
    let token = token_arg(a.token)?;
    let config = VerifierConfig::new(a.issuer, a.audience, environment(&a.env)?)
        .leeway(Duration::from_secs(a.leeway));
    #[cfg(feature = "jwt")]
    let config = config.accept_jwt(a.accept_jwt);
    let (verifier, _replica) = match &a.store {
        Some(url) => {
            let store = open_store(url)?;
            let replica = Replica::start(&store, ReplicaOptions::default())
                .map_err(|e| usage(format!("store: {e}")))?;
            let verifier = if a.public_keys.is_empty() {
                replica.verifier(config)
            } else {
                Verifier::new(key_set(&a.public_keys)?, config)
                    .map(|v| v.with_revocations(replica.revocations()))
            }
            .map_err(usage)?;
            (verifier, Some(replica))
        }
        None => {
            if a.public_keys.is_empty() {
                return Err(usage(
                    "give --public-key FILE (or --store URL to use its key set)",
                ));
            }
            (
                Verifier::new(key_set(&a.public_keys)?, config).map_err(usage)?,
                None,
            )
        }
    };
    let grant = verifier
        .verify(&token)
        .map_err(|e| refused(format!("{}: {e}", e.kind().as_str())))?;
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

fn revoke(a: RevokeArgs) -> Outcome {
    let store = open_store(&a.store)?;
    let by =
        a.by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "scopekey-cli".into());
    let before = a
        .issued_before
        .as_deref()
        .map(|t| rfc3339(t, "--issued-before"))
        .transpose()?;
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
    let (id, record) = store
        .revoke(target, &by, &a.reason)
        .map_err(|e| usage(format!("store: {e}")))?;
    println!(
        "revoked {} (by {}, at {}, revocation #{id}): {}",
        record.target(),
        record.by(),
        fmt_time(record.at()),
        record.reason()
    );
    Ok(())
}

fn keys(k: KeysCommand) -> Outcome {
    match k {
        KeysCommand::Add {
            store,
            public_key: path,
            not_before,
        } => {
            let key = public_key(&path)?;
            let nb = not_before
                .as_deref()
                .map(|t| rfc3339(t, "--not-before"))
                .transpose()?;
            open_store(&store)?
                .add_key(&key, nb)
                .map_err(|e| usage(format!("store: {e}")))?;
            println!("added {}", key.key_id());
            Ok(())
        }
        KeysCommand::Retire { store, key_id, at } => {
            let kid: KeyId = key_id
                .parse()
                .map_err(|e| usage(format!("--key-id: {e}")))?;
            let at = at.as_deref().map(|t| rfc3339(t, "--at")).transpose()?;
            let known = open_store(&store)?
                .retire_key(&kid, at)
                .map_err(|e| usage(format!("store: {e}")))?;
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
        KeysCommand::Import { store, jwks } => {
            let text = if jwks.as_os_str() == "-" {
                token_arg(None)?
            } else {
                read_small(&jwks)?.to_string()
            };
            let set = KeySet::from_jwks(&text)
                .map_err(|e| refused(format!("{}: {e}", jwks.display())))?;
            let store = open_store(&store)?;
            let mut entries: Vec<_> = set.iter().collect();
            entries.sort_by(|a, b| a.key().key_id().cmp(b.key().key_id()));
            for e in entries {
                store
                    .add_key(e.key(), None)
                    .map_err(|e| usage(format!("store: {e}")))?;
                println!("added {}", e.key().key_id());
            }
            Ok(())
        }
        KeysCommand::List { store } => {
            let set = open_store(&store)?
                .key_set()
                .map_err(|e| usage(format!("store: {e}")))?;
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

#[cfg(feature = "jwt")]
fn jwks(public_keys: &[PathBuf], store: Option<&str>) -> Outcome {
    let set = match (public_keys.is_empty(), store) {
        (false, None) => key_set(public_keys)?,
        (true, Some(url)) => open_store(url)?
            .key_set()
            .map_err(|e| usage(format!("store: {e}")))?,
        _ => return Err(usage("give --public-key FILE (repeatable) or --store URL")),
    };
    println!("{}", set.to_jwks(OffsetDateTime::now_utc()));
    Ok(())
}

fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "scopekey-cli".into())
}

fn tokens(a: TokensArgs) -> Outcome {
    if let Some(TokensAction::Prune {
        store,
        unused_since,
        dry_run,
        by,
    }) = a.action
    {
        return prune(&store, &unused_since, dry_run, &who(by));
    }
    let store = open_store(a.store.as_deref().unwrap_or_default())?;
    let now = OffsetDateTime::now_utc();
    let inventory = store.inventory().map_err(|e| usage(e.to_string()))?;
    if let Some(limit) = a.over_limit {
        let over = scopekey::inventory::consumers_over_limit(&inventory, now, limit)
            .map_err(|e| usage(e.to_string()))?;
        for (subject, n) in &over {
            println!("{subject}: {n} live tokens (limit {limit})");
        }
        return if over.is_empty() {
            Ok(())
        } else {
            Err(refused(format!(
                "{} consumer(s) over the limit",
                over.len()
            )))
        };
    }
    if a.unregistered {
        let registered: std::collections::HashSet<String> = store
            .consumers()
            .map_err(|e| usage(format!("store: {e}")))?
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
        return if outside.is_empty() {
            Ok(())
        } else {
            Err(refused(format!(
                "{} token(s) minted outside the registry",
                outside.len()
            )))
        };
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
    let row = |r: &TokenRecord| {
        serde_json::json!({
            "jti": r.token_id().as_str(), "type": r.token_type().as_str(), "subject": r.subject(),
            "owner": r.owner(), "purpose": r.purpose(), "scopes": r.scopes().to_string(),
            "issued": fmt_time(r.issued_at()), "expires": fmt_time(r.expires_at()),
            "last_used": r.last_used().map(fmt_time), "kid": r.key_id().as_str(),
        })
    };
    if a.json {
        for r in &records {
            println!("{}", row(r));
        }
        return Ok(());
    }
    println!(
        "{:<24} {:<16} {:<14} {:<16} {:<28} {:<20} {:<20} LAST USED",
        "JTI", "SUBJECT", "OWNER", "PURPOSE", "SCOPES", "ISSUED", "EXPIRES"
    );
    for r in &records {
        let cut = |s: &str, n: usize| -> String {
            if s.chars().count() > n {
                s.chars().take(n - 1).chain(['…']).collect()
            } else {
                s.to_owned()
            }
        };
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
    Ok(())
}

fn prune(url: &str, unused_since: &str, dry_run: bool, by: &str) -> Outcome {
    let store = open_store(url)?;
    let now = OffsetDateTime::now_utc();
    let cutoff = before_now(unused_since, "--unused-since", now)?;
    let inventory = store.inventory().map_err(|e| usage(e.to_string()))?;
    let replica = Replica::start(&store, ReplicaOptions::default())
        .map_err(|e| usage(format!("store: {e}")))?;
    let pruned = scopekey::inventory::prune(&inventory, &replica, cutoff, now, dry_run, by)
        .map_err(|e| usage(e.to_string()))?;
    let (verb, summary) = if dry_run {
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

fn consumers(c: ConsumersCommand) -> Outcome {
    use scopekey::consumer::Consumer;
    match c {
        ConsumersCommand::Add {
            store,
            name,
            owner,
            purpose,
            env,
            ceiling,
            allow_broad,
        } => {
            let scopes = ceiling
                .iter()
                .flat_map(|s| s.split(' '))
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().map_err(|e| usage(format!("--ceiling: {e}"))))
                .collect::<Result<Vec<scopekey::Scope>, _>>()?;
            let ceiling = scopekey::ScopeSet::from_scopes(scopes)
                .map_err(|e| usage(format!("--ceiling: {e}")))?;
            if ceiling.is_broad() && !allow_broad {
                return Err(refused(
                    "the ceiling holds a broad scope: pass --allow-broad if that is really meant",
                ));
            }
            let consumer = Consumer::new(&name, &owner, &purpose, environment(&env)?, ceiling)
                .map_err(usage)?;
            open_store(&store)?
                .add_consumer(&consumer)
                .map_err(|e| usage(format!("store: {e}")))?;
            println!("registered {name} (ceiling: {})", consumer.ceiling());
            Ok(())
        }
        ConsumersCommand::List { store } => {
            for c in open_store(&store)?
                .consumers()
                .map_err(|e| usage(format!("store: {e}")))?
            {
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
        ConsumersCommand::Show { store, name } => {
            let store = open_store(&store)?;
            let c = store
                .consumer(&name)
                .map_err(|e| usage(format!("store: {e}")))?
                .ok_or_else(|| refused(format!("unknown consumer {name:?}")))?;
            let now = OffsetDateTime::now_utc();
            let inventory = store.inventory().map_err(|e| usage(e.to_string()))?;
            let replica = Replica::start(&store, ReplicaOptions::default())
                .map_err(|e| usage(format!("store: {e}")))?;
            let live = inventory
                .query(&InventoryQuery::all().subject(&name).live_at(now))
                .map_err(|e| usage(e.to_string()))?;
            let reach =
                scopekey::inventory::reachable_scopes(&inventory, &name, now, Some(&replica))
                    .map_err(|e| usage(e.to_string()))?;
            print_json(&serde_json::json!({
                "name": c.name(), "owner": c.owner(), "purpose": c.purpose(),
                "env": c.environment().as_str(), "ceiling": c.ceiling().to_string(),
                "created": fmt_time(c.created_at()), "disabled": c.disabled_at().map(fmt_time),
                "live_tokens": live.iter().map(|r| r.token_id().as_str()).collect::<Vec<_>>(),
                "can_touch_now": reach.to_string(),
            }))
        }
        ConsumersCommand::Disable {
            store,
            name,
            reason,
            by,
        } => {
            let record = open_store(&store)?
                .disable_consumer(&name, &who(by), &reason)
                .map_err(|e| usage(format!("store: {e}")))?
                .ok_or_else(|| refused(format!("unknown consumer {name:?}")))?;
            println!("disabled {name}; revoked {}", record.target());
            Ok(())
        }
    }
}

fn roles(r: RolesCommand) -> Outcome {
    match r {
        RolesCommand::Check { file } => {
            let roles = load_roles(&file)?;
            for (name, scopes) in roles.iter() {
                let broad = if scopes.is_broad() {
                    "  (broad: needs --allow-broad)"
                } else {
                    ""
                };
                println!("{name} = {scopes}{broad}");
            }
            Ok(())
        }
        RolesCommand::Import { store, file } => {
            let roles = load_roles(&file)?;
            open_store(&store)?
                .put_roles(&roles)
                .map_err(|e| usage(format!("store: {e}")))?;
            println!("imported {} role(s)", roles.iter().count());
            Ok(())
        }
    }
}

fn scan_command(a: ScanArgs) -> Outcome {
    let keys = if a.public_keys.is_empty() {
        None
    } else {
        Some(key_set(&a.public_keys)?)
    };
    let scanner = scan::Scanner::new(keys);
    let (findings, problems) = if a.paths.len() == 1 && a.paths[0] == Path::new("-") {
        match scanner.scan_reader("-", std::io::stdin().lock()) {
            Ok(scan::ScanResult::Text(f)) => (f, Vec::new()),
            Ok(scan::ScanResult::Binary) => (Vec::new(), Vec::new()),
            Err(e) => return Err(usage(format!("cannot read standard input: {e}"))),
        }
    } else {
        for p in &a.paths {
            if !p.exists() {
                return Err(usage(format!("{}: no such file or folder", p.display())));
            }
        }
        scan::scan_paths(&scanner, &a.paths)
    };
    for p in &problems {
        eprintln!("scopekey: skipped {p}");
    }
    for f in &findings {
        if a.json {
            println!("{}", f.to_json());
        } else {
            println!("{}", f.to_line());
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(refused(format!(
            "{} token(s) found; revoke any that are real (`scopekey revoke --jti …`)",
            findings.len()
        )))
    }
}
