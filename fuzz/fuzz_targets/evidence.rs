//! libFuzzer target `evidence`: the body is `covenant_fuzz_targets::evidence` (docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| covenant_fuzz_targets::evidence(data));
