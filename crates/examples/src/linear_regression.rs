//! Points `(x, y)` from two providers, pooled; the answer is the least-squares line.

use std::fmt::Write as _;

use crate::rng::Rng;
use crate::{Example, InputFile, lines};

/// Provider A's points.
pub const INPUT_A: &str = "/input/a.csv";
/// Provider B's points.
pub const INPUT_B: &str = "/input/b.csv";
/// `slope=…` and `intercept=…`.
pub const OUTPUT: &str = "/output/fit.txt";

/// The line the generated points scatter around: (slope, intercept). Slope in [−5, 5] and
/// intercept in [−100, 100], both with two decimals.
pub fn planted(seed: u64) -> (f64, f64) {
    let mut rng = Rng::new(seed);
    let slope = (rng.below(1001) as f64 - 500.0) / 100.0;
    let intercept = (rng.below(20_001) as f64 - 10_000.0) / 100.0;
    (slope, intercept)
}

/// 200 points for A and 150 for B, x in [0, 100), y on the [`planted`] line plus noise in
/// [−1, 1), both written with three decimals.
pub fn example(seed: u64) -> Example {
    let (slope, intercept) = planted(seed);
    let mut rng = Rng::new(seed ^ 0xF17);
    let mut points = |n: usize| {
        let mut text = String::new();
        for _ in 0..n {
            let x = rng.unit() * 100.0;
            let y = slope * x + intercept + (rng.unit() * 2.0 - 1.0);
            let _ = writeln!(text, "{x:.3},{y:.3}");
        }
        text.into_bytes()
    };
    let inputs = vec![
        InputFile {
            path: INPUT_A,
            bytes: points(200),
        },
        InputFile {
            path: INPUT_B,
            bytes: points(150),
        },
    ];
    let (fit_slope, fit_intercept) = fit(&[&inputs[0].bytes, &inputs[1].bytes]);
    Example {
        name: "linear-regression",
        guest: "linear_regression",
        inputs,
        output: OUTPUT,
        expected: format!("slope={fit_slope:.6}\nintercept={fit_intercept:.6}\n"),
    }
}

/// The least-squares (slope, intercept) of every `x,y` line of `files`, in order:
/// slope = Σ(x−x̄)(y−ȳ) / Σ(x−x̄)², intercept = ȳ − slope·x̄. Lines that do not parse are
/// skipped: generated data has none.
pub fn fit(files: &[&[u8]]) -> (f64, f64) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for file in files {
        for line in lines(file) {
            if let Some((x, y)) = line.split_once(',')
                && let (Ok(x), Ok(y)) = (x.trim().parse::<f64>(), y.trim().parse::<f64>())
            {
                xs.push(x);
                ys.push(y);
            }
        }
    }
    let n = xs.len() as f64;
    let mean = |values: &[f64]| values.iter().sum::<f64>() / n;
    let (mean_x, mean_y) = (mean(&xs), mean(&ys));
    let mut sxx = 0.0;
    let mut sxy = 0.0;
    for (x, y) in xs.iter().zip(&ys) {
        sxx += (x - mean_x) * (x - mean_x);
        sxy += (x - mean_x) * (y - mean_y);
    }
    let slope = sxy / sxx;
    (slope, mean_y - slope * mean_x)
}
