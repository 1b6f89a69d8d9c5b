//! Moving average convergence/divergence of a private price series: reads one price per line
//! from `/input/prices.csv` (oldest first) and writes only the indicator at the last price to
//! `/output/macd.txt`: `macd=…`, `signal=…` and `histogram=…`, six decimal places, one per
//! line (the same on one line to stdout). MACD = EMA12 − EMA26 of the prices, signal = EMA9 of
//! MACD, histogram = MACD − signal; an N-period EMA uses α = 2/(N+1) and starts at the first
//! value of its series. At least 34 prices (26 + 9 − 1) are required. Blank lines are ignored;
//! a malformed, non-finite or negative price, or too short a series, is reported on stderr
//! with exit code 1. Used by `examples/macd`.
use std::io::Write as _;

/// 26 periods for the slow EMA plus 9 for the signal, sharing one point.
const MIN_PRICES: usize = 34;

/// An exponential moving average that starts at its first value.
struct Ema {
    alpha: f64,
    value: Option<f64>,
}

impl Ema {
    fn new(periods: u32) -> Self {
        Ema {
            alpha: 2.0 / (f64::from(periods) + 1.0),
            value: None,
        }
    }

    fn update(&mut self, x: f64) -> f64 {
        let next = match self.value {
            None => x,
            Some(previous) => previous + self.alpha * (x - previous),
        };
        self.value = Some(next);
        next
    }
}

fn read_prices(path: &str) -> Result<Vec<f64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut prices = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.parse::<f64>() {
            Ok(price) if price.is_finite() && price >= 0.0 => prices.push(price),
            _ => {
                return Err(format!(
                    "{path}: line {}: not a finite, non-negative price",
                    index + 1
                ));
            }
        }
    }
    Ok(prices)
}

fn run() -> Result<(f64, f64, f64), String> {
    let prices = read_prices("/input/prices.csv")?;
    if prices.len() < MIN_PRICES {
        return Err(format!(
            "MACD(12, 26, 9) needs at least {MIN_PRICES} prices; the series has {}",
            prices.len()
        ));
    }
    let (mut fast, mut slow, mut signal) = (Ema::new(12), Ema::new(26), Ema::new(9));
    let mut last = (0.0, 0.0);
    for &price in &prices {
        let macd = fast.update(price) - slow.update(price);
        last = (macd, signal.update(macd));
    }
    let (macd, signal) = last;
    let histogram = macd - signal;
    std::fs::write(
        "/output/macd.txt",
        format!("macd={macd:.6}\nsignal={signal:.6}\nhistogram={histogram:.6}\n"),
    )
    .map_err(|e| format!("/output/macd.txt: {e}"))?;
    Ok((macd, signal, histogram))
}

fn main() {
    match run() {
        Ok((macd, signal, histogram)) => {
            let _ = writeln!(
                std::io::stdout(),
                "macd={macd:.6} signal={signal:.6} histogram={histogram:.6}"
            );
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "macd: {message}");
            std::process::exit(1);
        }
    }
}
