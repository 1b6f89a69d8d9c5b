//! The guest programs of `guests/`, built for wasm32-wasip1 by this crate's build script.
//!
//! ```no_run
//! let wasm = covenant_guests::HELLO.bytes();
//! ```
#![forbid(unsafe_code)]

/// A built guest program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guest {
    /// Its name: the binary's name in `guests/` (`hello`, `covenant_kernel`, ...).
    pub name: &'static str,
    /// Where the build left its `.wasm`.
    pub path: &'static str,
}

impl Guest {
    /// The module's bytes.
    ///
    /// # Panics
    /// If the file the build script wrote has gone: a broken build, not a runtime condition.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(self.path)
            .unwrap_or_else(|e| panic!("read guest {} at {}: {e}", self.name, self.path))
    }

    /// The guest with this name.
    pub fn named(name: &str) -> Option<Guest> {
        ALL.iter().copied().find(|g| g.name == name)
    }
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
