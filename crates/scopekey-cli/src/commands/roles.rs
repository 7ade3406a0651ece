//! `scopekey roles check|import`: validate a role file, or store its roles.

use crate::args::StoreArg;
use crate::common::{Outcome, load_roles, store_error};
use clap::Subcommand;
use std::path::PathBuf;

/// `scopekey roles …`.
#[derive(Debug, Subcommand)]
pub(crate) enum RolesCommand {
    /// Validate a role file; errors name the file, line and scope.
    #[command(after_help = "Example:\n  scopekey roles check roles.toml")]
    Check {
        /// The role file (TOML: `[roles]` with `name = "scope scope"` or `name = ["scope", …]`).
        file: PathBuf,
    },
    /// Validate a role file and store its roles.
    #[command(
        after_help = "Example:\n  scopekey roles import --store sqlite://scopekey.db roles.toml"
    )]
    Import {
        #[command(flatten)]
        store: StoreArg,
        /// The role file.
        file: PathBuf,
    },
}

/// Runs a `roles` command.
pub(crate) fn exec(r: RolesCommand) -> Outcome {
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
            store.open()?.put_roles(&roles).map_err(store_error)?;
            println!("imported {} role(s)", roles.iter().count());
            Ok(())
        }
    }
}
