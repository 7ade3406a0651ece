//! Unit and property tests of the scope grammar, sets and matching.

use super::error::*;
use super::grammar::*;
use super::resource::*;
use super::set::*;
use super::single::*;
use super::*;
use proptest::strategy::Strategy as _;

/// What [`scan_scopes`] must compute, by the definition: every space-separated part a
/// valid scope, strictly increasing, at most [`MAX_SCOPES`].
fn canonical_count(s: &str) -> Option<usize> {
    let parts: Vec<&str> = s.split(' ').collect();
    let valid = parts.iter().all(|p| check_scope(p).is_ok());
    let increasing = parts.windows(2).all(|w| w[0] < w[1]);
    (valid && increasing && parts.len() <= MAX_SCOPES).then_some(parts.len())
}

proptest::proptest! {
    /// The one-pass scan agrees with the definition on arbitrary text of the scope
    /// alphabet and its neighbours (upper case, `.`, spaces, a non-ASCII letter), and on
    /// text made of pieces of scopes, which is often nearly valid.
    #[test]
    fn scan_is_the_definition(
        text in "[a-cA*/:. _é-]{0,40}",
        pieces in "(a|b|cd|/|:|:r|:w| |[*]|[.]|A|é|-|_|a:r|b/c:w|a:r |b:w ){0,14}",
    ) {
        proptest::prop_assert_eq!(scan_scopes(text.as_bytes()), canonical_count(&text));
        proptest::prop_assert_eq!(scan_scopes(pieces.as_bytes()), canonical_count(&pieces));
    }

    /// And on canonical sets of ordinary scopes, which it must accept or it saves nothing;
    /// the same sets out of order or with a duplicate are refused.
    #[test]
    fn scan_takes_canonical_sets(
        scopes in proptest::collection::btree_set(
            ("([a-z0-9_-][a-z0-9._-]{0,12}|[*])(/([a-z0-9_-][a-z0-9._-]{0,12}|[*])){0,3}",
             "([a-z][a-z0-9_-]{0,8}|[*])")
                .prop_map(|(r, a)| format!("{r}:{a}")),
            1..12,
        ),
    ) {
        let scopes: Vec<String> = scopes.into_iter().collect();
        let text = scopes.join(" ");
        proptest::prop_assert_eq!(scan_scopes(text.as_bytes()), Some(scopes.len()));
        proptest::prop_assert_eq!(canonical_count(&text), Some(scopes.len()));
        if scopes.len() > 1 {
            let reversed: Vec<&str> = scopes.iter().rev().map(String::as_str).collect();
            proptest::prop_assert_eq!(scan_scopes(reversed.join(" ").as_bytes()), None);
            let doubled = format!("{} {}", scopes[0], text);
            proptest::prop_assert_eq!(scan_scopes(doubled.as_bytes()), None);
        }
    }
}

proptest::proptest! {
    /// The byte search finds the parts a split and a filter find, in order.
    #[test]
    fn parts_starting_with_is_split_and_filter(
        text in "[ab* :]{0,24}",
        first in proptest::sample::select(vec![b'a', b'b', b'*', b':']),
    ) {
        let ours: Vec<&str> = parts_starting_with(&text, first).collect();
        let naive: Vec<&str> = text
            .split(' ')
            .filter(|p| p.as_bytes().first() == Some(&first))
            .collect();
        proptest::prop_assert_eq!(ours, naive);
    }
}

#[test]
fn split_byte_is_str_split() {
    for s in [
        "",
        " ",
        "a",
        "a b",
        " a",
        "a ",
        "a  b",
        "é a ü",
        "ab/cd//e/",
        "/",
    ] {
        for sep in [b' ', b'/'] {
            let ours: Vec<&str> = split_byte(s, sep).collect();
            let std: Vec<&str> = s.split(char::from(sep)).collect();
            assert_eq!(ours, std, "{s:?} on {sep}");
        }
    }
}

#[test]
fn scan_refuses_the_edges() {
    let long_segment = format!("{}:read", "a".repeat(MAX_SEGMENT_LEN + 1));
    let many = format!("{}:read", vec!["a"; MAX_SEGMENTS + 1].join("/"));
    // Ten segments of 100 and one more: 1,009 + 1 + n bytes of resource.
    let resource = |n: usize| format!("{}/{}", vec!["a".repeat(100); 10].join("/"), "b".repeat(n));
    assert_eq!(resource(14).len(), MAX_RESOURCE_LEN);
    let long_resource = format!("{}:read", resource(15));
    let longest_resource = format!("{}:read", resource(14));
    let long_action = format!("a:a{}", "b".repeat(MAX_ACTION_LEN));
    let too_many = (0..=MAX_SCOPES)
        .map(|i| format!("s{i:04}:read"))
        .collect::<Vec<_>>()
        .join(" ");
    let most = (0..MAX_SCOPES)
        .map(|i| format!("s{i:04}:read"))
        .collect::<Vec<_>>()
        .join(" ");
    let longest = format!(
        "{}:{}",
        vec!["a".repeat(63); 16].join("/"),
        "b".repeat(MAX_ACTION_LEN)
    );
    for bad in [
        "",
        " ",
        "a",
        ":read",
        "a:",
        "a/:read",
        "/a:read",
        "./a:read",
        "a/..:read",
        "a*:read",
        "*a:read",
        "**:read",
        "a:Read",
        "a:1x",
        "a:re ad",
        "a:r*",
        "a:**",
        "a:*x",
        "a b:read",
        "é:read",
        "a:read ",
        " a:read",
        "a:read  b:read",
        "a:read a:read",
        "b:read a:read",
        "a:write a:read",
        "a:read a/b:read",
        &long_segment,
        &many,
        &long_resource,
        &long_action,
        &too_many,
    ] {
        assert_eq!(scan_scopes(bad.as_bytes()), None, "{bad:?}");
        assert_eq!(canonical_count(bad), None, "{bad:?}");
    }
    for (good, n) in [
        ("a/.b/..c/*:x-1", 1),
        ("*:*", 1),
        ("a/b:read a:read a:write b:*", 4),
        (most.as_str(), MAX_SCOPES),
        (longest.as_str(), 1),
        (longest_resource.as_str(), 1),
    ] {
        assert_eq!(scan_scopes(good.as_bytes()), Some(n), "{good:?}");
        assert_eq!(canonical_count(good), Some(n), "{good:?}");
    }
}

#[test]
fn scope_order_is_the_byte_order_of_the_written_form() {
    let written = [
        "a:read",
        "a:write",
        "a/b:read",
        "a-b:read",
        "a.b:read",
        "a0:read",
        "ab:read",
        "a/*:read",
        "a:*",
        "a/b/c:admin",
        "A:read",
        "a_:read",
        "b:read",
        "a/b:delete",
    ];
    let scopes: Vec<Scope> = written.iter().map(|s| s.parse().unwrap()).collect();
    for x in &scopes {
        for y in &scopes {
            assert_eq!(
                x.cmp(y),
                x.to_string().as_bytes().cmp(y.to_string().as_bytes()),
                "{x} vs {y}"
            );
        }
    }
}

fn set(s: &str) -> ScopeSet {
    s.parse().unwrap()
}
fn res(s: &str) -> Resource {
    s.parse().unwrap()
}
fn act(s: &str) -> Action {
    s.parse().unwrap()
}
fn scope_err(s: &str) -> ScopeError {
    s.parse::<Scope>().unwrap_err()
}

#[test]
fn error_message_says_where_and_why() {
    let e = scope_err("projects/:read");
    assert_eq!(e.kind(), ScopeErrorKind::EmptySegment);
    assert_eq!(e.position(), 9);
    assert_eq!(
        e.to_string(),
        "scope \"projects/:read\": empty segment at byte 9"
    );
}

#[test]
fn grammar_accepts_the_documented_forms() {
    for ok in [
        "projects:read",
        "projects/42:read",
        "projects/42/comments:write",
        "projects/*/comments:read",
        "billing/invoices:publish",
        "a_b-c.d/E9:custom-verb_2",
        "projects:*",
        "*:read",
        "...:read",
    ] {
        let s: Scope = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(s.to_string(), ok);
    }
}

#[test]
fn grammar_refusals_name_the_kind() {
    use ScopeErrorKind as K;
    let cases: &[(&str, K, usize)] = &[
        ("", K::Empty, 0),
        ("projects", K::MissingAction, 8),
        ("projects:", K::Empty, 9),
        (":read", K::Empty, 0),
        ("/projects:read", K::EmptySegment, 0),
        ("projects/:read", K::EmptySegment, 9),
        ("projects//x:read", K::EmptySegment, 9),
        ("projects/.:read", K::DotSegment, 9),
        ("projects/..:read", K::DotSegment, 9),
        ("projects:read:extra", K::InvalidAction, 13),
        ("projects:read*", K::InvalidAction, 13),
        ("projects:READ", K::InvalidAction, 9),
        ("projects:Read", K::InvalidAction, 9),
        ("projects:1read", K::InvalidAction, 9),
        ("projects/4*:read", K::InvalidCharacter, 10),
        ("pro jects:read", K::InvalidCharacter, 3),
        ("projects\t:read", K::InvalidCharacter, 8),
        ("projects/%2e%2e:read", K::InvalidCharacter, 9),
        ("projects\0:read", K::InvalidCharacter, 8),
        ("projects\u{FF1A}read", K::NotAscii, 8),
        ("projects\u{2236}read", K::NotAscii, 8),
        ("pr\u{043E}jects:read", K::NotAscii, 2),
        ("projects:wr\u{0131}te", K::NotAscii, 11),
        ("projects/\u{212A}:read", K::NotAscii, 9),
        ("projects:\u{017F}ign", K::NotAscii, 9),
        ("projects\u{200B}:read", K::NotAscii, 8),
        ("projects\u{202E}:read", K::NotAscii, 8),
        ("projects:re\u{200D}ad", K::NotAscii, 11),
    ];
    for &(input, kind, at) in cases {
        let e = scope_err(input);
        assert_eq!((e.kind(), e.position()), (kind, at), "{input:?}: {e}");
    }
}

#[test]
fn segment_length_and_count_are_bounded() {
    let long = "a".repeat(MAX_SEGMENT_LEN);
    assert!(format!("{long}:read").parse::<Scope>().is_ok());
    let e = scope_err(&format!("{long}a:read"));
    assert_eq!(e.kind(), ScopeErrorKind::SegmentTooLong);
    let deep = vec!["a"; MAX_SEGMENTS].join("/");
    assert!(format!("{deep}:read").parse::<Scope>().is_ok());
    let e = scope_err(&format!("{deep}/a:read"));
    assert_eq!(e.kind(), ScopeErrorKind::TooManySegments);
    let e = scope_err(&"a/".repeat(10_000));
    assert_eq!(e.kind(), ScopeErrorKind::TooLong);
    let e = format!("x:{}", "a".repeat(MAX_ACTION_LEN + 1))
        .parse::<Scope>()
        .unwrap_err();
    assert_eq!(e.kind(), ScopeErrorKind::TooLong);
}

#[test]
fn error_messages_quote_a_bounded_escaped_input() {
    let e = scope_err(&format!("{}\n:read", "x".repeat(1000)));
    let msg = e.to_string();
    assert!(msg.len() < 200, "{msg}");
    assert!(!msg.contains('\n'));
    let e = scope_err("evil\u{202E}:read");
    assert!(e.to_string().contains("U+202E"), "{e}");
    assert!(!e.to_string().contains('\u{202E}'), "{e}");
}

#[test]
fn from_segments_refuses_every_injection() {
    for id in [
        "",
        ".",
        "..",
        "*",
        "42/comments",
        "42:write",
        "42 comments:write",
        "%2e%2e",
        "%3a",
        "a\0",
        "a\t",
        "a\r\n",
        "a b",
        "\u{FF1A}",
        "\u{0131}",
        "4\u{200B}2",
    ] {
        let e = Resource::from_segments(["projects", id]).unwrap_err();
        assert_ne!(e.kind(), ScopeErrorKind::TooManySegments, "{id:?}");
        let root = res("projects");
        assert!(root.child(id).is_err(), "{id:?}");
    }
    let r = Resource::from_segments(["projects", "42", "comments"]).unwrap();
    assert_eq!(r.as_str(), "projects/42/comments");
    assert!(!r.has_wildcard());
    assert!(Resource::from_segments(Vec::<&str>::new()).is_err());
    let too_deep = vec!["a"; MAX_SEGMENTS + 1];
    assert_eq!(
        Resource::from_segments(too_deep).unwrap_err().kind(),
        ScopeErrorKind::TooManySegments
    );
}

#[test]
fn a_grant_covers_descendants_for_its_own_action_only() {
    let s = set("projects:read");
    assert!(s.allows(&res("projects"), &act("read")));
    assert!(s.allows(&res("projects/42"), &act("read")));
    assert!(s.allows(&res("projects/42/comments/7"), &act("read")));
    assert!(!s.allows(&res("projects/42"), &act("write")));
    assert!(!s.allows(&res("projects-archive"), &act("read")));
    assert!(!s.allows(&res("project"), &act("read")));
    assert!(!s.allows(&res("users/42"), &act("read")));
    assert!(!set("projects:read").allows(&res("projects"), &act("readwrite")));
    assert!(!set("projects/42:read").allows(&res("projects"), &act("read")));
    assert!(!set("projects/42:read").allows(&res("projects/420"), &act("read")));
}

#[test]
fn matching_is_case_sensitive_without_normalisation() {
    let s = set("projects:read");
    assert!(!s.allows(&res("Projects"), &act("read")));
    assert!(!s.allows(&res("PROJECTS/1"), &act("read")));
}

#[test]
fn wildcards_match_one_segment_and_are_broad() {
    let s = set("projects/*/comments:read");
    assert!(s.is_broad());
    assert!(s.allows(&res("projects/42/comments"), &act("read")));
    assert!(s.allows(&res("projects/42/comments/9"), &act("read")));
    assert!(!s.allows(&res("projects/42"), &act("read")));
    assert!(!s.allows(&res("projects/42/x/comments"), &act("read")));
    assert!(!s.allows(&res("projects/42/comments"), &act("write")));

    let any = set("projects:*");
    assert!(any.is_broad());
    assert!(any.allows(&res("projects/1"), &act("delete")));
    assert!(any.allows(&res("projects/1"), &Action::any()));
    assert!(!set("projects:read").allows(&res("projects/1"), &Action::any()));

    // Asking about every project is only granted by a grant on every project.
    assert!(!set("projects/1:read").allows(&res("projects/*"), &act("read")));
    assert!(set("projects/*:read").allows(&res("projects/*"), &act("read")));
    assert!(!set("projects:read").is_broad());
}

#[test]
fn both_literal_and_wildcard_branches_are_searched() {
    let s = set("a/b/c:read a/*/d:read");
    assert!(s.allows(&res("a/b/d"), &act("read")));
    assert!(s.allows(&res("a/b/c/e"), &act("read")));
    assert!(!s.allows(&res("a/b/e"), &act("read")));
}

#[test]
fn scope_set_string_is_canonical_and_strict() {
    let s = set("projects:read comments:write projects/42:read");
    assert_eq!(
        s.to_string(),
        "comments:write projects/42:read projects:read"
    );
    assert_eq!(s, set(&s.to_string()));
    assert_eq!(set("").len(), 0);
    use ScopeErrorKind as K;
    for (input, kind) in [
        (" a:read", K::BadSeparator),
        ("a:read ", K::BadSeparator),
        ("a:read  b:read", K::BadSeparator),
        ("a:read\tb:read", K::InvalidAction),
        ("a:read a:read", K::Duplicate),
        ("123 comments:write", K::MissingAction),
    ] {
        let e = input.parse::<ScopeSet>().unwrap_err();
        assert_eq!(e.kind(), kind, "{input:?}: {e}");
    }
    let many = (0..=MAX_SCOPES)
        .map(|i| format!("r{i}:read"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        many.parse::<ScopeSet>().unwrap_err().kind(),
        K::TooManyScopes
    );
}

#[test]
fn read_only_posture_is_visible() {
    let r = set("projects:read users:read");
    assert!(r.is_read_only());
    assert_eq!(r.beyond_read().count(), 0);
    let w = set("projects:read comments:write");
    assert!(!w.is_read_only());
    let beyond: Vec<String> = w.beyond_read().map(ToString::to_string).collect();
    assert_eq!(beyond, ["comments:write"]);
    assert_eq!(Scope::read(res("x")).to_string(), "x:read");
    assert_eq!(Scope::write(res("x")).to_string(), "x:write");
    assert_eq!(Scope::delete(res("x")).to_string(), "x:delete");
    assert_eq!(Scope::admin(res("x")).to_string(), "x:admin");
}

#[test]
fn subset_follows_coverage() {
    let small = set("projects/42:read");
    let big = set("projects:read comments:write");
    assert!(small.is_subset_of(&big));
    assert!(!big.is_subset_of(&small));
    assert!(set("projects/*/x:read").is_subset_of(&set("projects:read")));
    assert!(!set("projects:read").is_subset_of(&set("projects/*:read")));
    assert!(set("projects:write").is_subset_of(&set("projects:*")));
    assert!(!set("projects:*").is_subset_of(&set("projects:write")));
    assert!(ScopeSet::new().is_subset_of(&small));
}

#[test]
fn from_scopes_refuses_duplicates() {
    let a: Scope = "a:read".parse().unwrap();
    let e = ScopeSet::from_scopes([a.clone(), a.clone()]).unwrap_err();
    assert_eq!(e.kind(), ScopeErrorKind::Duplicate);
    let s = ScopeSet::from_scopes([a.clone()]).unwrap();
    assert!(s.contains(&a));
}

#[test]
fn serde_uses_the_scope_string() {
    let s = set("b:read a:write");
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(json, "\"a:write b:read\"");
    let back: ScopeSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(serde_json::from_str::<ScopeSet>("\"a:read a:read\"").is_err());
    assert!(serde_json::from_str::<ScopeSet>("[\"a:read\"]").is_err());
    assert!(serde_json::from_str::<Resource>("\"a/../b\"").is_err());
    assert!(serde_json::from_str::<Action>("\"READ\"").is_err());
    let sc: Scope = serde_json::from_str("\"a/b:read\"").unwrap();
    assert_eq!(sc.resource().as_str(), "a/b");
}
