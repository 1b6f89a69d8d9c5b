//! The roots hardware evidence is checked against.
//!
//! Every hardware verifier in this crate checks a chain that ends in a root compiled into the
//! binary ([`TrustAnchors::pinned`]): the AMD ARKs, ASKs and ASVK (`roots/amd-*.pem`), the Intel
//! SGX Root CA (`roots/intel-sgx-root-ca.der`) and the AWS Nitro root (`roots/aws-nitro-root.pem`).
//! A root or intermediate that arrives with the evidence is never trusted.
//!
//! Tests need evidence that carries *our* report data, which genuine evidence cannot, so they
//! make synthetic evidence in each platform's exact format under roots of their own, and run
//! the production verifiers unchanged with those roots: `TrustAnchors::insecure_for_tests`.
//! That constructor exists only in this crate's unit tests and when the `insecure-test-roots`
//! feature is on, which only the workspace's `[dev-dependencies]` turn on; `.ci/run` checks that
//! no normal (release) build of the `covenant` binary has it.

use std::borrow::Cow;

use crate::sev_snp::AmdProduct;

/// The AMD SEV-SNP roots of one product line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmdAnchor {
    /// The product line.
    pub product: AmdProduct,
    /// The AMD Root Key certificate (self-signed, RSA-4096), PEM.
    pub ark_pem: Cow<'static, [u8]>,
    /// The AMD SEV Key certificate (certifies VCEKs), PEM.
    pub ask_pem: Cow<'static, [u8]>,
    /// The AMD SEV VLEK Key certificate (certifies VLEKs), PEM, where one is pinned.
    pub asvk_pem: Option<Cow<'static, [u8]>>,
}

/// The roots the hardware verifiers trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchors {
    /// AMD SEV-SNP, per product line.
    pub(crate) amd: Vec<AmdAnchor>,
    /// Intel SGX Root CA (DCAP: SGX and TDX), DER.
    pub(crate) intel_sgx_root_der: Cow<'static, [u8]>,
    /// AWS Nitro Enclaves root, PEM.
    pub(crate) aws_nitro_root_pem: Cow<'static, [u8]>,
    /// False only for [`TrustAnchors::insecure_for_tests`].
    pinned: bool,
}

const ARK_MILAN: &[u8] = include_bytes!("../roots/amd-ark-milan.pem");
const ASK_MILAN: &[u8] = include_bytes!("../roots/amd-ask-milan.pem");
const ARK_GENOA: &[u8] = include_bytes!("../roots/amd-ark-genoa.pem");
const ASK_GENOA: &[u8] = include_bytes!("../roots/amd-ask-genoa.pem");
const ARK_TURIN: &[u8] = include_bytes!("../roots/amd-ark-turin.pem");
const ASK_TURIN: &[u8] = include_bytes!("../roots/amd-ask-turin.pem");
/// Milan ASK, ARK and ASVK, as trustee ships them; the SEV-SNP verifier takes only the ASVK
/// from it (and a test checks that its ARK is the pinned Milan ARK).
const MILAN_ASK_ARK_ASVK: &[u8] = include_bytes!("../roots/amd-milan-ask-ark-asvk.pem");
/// The Intel SGX Root CA (valid to 2049-12-31), as dcap-qvl ships it.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("../roots/intel-sgx-root-ca.der");
/// The AWS Nitro Enclaves root (valid to 2049-10-28).
pub const AWS_NITRO_ROOT_PEM: &[u8] = include_bytes!("../roots/aws-nitro-root.pem");

impl TrustAnchors {
    /// The roots compiled into this binary: what every production verifier uses.
    pub fn pinned() -> Self {
        let amd = |product, ark: &'static [u8], ask: &'static [u8], asvk: Option<&'static [u8]>| {
            AmdAnchor {
                product,
                ark_pem: Cow::Borrowed(ark),
                ask_pem: Cow::Borrowed(ask),
                asvk_pem: asvk.map(Cow::Borrowed),
            }
        };
        Self {
            amd: vec![
                amd(
                    AmdProduct::Milan,
                    ARK_MILAN,
                    ASK_MILAN,
                    Some(MILAN_ASK_ARK_ASVK),
                ),
                amd(AmdProduct::Genoa, ARK_GENOA, ASK_GENOA, None),
                amd(AmdProduct::Turin, ARK_TURIN, ASK_TURIN, None),
            ],
            intel_sgx_root_der: Cow::Borrowed(INTEL_SGX_ROOT_CA_DER),
            aws_nitro_root_pem: Cow::Borrowed(AWS_NITRO_ROOT_PEM),
            pinned: true,
        }
    }

    /// Whether these are the pinned production roots. A service or verifier running on
    /// anything else says so in every decision it logs.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Roots chosen by a test. **Never in a release build**: this exists only for this crate's
    /// unit tests and with the `insecure-test-roots` feature (see the module documentation).
    #[cfg(any(test, feature = "insecure-test-roots"))]
    pub fn insecure_for_tests(
        amd: Vec<AmdAnchor>,
        intel_sgx_root_der: Vec<u8>,
        aws_nitro_root_pem: Vec<u8>,
    ) -> Self {
        Self {
            amd,
            intel_sgx_root_der: Cow::Owned(intel_sgx_root_der),
            aws_nitro_root_pem: Cow::Owned(aws_nitro_root_pem),
            pinned: false,
        }
    }

    /// The AMD roots, per product line.
    pub fn amd(&self) -> &[AmdAnchor] {
        &self.amd
    }

    /// The Intel SGX Root CA, DER.
    pub fn intel_sgx_root_der(&self) -> &[u8] {
        &self.intel_sgx_root_der
    }

    /// The AWS Nitro root, PEM.
    pub fn aws_nitro_root_pem(&self) -> &[u8] {
        &self.aws_nitro_root_pem
    }
}

impl Default for TrustAnchors {
    fn default() -> Self {
        Self::pinned()
    }
}
