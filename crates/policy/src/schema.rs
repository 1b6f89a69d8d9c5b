//! The JSON Schema of the policy format, generated from the Rust types.
//!
//! `docs/policy.schema.json` is this function's output, committed so that people and tools
//! without Rust can read it; a test fails when the two differ (`COVENANT_BLESS=1 cargo test -p
//! covenant-policy` rewrites the file). The schema describes the shape of a policy; rules that
//! relate fields to each other (declared principals, distinct paths, certificate validity) are
//! checked only by [`crate::validate`].

use crate::model::Policy;

/// The JSON Schema (draft 2020-12) of the policy format, pretty-printed, ending in a newline.
#[must_use]
pub fn policy_schema() -> String {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Policy>();
    let mut text = serde_json::to_string_pretty(&schema)
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}
