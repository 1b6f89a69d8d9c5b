//! libFuzzer target `policy_source`: the body is `covenant_fuzz_targets::policy_source` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| covenant_fuzz_targets::policy_source(data));
