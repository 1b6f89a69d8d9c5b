//! Ordinary least-squares regression over points pooled from two providers: reads `x,y` lines
//! from `/input/a.csv` and `/input/b.csv` and writes only the fitted line to
//! `/output/fit.txt` (`slope=…` and `intercept=…`, six decimal places, one per line; the same
//! on one line to stdout). The fit is computed from means: slope = Σ(x−x̄)(y−ȳ) / Σ(x−x̄)²,
//! intercept = ȳ − slope·x̄, summing in file order, A's points first. Blank lines are ignored;
//! a malformed or non-finite number, fewer than two points, or all x equal is reported on
//! stderr with exit code 1. Used by `examples/linear-regression`.
use std::io::Write as _;

fn read_points(path: &str, points: &mut Vec<(f64, f64)>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((x, y)) = line.split_once(',') else {
            return Err(format!("{path}: line {number}: expected `x,y`"));
        };
        let parse = |field: &str, name: &str| -> Result<f64, String> {
            match field.trim().parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(value),
                _ => Err(format!(
                    "{path}: line {number}: {name} is not a finite number"
                )),
            }
        };
        points.push((parse(x, "x")?, parse(y, "y")?));
    }
    Ok(())
}

fn fit(points: &[(f64, f64)]) -> Result<(f64, f64), String> {
    if points.len() < 2 {
        return Err(format!(
            "a line needs at least two points; the inputs hold {}",
            points.len()
        ));
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let mut sxx = 0.0;
    let mut sxy = 0.0;
    for &(x, y) in points {
        sxx += (x - mean_x) * (x - mean_x);
        sxy += (x - mean_x) * (y - mean_y);
    }
    if sxx == 0.0 {
        return Err("every x is the same: the slope is undefined".into());
    }
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    if !slope.is_finite() || !intercept.is_finite() {
        return Err("the fit is not finite (the values are too large)".into());
    }
    Ok((slope, intercept))
}

fn run() -> Result<(f64, f64), String> {
    let mut points = Vec::new();
    read_points("/input/a.csv", &mut points)?;
    read_points("/input/b.csv", &mut points)?;
    let (slope, intercept) = fit(&points)?;
    std::fs::write(
        "/output/fit.txt",
        format!("slope={slope:.6}\nintercept={intercept:.6}\n"),
    )
    .map_err(|e| format!("/output/fit.txt: {e}"))?;
    Ok((slope, intercept))
}

fn main() {
    match run() {
        Ok((slope, intercept)) => {
            let _ = writeln!(
                std::io::stdout(),
                "slope={slope:.6} intercept={intercept:.6}"
            );
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "linear_regression: {message}");
            std::process::exit(1);
        }
    }
}
