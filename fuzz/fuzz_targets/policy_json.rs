//! libFuzzer target `policy_json`: the body is `covenant_fuzz_targets::policy_json` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| covenant_fuzz_targets::policy_json(data));
