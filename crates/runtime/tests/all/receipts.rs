//! Receipt verification: a genuine receipt verifies and names the instance that signed it; a
//! tampered one, one signed under another CA or by another instance than it names, and one
//! checked against another policy do not.

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
fn a_receipt_names_the_instance_that_signed_it_and_no_other() {
    let (service, c, receipt) = one_receipt();
    let verified = verify_receipt(&receipt, c.policy()).unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(receipt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(header["x5c"][0].as_str().unwrap())
        .unwrap();
    let fingerprint = covenant_attest::instance_fingerprint(&leaf).unwrap();
    assert_eq!(verified.claims.instance, fingerprint.to_hex());
    // Another instance of the same computation (same CA, measurement and policy: a fork)
    // re-signs the first one's claims: its receipt would pass for the first one's run but for
    // the instance it names.
    let fork = service.signer(c.policy());
    assert_ne!(fork.instance(), fingerprint);
    let forged = fork.sign(&verified.claims).unwrap();
    match verify_receipt(&forged, c.policy()) {
        Err(ReceiptError::ClaimMismatch {
            what: "instance",
            expected,
            found,
        }) => {
            assert_eq!(
                (expected, found),
                (fork.instance().to_hex(), fingerprint.to_hex())
            );
        }
        other => panic!("expected an instance mismatch, got {other:?}"),
    }
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

/// The receipt's payload as text.
fn payload_text(receipt: &str) -> String {
    let payload = receipt.split('.').nth(1).unwrap();
    String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn a_principal_who_may_not_read_an_output_cannot_test_guesses_against_the_receipt() {
    // Bob provides b.csv and reads nothing; the result is a small number he could guess.
    let (_s, c, receipt) = one_receipt();
    let text = payload_text(&receipt);
    let claims = verify_receipt(&receipt, c.policy()).unwrap().claims;
    // Neither the plain hash nor the size of any output or unpinned input is in the receipt:
    // hashing every guess from 0 to 9999 matches nothing in it.
    for guess in 0..10_000 {
        for form in [format!("{guess}\n"), format!("sum={guess}\n")] {
            let digest = sha256_hex(form.as_bytes());
            assert!(
                !text.contains(&digest),
                "the receipt discloses the hash of {form:?}"
            );
        }
    }
    for input in [A_CSV, B_CSV] {
        assert!(
            !text.contains(&sha256_hex(input)),
            "an input's hash is disclosed"
        );
    }
    assert!(
        claims
            .inputs
            .iter()
            .all(|i| i.sha256.is_none() && i.bytes.is_none())
    );
    // Without the salt, the right answer does not open the commitment either.
    let zero_salt = "00".repeat(32);
    assert!(
        covenant_runtime::check_opening(&claims, "/output/result.txt", &zero_salt, &b"40\n"[..])
            .is_err()
    );
    // Carol, a reader, gets the salt with the output, and it opens the commitment.
    let fetched = c.fetch_output(&carol(), "/output/result.txt").unwrap();
    let salt = fetched.salt_hex();
    assert_eq!(read_all(fetched), b"40\n");
    covenant_runtime::check_opening(&claims, "/output/result.txt", &salt, &b"40\n"[..]).unwrap();
}

#[test]
fn a_pinned_input_is_named_by_its_hash_and_each_run_gets_fresh_output_salts() {
    let (_s, mut c) = setup(Strategy::Interpreter, |p| {
        p.inputs[0].sha256 = Some(sha256_hex(A_CSV));
        p.runs.max = 2;
    });
    provision(&mut c);
    let first = c.run(&alice()).unwrap();
    let salt_1 = c.fetch_output(&carol(), "stdout").unwrap().salt_hex();
    let second = c.run(&alice()).unwrap();
    let salt_2 = c.fetch_output(&carol(), "stdout").unwrap().salt_hex();
    assert_ne!(salt_1, salt_2);
    let claims_1 = verify_receipt(&first.receipt, c.policy()).unwrap().claims;
    let claims_2 = verify_receipt(&second.receipt, c.policy()).unwrap().claims;
    // The pinned input: its hash and size, as the policy already tells everyone.
    assert_eq!(claims_1.inputs[0].sha256, Some(sha256_hex(A_CSV)));
    assert_eq!(claims_1.inputs[0].bytes, Some(A_CSV.len() as u64));
    assert_eq!(claims_1.inputs[1].sha256, None);
    // The same output bytes, committed to differently in each run; a salt opens its own run's
    // commitment only.
    assert_ne!(
        claims_1.outputs[1].commitment,
        claims_2.outputs[1].commitment
    );
    covenant_runtime::check_opening(&claims_2, "stdout", &salt_2, &b"sum=40\n"[..]).unwrap();
    assert!(
        covenant_runtime::check_opening(&claims_2, "stdout", &salt_1, &b"sum=40\n"[..]).is_err()
    );
}

#[test]
fn a_receipt_whose_outputs_or_pinned_hashes_disagree_with_the_policy_fails() {
    // Signed by the genuine key, but the claims disagree with the policy: verify_receipt
    // compares every declared path and pinned hash, not only the signature.
    let (service, c, receipt) = one_receipt();
    let mut claims = verify_receipt(&receipt, c.policy()).unwrap().claims;
    claims.outputs.pop();
    let signer = service.signer(c.policy());
    // Another instance's key: it names itself, so that only the paths disagree.
    claims.instance = signer.instance().to_hex();
    let forged = signer.sign(&claims).unwrap();
    assert!(matches!(
        verify_receipt(&forged, c.policy()),
        Err(ReceiptError::ClaimMismatch {
            what: "outputs",
            ..
        })
    ));
    let mut claims = verify_receipt(&receipt, c.policy()).unwrap().claims;
    claims.instance = signer.instance().to_hex();
    claims.inputs[0].sha256 = Some(sha256_hex(b"other"));
    let forged = signer.sign(&claims).unwrap();
    assert!(matches!(
        verify_receipt(&forged, c.policy()),
        Err(ReceiptError::ClaimMismatch {
            what: "input hash",
            ..
        })
    ));
}

#[test]
fn a_provider_can_get_its_own_inputs_salt_again_and_no_one_else_can() {
    let (_s, c, receipt) = one_receipt();
    let claims = verify_receipt(&receipt, c.policy()).unwrap().claims;
    let salt_of =
        |who: &covenant_runtime::Principal, i: usize| c.status(who).unwrap().inputs[i].salt.clone();
    // Bob's status has b.csv's salt (it opens the receipt's commitment), not a.csv's.
    let bobs = salt_of(&bob(), 1).expect("the provider's own salt");
    covenant_runtime::check_opening(&claims, "/input/b.csv", &bobs, B_CSV).unwrap();
    assert_eq!(salt_of(&bob(), 0), None);
    assert!(salt_of(&alice(), 0).is_some());
    assert_eq!((salt_of(&carol(), 0), salt_of(&carol(), 1)), (None, None));
}
