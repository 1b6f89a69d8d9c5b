//! Two parties' strings; the answer is their Levenshtein distance.

use crate::rng::Rng;
use crate::{Example, InputFile};

/// Party A's string.
pub const INPUT_A: &str = "/input/a.txt";
/// Party B's string.
pub const INPUT_B: &str = "/input/b.txt";
/// The distance.
pub const OUTPUT: &str = "/output/distance.txt";

/// The alphabet of generated strings; `é` and `ß` make sure characters, not bytes, count.
const ALPHABET: [char; 6] = ['a', 'c', 'g', 't', 'é', 'ß'];

/// The number of random edits [`example`] applies to A's string to make B's: an upper bound
/// on the distance.
pub const EDITS: usize = 40;

/// A's string: 400 random characters; B's: A's after [`EDITS`] random single-character
/// insertions, deletions or substitutions. Each file ends with a line break, which is not
/// part of the string.
pub fn example(seed: u64) -> Example {
    let mut rng = Rng::new(seed);
    let pick = |rng: &mut Rng| ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
    let a: Vec<char> = (0..400).map(|_| pick(&mut rng)).collect();
    let mut b = a.clone();
    for _ in 0..EDITS {
        let at = rng.below(b.len() as u64 + 1) as usize;
        match rng.below(3) {
            0 => b.insert(at, pick(&mut rng)),
            1 if at < b.len() => {
                b.remove(at);
            }
            _ if at < b.len() => b[at] = pick(&mut rng),
            _ => b.push(pick(&mut rng)),
        }
    }
    let file = |s: &[char]| format!("{}\n", s.iter().collect::<String>()).into_bytes();
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
    Example {
        name: "edit-distance",
        guest: "edit_distance",
        inputs,
        output: OUTPUT,
        expected: format!("{}\n", levenshtein(&text(&a), &text(&b))),
    }
}

fn text(chars: &[char]) -> String {
    chars.iter().collect()
}

/// The Levenshtein distance between `a` and `b` in Unicode scalar values, by the full
/// (|a|+1)×(|b|+1) table.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::levenshtein;

    #[test]
    fn known_distances() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("straße", "strasse"), 2);
        assert_eq!(levenshtein("same", "same"), 0);
    }
}
