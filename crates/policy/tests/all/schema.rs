//! The committed JSON Schema is the one the types generate.

use std::path::PathBuf;

use covenant_policy::policy_schema;

#[test]
fn committed_schema_matches_the_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.schema.json");
    let generated = policy_schema();
    if std::env::var_os("COVENANT_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/policy.schema.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/policy.schema.json is out of date with the policy types; regenerate it with\n    \
         COVENANT_BLESS=1 cargo test -p covenant-policy --test all schema\nand commit the result"
    );
}

#[test]
fn schema_carries_the_bounds_and_the_closed_shape() {
    let schema: serde_json::Value = serde_json::from_str(&policy_schema()).expect("json");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["format"]["const"], "covenant-policy");
    let execution = &schema["$defs"]["Execution"]["properties"];
    assert_eq!(execution["max_memory_bytes"]["minimum"], 65536);
    assert_eq!(execution["max_memory_bytes"]["maximum"], 4_294_967_296_u64);
    assert_eq!(execution["fuel"]["maximum"], 10_000_000_000_000_u64);
    assert_eq!(
        schema["$defs"]["Program"]["properties"]["sha256"]["pattern"],
        "^[0-9a-f]{64}$"
    );
    let required = schema["$defs"]["Input"]["required"]
        .as_array()
        .expect("required list");
    assert!(
        !required.contains(&serde_json::json!("sha256")),
        "an input's sha256 is optional"
    );
    assert!(required.contains(&serde_json::json!("max_bytes")));
}
