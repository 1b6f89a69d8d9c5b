//! Replays every saved fuzz input as an ordinary test: the seeds under `fuzz/seeds/<target>/`,
//! every past finding under `fuzz/regressions/<target>/` (named after what it found), and, on a
//! machine that has run `fuzz/run`, the corpus it grew under `fuzz/corpus/<target>/` (not in
//! the repository: megabytes per target). CI keeps every finding fixed without a fuzzer.

use std::path::PathBuf;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_saved_input_of_every_target_replays_without_breaking_an_oracle() {
    let mut replayed = 0;
    for target in covenant_fuzz_targets::TARGETS {
        let seeds = inputs("seeds", target);
        assert!(
            !seeds.is_empty(),
            "fuzz/seeds/{target} has no seed inputs; `fuzz/run` starts from them"
        );
        let saved = [inputs("regressions", target), inputs("corpus", target)];
        for path in seeds.iter().chain(saved.iter().flatten()) {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| covenant_fuzz_targets::run(target, &data));
            assert!(
                outcome.is_ok(),
                "{target}: {} breaks an oracle",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0);
}
