//! Prints each argument on its own line, then each environment variable as `K=V`, sorted.
fn main() {
    for arg in std::env::args() {
        println!("arg {arg}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (key, value) in vars {
        println!("env {key}={value}");
    }
}
