//! Private intersection-sum, as ad-conversion measurement does it: reads the advertiser's
//! converted users (`/input/advertiser.txt`, one user id per line) and the publisher's ad
//! exposures with a value each (`/input/publisher.csv`, lines `user_id,value`, value an
//! unsigned integer such as cents spent), and writes only the number of publisher rows whose
//! user is in the advertiser's list and the sum of their values to `/output/result.txt`
//! (`count=N` and `sum=S`, one per line; `shared users: N, sum: S` on stdout). Blank lines are
//! ignored; an id appearing twice in the publisher's list, a malformed row or an overflowing
//! sum is reported on stderr with exit code 1. Sets are B-trees: std's hash sets seed
//! themselves from randomness, which the policy denies. Used by `examples/intersection-sum`.
use std::collections::BTreeSet;
use std::io::Write as _;

/// The longest user id accepted.
const MAX_ID_BYTES: usize = 256;

fn check_id(path: &str, number: usize, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{path}: line {number}: the user id is empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "{path}: line {number}: a user id is at most {MAX_ID_BYTES} bytes"
        ));
    }
    Ok(())
}

fn read_users(path: &str) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut users = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        check_id(path, index + 1, id)?;
        users.insert(id.to_owned());
    }
    Ok(users)
}

fn read_values(path: &str) -> Result<Vec<(String, u64)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((id, value)) = line.split_once(',') else {
            return Err(format!("{path}: line {number}: expected `user_id,value`"));
        };
        let id = id.trim();
        check_id(path, number, id)?;
        let value: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{path}: line {number}: the value is not an unsigned integer"))?;
        if !seen.insert(id.to_owned()) {
            return Err(format!("{path}: line {number}: user id listed twice"));
        }
        rows.push((id.to_owned(), value));
    }
    Ok(rows)
}

fn run() -> Result<(u64, u64), String> {
    let users = read_users("/input/advertiser.txt")?;
    let rows = read_values("/input/publisher.csv")?;
    let mut count: u64 = 0;
    let mut sum: u64 = 0;
    for (id, value) in &rows {
        if users.contains(id) {
            count += 1;
            sum = sum.checked_add(*value).ok_or("the sum overflows 64 bits")?;
        }
    }
    std::fs::write("/output/result.txt", format!("count={count}\nsum={sum}\n"))
        .map_err(|e| format!("/output/result.txt: {e}"))?;
    Ok((count, sum))
}

fn main() {
    match run() {
        Ok((count, sum)) => {
            let _ = writeln!(std::io::stdout(), "shared users: {count}, sum: {sum}");
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "intersection_sum: {message}");
            std::process::exit(1);
        }
    }
}
