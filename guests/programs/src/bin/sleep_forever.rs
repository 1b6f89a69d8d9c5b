//! Sleeps in a host call for a day: the wall-clock deadline must still end it.
fn main() {
    std::thread::sleep(std::time::Duration::from_secs(86_400));
}
