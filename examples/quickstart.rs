//! The scopekey quick start: parse what a token grants and check requests against it.
//!
//! Run with `cargo run --example quickstart`.

use scopekey::{Action, Resource, ScopeError, ScopeSet};

fn main() -> Result<(), ScopeError> {
    // What one consumer's token grants: read on projects, write on one project's comments.
    let granted: ScopeSet = "projects:read projects/42/comments:write".parse()?;
    println!("granted scopes: {granted}");
    println!("read-only:      {}", granted.is_read_only());
    let beyond: Vec<String> = granted.beyond_read().map(ToString::to_string).collect();
    println!("beyond read:    {}", beyond.join(" "));
    println!();

    // Requests, as a handler would see them: ids come from the URL and are checked.
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
        let verdict = if granted.allows(&resource, &action) {
            "allowed"
        } else {
            "denied "
        };
        println!("{verdict}  {action:<6} {resource}");
    }
    println!();

    // Ids that try to escape their segment are refused before any check happens.
    for hostile in [
        "42/comments",
        "42:write",
        "42 comments:write",
        "..",
        "*",
        "4\u{FF12}",
    ] {
        match Resource::from_segments(["projects", hostile]) {
            Ok(r) => println!("accepted?! {r}"),
            Err(e) => println!("refused    {e}"),
        }
    }
    Ok(())
}
