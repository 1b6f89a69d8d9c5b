//! Recurses without end using only scalar locals, so it exhausts the Wasm call stack (not the
//! shadow stack Rust keeps in linear memory): must be stopped by the stack limit.
#[inline(never)]
#[allow(unconditional_recursion, reason = "the point of this guest")]
fn depth(n: u64) -> u64 {
    // Two calls, so the compiler cannot turn the recursion into a loop.
    let a = depth(std::hint::black_box(n + 1));
    let b = depth(std::hint::black_box(n + 2));
    a ^ b ^ n
}

fn main() {
    println!("{}", depth(0));
}
