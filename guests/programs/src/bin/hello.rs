//! Prints a greeting: the smallest useful guest.
fn main() {
    println!("hello from a Covenant guest");
}
