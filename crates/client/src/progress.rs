//! The transfer progress hook.

/// Told about a transfer's progress, so that a user interface can draw it. The library
/// itself prints nothing. Every method does nothing by default.
pub trait Progress: Send {
    /// The transfer starts; `total` is its size in bytes when known (an upload from a file,
    /// or bytes), `None` otherwise (downloads are streamed without a length).
    fn started(&mut self, total: Option<u64>) {
        let _ = total;
    }

    /// `n` more bytes went out (upload: handed to the connection) or came in (download:
    /// written to the writer).
    fn advanced(&mut self, n: u64) {
        let _ = n;
    }

    /// The transfer is over, successfully or not.
    fn finished(&mut self) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
