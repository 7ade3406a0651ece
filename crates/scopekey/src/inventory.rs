//! The token inventory: every issued token with its owner, purpose, scopes, lifetime, key and
//! last use, so "what is this token, who issued it, and what can it touch" is a query, not an
//! investigation.

pub use crate::lifecycle::inventory::{
    MemoryInventory, consumers_over_limit, prune, reachable_scopes, unregistered_tokens,
};
pub use crate::token::inventory::{Inventory, InventoryQuery, TokenRecord, TokenRecordParts};
