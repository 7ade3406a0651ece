//! The lifecycle of tokens: the revocation list, refresh families, audit sinks, the inventory's
//! reports, consumers and roles. It implements the token layer's traits and uses the issuer and
//! the verifier; nothing below imports it.

pub(crate) mod audit;
pub mod consumer;
pub(crate) mod inventory;
pub mod refresh;
pub(crate) mod revocation;
pub(crate) mod usage;
