//! Keys: signing keys, public keys and their ids, key sets and rings, PASERK, and (feature
//! `jwt`) JWKS. Imports the codecs only: nothing here knows of tokens or of their lifecycle.

#[cfg(feature = "jwt")]
pub mod jwks;
mod keys;
pub mod paserk;

pub use keys::*;
