//! The codecs: strict base64url, bounded JSON, RFC 3339 times and random ids. They know
//! nothing of tokens, keys or scopes, and import nothing of this crate.

pub(crate) mod b64;
pub(crate) mod ids;
pub(crate) mod json;
pub(crate) mod rfc3339;
