//! Fixtures: three principals, a policy around a guest, an attested receipt key minted the way
//! the attestation service mints one.

use std::io::Read;

use covenant_policy::{Policy, Strategy};
use covenant_runtime::{Computation, Principal};
pub use covenant_test_support::{Service, read_all, sha256_hex, validate};

pub const A_CSV: &[u8] = b"1,2,3\n4\n";
pub const B_CSV: &[u8] = b"10,20\n";

pub fn alice() -> Principal {
    Principal::new("alice")
}
pub fn bob() -> Principal {
    Principal::new("bob")
}
pub fn carol() -> Principal {
    Principal::new("carol")
}
pub fn mallory() -> Principal {
    Principal::new("mallory")
}

/// The test policy: alice provides the program and `/input/a.csv` and starts runs, bob
/// provides `/input/b.csv`, carol reads `/output/result.txt` and stdout, alice reads stderr.
pub fn policy(service: &Service, program: &[u8], strategy: Strategy) -> Policy {
    covenant_test_support::sum_inputs_policy(&service.ca, program, strategy)
}

pub fn sum_inputs() -> Vec<u8> {
    covenant_guests::SUM_INPUTS.bytes()
}

/// A computation for `policy` with a fresh service.
pub fn computation_for(service: &Service, policy: &Policy) -> Computation {
    let valid = validate(policy);
    let signer = service.signer(&valid);
    Computation::new(valid, signer).unwrap()
}

/// The standard setup: the sum_inputs guest on `strategy`, after `edit`.
pub fn setup(strategy: Strategy, edit: impl FnOnce(&mut Policy)) -> (Service, Computation) {
    let service = Service::new();
    let mut p = policy(&service, &sum_inputs(), strategy);
    edit(&mut p);
    let c = computation_for(&service, &p);
    (service, c)
}

/// Provides program and both inputs.
pub fn provision(c: &mut Computation) {
    c.provide_program(&alice(), &sum_inputs()).unwrap();
    c.provide_input(&alice(), "/input/a.csv", A_CSV).unwrap();
    c.provide_input(&bob(), "/input/b.csv", B_CSV).unwrap();
}

/// Everything observable about a computation, to show that a refusal changed nothing: the
/// status each principal sees, stored bytes, receipts, and every output each reader can fetch.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    statuses: Vec<covenant_runtime::Status>,
    stored_bytes: u64,
    receipts: usize,
    outputs: Vec<Result<Vec<u8>, String>>,
}

pub fn snapshot(c: &Computation) -> Snapshot {
    let everyone = [alice(), bob(), carol()];
    let mut outputs = Vec::new();
    for who in &everyone {
        for out in ["/output/result.txt", "stdout", "stderr"] {
            outputs.push(
                c.fetch_output(who, out)
                    .map(read_all)
                    .map_err(|e| e.to_string()),
            );
        }
    }
    Snapshot {
        statuses: everyone.iter().map(|p| c.status(p).unwrap()).collect(),
        stored_bytes: c.stored_bytes().unwrap(),
        receipts: c.receipts(&alice()).unwrap().len(),
        outputs,
    }
}

/// Asserts that `op` is refused with rule `rule` and leaves `c` exactly as it was.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    c: &mut Computation,
    rule: &str,
    op: impl FnOnce(&mut Computation) -> Result<T, covenant_runtime::RuntimeError>,
) {
    let before = snapshot(c);
    let result = op(c);
    match &result {
        Err(e) => assert_eq!(
            e.refusal().map(|r| r.rule()),
            Some(rule),
            "expected refusal {rule}, got {e}"
        ),
        Ok(v) => panic!("expected refusal {rule}, got Ok({v:?})"),
    }
    assert_eq!(
        snapshot(c),
        before,
        "a refusal ({rule}) changed the computation"
    );
}

/// A reader that yields `good` and then fails, like a client that disconnects mid-upload.
pub struct FailingReader {
    pub good: Vec<u8>,
    pub pos: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos < self.good.len() {
            let n = buf.len().min(self.good.len() - self.pos);
            buf[..n].copy_from_slice(&self.good[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            ))
        }
    }
}
