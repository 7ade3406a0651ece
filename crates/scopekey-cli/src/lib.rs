//! # scopekey-cli
//!
//! The `scopekey` command-line tool for operators: generate keys, mint tokens, inspect and
//! verify them, revoke them, manage the shared key set, list the inventory, sweep the store, and
//! scan for leaked tokens. See `docs/cli.md`.
//!
//! Exit codes everywhere: 0 success, 1 a refusal (invalid, expired, revoked, denied, leak
//! found), 2 a usage or I/O error. Errors go to standard error in one line; machine output goes
//! to standard output.
//!
//! Layout (as cargo's `src/bin/cargo/commands/`): this file wires the [`Cli`] parser to one
//! module per command under `commands/`; argument groups several commands share (`--store`,
//! `--issuer`/`--audience`/`--env`, `--public-key`, `--secret-key`, `--by`, `--json`, `--name`)
//! are defined once in `args`, and the helpers they use in `common`.

mod args;
mod commands;
mod common;
pub mod scan;
pub mod time_args;

use clap::{Parser, Subcommand};
use commands::{
    audit, consumers, inspect, keygen, keys, mint, revoke, roles, scan as scan_cmd, sweep, tokens,
    verify,
};

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
    Keygen(keygen::KeygenArgs),
    /// Mint a token; prints only the token.
    Mint(mint::MintArgs),
    /// Show a token's footer and claims without verifying it (never needs a key).
    Inspect(inspect::InspectArgs),
    /// Verify a token (and optionally authorize an action); prints the verified claims.
    Verify(verify::VerifyArgs),
    /// Revoke tokens in the store: one token, a family, a consumer, a key, or everything before a time.
    Revoke(revoke::RevokeArgs),
    /// Manage the key set every instance verifies with.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// List the token inventory, report on it (--over-limit, --unregistered), or prune it.
    Tokens(tokens::TokensArgs),
    /// Register, list, show and disable consumers, and give them client credentials.
    #[command(subcommand)]
    Consumers(consumers::ConsumersCommand),
    /// Check role definitions, or import them into the store.
    #[command(subcommand)]
    Roles(roles::RolesCommand),
    /// Print the key set as a JWKS (RFC 7517) for JWT gateways: retired keys left out.
    #[cfg(feature = "jwt")]
    Jwks(commands::jwks::JwksArgs),
    /// Read the audit trail (store or JSON Lines file), filtered by token, consumer, kind and time.
    Audit(audit::AuditArgs),
    /// Find scopekey tokens in files, folders or standard input; exits 1 when any is found.
    Scan(scan_cmd::ScanArgs),
    /// Run the token service (OAuth endpoints) on the store until Ctrl-C.
    Serve(commands::serve::ServeArgs),
    /// Delete what the store no longer keeps: expired tokens' revocations and inventory rows, old audit events.
    Sweep(sweep::SweepArgs),
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

fn dispatch(command: Command) -> common::Outcome {
    match command {
        Command::Keygen(a) => keygen::exec(a),
        Command::Mint(a) => mint::exec(a),
        Command::Inspect(a) => inspect::exec(a),
        Command::Verify(a) => verify::exec(a),
        Command::Revoke(a) => revoke::exec(a),
        Command::Keys(k) => keys::exec(k),
        Command::Tokens(a) => tokens::exec(a),
        Command::Consumers(c) => consumers::exec(c),
        Command::Roles(r) => roles::exec(r),
        #[cfg(feature = "jwt")]
        Command::Jwks(a) => commands::jwks::exec(a),
        Command::Audit(a) => audit::exec(a),
        Command::Scan(a) => scan_cmd::exec(a),
        Command::Serve(a) => commands::serve::exec(a),
        Command::Sweep(a) => sweep::exec(a),
    }
}
