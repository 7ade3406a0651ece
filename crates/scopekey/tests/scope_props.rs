//! Property tests of the scope grammar and matching.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use proptest::prelude::*;
use scopekey::{Action, Resource, Scope, ScopeSet};

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        // Small alphabet so that generated sets overlap and matching is exercised.
        prop::sample::select(vec!["a", "b", "c", "projects", "42", "x.y", "_-"])
            .prop_map(String::from),
        "[A-Za-z0-9_.-]{1,12}".prop_filter("dot segments are refused", |s| s != "." && s != ".."),
    ]
}

fn pattern_segment() -> impl Strategy<Value = String> {
    prop_oneof![4 => segment(), 1 => Just("*".to_owned())]
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["read", "write", "delete", "admin"]).prop_map(String::from),
        2 => "[a-z][a-z0-9_-]{0,8}",
        1 => Just("*".to_owned()),
    ]
}

fn scope() -> impl Strategy<Value = Scope> {
    (prop::collection::vec(pattern_segment(), 1..4), action()).prop_map(|(segs, a)| {
        format!("{}:{}", segs.join("/"), a)
            .parse()
            .expect("generated scopes are valid")
    })
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    prop::collection::btree_set(scope().prop_map(|s| s.to_string()), 0..8).prop_map(|set| {
        let scopes = set.into_iter().map(|s| s.parse::<Scope>().expect("valid"));
        ScopeSet::from_scopes(scopes).expect("no duplicates in a BTreeSet")
    })
}

fn request() -> impl Strategy<Value = (Resource, Action)> {
    (prop::collection::vec(segment(), 1..5), action()).prop_map(|(segs, a)| {
        (
            Resource::from_segments(segs).expect("concrete"),
            a.parse().expect("valid action"),
        )
    })
}

/// A set `b` and a set `a` made from some of `b`'s scopes, each possibly narrowed to a child
/// resource or, for a `*` action, to a concrete action.
fn superset_and_narrowing() -> impl Strategy<Value = (ScopeSet, ScopeSet)> {
    scope_set().prop_flat_map(|b| {
        let n = b.len();
        let picks = prop::collection::vec((any::<bool>(), prop::option::of(segment())), n);
        (Just(b), picks).prop_map(|(b, picks)| {
            let narrowed: std::collections::BTreeSet<String> = b
                .iter()
                .zip(picks)
                .filter(|(_, (keep, _))| *keep)
                .map(|(s, (_, child))| {
                    let resource = match child {
                        Some(c) => s
                            .resource()
                            .child(&c)
                            .unwrap_or_else(|_| s.resource().clone()),
                        None => s.resource().clone(),
                    };
                    let action = if s.action().is_wildcard() {
                        Action::write()
                    } else {
                        s.action().clone()
                    };
                    Scope::new(resource, action).to_string()
                })
                .collect();
            let a =
                ScopeSet::from_scopes(narrowed.iter().map(|s| s.parse::<Scope>().expect("valid")))
                    .expect("distinct");
            (b, a)
        })
    })
}

proptest! {
    #[test]
    fn parse_display_is_identity(set in scope_set()) {
        let text = set.to_string();
        let back: ScopeSet = text.parse().unwrap();
        prop_assert_eq!(&back, &set);
        prop_assert_eq!(back.to_string(), text);
        for s in &set {
            let again: Scope = s.to_string().parse().unwrap();
            prop_assert_eq!(&again, s);
        }
    }

    #[test]
    fn allows_agrees_with_the_naive_definition(set in scope_set(), (r, a) in request()) {
        let naive = set.iter().any(|s| s.allows(&r, &a));
        prop_assert_eq!(set.allows(&r, &a), naive);
    }

    /// Small sets are checked by a scan until compiled, large ones through the tree: both
    /// answer as the definition does, before and after `compile`, however the set was built.
    #[test]
    fn scanned_and_compiled_checks_agree(
        scopes in prop::collection::btree_set(scope().prop_map(|s| s.to_string()), 0..40),
        requests in prop::collection::vec(request(), 1..8),
    ) {
        let written: Vec<String> = scopes.into_iter().rev().collect();
        let parsed: ScopeSet = written.join(" ").parse().unwrap();
        let built = ScopeSet::from_scopes(written.iter().map(|s| s.parse::<Scope>().unwrap())).unwrap();
        let compiled: ScopeSet = parsed.to_string().parse().unwrap();
        compiled.compile();
        for (r, a) in &requests {
            let naive = written.iter().any(|s| s.parse::<Scope>().unwrap().allows(r, a));
            prop_assert_eq!(parsed.allows(r, a), naive);
            prop_assert_eq!(built.allows(r, a), naive);
            prop_assert_eq!(compiled.allows(r, a), naive);
        }
        parsed.compile();
        for (r, a) in &requests {
            prop_assert_eq!(parsed.allows(r, a), compiled.allows(r, a));
        }
        prop_assert_eq!(&parsed, &built);
    }

    #[test]
    fn a_superset_never_allows_less(a in scope_set(), b in scope_set(), (r, act) in request()) {
        let union = ScopeSet::from_scopes(
            a.iter().chain(b.iter().filter(|s| !a.contains(s))).cloned(),
        ).unwrap();
        if a.allows(&r, &act) {
            prop_assert!(union.allows(&r, &act));
        }
        prop_assert!(a.is_subset_of(&union));
    }

    #[test]
    fn a_subset_never_allows_what_the_superset_denies(
        (b, a) in superset_and_narrowing(), (r, act) in request()
    ) {
        prop_assert!(a.is_subset_of(&b), "{a} should be a subset of {b}");
        if !b.allows(&r, &act) {
            prop_assert!(!a.allows(&r, &act));
        }
    }

    #[test]
    fn is_subset_of_agrees_with_scope_coverage(a in scope_set(), b in scope_set()) {
        let naive = a.iter().all(|s| b.iter().any(|g| g.covers(s)));
        prop_assert_eq!(a.is_subset_of(&b), naive);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = text.parse::<ScopeSet>();
        let _ = text.parse::<Scope>();
        let _ = text.parse::<Resource>();
        let _ = text.parse::<Action>();
        let _ = Resource::from_segments(text.split('x'));
    }

    #[test]
    fn parsers_never_panic_on_grammar_like_strings(text in "[a-z*/:. \\t-]{0,64}") {
        if let Ok(set) = text.parse::<ScopeSet>() {
            // Whatever parses must print back to something that parses to the same set.
            prop_assert_eq!(set.to_string().parse::<ScopeSet>().unwrap(), set);
        }
    }

    #[test]
    fn the_const_checker_agrees_with_the_parser(text in "[a-zA-Z0-9*/:._ -]{0,40}") {
        prop_assert_eq!(
            scopekey::is_valid_scope_literal(&text),
            text.parse::<Scope>().is_ok(),
            "{:?}", text
        );
    }

    #[test]
    fn the_const_checker_accepts_every_generated_scope(s in scope()) {
        prop_assert!(scopekey::is_valid_scope_literal(&s.to_string()));
    }

    #[test]
    fn concrete_resources_never_carry_grammar_characters(id in any::<String>()) {
        if let Ok(r) = Resource::from_segments(["projects", id.as_str()]) {
            prop_assert_eq!(r.segments().count(), 2);
            prop_assert!(!r.has_wildcard());
            prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)));
        }
    }
}
