//! Ahead-of-time artifacts: signed, verified before deserialization, refused when touched.

use covenant_sandbox::{
    ArtifactError, ArtifactSigner, LoadError, Outcome, Sandbox, SandboxConfig, Strategy,
    TrustedSigners,
};
use covenant_wasi::WasiCtx;

use crate::small_limits;

struct Identity {
    key_pem: String,
    cert_pem: String,
}

fn identity(name: &str) -> Identity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Identity {
        key_pem: key.serialize_pem(),
        cert_pem: cert.pem(),
    }
}

fn trusting(id: &Identity) -> TrustedSigners {
    let mut trusted = TrustedSigners::none();
    trusted.add_certificate_pem(id.cert_pem.as_bytes()).unwrap();
    trusted
}

fn compile(sandbox: &Sandbox, signer: &Identity) -> Vec<u8> {
    let key = ArtifactSigner::from_pkcs8_pem(signer.key_pem.as_bytes()).unwrap();
    sandbox
        .compile_artifact(&covenant_guests::HELLO.bytes(), &key)
        .unwrap()
}

#[test]
fn a_signed_artifact_runs_and_the_same_module_compiles_once() {
    let sandbox = Sandbox::new(SandboxConfig::new(Strategy::Jit)).unwrap();
    let alice = identity("alice");
    let artifact = compile(&sandbox, &alice);
    let module = sandbox.load_artifact(&artifact, &trusting(&alice)).unwrap();
    let mut run = sandbox
        .run(
            &module,
            WasiCtx::builder("hello").build().unwrap(),
            &small_limits(),
            &covenant_sandbox::Entry::Command,
        )
        .unwrap();
    assert_eq!(run.report.outcome, Outcome::Exited(0));
    assert_eq!(run.wasi.take_stdout(), b"hello from a Covenant guest\n");
    assert_eq!(sandbox.stats().compiled, 1);
    // The source module, loaded now, is the same module: no second compilation.
    let again = sandbox.load(&covenant_guests::HELLO.bytes()).unwrap();
    assert_eq!(again.sha256(), module.sha256());
    sandbox.load(&covenant_guests::HELLO.bytes()).unwrap();
    assert_eq!(sandbox.stats().compiled, 1);
    assert_eq!(sandbox.stats().cache_hits, 2);
}

#[test]
fn an_artifact_with_any_byte_flipped_is_refused() {
    let sandbox = Sandbox::new(SandboxConfig::new(Strategy::Jit)).unwrap();
    let alice = identity("alice");
    let artifact = compile(&sandbox, &alice);
    let trusted = trusting(&alice);
    // Flip a byte in the header, in the payload's first page, in its middle, and in the signature.
    let positions = [20, 200, artifact.len() / 2, artifact.len() - 3];
    for at in positions {
        let mut bad = artifact.clone();
        bad[at] ^= 0x01;
        let err = sandbox.load_artifact(&bad, &trusted).unwrap_err();
        assert!(
            matches!(
                err,
                LoadError::Artifact(
                    ArtifactError::BadSignature
                        | ArtifactError::Malformed(_)
                        | ArtifactError::UntrustedSigner { .. }
                )
            ),
            "byte {at}: {err}"
        );
    }
    assert_eq!(sandbox.stats().compiled, 0, "nothing was deserialized");
}

#[test]
fn an_artifact_signed_by_an_untrusted_key_is_refused() {
    let sandbox = Sandbox::new(SandboxConfig::new(Strategy::Jit)).unwrap();
    let (mallory, alice) = (identity("mallory"), identity("alice"));
    let artifact = compile(&sandbox, &mallory);
    let err = sandbox
        .load_artifact(&artifact, &trusting(&alice))
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Artifact(ArtifactError::UntrustedSigner { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("pass the signer's certificate with --trust"),
        "{err}"
    );
    let err = sandbox
        .load_artifact(&artifact, &TrustedSigners::none())
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Artifact(ArtifactError::UntrustedSigner { .. })
        ),
        "{err}"
    );
}

#[test]
fn an_artifact_for_another_engine_configuration_is_refused() {
    let sandbox = Sandbox::new(SandboxConfig::new(Strategy::Jit)).unwrap();
    let alice = identity("alice");
    let artifact = compile(&sandbox, &alice);
    let err = covenant_sandbox::artifact::verify(&artifact, &trusting(&alice), "0000")
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ArtifactError::Fingerprint { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("recompile it with `covenant compile`")
    );
}

#[test]
fn wasm_files_and_the_interpreter_are_told_what_to_do() {
    let jit = Sandbox::new(SandboxConfig::new(Strategy::Jit)).unwrap();
    let err = jit
        .load_artifact(&covenant_guests::HELLO.bytes(), &TrustedSigners::none())
        .unwrap_err();
    assert!(err.to_string().contains("is it a .wasm file?"), "{err}");
    let interp = crate::sandbox(Strategy::Interpreter);
    let alice = identity("alice");
    let err = interp
        .load_artifact(&compile(&jit, &alice), &trusting(&alice))
        .unwrap_err();
    assert!(matches!(err, LoadError::ArtifactNeedsJit), "{err}");
}
