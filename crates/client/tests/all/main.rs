//! Integration tests of covenant-client: a real `ApiServer` on a loopback listener, driven by
//! the client over real TLS. One binary, one module per concern.
// Test fixtures outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connect;
mod flow;
mod hardware;
mod instances;
mod limits;
mod support;
mod transfer;
