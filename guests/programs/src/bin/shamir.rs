//! Shamir secret sharing, the combining step: reads three shares `x,y` (decimal integers) from
//! `/input/share-1.txt`, `/input/share-2.txt` and `/input/share-3.txt` and writes the secret,
//! the value at 0 of the degree-2 polynomial through them over the prime field of
//! p = 2^61 − 1 (Lagrange interpolation), to `/output/secret.txt` (and a line saying it was
//! reconstructed to stdout, without the secret). A malformed share, a coordinate not below p,
//! x = 0, or two shares with the same x is reported on stderr with exit code 1. Used by
//! `examples/shamir`.
use std::io::Write as _;

/// The Mersenne prime 2^61 − 1.
const P: u64 = (1 << 61) - 1;

const SHARES: [&str; 3] = [
    "/input/share-1.txt",
    "/input/share-2.txt",
    "/input/share-3.txt",
];

fn mul(a: u64, b: u64) -> u64 {
    // Both below P < 2^61, so the product fits in u128 and the remainder in u64.
    (u128::from(a) * u128::from(b) % u128::from(P)) as u64
}

fn add(a: u64, b: u64) -> u64 {
    (a + b) % P
}

fn sub(a: u64, b: u64) -> u64 {
    (a + P - b) % P
}

fn pow(mut base: u64, mut exponent: u64) -> u64 {
    let mut result = 1;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exponent >>= 1;
    }
    result
}

/// The inverse of a non-zero element (Fermat: a^(p−2)).
fn inverse(a: u64) -> u64 {
    pow(a, P - 2)
}

fn read_share(path: &str) -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let Some((x, y)) = text.trim().split_once(',') else {
        return Err(format!("{path}: expected one share `x,y`"));
    };
    let parse = |field: &str, name: &str| -> Result<u64, String> {
        match field.trim().parse::<u64>() {
            Ok(value) if value < P => Ok(value),
            _ => Err(format!(
                "{path}: {name} is not an integer from 0 to 2^61 - 2"
            )),
        }
    };
    let share = (parse(x, "x")?, parse(y, "y")?);
    if share.0 == 0 {
        return Err(format!(
            "{path}: x = 0 is the secret's own position, not a share"
        ));
    }
    Ok(share)
}

/// The value at 0 of the polynomial through `shares` (distinct, non-zero x).
fn interpolate_at_zero(shares: &[(u64, u64)]) -> u64 {
    let mut secret = 0;
    for (i, &(xi, yi)) in shares.iter().enumerate() {
        let mut numerator = 1;
        let mut denominator = 1;
        for (j, &(xj, _)) in shares.iter().enumerate() {
            if i != j {
                numerator = mul(numerator, xj);
                denominator = mul(denominator, sub(xj, xi));
            }
        }
        secret = add(secret, mul(yi, mul(numerator, inverse(denominator))));
    }
    secret
}

fn run() -> Result<u64, String> {
    let mut shares = Vec::new();
    for path in SHARES {
        shares.push(read_share(path)?);
    }
    for i in 0..shares.len() {
        for j in i + 1..shares.len() {
            if shares[i].0 == shares[j].0 {
                return Err(format!(
                    "{} and {} hold shares at the same x",
                    SHARES[i], SHARES[j]
                ));
            }
        }
    }
    let secret = interpolate_at_zero(&shares);
    std::fs::write("/output/secret.txt", format!("{secret}\n"))
        .map_err(|e| format!("/output/secret.txt: {e}"))?;
    Ok(secret)
}

fn main() {
    match run() {
        Ok(_) => {
            let _ = writeln!(
                std::io::stdout(),
                "secret reconstructed from 3 shares into /output/secret.txt"
            );
        }
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "shamir: {message}");
            std::process::exit(1);
        }
    }
}
