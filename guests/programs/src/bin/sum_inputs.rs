//! Sums the integers in `/input/a.csv` and `/input/b.csv` (comma- or newline-separated) and
//! writes the total to `/output/result.txt` and to stdout. A missing or unreadable input, or a
//! field that is not an integer, is reported on stderr with exit code 1. Used by the runtime's
//! three-party tests.
use std::io::Write as _;

fn sum_file(path: &str) -> Result<i64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut total: i64 = 0;
    for field in text.split([',', '\n']).map(str::trim).filter(|f| !f.is_empty()) {
        let value: i64 = field
            .parse()
            .map_err(|_| format!("{path}: {field:?} is not an integer"))?;
        total = total
            .checked_add(value)
            .ok_or_else(|| format!("{path}: the sum overflows"))?;
    }
    Ok(total)
}

fn run() -> Result<i64, String> {
    let a = sum_file("/input/a.csv")?;
    let b = sum_file("/input/b.csv")?;
    let total = a.checked_add(b).ok_or("the sum overflows")?;
    std::fs::write("/output/result.txt", format!("{total}\n"))
        .map_err(|e| format!("/output/result.txt: {e}"))?;
    Ok(total)
}

fn main() {
    match run() {
        Ok(total) => {
            let _ = writeln!(std::io::stdout(), "sum={total}");
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "sum_inputs: {message}");
            std::process::exit(1);
        }
    }
}
