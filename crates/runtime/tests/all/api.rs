//! The HTTPS API over real TLS: loopback TCP for the flows, an in-process duplex where the
//! server's own verdict on a handshake is asserted.

use std::sync::Arc;

use covenant_attest::{AttestedCertificateError, AttestedServerVerifier};
use covenant_policy::{Policy, Strategy};
use covenant_runtime::api::{
    ApiServer, ConnectionError, MAX_PROGRAM_BYTES, REFUSED_BODY_DRAIN_BYTES,
    REFUSED_BODY_DRAIN_TIME, ServerIdentity,
};
use covenant_runtime::{Computation, ReceiptSigner, expected_runtime, verify_receipt};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use covenant_test_support::{
    PrincipalIdentity as Credentials, listen, principal_identity as credentials,
};

use crate::support::{self, A_CSV, B_CSV, Service, sum_inputs};

/// A served computation: the test policy with principals whose keys the test holds.
struct Served {
    policy: Policy,
    service: Service,
    alice: Credentials,
    bob: Credentials,
    carol: Credentials,
    server: ApiServer,
}

fn served() -> Served {
    served_with(|_| {})
}

fn served_with(edit: impl FnOnce(&mut Policy)) -> Served {
    let service = Service::new();
    let (alice, bob, carol) = (
        credentials("alice"),
        credentials("bob"),
        credentials("carol"),
    );
    let mut policy = support::policy(&service, &sum_inputs(), Strategy::Interpreter);
    edit(&mut policy);
    for (p, c) in policy.principals.iter_mut().zip([&alice, &bob, &carol]) {
        p.certificate = c.certificate_pem.clone();
    }
    let valid = support::validate(&policy);
    let (key, chain) = service.attested_key(&valid);
    let signer = ReceiptSigner::new(&key, chain.clone()).unwrap();
    let computation = Computation::new(valid, signer).unwrap();
    let server = ApiServer::new(computation, &ServerIdentity::new(key, chain)).unwrap();
    Served {
        policy,
        service,
        alice,
        bob,
        carol,
        server,
    }
}

fn client_config(
    expected: covenant_attest::ExpectedRuntime,
    who: &Credentials,
) -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AttestedServerVerifier::new(expected)))
    .with_client_auth_cert(
        vec![CertificateDer::from(who.certificate_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(who.key_der.clone())),
    )
    .unwrap();
    Arc::new(config)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("sum-study.example").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// A connected HTTP client for one principal.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    async fn connect(served: &Served, addr: std::net::SocketAddr, who: &Credentials) -> Self {
        let expected = expected_runtime(&support::validate(&served.policy)).unwrap();
        let tls = tls_connect(addr, client_config(expected, who))
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client { sender }
    }

    async fn send(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "sum-study.example")
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let response = self.sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    async fn json(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let (status, bytes) = self.send(method, path, body).await;
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

#[tokio::test]
async fn three_principals_provision_run_fetch_and_verify_the_receipt() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let mut bob = Client::connect(&s, addr, &s.bob).await;
    let mut carol = Client::connect(&s, addr, &s.carol).await;

    let (status, body) = alice.json("PUT", "/v1/program", &sum_inputs()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", A_CSV)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bytes"], A_CSV.len());
    assert_eq!(body["sha256"], support::sha256_hex(A_CSV));
    let (status, body) = bob.json("PUT", "/v1/inputs/%2Finput%2Fb.csv", B_CSV).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = carol.json("GET", "/v1/status", b"").await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "ready");

    let (status, body) = alice.json("POST", "/v1/run", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["run"], 1);

    let (status, stdout) = carol.send("GET", "/v1/outputs/stdout", b"").await;
    assert_eq!(status, 200);
    let (status, result) = carol
        .send("GET", "/v1/outputs/%2Foutput%2Fresult.txt", b"")
        .await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(result).unwrap().trim(), "40");
    assert!(!stdout.is_empty());

    let (status, body) = bob.json("GET", "/v1/receipts", b"").await;
    assert_eq!(status, 200);
    let receipts = body["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1);
    let valid = support::validate(&s.policy);
    let verified = verify_receipt(receipts[0].as_str().unwrap(), &valid).unwrap();
    assert_eq!(verified.claims.run, 1);

    for client in [&mut alice, &mut bob] {
        let (status, body) = client.json("POST", "/v1/close", b"").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["complete"], false);
    }
    let (status, body) = carol.json("POST", "/v1/close", b"").await;
    assert_eq!(status, 200);
    assert_eq!(body["complete"], true);
    let (_, body) = carol.json("GET", "/v1/status", b"").await;
    assert_eq!(body["state"], "closed");
}

#[tokio::test]
async fn a_detached_run_answers_at_once_and_its_outcome_shows_in_status() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let mut bob = Client::connect(&s, addr, &s.bob).await;
    let mut carol = Client::connect(&s, addr, &s.carol).await;
    alice.json("PUT", "/v1/program", &sum_inputs()).await;
    alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", A_CSV)
        .await;
    bob.json("PUT", "/v1/inputs/%2Finput%2Fb.csv", B_CSV).await;

    let (status, body) = alice.json("POST", "/v1/run?detach=maybe", b"").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad-query")));
    assert_eq!(
        carol.json("GET", "/v1/status", b"").await.1["state"],
        "ready"
    );

    let (status, body) = alice.json("POST", "/v1/run?detach=true", b"").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["run"], 1);
    let finished = loop {
        let (_, body) = carol.json("GET", "/v1/status", b"").await;
        if body["state"] != "running" {
            break body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(finished["state"], "finished", "{finished}");
    let (status, result) = carol
        .send("GET", "/v1/outputs/%2Foutput%2Fresult.txt", b"")
        .await;
    assert_eq!(
        (status, String::from_utf8(result).unwrap().trim()),
        (200, "40")
    );
}

#[tokio::test]
async fn closed_resolves_once_every_principal_has_closed() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let mut bob = Client::connect(&s, addr, &s.bob).await;
    let mut carol = Client::connect(&s, addr, &s.carol).await;
    let server = s.server.clone();
    let closed = tokio::spawn(async move { server.closed().await });
    alice.json("POST", "/v1/close", b"").await;
    bob.json("POST", "/v1/close", b"").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !closed.is_finished(),
        "closed() resolved before every principal agreed"
    );
    let (status, _) = carol.json("POST", "/v1/close", b"").await;
    assert_eq!(status, 200);
    tokio::time::timeout(std::time::Duration::from_secs(10), closed)
        .await
        .expect("closed() did not resolve after the last close")
        .unwrap();
}

#[tokio::test]
async fn a_refused_action_has_its_status_and_rule_and_names_no_other_principals_data() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let mut bob = Client::connect(&s, addr, &s.bob).await;
    let mut carol = Client::connect(&s, addr, &s.carol).await;

    // bob may not upload the program (role: 403).
    let (status, body) = bob.json("PUT", "/v1/program", &sum_inputs()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-program-provider"))
    );
    // A wrong program (hash: 422).
    let (status, body) = alice.json("PUT", "/v1/program", b"\0asm\x01\0\0\0").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("program-hash-mismatch"))
    );
    // bob may not upload alice's input, whose content alice has sent.
    let secret = b"9,9,9\n";
    let (status, _) = alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", secret)
        .await;
    assert_eq!(status, 200);
    let (status, body) = bob.json("PUT", "/v1/inputs/%2Finput%2Fa.csv", b"1\n").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-input-provider"))
    );
    // A second upload (state: 409), a run before everything is there (409).
    let (status, body) = alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", secret)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("input-already-provided"))
    );
    let (status, body) = alice.json("POST", "/v1/run", b"").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("program-missing"))
    );
    // An input over its bound (413), an undeclared input and a fetch before the run.
    let (status, body) = bob
        .json("PUT", "/v1/inputs/%2Finput%2Fb.csv", &vec![b'1'; 4096])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("input-too-large"))
    );
    let (status, body) = bob.json("PUT", "/v1/inputs/%2Finput%2Fz.csv", b"1").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown-input"))
    );
    let (status, body) = carol.json("GET", "/v1/outputs/stdout", b"").await;
    assert_eq!((status, body["error"].as_str()), (409, Some("wrong-state")));
    let (status, body) = alice.json("GET", "/v1/outputs/stdout", b"").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("not-reader")));
    let (status, body) = carol.json("GET", "/v1/nothing", b"").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("no-route")));

    // Every refusal body above was seen by bob or carol too: none names alice's data.
    let alice_hash = support::sha256_hex(secret);
    for (who, client) in [("bob", &mut bob), ("carol", &mut carol)] {
        let (_, body) = client
            .send("PUT", "/v1/inputs/%2Finput%2Fa.csv", secret)
            .await;
        let text = String::from_utf8(body).unwrap();
        assert!(
            !text.contains(&alice_hash),
            "{who} saw alice's hash: {text}"
        );
        assert!(!text.contains("9,9,9"), "{who} saw alice's data: {text}");
        let (_, body) = client.send("GET", "/v1/status", b"").await;
        let text = String::from_utf8(body).unwrap();
        assert!(
            !text.contains(&alice_hash),
            "{who} saw alice's hash: {text}"
        );
    }
}

#[tokio::test]
async fn an_unknown_client_certificate_is_refused_in_the_handshake() {
    let s = served();
    let (client_io, server_io) = tokio::io::duplex(64 << 10);
    let server = s.server.clone();
    let served = tokio::spawn(async move { server.serve_connection(server_io).await });
    let mallory = credentials("alice");
    let expected = expected_runtime(&support::validate(&s.policy)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("sum-study.example").unwrap();
    let connected = tokio_rustls::TlsConnector::from(client_config(expected, &mallory))
        .connect(name, client_io)
        .await;
    // TLS 1.3: the client's side may finish before the server reads its certificate; the
    // server's verdict is what counts, and the client can then neither read nor be answered.
    let verdict = served.await.unwrap();
    assert!(
        matches!(&verdict, Err(ConnectionError::Handshake(e)) if e.to_string().contains("certificate")),
        "{verdict:?}"
    );
    if let Ok(mut tls) = connected {
        let _ = tls
            .write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let read = tls.read_to_end(&mut buf).await;
        assert!(
            read.is_err() || buf.is_empty(),
            "the server answered: {buf:?}"
        );
    }
}

#[tokio::test]
async fn a_client_pinned_to_another_policy_refuses_the_server() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut expected = expected_runtime(&support::validate(&s.policy)).unwrap();
    expected.policy_hash.0[0] ^= 1;
    let err = tls_connect(addr, client_config(expected, &s.alice))
        .await
        .expect_err("a client pinned to another policy hash must refuse the server");
    let refused = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<AttestedCertificateError>().cloned()
            }
            _ => None,
        });
    assert!(
        matches!(
            refused,
            Some(AttestedCertificateError::PolicyHashMismatch { .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_upload_leaves_the_input_absent_and_resendable() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let expected = expected_runtime(&support::validate(&s.policy)).unwrap();
    let mut tls = tls_connect(addr, client_config(expected, &s.bob))
        .await
        .unwrap();
    tls.write_all(
        b"PUT /v1/inputs/%2Finput%2Fb.csv HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n10,",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    drop(tls);

    let mut bob = Client::connect(&s, addr, &s.bob).await;
    // The server notices the disconnect asynchronously; until then the input is reserved.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, status) = bob.json("GET", "/v1/status", b"").await;
        let b = status["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == "/input/b.csv")
            .unwrap()
            .clone();
        assert_eq!(
            b["provided"], false,
            "a partial upload was stored: {status}"
        );
        let (code, body) = bob.json("PUT", "/v1/inputs/%2Finput%2Fb.csv", B_CSV).await;
        if body["error"] == "upload-in-progress" {
            assert!(
                std::time::Instant::now() < deadline,
                "the upload stayed reserved"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["sha256"], support::sha256_hex(B_CSV));
        break;
    }
    let _ = &s.service;
}

#[tokio::test]
async fn a_large_upload_streams_whole_and_one_byte_over_its_bound_is_refused() {
    const BOUND: usize = 4 << 20;
    let s = served_with(|p| p.inputs[0].max_bytes = BOUND as u64);
    let addr = listen(s.server.clone()).await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let big: Vec<u8> = (0..BOUND).map(|i| (i % 251) as u8).collect();
    let mut over = big.clone();
    over.push(0);
    let (status, body) = alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", &over)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("input-too-large")),
        "{body}"
    );
    let (status, body) = alice.json("PUT", "/v1/inputs/%2Finput%2Fa.csv", &big).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bytes"], BOUND);
    assert_eq!(body["sha256"], support::sha256_hex(&big));
}

/// A raw TLS connection as `who`, for requests hyper's client would not send (a body shorter
/// than its `content-length`).
async fn raw(s: &Served, addr: std::net::SocketAddr, who: &Credentials) -> Tls {
    let expected = expected_runtime(&support::validate(&s.policy)).unwrap();
    tls_connect(addr, client_config(expected, who))
        .await
        .unwrap()
}

/// The head of a `PUT` announcing `length` body bytes, with `extra` header lines.
fn put_head(path: &str, length: u64, extra: &str) -> Vec<u8> {
    format!("PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n{extra}\r\n")
        .into_bytes()
}

/// Reads one response (status line, headers, a `content-length` JSON body) from `io`; panics
/// if none arrives within 10 s — that is, if the server waits for a body it was not sent.
async fn read_response(io: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u16, serde_json::Value) {
    let answer = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or_else(|| panic!("no content-length in {head}"));
                while buf.len() < end + 4 + length {
                    let n = io.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the connection ended inside the answer");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap();
                return (status, body);
            }
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection ended without an answer");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), answer)
        .await
        .expect("no answer within 10 s: the server waited for the body")
}

#[tokio::test]
async fn the_program_is_refused_to_others_before_a_byte_of_its_body_is_read() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut carol = Client::connect(&s, addr, &s.carol).await;
    let (_, before) = carol.json("GET", "/v1/status", b"").await;

    // bob announces 60 MiB and sends 4 KiB: the refusal arrives without the rest.
    let mut bob = raw(&s, addr, &s.bob).await;
    bob.write_all(&put_head("/v1/program", 60 << 20, ""))
        .await
        .unwrap();
    bob.write_all(&[0u8; 4096]).await.unwrap();
    bob.flush().await.unwrap();
    let (status, body) = read_response(&mut bob).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-program-provider")),
        "{body}"
    );
    // carol asks to be told before she sends (`Expect: 100-continue`): refused at once, with
    // no go-ahead first.
    let mut carol_raw = raw(&s, addr, &s.carol).await;
    carol_raw
        .write_all(&put_head(
            "/v1/program",
            60 << 20,
            "expect: 100-continue\r\n",
        ))
        .await
        .unwrap();
    carol_raw.flush().await.unwrap();
    let (status, body) = read_response(&mut carol_raw).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-program-provider")),
        "{body}"
    );
    drop((bob, carol_raw));

    // Nothing changed, and the provider uploads the program.
    assert_eq!(carol.json("GET", "/v1/status", b"").await.1, before);
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let (status, body) = alice.json("PUT", "/v1/program", &sum_inputs()).await;
    assert_eq!(status, 200, "{body}");
    // Now the state refuses a second program, also before its body is read.
    let mut again = raw(&s, addr, &s.alice).await;
    again
        .write_all(&put_head("/v1/program", 60 << 20, ""))
        .await
        .unwrap();
    again.write_all(&[0u8; 4096]).await.unwrap();
    again.flush().await.unwrap();
    let (status, body) = read_response(&mut again).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("program-already-provided")),
        "{body}"
    );
    assert_eq!(
        carol.json("GET", "/v1/status", b"").await.1["program_provided"],
        true
    );
}

#[tokio::test]
async fn the_providers_program_over_the_cap_is_refused_as_too_large() {
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut carol = Client::connect(&s, addr, &s.carol).await;
    let (_, before) = carol.json("GET", "/v1/status", b"").await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let over = vec![0u8; MAX_PROGRAM_BYTES + (1 << 20)];
    let (status, body) = alice.json("PUT", "/v1/program", &over).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("program-too-large")),
        "{body}"
    );
    drop(over);
    assert_eq!(carol.json("GET", "/v1/status", b"").await.1, before);
    let (status, body) = alice.json("PUT", "/v1/program", &sum_inputs()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_refused_client_that_keeps_sending_is_cut_off_at_the_drain_bounds() {
    let s = served();
    let addr = listen(s.server.clone()).await;

    // Past the byte bound: bob is refused and sends on as fast as he can.
    let mut bob = raw(&s, addr, &s.bob).await;
    bob.write_all(&put_head("/v1/inputs/%2Finput%2Fa.csv", 1 << 40, ""))
        .await
        .unwrap();
    bob.flush().await.unwrap();
    let (status, body) = read_response(&mut bob).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-input-provider"))
    );
    let block = vec![0u8; 256 << 10];
    let mut sent: u64 = 0;
    // Socket buffers on both sides hold some more than the server reads.
    let ceiling = REFUSED_BODY_DRAIN_BYTES + (64 << 20);
    let cut = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while sent <= ceiling {
            if bob.write_all(&block).await.is_err() || bob.flush().await.is_err() {
                return true;
            }
            sent += block.len() as u64;
        }
        false
    })
    .await;
    assert!(
        matches!(cut, Ok(true)),
        "the server read on past {sent} bytes after refusing ({cut:?})"
    );
    assert!(
        sent >= REFUSED_BODY_DRAIN_BYTES / 2,
        "cut off early: {sent}"
    );

    // Past the time bound: carol trickles a byte every 50 ms after her refusal.
    let carol = raw(&s, addr, &s.carol).await;
    let (mut reader, mut writer) = tokio::io::split(carol);
    writer
        .write_all(&put_head("/v1/inputs/%2Finput%2Fb.csv", 1 << 40, ""))
        .await
        .unwrap();
    writer.write_all(b"1").await.unwrap();
    writer.flush().await.unwrap();
    let (status, body) = read_response(&mut reader).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not-input-provider"))
    );
    let refused = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if writer.write_all(b"1").await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
    });
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        REFUSED_BODY_DRAIN_TIME + std::time::Duration::from_secs(10),
        reader.read_to_end(&mut rest),
    )
    .await;
    let after = refused.elapsed();
    trickle.abort();
    assert!(closed.is_ok(), "the connection stayed open for {after:?}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        after + std::time::Duration::from_secs(1) >= REFUSED_BODY_DRAIN_TIME,
        "closed after {after:?}, before the drain time"
    );

    // Neither left anything behind.
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let (_, status) = alice.json("GET", "/v1/status", b"").await;
    assert_eq!(status["state"], "provisioning", "{status}");
    let (status, body) = alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", A_CSV)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_flood_of_connections_that_never_handshake_is_bounded_and_the_computation_survives() {
    use covenant_runtime::api::{MAX_CONNECTIONS, MAX_HANDSHAKES};
    use tokio::io::AsyncReadExt as _;
    let s = served();
    let addr = listen(s.server.clone()).await;
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    let (status, body) = alice
        .json("PUT", "/v1/inputs/%2Finput%2Fa.csv", A_CSV)
        .await;
    assert_eq!(status, 200, "{body}");
    // Strangers open many more connections than the server lets handshake, and stall.
    let mut flood = Vec::new();
    for _ in 0..(MAX_HANDSHAKES * 3) {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    // All but the newest MAX_HANDSHAKES are closed at once (each newer one took an older
    // one's place): a read sees the end, not a stall. (All read at once, for well under the
    // handshake timeout.)
    let mut reads = tokio::task::JoinSet::new();
    for mut stream in flood {
        reads.spawn(async move {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(
                std::time::Duration::from_millis(1500),
                stream.read(&mut byte),
            )
            .await;
            (matches!(read, Ok(Ok(0))), stream)
        });
    }
    let mut closed = 0;
    let mut flood = Vec::new();
    while let Some(joined) = reads.join_next().await {
        let (was_closed, stream) = joined.unwrap();
        closed += usize::from(was_closed);
        flood.push(stream);
    }
    assert_eq!(
        closed,
        MAX_HANDSHAKES * 2,
        "the oldest connections over the bound are closed"
    );
    const { assert!(MAX_HANDSHAKES < MAX_CONNECTIONS) };
    // The authenticated principal's open connection is still served during the flood...
    let (status, body) = alice.json("GET", "/v1/status", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["inputs"][0]["provided"], true, "{body}");
    // ...and once the flood ends, new principals connect again, the input intact.
    drop(flood);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut bob = Client::connect(&s, addr, &s.bob).await;
    let (status, body) = bob.json("PUT", "/v1/inputs/%2Finput%2Fb.csv", B_CSV).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = alice.json("GET", "/v1/status", b"").await;
    assert_eq!(
        (status, &body["state"]),
        (200, &serde_json::json!("provisioning")),
        "{body}"
    );
}

#[tokio::test]
async fn a_sustained_flood_of_stalled_handshakes_does_not_lock_principals_out() {
    // A stranger keeps opening connections that never handshake, 200 a second, more than
    // enough to keep every handshake place taken if places were held until the timeout.
    let s = served();
    let addr = listen(s.server.clone()).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(stream) = TcpStream::connect(addr).await {
                    held.push(stream);
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            held.len()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // During the flood, principals connect and are served.
    for who in [&s.alice, &s.bob, &s.carol] {
        let mut client = Client::connect(&s, addr, who).await;
        let (status, body) = client.json("GET", "/v1/status", b"").await;
        assert_eq!(status, 200, "{body}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flooded = flooding.await.unwrap();
    assert!(
        flooded > covenant_runtime::api::MAX_HANDSHAKES,
        "the flood opened {flooded} connections"
    );
}

#[tokio::test]
async fn one_principal_cannot_hold_every_connection() {
    use covenant_runtime::api::MAX_CONNECTIONS_PER_PRINCIPAL;
    let s = served();
    let addr = listen(s.server.clone()).await;
    // Carol opens as many connections as she may, and keeps them open, idle.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS_PER_PRINCIPAL {
        let mut carol = Client::connect(&s, addr, &s.carol).await;
        let (status, _) = carol.json("GET", "/v1/status", b"").await;
        assert_eq!(status, 200);
        held.push(carol);
    }
    // One more of hers is closed after its handshake: its request gets no answer.
    let one_more = || async {
        let expected = expected_runtime(&support::validate(&s.policy)).unwrap();
        let tls = tls_connect(addr, client_config(expected, &s.carol))
            .await
            .unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method("GET")
            .uri("/v1/status")
            .header("host", "sum-study.example")
            .body(Full::new(Bytes::new()))
            .unwrap();
        sender.send_request(request).await.is_ok()
    };
    assert!(!one_more().await, "a connection over the bound is closed");
    // The others still connect and are served; and once she lets one go, she may open another
    // (as soon as the server has seen it close).
    let mut alice = Client::connect(&s, addr, &s.alice).await;
    assert_eq!(alice.json("GET", "/v1/status", b"").await.0, 200);
    drop(held.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !one_more().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the freed place never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
