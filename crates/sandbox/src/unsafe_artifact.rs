//! The one place Covenant uses `unsafe`: turning a verified artifact back into machine code.
//!
//! `wasmtime::Module::deserialize` is `unsafe` because it maps the given bytes as executable
//! code; it is sound only for bytes that `wasmtime` itself serialized for a compatible engine
//! and that nobody changed since. We cannot check that property of the bytes directly, so we
//! establish it by provenance: the only input accepted is a [`VerifiedArtifact`], which
//! `artifact::verify` constructs only after an ECDSA P-256 signature over the entire envelope
//! checked against a key the operator trusts, and after the header's engine fingerprint matched
//! this engine. The trust we place in that key is that it signs only what `covenant compile`
//! produced with `Engine::precompile_module`.
#![allow(unsafe_code, reason = "fenced: see the module documentation")]

use crate::artifact::VerifiedArtifact;

/// Loads the machine code of a verified artifact.
///
/// # Errors
/// Whatever wasmtime reports if the payload is not a module for this engine (which, after
/// verification, means the signer signed something other than a compiled module).
pub(crate) fn deserialize_verified(
    engine: &wasmtime::Engine,
    artifact: &VerifiedArtifact<'_>,
) -> wasmtime::Result<wasmtime::Module> {
    // SAFETY: `Module::deserialize` requires bytes produced by `Module::serialize` /
    // `Engine::precompile_module` for a compatible engine, unmodified. `artifact` is a
    // `VerifiedArtifact`: its signature by a trusted signer covers these exact bytes and its
    // fingerprint equals `engine`'s compatibility hash (see the module documentation), and
    // wasmtime additionally re-checks its own version and configuration header in the payload.
    unsafe { wasmtime::Module::deserialize(engine, artifact.payload()) }
}
