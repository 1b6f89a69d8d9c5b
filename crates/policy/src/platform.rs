//! The platforms a runtime can run on, and what a well-formed measurement looks like on each.

use std::fmt;

/// A platform whose runtime measurements a policy can list under `attestation.measurements`.
///
/// Only [`Platform::Software`] can be attested on a machine without special hardware; the
/// others are here so that a policy can already name them and have their values checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Platform {
    /// The software platform: the measurement is SHA-256 of the `covenant` executable
    /// (`covenant measurement`). It trusts the host operating system.
    Software,
    /// Intel SGX: MRENCLAVE, 32 bytes.
    Sgx,
    /// AMD SEV-SNP: the launch measurement, 48 bytes (SHA-384).
    SevSnp,
    /// Intel TDX: SHA-384 over MRTD, the host-set configuration registers and RTMR0-3, 48 bytes
    /// (`covenant_attest::dcap::tdx_measurement`).
    Tdx,
    /// AWS Nitro Enclaves: PCR0, 48 bytes (SHA-384 of the enclave image).
    Nitro,
    /// Arm TrustZone: SHA-256 of the trusted application, 32 bytes.
    TrustZone,
    /// seL4: SHA-256 of the system image, 32 bytes.
    Sel4,
}

impl Platform {
    /// Every platform, in the order documentation lists them.
    pub const ALL: [Platform; 7] = [
        Platform::Software,
        Platform::Sgx,
        Platform::SevSnp,
        Platform::Tdx,
        Platform::Nitro,
        Platform::TrustZone,
        Platform::Sel4,
    ];

    /// The name a policy uses: `software`, `sgx`, `sev-snp`, `tdx`, `nitro`, `trustzone`, `sel4`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Platform::Software => "software",
            Platform::Sgx => "sgx",
            Platform::SevSnp => "sev-snp",
            Platform::Tdx => "tdx",
            Platform::Nitro => "nitro",
            Platform::TrustZone => "trustzone",
            Platform::Sel4 => "sel4",
        }
    }

    /// The platform a policy name stands for, if any (exact, lowercase match).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Length of one measurement on this platform, in bytes (hex text is twice as long).
    #[must_use]
    pub fn measurement_len(self) -> usize {
        match self {
            Platform::Software | Platform::Sgx | Platform::TrustZone | Platform::Sel4 => 32,
            Platform::SevSnp | Platform::Tdx | Platform::Nitro => 48,
        }
    }

    /// What a measurement on this platform is, for messages: e.g. `an SGX MRENCLAVE (32 bytes)`.
    #[must_use]
    pub fn measurement_kind(self) -> &'static str {
        match self {
            Platform::Software => "a SHA-256 of the covenant executable (32 bytes)",
            Platform::Sgx => "an SGX MRENCLAVE (32 bytes)",
            Platform::SevSnp => "an SEV-SNP launch measurement (48 bytes)",
            Platform::Tdx => "a TDX measurement (48 bytes)",
            Platform::Nitro => "a Nitro PCR0 (48 bytes)",
            Platform::TrustZone => "a SHA-256 of the trusted application (32 bytes)",
            Platform::Sel4 => "a SHA-256 of the seL4 system image (32 bytes)",
        }
    }

    /// The names of all platforms, comma-separated, for messages.
    #[must_use]
    pub fn all_names() -> String {
        Platform::ALL.map(Platform::name).join(", ")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for platform in Platform::ALL {
            assert_eq!(Platform::from_name(platform.name()), Some(platform));
        }
        assert_eq!(Platform::from_name("SGX"), None);
        assert_eq!(Platform::from_name("sev"), None);
        assert_eq!(
            Platform::all_names(),
            "software, sgx, sev-snp, tdx, nitro, trustzone, sel4"
        );
    }

    #[test]
    fn measurement_lengths_match_the_hardware() {
        assert_eq!(Platform::Sgx.measurement_len(), 32);
        assert_eq!(Platform::SevSnp.measurement_len(), 48);
        assert_eq!(Platform::Tdx.measurement_len(), 48);
        assert_eq!(Platform::Nitro.measurement_len(), 48);
        assert_eq!(Platform::Software.measurement_len(), 32);
    }
}
