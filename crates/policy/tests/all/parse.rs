//! Parsing: unknown fields, wrong shapes and ambiguous JSON are refused with a JSON path.

use covenant_policy::{ParseError, bounds::MAX_POLICY_BYTES, parse, policy_from_value};
use serde_json::{Value, json};

use crate::fixture::example_value;

/// Parses the example after `edit` and returns the error message.
fn error_after(edit: impl FnOnce(&mut Value)) -> String {
    let mut value = example_value();
    edit(&mut value);
    let text = serde_json::to_string(&value).expect("json");
    match parse(text.as_bytes()) {
        Ok(_) => String::from("parsed"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let message = error_after(|v| v["inputs"][1]["colour"] = json!("red"));
    assert!(
        message.starts_with(
            "inputs[1].colour: unknown field `colour`, expected one of `path`, `provider`"
        ),
        "{message}"
    );
    let message = error_after(|v| v["extra"] = json!(1));
    assert!(
        message.starts_with("extra: unknown field `extra`"),
        "{message}"
    );
}

#[test]
fn missing_fields_are_errors_with_their_path() {
    let message = error_after(|v| {
        v["execution"]
            .as_object_mut()
            .expect("object")
            .remove("timeout_ms");
    });
    assert_eq!(message, "execution: missing field `timeout_ms`");
}

#[test]
fn wrong_types_are_errors_with_their_path() {
    let message = error_after(|v| v["execution"]["max_memory_bytes"] = json!("256MiB"));
    assert_eq!(
        message,
        "execution.max_memory_bytes: invalid type: string \"256MiB\", expected u64"
    );
    let message = error_after(|v| v["execution"]["strategy"] = json!("aot"));
    assert_eq!(
        message,
        "execution.strategy: unknown variant `aot`, expected `jit` or `interpreter`"
    );
    let message = error_after(|v| v["runs"]["max"] = json!(-1));
    assert_eq!(
        message,
        "runs.max: invalid value: integer `-1`, expected u32"
    );
}

#[test]
fn null_is_not_absent() {
    let message = error_after(|v| v["inputs"][1]["sha256"] = Value::Null);
    assert_eq!(
        message,
        "inputs[1].sha256: invalid type: null, expected a string"
    );
    let message = error_after(|v| v["execution"]["fuel"] = Value::Null);
    assert_eq!(message, "execution.fuel: invalid type: null, expected u64");
}

#[test]
fn repeated_keys_are_refused() {
    let text = serde_json::to_string(&example_value()).expect("json");
    let twice = text.replacen(
        "\"computation\":",
        "\"computation\":\"other\",\"computation\":",
        1,
    );
    let message = parse(twice.as_bytes())
        .expect_err("repeated key")
        .to_string();
    assert!(
        message.starts_with(
            "not valid policy JSON: key \"computation\" appears twice in one object at line 1"
        ),
        "{message}"
    );
    let env = text.replacen("\"env\":{}", "\"env\":{\"A\":\"1\",\"A\":\"2\"}", 1);
    assert_ne!(env, text);
    assert!(
        parse(env.as_bytes())
            .expect_err("repeated env key")
            .to_string()
            .contains("key \"A\" appears twice")
    );
}

#[test]
fn floats_and_inexact_integers_are_refused() {
    let text = serde_json::to_string(&example_value()).expect("json");
    let float = text.replacen("\"max\":1", "\"max\":1.0", 1);
    assert!(
        parse(float.as_bytes())
            .expect_err("float")
            .to_string()
            .contains("1 is not an integer")
    );
    let exponent = text.replacen("\"max\":1", "\"max\":1e0", 1);
    assert!(
        parse(exponent.as_bytes())
            .expect_err("exponent")
            .to_string()
            .contains("is not an integer")
    );
    let huge = text.replacen("\"max\":1", "\"max\":9007199254740992", 1);
    assert!(
        parse(huge.as_bytes())
            .expect_err("huge")
            .to_string()
            .contains("9007199254740992 is outside the exact integer range")
    );
}

#[test]
fn other_formats_and_versions_are_named_as_such() {
    let message = error_after(|v| v["version"] = json!(2));
    assert_eq!(
        message,
        "policy version 2 is not supported; this build reads version 1"
    );
    // A version-2 document with new fields is reported by version, not by its unknown fields.
    let message = error_after(|v| {
        v["version"] = json!(2);
        v["new_thing"] = json!(true);
    });
    assert_eq!(
        message,
        "policy version 2 is not supported; this build reads version 1"
    );
    let message = error_after(|v| v["format"] = json!("veracruz-policy"));
    assert_eq!(
        message,
        "not a Covenant policy: \"format\" is \"veracruz-policy\"; expected \"covenant-policy\""
    );
    let message = error_after(|v| {
        v.as_object_mut().expect("object").remove("format");
    });
    assert_eq!(
        message,
        "not a Covenant policy: no \"format\" field; expected \"format\": \"covenant-policy\""
    );
    assert_eq!(
        policy_from_value(json!([1]))
            .expect_err("array")
            .to_string(),
        "not a Covenant policy: expected a JSON object with \"format\": \"covenant-policy\", found an array"
    );
}

#[test]
fn not_json_says_where() {
    let message = parse(b"{\"format\": \"covenant-policy\",,}")
        .expect_err("syntax")
        .to_string();
    assert!(
        message.starts_with("not valid policy JSON:") && message.contains("line 1 column"),
        "{message}"
    );
    assert!(matches!(parse(b"\xff\xfe"), Err(ParseError::Json(_))));
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let big = vec![b' '; MAX_POLICY_BYTES + 1];
    assert!(matches!(parse(&big), Err(ParseError::TooLarge { .. })));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(parse(deep.as_bytes()), Err(ParseError::Json(_))));
    let deep_field = format!(
        "{{\"format\":\"covenant-policy\",\"version\":1,\"program\":{}{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    );
    assert!(parse(deep_field.as_bytes()).is_err());
}
