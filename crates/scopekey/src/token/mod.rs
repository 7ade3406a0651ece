//! Tokens: claims, the PASETO and JWT formats, the issuer, the verifier and its grant, the
//! grant cache.
//!
//! The request path calls four small traits defined here and implemented above:
//! [`RevocationCheck`](revocation::RevocationCheck), [`AuditSink`](audit::AuditSink) and
//! [`Inventory`](inventory::Inventory) (its `touch` is the usage note) and
//! [`UsageCounter`](usage::UsageCounter) (usage limits). Nothing here imports
//! [`lifecycle`](crate::lifecycle).

pub(crate) mod audit;
pub mod cache;
pub(crate) mod claims;
pub(crate) mod claims_json;
pub mod custom;
pub(crate) mod error;
pub(crate) mod footer;
pub(crate) mod grant;
pub(crate) mod ids;
pub(crate) mod inventory;
pub(crate) mod issuer;
#[cfg(feature = "jwt")]
pub mod jwt;
pub(crate) mod network;
pub mod paseto;
pub mod requirement;
pub(crate) mod revocation;
pub mod trust;
pub(crate) mod usage;
pub(crate) mod verifier;
pub(crate) mod verifier_config;
