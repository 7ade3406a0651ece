//! One module per command (as cargo's `src/bin/cargo/commands/<name>.rs`): each holds its clap
//! arguments and its `exec`. Argument groups several commands share are in [`crate::args`].

pub(crate) mod audit;
pub(crate) mod consumers;
pub(crate) mod inspect;
#[cfg(feature = "jwt")]
pub(crate) mod jwks;
pub(crate) mod keygen;
pub(crate) mod keys;
pub(crate) mod mint;
pub(crate) mod revoke;
pub(crate) mod roles;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod sweep;
pub(crate) mod tokens;
pub(crate) mod verify;
