//! Arbitrary bytes and arbitrary JSON never make parsing, validation, building or hashing
//! panic; and our RFC 8785 output agrees with an independent implementation.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::fixture::{FILES, NOW, example_value};

/// Arbitrary JSON without floats (what a policy can carry), nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::from(n % (1 << 53))),
        (0..=covenant_policy::bounds::MAX_JSON_INTEGER).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".*".prop_map(Value::String),
        prop::sample::select(vec![
            "format",
            "covenant-policy",
            "version",
            "/input/a.csv",
            "stdout",
            "jit",
            "software",
            "self",
            ""
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((".{0,12}", inner), 0..8).prop_map(|entries| Value::Object(
                entries.into_iter().collect::<Map<String, Value>>()
            )),
        ]
    })
}

/// Every path (as pointer segments) in a value.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                pointers(
                    item,
                    format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                pointers(item, format!("{prefix}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn exercise(bytes: &[u8]) {
    if let Ok(policy) = covenant_policy::parse(bytes) {
        let _ = covenant_policy::validate(&policy, NOW);
        let _ = covenant_policy::PolicyHash::of(&policy).expect("a parsed policy always hashes");
        let _ = covenant_policy::roles(&policy);
        let _ = covenant_policy::capabilities(&policy);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_json_does_not_panic(value in json_value()) {
        exercise(serde_json::to_string(&value).expect("json").as_bytes());
        let _ = covenant_policy::policy_from_value(value);
    }

    #[test]
    fn example_with_one_value_replaced_does_not_panic(pick in any::<prop::sample::Index>(), replacement in json_value()) {
        let mut value = example_value();
        let mut all = Vec::new();
        pointers(&value, String::new(), &mut all);
        let pointer = pick.get(&all).clone();
        if let Some(slot) = value.pointer_mut(&pointer) {
            *slot = replacement;
        }
        exercise(serde_json::to_string(&value).expect("json").as_bytes());
    }

    #[test]
    fn canonical_form_agrees_with_serde_jcs(value in json_value()) {
        let ours = covenant_policy::canonical_json(&value);
        match ours {
            Ok(text) => prop_assert_eq!(text, serde_jcs::to_string(&value).expect("serde_jcs")),
            Err(error) => prop_assert!(
                matches!(error, covenant_policy::CanonicalError::IntegerOutOfRange { .. }),
                "only out-of-range integers are refused here: {error}"
            ),
        }
    }

    #[test]
    fn arbitrary_sources_do_not_panic(source in ".{0,256}", edit in 0usize..2000, text in ".{0,16}") {
        let _ = covenant_policy::build(&source, &*FILES, None);
        let example = crate::fixture::EXAMPLE_SOURCE;
        let at = edit.min(example.len());
        if example.is_char_boundary(at) {
            let edited = format!("{}{}{}", &example[..at], text, &example[at..]);
            if let Ok(policy) = covenant_policy::build(&edited, &*FILES, Some([1; 32])) {
                let _ = covenant_policy::validate(&policy, NOW);
            }
        }
    }

    #[test]
    fn unit_parsers_do_not_panic(text in ".{0,24}") {
        let _ = covenant_policy::units::parse_size(&text);
        let _ = covenant_policy::units::parse_duration_ms(&text);
    }
}
