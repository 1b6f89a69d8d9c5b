//! Receipt verification: a genuine receipt verifies; a tampered one, one signed under another
//! CA, and one checked against another policy do not.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use covenant_policy::Strategy;
use covenant_runtime::{ReceiptError, verify_receipt};

use crate::support::*;

fn one_receipt() -> (Service, covenant_runtime::Computation, String) {
    let (service, mut c) = setup(Strategy::Interpreter, |_| {});
    provision(&mut c);
    let receipt = c.run(&alice()).unwrap().receipt;
    (service, c, receipt)
}

#[test]
fn a_genuine_receipt_verifies() {
    let (_s, c, receipt) = one_receipt();
    let verified = verify_receipt(&receipt, c.policy()).unwrap();
    assert_eq!(verified.claims.computation, "sum-study");
    assert_eq!(
        verified.runtime.policy_hash.0,
        *c.policy().hash().as_bytes()
    );
}

#[test]
fn a_tampered_payload_fails() {
    let (_s, c, receipt) = one_receipt();
    let parts: Vec<&str> = receipt.split('.').collect();
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let text = String::from_utf8(payload).unwrap();
    let forged = text.replace(
        "\"status\":\"exited\",\"value\":0",
        "\"status\":\"exited\",\"value\":7",
    );
    assert_ne!(forged, text, "the payload holds the outcome");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged),
        parts[2]
    );
    assert!(matches!(
        verify_receipt(&tampered, c.policy()),
        Err(ReceiptError::BadSignature)
    ));
}

#[test]
fn a_tampered_signature_fails() {
    let (_s, c, receipt) = one_receipt();
    let (rest, sig) = receipt.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    bytes[10] ^= 1;
    let tampered = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(bytes));
    assert!(matches!(
        verify_receipt(&tampered, c.policy()),
        Err(ReceiptError::BadSignature)
    ));
    assert!(matches!(
        verify_receipt("not.a-receipt", c.policy()),
        Err(ReceiptError::Malformed(_))
    ));
}

#[test]
fn a_chain_from_another_ca_fails() {
    // Same policy, but the runtime's key was certified by another service's CA.
    let (_s, c, _) = one_receipt();
    let rogue = Service::new();
    let mut c2 =
        covenant_runtime::Computation::new(c.policy().clone(), rogue.signer(c.policy())).unwrap();
    provision(&mut c2);
    let receipt = c2.run(&alice()).unwrap().receipt;
    match verify_receipt(&receipt, c.policy()) {
        Err(ReceiptError::Certificate(
            covenant_attest::AttestedCertificateError::NotIssuedByCa { .. },
        )) => {}
        other => panic!("expected NotIssuedByCa, got {other:?}"),
    }
}

#[test]
fn a_receipt_checked_against_another_policy_fails() {
    let (service, c, receipt) = one_receipt();
    // Another policy under the same CA and measurement: differs only in its timeout.
    let mut other = policy(&service, &sum_inputs(), Strategy::Interpreter);
    other.execution.timeout_ms += 1;
    let other = validate(&other);
    assert_ne!(other.hash(), c.policy().hash());
    match verify_receipt(&receipt, &other) {
        Err(ReceiptError::Certificate(
            covenant_attest::AttestedCertificateError::PolicyHashMismatch { .. },
        )) => {}
        other => panic!("expected PolicyHashMismatch, got {other:?}"),
    }
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let (service, c, _) = one_receipt();
    let signer = service.signer(c.policy());
    let chain = signer.chain().to_vec();
    let other_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    assert!(matches!(
        covenant_runtime::ReceiptSigner::new(&other_key.serialize_der(), chain),
        Err(ReceiptError::KeyCertificateMismatch)
    ));
}

#[test]
fn unverified_claims_read_what_verification_confirms() {
    let (_s, c, receipt) = one_receipt();
    let peeked = covenant_runtime::unverified_claims(&receipt).unwrap();
    assert_eq!(peeked, verify_receipt(&receipt, c.policy()).unwrap().claims);
    assert!(matches!(
        covenant_runtime::unverified_claims("garbage"),
        Err(ReceiptError::Malformed(_))
    ));
}
