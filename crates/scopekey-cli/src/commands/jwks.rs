//! `scopekey jwks`: print the key set as a JWKS (RFC 7517) for JWT gateways.

use crate::args::{OptionalStore, PublicKeys};
use crate::common::{Outcome, store_error, usage};
use clap::Args;
use time::OffsetDateTime;

/// `scopekey jwks (--public-key FILE … | --store URL)`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey jwks --store sqlite://scopekey.db > jwks.json\n  scopekey jwks --public-key keys/public.paserk"
)]
#[command(mut_arg("public_keys", |a| a.help(
    "A public key (PASERK k4.public file); repeat for more. Without it, the store's key set"
)))]
#[command(mut_arg("store", |a| a.help("The store whose key set to publish")))]
pub(crate) struct JwksArgs {
    #[command(flatten)]
    public_keys: PublicKeys,
    #[command(flatten)]
    store: OptionalStore,
}

/// Prints the given keys, or the store's key set, as a JWKS; retired keys are left out.
pub(crate) fn exec(a: JwksArgs) -> Outcome {
    let neither_or_both = || usage("give --public-key FILE (repeatable) or --store URL");
    // Checked before anything is read or opened.
    if a.public_keys.is_given() == a.store.is_given() {
        return Err(neither_or_both());
    }
    let set = match (a.public_keys.key_set()?, a.store.open()?) {
        (Some(set), None) => set,
        (None, Some(store)) => store.key_set().map_err(store_error)?,
        _ => return Err(neither_or_both()),
    };
    println!("{}", set.to_jwks(OffsetDateTime::now_utc()));
    Ok(())
}
