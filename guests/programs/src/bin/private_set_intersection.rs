//! Private set intersection (cardinality): reads two lists of patient ids, one per line, from
//! `/input/hospital-a.txt` and `/input/hospital-b.txt`, and writes only the number of distinct
//! ids present in both to `/output/shared.txt` (and `shared patients: N` to stdout). Blank
//! lines and surrounding whitespace are ignored; an id appearing twice in one list counts once.
//! A missing input, or one that is not UTF-8, is reported on stderr with exit code 1. Sets are
//! B-trees, not hash sets: std's hash sets seed themselves from randomness, which the policy
//! denies. Used by `examples/private-set-intersection`.
use std::collections::BTreeSet;
use std::io::Write as _;

/// The longest id accepted: a patient id, not a document.
const MAX_ID_BYTES: usize = 256;

fn read_ids(path: &str) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut ids = BTreeSet::new();
    for (number, line) in text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        if id.len() > MAX_ID_BYTES {
            return Err(format!(
                "{path}: line {}: an id is at most {MAX_ID_BYTES} bytes",
                number + 1
            ));
        }
        ids.insert(id.to_owned());
    }
    Ok(ids)
}

fn run() -> Result<usize, String> {
    let a = read_ids("/input/hospital-a.txt")?;
    let b = read_ids("/input/hospital-b.txt")?;
    let (small, large) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let shared = small.iter().filter(|id| large.contains(*id)).count();
    std::fs::write("/output/shared.txt", format!("{shared}\n"))
        .map_err(|e| format!("/output/shared.txt: {e}"))?;
    Ok(shared)
}

fn main() {
    match run() {
        Ok(shared) => {
            let _ = writeln!(std::io::stdout(), "shared patients: {shared}");
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "private_set_intersection: {message}");
            std::process::exit(1);
        }
    }
}
