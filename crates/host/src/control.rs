//! The control channel between the host and one worker: a Unix `SOCK_SEQPACKET` socket pair
//! (the worker's end is its standard input), one JSON message per packet, and at most one file
//! descriptor per packet (`SCM_RIGHTS`) — the worker's end of a client connection.
//!
//! Packets keep message boundaries, so neither side parses a stream, and a descriptor always
//! arrives with the message that explains it. Both sides bound what they accept: a packet
//! over [`MAX_CONTROL_MESSAGE_BYTES`] or carrying more than one descriptor is an error, and
//! every descriptor received is closed unless the message claims it.
//!
//! The host is untrusted: the worker treats every message as hostile input (it parses, checks
//! and bounds it), and nothing the host sends can reach the computation's data — it can only
//! hand over ciphertext connections, a nonce, and the attestation service's answer, which the
//! worker checks against its own key. What the worker sends the host is public: its identity,
//! its attestation request, and at its end a statement signed with its attested key.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use covenant_attest::Nonce;
use covenant_attest::wire::{AttestationRequest, AttestationResponse};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The largest control message either side accepts. The largest real one is an attestation
/// request: evidence and a CSR, as large as the attestation service accepts
/// (`covenant_attestation_service::http::MAX_ATTESTATION_BODY_BYTES`; a TDX quote with its
/// collateral is about 35 KiB); the bound stops a hostile peer from making the other side
/// allocate without limit.
///
/// It must also fit a socket's default send buffer (`net.core.wmem_default`, 208 KiB on
/// Linux): a `SOCK_SEQPACKET` message larger than that cannot be sent at all.
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 160 << 10;

/// What the worker tells the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkerMessage {
    /// Sent once the worker is hardened: who it is.
    Hello {
        /// The policy's computation id.
        computation: String,
        /// The policy hash, hex.
        policy_hash: String,
        /// The worker's measurement, hex.
        measurement: String,
    },
    /// The attestation request (evidence and CSR) for the host to relay to the service.
    Attest {
        /// The request body for `POST /v1/attestations`.
        request: AttestationRequest,
    },
    /// The worker is attested and serves connections.
    Serving {
        /// When its attested certificate expires, RFC 3339.
        not_after: String,
    },
    /// The instance's end statement (a compact JWS signed with its attested key, naming its
    /// computation, policy hash and certificate serial), for the host to post to the
    /// attestation service (`POST /v1/instance-ends`), which then lets the computation be
    /// attested again. Sent just before `closed`, or on `shutdown`; the host cannot forge one.
    InstanceEnded {
        /// The statement (`covenant_attest::instance`).
        statement: String,
    },
    /// Every principal closed the computation; its data is gone and the worker exits.
    Closed,
    /// The worker stops because of this error (it exits right after).
    Failed {
        /// What went wrong.
        message: String,
    },
}

/// What the host tells the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum HostMessage {
    /// A nonce from the attestation service, for the evidence.
    Nonce {
        /// The nonce.
        nonce: Nonce,
    },
    /// The service's answer to the worker's request.
    Attested {
        /// The response body of `POST /v1/attestations`.
        response: AttestationResponse,
    },
    /// The service refused the request, or could not be reached.
    AttestationFailed {
        /// Why.
        message: String,
    },
    /// A client connection: the packet carries the worker's end of a stream socket.
    Connection,
    /// Stop serving and exit.
    Shutdown,
}

/// A control-channel failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The socket failed.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// A packet over [`MAX_CONTROL_MESSAGE_BYTES`].
    #[error("a control message is over {MAX_CONTROL_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// A packet with more than one descriptor, or a truncated descriptor list.
    #[error("a control message carries more than one file descriptor")]
    TooManyDescriptors,
    /// A packet that is not a message of the protocol.
    #[error("malformed control message: {0}")]
    Malformed(String),
}

/// One end of a control channel.
#[derive(Debug)]
pub struct ControlSocket {
    fd: OwnedFd,
}

impl ControlSocket {
    /// A connected pair: the host's end, and the end to give the worker as its standard input.
    ///
    /// # Errors
    /// [`ControlError::Io`] if the kernel refuses the socket pair.
    pub fn pair() -> Result<(ControlSocket, OwnedFd), ControlError> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(std::io::Error::from)?;
        Ok((ControlSocket { fd: ours }, theirs))
    }

    /// Wraps an inherited descriptor (the worker's standard input).
    #[must_use]
    pub fn from_fd(fd: OwnedFd) -> Self {
        ControlSocket { fd }
    }

    /// Sends one message, with `fd` attached if given. Blocks while the socket buffer is full.
    ///
    /// # Errors
    /// [`ControlError::Io`] (the peer has gone: `EPIPE`), [`ControlError::TooLarge`].
    pub fn send<M: Serialize>(
        &self,
        message: &M,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<(), ControlError> {
        let bytes =
            serde_json::to_vec(message).map_err(|e| ControlError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_CONTROL_MESSAGE_BYTES {
            return Err(ControlError::TooLarge);
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(ControlError::TooManyDescriptors);
            }
        }
        let sent = rustix::net::sendmsg(
            &self.fd,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(std::io::Error::from)?;
        if sent != bytes.len() {
            return Err(ControlError::Io(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "the control message was sent in part",
            )));
        }
        Ok(())
    }

    /// Receives one message and the descriptor it carries, if any. Blocks until one arrives;
    /// `Ok(None)` when the peer has closed its end.
    ///
    /// # Errors
    /// [`ControlError`] for an oversized, malformed or over-equipped packet (any descriptors
    /// it carried are closed).
    pub fn recv<M: DeserializeOwned>(&self) -> Result<Option<(M, Option<OwnedFd>)>, ControlError> {
        let mut buffer = vec![0u8; MAX_CONTROL_MESSAGE_BYTES];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buffer)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(received) => break received,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ControlError::Io(e.into())),
            }
        };
        // Claim every descriptor first, so that an error below still closes them all.
        let mut fds: Vec<OwnedFd> = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if received.flags.contains(ReturnFlags::CTRUNC) || fds.len() > 1 {
            return Err(ControlError::TooManyDescriptors);
        }
        if received.flags.contains(ReturnFlags::TRUNC) {
            return Err(ControlError::TooLarge);
        }
        if received.bytes == 0 && fds.is_empty() {
            return Ok(None);
        }
        let message = serde_json::from_slice(&buffer[..received.bytes])
            .map_err(|e| ControlError::Malformed(e.to_string()))?;
        Ok(Some((message, fds.pop())))
    }
}

impl AsFd for ControlSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    #[test]
    fn a_message_and_its_descriptor_arrive_together() {
        let (host, worker) = ControlSocket::pair().unwrap();
        let worker = ControlSocket::from_fd(worker);
        let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        host.send(&HostMessage::Connection, Some(b.as_fd()))
            .unwrap();
        drop(b);
        let (message, fd) = worker.recv::<HostMessage>().unwrap().unwrap();
        assert!(matches!(message, HostMessage::Connection));
        let mut b = std::os::unix::net::UnixStream::from(fd.unwrap());
        a.write_all(b"ciphertext").unwrap();
        let mut got = [0u8; 10];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ciphertext");
    }

    #[test]
    fn a_closed_peer_is_the_end_and_garbage_is_an_error() {
        let (host, worker) = ControlSocket::pair().unwrap();
        let worker = ControlSocket::from_fd(worker);
        rustix::net::send(&host, b"{\"type\":\"no-such-message\"}", SendFlags::empty()).unwrap();
        assert!(matches!(
            worker.recv::<HostMessage>(),
            Err(ControlError::Malformed(_))
        ));
        let oversized = vec![b' '; MAX_CONTROL_MESSAGE_BYTES + 1];
        rustix::net::send(&host, &oversized, SendFlags::empty()).unwrap();
        assert!(matches!(
            worker.recv::<HostMessage>(),
            Err(ControlError::TooLarge)
        ));
        drop(host);
        assert!(worker.recv::<HostMessage>().unwrap().is_none());
    }

    #[test]
    fn two_descriptors_in_one_packet_are_refused_and_closed() {
        let (host, worker) = ControlSocket::pair().unwrap();
        let worker = ControlSocket::from_fd(worker);
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [a.as_fd(), b.as_fd()];
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(
            &host,
            &[IoSlice::new(b"{\"type\":\"connection\"}")],
            &mut control,
            SendFlags::empty(),
        )
        .unwrap();
        assert!(worker.recv::<HostMessage>().is_err());
    }
}
