//! `scopekey inspect`: show a token's header or footer and claims without verifying it.

use crate::common::{Outcome, print_json, refused, relative, token_arg};
use clap::Args;
use scopekey::danger::decode_unverified;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `scopekey inspect [TOKEN|-]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  scopekey inspect \"$TOKEN\"\n  echo \"$TOKEN\" | scopekey inspect -"
)]
pub(crate) struct InspectArgs {
    /// The token, or `-` (or nothing) to read it from standard input.
    token: Option<String>,
}

/// Decodes (never trusts) the token and prints it as JSON, marked `"verified": false`.
pub(crate) fn exec(a: InspectArgs) -> Outcome {
    let token = token_arg(a.token)?;
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
    // Every caveat the claims carry, in one place (absent ones are null).
    let caveats = t.claims().ok().map(|c| {
        serde_json::json!({
            "networks": c.get("net"),
            "uses": c.get("uses"),
            "dpop_jkt": c.get("cnf").and_then(|cnf| cnf.get("jkt")),
        })
    });
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
        "caveats": caveats,
        "expires": expires,
    }))
}
