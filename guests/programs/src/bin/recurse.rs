//! Recurses without end using only scalar values, so it exhausts the Wasm call stack and not
//! the shadow stack Rust keeps in linear memory: must be stopped by the stack limit.
//! (`std::hint::black_box` would put its argument in linear memory on every call, so the
//! shadow stack could run out first and the outcome would be `out-of-bounds`.)
#[inline(never)]
#[allow(unconditional_recursion, reason = "the point of this guest")]
fn depth(n: u64) -> u64 {
    // Two calls, so the compiler cannot turn the recursion into a loop.
    let a = depth(n.wrapping_add(1));
    let b = depth(n.wrapping_mul(3));
    a ^ b ^ n
}

fn main() {
    let start = std::env::args().count() as u64;
    println!("{}", depth(start));
}
