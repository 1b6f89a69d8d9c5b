//! The report data that binds hardware evidence to one attestation.
//!
//! Software evidence binds the nonce, TLS key, policy and computation by signing them as JSON
//! claims ([`crate::EvidenceClaims`]). Hardware evidence has one fixed slot for data the runtime
//! chooses (Nitro `user_data`, SEV-SNP and TDX `report_data`, SGX `REPORTDATA`: 64 bytes), so the
//! runtime puts there one hash over the same four values, and the verifier recomputes it from
//! the values it expects and requires equality.
//!
//! ```text
//! report_data = SHA-512( "covenant-report-data/1" || 0x00
//!                        || nonce (32 bytes)
//!                        || tls_public_key_sha256 (32 bytes)
//!                        || policy_hash (32 bytes)
//!                        || length of computation_id in bytes (8 bytes, big-endian)
//!                        || computation_id (UTF-8) )
//! ```
//!
//! Every field has a fixed length except the last, which is length-prefixed, so two different
//! inputs never encode to the same bytes; the domain tag keeps the hash from meaning anything in
//! another protocol.

use sha2::{Digest as _, Sha512};

use crate::{Digest, Nonce};

/// Length of [`report_data`] in bytes: the size of the hardware's report data slot.
pub const REPORT_DATA_LEN: usize = 64;

/// Domain tag at the start of the hashed encoding (followed by one zero byte).
pub const REPORT_DATA_DOMAIN: &[u8] = b"covenant-report-data/1";

/// The report data a runtime puts in its hardware evidence, and which a verifier requires:
/// SHA-512 over the domain-separated encoding in the [module documentation](self).
pub fn report_data(
    nonce: &Nonce,
    tls_public_key_sha256: &Digest,
    policy_hash: &Digest,
    computation_id: &str,
) -> [u8; REPORT_DATA_LEN] {
    let mut hash = Sha512::new();
    hash.update(REPORT_DATA_DOMAIN);
    hash.update([0u8]);
    hash.update(nonce.as_bytes());
    hash.update(tls_public_key_sha256.as_bytes());
    hash.update(policy_hash.as_bytes());
    hash.update((computation_id.len() as u64).to_be_bytes());
    hash.update(computation_id.as_bytes());
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_report_data() {
        let base = report_data(&Nonce([1; 32]), &Digest([2; 32]), &Digest([3; 32]), "c");
        assert_ne!(
            base,
            report_data(&Nonce([9; 32]), &Digest([2; 32]), &Digest([3; 32]), "c")
        );
        assert_ne!(
            base,
            report_data(&Nonce([1; 32]), &Digest([9; 32]), &Digest([3; 32]), "c")
        );
        assert_ne!(
            base,
            report_data(&Nonce([1; 32]), &Digest([2; 32]), &Digest([9; 32]), "c")
        );
        assert_ne!(
            base,
            report_data(&Nonce([1; 32]), &Digest([2; 32]), &Digest([3; 32]), "d")
        );
        // Pinned: the encoding is a protocol; changing it must be deliberate.
        let mut expected = Sha512::new();
        expected.update(b"covenant-report-data/1\0");
        expected.update([1; 32]);
        expected.update([2; 32]);
        expected.update([3; 32]);
        expected.update([0, 0, 0, 0, 0, 0, 0, 1]);
        expected.update(b"c");
        assert_eq!(base, <[u8; 64]>::from(expected.finalize()));
    }
}
