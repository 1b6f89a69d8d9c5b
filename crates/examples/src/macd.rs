//! A private price series; the answer is MACD(12, 26, 9) at its last point.

use std::fmt::Write as _;

use crate::rng::Rng;
use crate::{Example, InputFile, lines};

/// The price series, oldest first.
pub const INPUT: &str = "/input/prices.csv";
/// `macd=…`, `signal=…`, `histogram=…`.
pub const OUTPUT: &str = "/output/macd.txt";

/// 250 daily closing prices: a random walk from 100.00 with steps in [−2, 2), two decimals,
/// never below 1.00.
pub fn example(seed: u64) -> Example {
    let mut rng = Rng::new(seed);
    let mut price: f64 = 100.0;
    let mut text = String::new();
    for _ in 0..250 {
        let _ = writeln!(text, "{price:.2}");
        price = (price + rng.unit() * 4.0 - 2.0).max(1.0);
    }
    let inputs = vec![InputFile {
        path: INPUT,
        bytes: text.into_bytes(),
    }];
    let (macd, signal, histogram) = macd(&inputs[0].bytes);
    Example {
        name: "macd",
        guest: "macd",
        inputs,
        output: OUTPUT,
        expected: format!("macd={macd:.6}\nsignal={signal:.6}\nhistogram={histogram:.6}\n"),
    }
}

/// The whole exponential moving average of `series` over `periods`: α = 2/(periods+1),
/// starting at the series' first value.
pub fn ema(series: &[f64], periods: u32) -> Vec<f64> {
    let alpha = 2.0 / (f64::from(periods) + 1.0);
    let mut out: Vec<f64> = Vec::with_capacity(series.len());
    for &x in series {
        let next = match out.last() {
            None => x,
            Some(&previous) => previous + alpha * (x - previous),
        };
        out.push(next);
    }
    out
}

/// (MACD, signal, histogram) at the last price of `prices` (one per line): MACD = EMA12 −
/// EMA26, signal = EMA9 of MACD, histogram = MACD − signal. NaN for an empty series.
pub fn macd(prices: &[u8]) -> (f64, f64, f64) {
    let prices: Vec<f64> = lines(prices).filter_map(|l| l.parse().ok()).collect();
    let fast = ema(&prices, 12);
    let slow = ema(&prices, 26);
    let line: Vec<f64> = fast.iter().zip(&slow).map(|(f, s)| f - s).collect();
    let signal = ema(&line, 9);
    match (line.last(), signal.last()) {
        (Some(&m), Some(&s)) => (m, s, m - s),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}
