//! Integration tests of covenant-policy: one binary (see STYLE.md), one module per concern.
//! Every test works on the annotated example source, `docs/policy-example/policy.toml`, built
//! with freshly made identities (see `fixture`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod build;
mod fixture;
mod fuzz;
mod hash;
mod parse;
mod roles;
mod rules;
mod schema;
