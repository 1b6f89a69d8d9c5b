//! The example computations of `examples/`: for each, a seedable generator of its input files
//! and the answer computed in plain Rust from those same files, independently of the guest
//! program that computes it inside the runtime.
//!
//! ```
//! let example = covenant_examples::generate("private-set-intersection", 7).unwrap();
//! assert_eq!(example.output, "/output/shared.txt");
//! assert_eq!(example.inputs.len(), 2);
//! ```
//!
//! The same seed always gives the same bytes, on every platform. The end-to-end tests
//! (`tests/all`) run each example's guest through `covenant-runtime` under the example's own
//! `policy.toml` and compare what it releases with [`Example::expected`];
//! `covenant-example-data` writes the generated files for running an example by hand.
#![forbid(unsafe_code)]

pub mod edit_distance;
pub mod intersection_sum;
pub mod linear_regression;
pub mod macd;
pub mod private_set_intersection;
pub mod rng;
pub mod shamir;

/// One input file of an example: where the guest reads it, and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// The guest path, exactly as the example's policy names the input.
    pub path: &'static str,
    /// The file's contents.
    pub bytes: Vec<u8>,
}

impl InputFile {
    /// The file's name on the host: the last component of [`InputFile::path`].
    pub fn file_name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// One example's generated data and its expected result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// The directory under `examples/`.
    pub name: &'static str,
    /// The guest program's name (`covenant_guests::…`, `guests/programs/src/bin/NAME.rs`).
    pub guest: &'static str,
    /// Every input the policy names, with generated contents.
    pub inputs: Vec<InputFile>,
    /// The guest path of the result file the program writes.
    pub output: &'static str,
    /// The result file's exact contents, computed in plain Rust from [`Example::inputs`].
    pub expected: String,
}

/// Every example, by directory name under `examples/`.
pub const NAMES: [&str; 6] = [
    "private-set-intersection",
    "intersection-sum",
    "linear-regression",
    "macd",
    "edit-distance",
    "shamir",
];

/// The example named `name` (a directory under `examples/`) with data from `seed`, or `None`
/// if there is no such example.
pub fn generate(name: &str, seed: u64) -> Option<Example> {
    Some(match name {
        "private-set-intersection" => private_set_intersection::example(seed),
        "intersection-sum" => intersection_sum::example(seed),
        "linear-regression" => linear_regression::example(seed),
        "macd" => macd::example(seed),
        "edit-distance" => edit_distance::example(seed),
        "shamir" => shamir::example(seed),
        _ => return None,
    })
}

/// Non-empty trimmed lines of `bytes`, as the guests read them.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(bytes)
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
}
