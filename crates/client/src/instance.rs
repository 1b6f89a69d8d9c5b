//! Keeping, between sessions, the instance of a computation a principal spoke to.
//!
//! The attestation service certifies one live instance per computation, but it is trusted
//! only as far as its platform is (`docs/threat-model.md`), and the operator can end an
//! instance whose worker died. A principal therefore also remembers the instance it first
//! spoke to — the fingerprint of its attested key — and refuses another one unless told the
//! change is expected: a provider whose connection the host drops after its upload, and whose
//! retry the host sends to a second instance, notices (`ClientError::InstanceChanged`).
//!
//! [`InstancePin`] keeps that fingerprint in a small JSON file, by default beside the policy
//! ([`InstancePin::path_beside`]: `POLICY.instance`):
//!
//! ```json
//! {
//!   "format": "covenant-instance-pin/1",
//!   "computation": "shared-patients",
//!   "policy_sha256": "…64 hex…",
//!   "instance": "…64 hex: SHA-256 of the attested certificate's SubjectPublicKeyInfo…",
//!   "pinned_at": "2026-11-21T19:25:00Z"
//! }
//! ```
//!
//! A file that pins an instance of another policy (the policy file was replaced) does not
//! apply; it is replaced when this policy's instance is recorded, and
//! [`PinChange::ReplacedOtherPolicy`] says so.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use covenant_attest::Digest;
use covenant_policy::ValidPolicy;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Client, ClientError};

/// The `format` of an instance file.
pub const INSTANCE_PIN_FORMAT: &str = "covenant-instance-pin/1";

/// What [`InstancePin::path_beside`] appends to the policy's file name.
pub const INSTANCE_PIN_SUFFIX: &str = ".instance";

/// The largest instance file read: 4 KiB. A real one is about 400 bytes (two digests, a
/// computation id of at most 256 bytes, a time); the cap stops a corrupt or planted file from
/// making the client read without bound.
pub const MAX_INSTANCE_PIN_BYTES: usize = 4096;

/// What an instance file holds. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedInstance {
    /// Always [`INSTANCE_PIN_FORMAT`].
    pub format: String,
    /// The policy's computation id.
    pub computation: String,
    /// The policy's hash, hex.
    pub policy_sha256: String,
    /// The instance: SHA-256 of its attested certificate's SubjectPublicKeyInfo, hex.
    pub instance: Digest,
    /// When it was pinned, RFC 3339 UTC.
    pub pinned_at: String,
}

/// What [`InstancePin::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinChange {
    /// The file already pinned this instance: nothing was written.
    Unchanged,
    /// No instance of this policy was pinned: this one now is.
    Pinned,
    /// Another instance of this policy was pinned and was replaced by this one (the caller
    /// accepted the new instance).
    Replaced {
        /// The instance pinned before.
        previous: Digest,
    },
    /// The file pinned an instance of another policy, and now pins this policy's instance.
    ReplacedOtherPolicy {
        /// What the file held.
        previous: PinnedInstance,
    },
}

/// The instance file of one policy: where it is, and what it held when read.
#[derive(Debug, Clone)]
pub struct InstancePin {
    path: PathBuf,
    computation: String,
    policy_sha256: String,
    /// What the file held when read (or last written), whatever policy it is for.
    held: Option<PinnedInstance>,
}

fn pin_error(path: &Path, reason: impl Into<String>) -> ClientError {
    ClientError::InstancePin {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads and parses an instance file; `None` if there is none.
fn read(path: &Path) -> Result<Option<PinnedInstance>, ClientError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ClientError::Io {
                context: "cannot read the instance file",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_INSTANCE_PIN_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ClientError::Io {
            context: "cannot read the instance file",
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() > MAX_INSTANCE_PIN_BYTES {
        return Err(pin_error(
            path,
            format!("it is larger than {MAX_INSTANCE_PIN_BYTES} bytes"),
        ));
    }
    let pinned: PinnedInstance = serde_json::from_slice(&bytes)
        .map_err(|e| pin_error(path, format!("it is not an instance file: {e}")))?;
    if pinned.format != INSTANCE_PIN_FORMAT {
        return Err(pin_error(
            path,
            format!(
                "its format is {:?}, not {INSTANCE_PIN_FORMAT}",
                pinned.format.chars().take(80).collect::<String>()
            ),
        ));
    }
    Ok(Some(pinned))
}

impl InstancePin {
    /// The default instance file of the policy at `policy_path`: the same path with
    /// [`INSTANCE_PIN_SUFFIX`] appended (`policy.json` → `policy.json.instance`).
    #[must_use]
    pub fn path_beside(policy_path: &Path) -> PathBuf {
        let mut name = policy_path.as_os_str().to_owned();
        name.push(INSTANCE_PIN_SUFFIX);
        PathBuf::from(name)
    }

    /// Reads the instance file at `path` for `policy`. A missing file pins nothing.
    ///
    /// # Errors
    /// [`ClientError::Io`] if it exists but cannot be read; [`ClientError::InstancePin`] if it
    /// is larger than [`MAX_INSTANCE_PIN_BYTES`] or is not an instance file.
    pub fn load(path: impl Into<PathBuf>, policy: &ValidPolicy) -> Result<Self, ClientError> {
        let path = path.into();
        let held = read(&path)?;
        Ok(InstancePin {
            path,
            computation: policy.policy().computation.clone(),
            policy_sha256: policy.hash().to_hex(),
            held,
        })
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pinned instance of this policy, if any (an instance of another policy pins
    /// nothing here).
    #[must_use]
    pub fn instance(&self) -> Option<Digest> {
        self.held
            .as_ref()
            .filter(|held| self.is_ours(held))
            .map(|held| held.instance)
    }

    /// What the file holds, whatever policy it is for.
    #[must_use]
    pub fn held(&self) -> Option<&PinnedInstance> {
        self.held.as_ref()
    }

    fn is_ours(&self, held: &PinnedInstance) -> bool {
        held.policy_sha256 == self.policy_sha256 && held.computation == self.computation
    }

    /// Records the instance `client` is connected to, unless it is the one pinned already.
    ///
    /// The file is written whole beside its place, then moved into it. When no instance was
    /// pinned, it is put in place only if it still does not exist (another principal's
    /// client sharing the file may have pinned one meanwhile: if that is another instance, it
    /// is refused as [`ClientError::InstanceChanged`]). Otherwise it replaces the file: the
    /// caller has accepted the new instance, or the file was for another policy.
    ///
    /// # Errors
    /// [`ClientError::Io`] if it cannot be written; [`ClientError::InstanceChanged`] as above;
    /// [`ClientError::Protocol`] if `client` is not connected.
    pub fn record(&mut self, client: &Client) -> Result<PinChange, ClientError> {
        let instance = client
            .instance()
            .ok_or_else(|| ClientError::Protocol("the client has not connected yet".into()))?;
        if self.instance() == Some(instance) {
            return Ok(PinChange::Unchanged);
        }
        let pinned = PinnedInstance {
            format: INSTANCE_PIN_FORMAT.into(),
            computation: self.computation.clone(),
            policy_sha256: self.policy_sha256.clone(),
            instance,
            pinned_at: covenant_policy::format_utc(OffsetDateTime::now_utc()),
        };
        let mut text = serde_json::to_string_pretty(&pinned)
            .map_err(|e| ClientError::Protocol(format!("encoding the instance file: {e}")))?;
        text.push('\n');
        let write_error = |source| ClientError::Io {
            context: "cannot write the instance file",
            path: self.path.clone(),
            source,
        };
        // Written whole beside the file, then put in place in one step: a reader never sees
        // half a file.
        let mut partial = self.path.clone().into_os_string();
        partial.push(format!(".{}.partial", std::process::id()));
        let partial = PathBuf::from(partial);
        std::fs::write(&partial, text.as_bytes()).map_err(write_error)?;
        let change = match self.held.clone() {
            None => {
                // Linking fails if the file exists: only if no other client pinned meanwhile.
                let linked = std::fs::hard_link(&partial, &self.path);
                let _ = std::fs::remove_file(&partial);
                match linked {
                    Ok(()) => PinChange::Pinned,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        // Pinned meanwhile by another client: it must be this instance.
                        self.held = read(&self.path)?;
                        return match self.instance() {
                            Some(theirs) if theirs == instance => Ok(PinChange::Unchanged),
                            Some(theirs) => Err(ClientError::InstanceChanged {
                                host: client.host().to_owned(),
                                expected: theirs.to_hex(),
                                found: instance.to_hex(),
                            }),
                            None => Err(pin_error(
                                &self.path,
                                "another client wrote it for another policy while this one \
                                 connected",
                            )),
                        };
                    }
                    Err(e) => return Err(write_error(e)),
                }
            }
            Some(previous) => {
                if let Err(e) = std::fs::rename(&partial, &self.path) {
                    let _ = std::fs::remove_file(&partial);
                    return Err(write_error(e));
                }
                if self.is_ours(&previous) {
                    PinChange::Replaced {
                        previous: previous.instance,
                    }
                } else {
                    PinChange::ReplacedOtherPolicy { previous }
                }
            }
        };
        self.held = Some(pinned);
        Ok(change)
    }
}
