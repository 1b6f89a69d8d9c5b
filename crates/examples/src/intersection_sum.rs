//! An advertiser's converted users and a publisher's (user, value) exposures; the answer is
//! how many exposures belong to converted users and the sum of their values.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::rng::Rng;
use crate::{Example, InputFile, lines};

/// The advertiser's user ids.
pub const INPUT_ADVERTISER: &str = "/input/advertiser.txt";
/// The publisher's `user_id,value` rows.
pub const INPUT_PUBLISHER: &str = "/input/publisher.csv";
/// `count=N` and `sum=S`.
pub const OUTPUT: &str = "/output/result.txt";

/// About 1000 advertiser ids and 1500 publisher rows with distinct ids, about 400 of which are
/// also the advertiser's; values 1–10000.
pub fn example(seed: u64) -> Example {
    let mut rng = Rng::new(seed);
    let advertiser: Vec<String> = (0..1000)
        .map(|_| format!("u{:08x}", rng.next_u64() as u32))
        .collect();
    let mut publisher_ids: BTreeSet<String> = BTreeSet::new();
    while publisher_ids.len() < 1100 {
        publisher_ids.insert(format!("u{:08x}", rng.next_u64() as u32));
    }
    while publisher_ids.len() < 1500 {
        publisher_ids.insert(advertiser[rng.below(advertiser.len() as u64) as usize].clone());
    }
    let mut rows: Vec<(String, u64)> = publisher_ids
        .into_iter()
        .map(|id| (id, 1 + rng.below(10_000)))
        .collect();
    rng.shuffle(&mut rows);
    let mut users = String::new();
    for id in &advertiser {
        let _ = writeln!(users, "{id}");
    }
    let mut values = String::new();
    for (id, value) in &rows {
        let _ = writeln!(values, "{id},{value}");
    }
    let inputs = vec![
        InputFile {
            path: INPUT_ADVERTISER,
            bytes: users.into_bytes(),
        },
        InputFile {
            path: INPUT_PUBLISHER,
            bytes: values.into_bytes(),
        },
    ];
    let (count, sum) = intersection_sum(&inputs[0].bytes, &inputs[1].bytes);
    Example {
        name: "intersection-sum",
        guest: "intersection_sum",
        inputs,
        output: OUTPUT,
        expected: format!("count={count}\nsum={sum}\n"),
    }
}

/// (rows of `publisher` whose id is in `advertiser`, sum of their values). Rows that do not
/// parse are skipped: generated data has none.
pub fn intersection_sum(advertiser: &[u8], publisher: &[u8]) -> (u64, u64) {
    let users: BTreeSet<&str> = lines(advertiser).collect();
    lines(publisher)
        .filter_map(|row| row.split_once(','))
        .filter(|(id, _)| users.contains(id.trim()))
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .fold((0, 0), |(count, sum), value| (count + 1, sum + value))
}
