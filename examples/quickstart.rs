//! The scopekey quick start: mint a token, verify it, authorize actions, and see refusals.
//!
//! Run with `cargo run --example quickstart`. Everything is in memory: no server, no files.

use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::{
    Action, Environment, Issuer, KeySet, ManualClock, Resource, SigningKey, TokenRequest, Verifier,
    VerifierConfig,
};
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "https://api.example";

fn main() -> Result<(), Box<dyn Error>> {
    // A clock we can move, so the demo can show expiry without waiting.
    let clock = ManualClock::now_utc();
    let production: Environment = "production".parse()?;

    // 1. The issuer holds the secret key; services get only the public key.
    let key = SigningKey::generate()?;
    // A copy of the same secret, to show below that environments stay apart even when a key
    // is reused by mistake.
    let reused_by_mistake = SigningKey::from_paserk(&key.to_paserk())?;
    println!("signing key id: {}", key.key_id());
    let keys = KeySet::single(key.public_key().clone());
    let issuer = Issuer::new(key, ISSUER, production.clone())?.with_clock(clock.clone());

    // 2. One token for one consumer: read on projects, write on one project's comments.
    let minted = issuer.issue(
        &TokenRequest::new(
            "comment-importer",
            AUDIENCE,
            "projects:read projects/42/comments:write".parse()?,
        )
        .ttl(Duration::from_secs(10 * 60))
        .owner("team-support")
        .purpose("import comments from the helpdesk")
        // Read-only is the default: writing comments is a deliberate, recorded escalation.
        .escalate(),
    )?;
    let token = minted.token().as_str();
    println!(
        "minted:         {:?} ({} bytes)",
        minted.token(),
        token.len()
    );
    println!("scopes:         {}", minted.claims().scopes());
    println!("expires:        {}", minted.claims().expires_at());
    println!();

    // 3. The service verifies: signature, key id, environment, issuer, audience, times, and
    //    revocation.
    let revocations = Arc::new(RevocationList::new().with_clock(clock.clone()));
    let verifier = Verifier::new(
        keys.clone(),
        VerifierConfig::new(ISSUER, AUDIENCE, production).clock(clock.clone()),
    )?
    .with_revocations(revocations.clone());
    let grant = verifier.verify(token)?;
    println!(
        "verified for:   {} (owner {:?})",
        grant.subject(),
        grant.claims().owner()
    );
    println!();

    // 4. At the point of action, authorize the specific action on the specific resource.
    let requests: [(&[&str], Action); 6] = [
        (&["projects", "42"], Action::read()),
        (&["projects", "7", "comments"], Action::read()),
        (&["projects", "42", "comments"], Action::write()),
        (&["projects", "7", "comments"], Action::write()),
        (&["projects", "42"], Action::delete()),
        (&["users", "1"], Action::read()),
    ];
    for (segments, action) in requests {
        let resource = Resource::from_segments(segments)?;
        match grant.authorize(&resource, &action) {
            Ok(()) => println!("allowed  {action:<6} {resource}"),
            Err(denied) => println!("denied   {action:<6} {resource:<22} ({denied})"),
        }
    }
    println!();

    // 5. Ids that try to escape their segment are refused before any check happens.
    for hostile in ["42/comments", "42:write", "42 comments:write", "..", "*"] {
        if let Err(e) = Resource::from_segments(["projects", hostile]) {
            println!("refused id       {e}");
        }
    }
    println!();

    // 6. Tokens that do not belong here are refused with a reason.
    let staging = Issuer::new(reused_by_mistake, ISSUER, "staging".parse()?)?;
    let staging_token = staging.issue(&TokenRequest::new(
        "comment-importer",
        AUDIENCE,
        "projects:read".parse()?,
    ))?;
    report(&verifier, "staging token", staging_token.token().as_str());
    let mut tampered = token.to_owned();
    tampered.replace_range(20..21, if &token[20..21] == "A" { "B" } else { "A" });
    report(&verifier, "tampered token", &tampered);

    // 7. Incident response: the token leaked, so its consumer's tokens are revoked at once.
    let second = issuer.issue(&TokenRequest::new(
        "other-consumer",
        AUDIENCE,
        "projects:read".parse()?,
    ))?;
    let record = revocations.revoke(
        RevocationTarget::Subject {
            subject: "comment-importer".into(),
            issued_before: None,
        },
        "alice@example.com",
        "token pasted in a public issue",
    )?;
    println!(
        "revoked:        {} (by {}: {})",
        record.target(),
        record.by(),
        record.reason()
    );
    report(&verifier, "leaked token", token);
    match verifier.verify(second.token().as_str()) {
        Ok(g) => println!(
            "{:<15} still accepted ({} is unaffected)",
            "other token",
            g.subject()
        ),
        Err(e) => println!("{:<15} refused?! {e}", "other token"),
    }

    // 8. Tokens expire in minutes: the other token's 15 minutes are up.
    clock.advance(Duration::from_secs(16 * 60 + 30));
    report(&verifier, "16 min later", second.token().as_str());

    println!();
    println!("Next: the same checks inside an HTTP service (see docs/axum.md):");
    println!(
        "  cargo run --example axum_service -- --demo target/scopekey-demo --listen 127.0.0.1:3000"
    );
    Ok(())
}

fn report(verifier: &Verifier, label: &str, token: &str) {
    match verifier.verify(token) {
        Ok(_) => println!("{label:<15} accepted?!"),
        Err(e) => println!("{label:<15} refused ({:?}): {e}", e.kind()),
    }
}
