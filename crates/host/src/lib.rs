//! The Covenant host (`covenant serve`) and the worker it starts for each computation.
//!
//! The host is untrusted: it starts workers, relays their attestation to the attestation
//! service, accepts TCP connections, reads only the TLS ClientHello's server name (the
//! computation id) to pick a worker, and relays ciphertext. TLS ends inside the worker.
//!
//! The worker ([`worker`]) is the trusted runtime of one computation, in a process of its own
//! hardened before it touches untrusted input ([`hardening`]): rlimits, not dumpable,
//! `no_new_privs`, a seccomp-bpf allow-list with no socket creation, no exec and no file opens.
//! It has no network: client connections arrive as sockets passed over its control channel
//! ([`control`]).
//!
//! Linux only: seccomp, `SCM_RIGHTS` and `SOCK_SEQPACKET` are Linux interfaces.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod control;
pub mod hardening;
mod host;
pub mod sni;
pub mod worker;

pub use host::{
    CLIENT_HELLO_TIMEOUT, Host, HostConfig, HostError, MAX_CONNECTIONS_PER_COMPUTATION,
    MAX_RELAYED_CONNECTIONS, PlatformConfig, RELAY_BUFFER_BYTES, WORKER_START_TIMEOUT,
    WORKER_STOP_TIMEOUT, WorkerInfo, WorkerState, describe_exit,
};
