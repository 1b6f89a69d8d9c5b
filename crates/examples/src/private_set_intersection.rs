//! Two hospitals' patient-id lists; the answer is how many distinct patients they share.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::rng::Rng;
use crate::{Example, InputFile, lines};

/// Hospital A's list.
pub const INPUT_A: &str = "/input/hospital-a.txt";
/// Hospital B's list.
pub const INPUT_B: &str = "/input/hospital-b.txt";
/// The count of shared patients.
pub const OUTPUT: &str = "/output/shared.txt";

/// Two lists of ids `P0000000`–`P9999999`, one per line in random order: A has about 1500,
/// B about 1200, about 300 of them also in A. A lists one patient twice (a set counts it
/// once) and both have a blank line (ignored).
pub fn example(seed: u64) -> Example {
    let mut rng = Rng::new(seed);
    let mut id = || format!("P{:07}", rng.below(10_000_000));
    let mut a: Vec<String> = (0..1500).map(|_| id()).collect();
    let mut b: Vec<String> = (0..900).map(|_| id()).collect();
    let mut rng = Rng::new(seed ^ 0x5EED);
    for _ in 0..300 {
        b.push(a[rng.below(a.len() as u64) as usize].clone());
    }
    a.push(a[0].clone());
    rng.shuffle(&mut a);
    rng.shuffle(&mut b);
    let file = |ids: &[String]| {
        let mut text = String::new();
        for (i, id) in ids.iter().enumerate() {
            if i == ids.len() / 2 {
                text.push('\n');
            }
            let _ = writeln!(text, "{id}");
        }
        text.into_bytes()
    };
    let inputs = vec![
        InputFile {
            path: INPUT_A,
            bytes: file(&a),
        },
        InputFile {
            path: INPUT_B,
            bytes: file(&b),
        },
    ];
    let expected = format!("{}\n", shared(&inputs[0].bytes, &inputs[1].bytes));
    Example {
        name: "private-set-intersection",
        guest: "private_set_intersection",
        inputs,
        output: OUTPUT,
        expected,
    }
}

/// How many distinct ids (non-empty trimmed lines) appear in both lists.
pub fn shared(a: &[u8], b: &[u8]) -> usize {
    let a: BTreeSet<&str> = lines(a).collect();
    let b: BTreeSet<&str> = lines(b).collect();
    a.intersection(&b).count()
}
