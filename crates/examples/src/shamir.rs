//! Three providers each hold one share of a secret split with Shamir's scheme (threshold 3)
//! over the field of p = 2^61 − 1; the answer is the secret.

use crate::rng::Rng;
use crate::{Example, InputFile};

/// The field's prime, 2^61 − 1.
pub const P: u64 = (1 << 61) - 1;
/// Where each custodian's share is read.
pub const INPUTS: [&str; 3] = [
    "/input/share-1.txt",
    "/input/share-2.txt",
    "/input/share-3.txt",
];
/// The secret.
pub const OUTPUT: &str = "/output/secret.txt";

/// The secret [`example`] splits: uniform in the field.
pub fn secret(seed: u64) -> u64 {
    Rng::new(seed).below(P)
}

/// Evaluates `coefficients[0] + coefficients[1]·x + …` modulo [`P`] (Horner).
pub fn evaluate(coefficients: &[u64], x: u64) -> u64 {
    coefficients.iter().rev().fold(0u64, |acc, &c| {
        ((u128::from(acc) * u128::from(x) + u128::from(c)) % u128::from(P)) as u64
    })
}

/// Splits [`secret`]`(seed)` with a random degree-2 polynomial and gives each custodian the
/// share `x,y` at a distinct random x in 1..1000000.
pub fn example(seed: u64) -> Example {
    let s = secret(seed);
    let mut rng = Rng::new(seed ^ 0x5A5A);
    let coefficients = [s, rng.below(P), rng.below(P)];
    let mut xs: Vec<u64> = Vec::new();
    while xs.len() < 3 {
        let x = 1 + rng.below(999_999);
        if !xs.contains(&x) {
            xs.push(x);
        }
    }
    let inputs = INPUTS
        .iter()
        .zip(&xs)
        .map(|(&path, &x)| InputFile {
            path,
            bytes: format!("{x},{}\n", evaluate(&coefficients, x)).into_bytes(),
        })
        .collect();
    Example {
        name: "shamir",
        guest: "shamir",
        inputs,
        output: OUTPUT,
        expected: format!("{s}\n"),
    }
}
