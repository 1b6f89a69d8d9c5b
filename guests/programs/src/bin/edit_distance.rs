//! Levenshtein distance between two parties' strings: reads `/input/a.txt` and `/input/b.txt`
//! (UTF-8; one trailing line break is not part of the string) and writes only the number of
//! single-character insertions, deletions and substitutions that turn one into the other to
//! `/output/distance.txt` (and `edit distance: N` to stdout). Characters are Unicode scalar
//! values. Input that is not UTF-8, or a string longer than 20 000 characters, is reported on
//! stderr with exit code 1. Used by `examples/edit-distance`.
use std::io::Write as _;

/// Longest string accepted: the work is quadratic in the length.
const MAX_CHARS: usize = 20_000;

fn read_string(path: &str) -> Result<Vec<char>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_CHARS {
        return Err(format!(
            "{path}: a string is at most {MAX_CHARS} characters"
        ));
    }
    Ok(chars)
}

/// Wagner–Fischer with two rows.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current[j + 1] = substitute.min(delete).min(insert);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn run() -> Result<usize, String> {
    let a = read_string("/input/a.txt")?;
    let b = read_string("/input/b.txt")?;
    let distance = levenshtein(&a, &b);
    std::fs::write("/output/distance.txt", format!("{distance}\n"))
        .map_err(|e| format!("/output/distance.txt: {e}"))?;
    Ok(distance)
}

fn main() {
    match run() {
        Ok(distance) => {
            let _ = writeln!(std::io::stdout(), "edit distance: {distance}");
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "edit_distance: {message}");
            std::process::exit(1);
        }
    }
}
