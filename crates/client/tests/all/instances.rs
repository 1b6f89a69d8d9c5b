//! Instances (issue 12, section 1): a client keeps to the instance of the computation it first
//! reached and refuses another one — a fork, or a restart it was not told about — before
//! sending a request; `InstancePin` keeps that instance between sessions.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use covenant_attest::Digest;
use covenant_client::{
    Client, ClientError, INSTANCE_PIN_FORMAT, InstancePin, MAX_INSTANCE_PIN_BYTES, NoProgress,
    PinChange,
};
use covenant_policy::ValidPolicy;
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{Credentials, Service, credentials, policy, sum_inputs, validate};

/// One computation's policy, its principals, and the service that attests its instances.
struct Fixture {
    service: Service,
    policy: ValidPolicy,
    alice: Credentials,
    carol: Credentials,
}

impl Fixture {
    fn new() -> Fixture {
        let service = Service::new();
        let (alice, bob, carol) = (
            credentials("alice"),
            credentials("bob"),
            credentials("carol"),
        );
        let policy = validate(&policy(&service, [&alice, &bob, &carol]));
        Fixture {
            service,
            policy,
            alice,
            carol,
        }
    }

    /// A new instance of the computation: its own attested key, the same policy. Returns it
    /// and its fingerprint.
    fn instance(&self) -> (ApiServer, Digest) {
        let name = &self.policy.policy().computation;
        let (key, chain) = self.service.attested_key_named(&self.policy, name);
        let fingerprint = covenant_attest::instance_fingerprint(&chain[0]).unwrap();
        let signer = ReceiptSigner::new(&key, chain.clone()).unwrap();
        let computation = Computation::new(self.policy.clone(), signer).unwrap();
        let server = ApiServer::new(computation, &ServerIdentity::new(key, chain)).unwrap();
        (server, fingerprint)
    }
}

/// A hostile host: it routes every new connection to the instance it chooses, and can cut
/// the connections it holds.
struct ForkingHost {
    addr: SocketAddr,
    target: Arc<Mutex<ApiServer>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ForkingHost {
    async fn new(first: ApiServer) -> ForkingHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(first));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (routes, held) = (Arc::clone(&target), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = routes.lock().unwrap().clone();
                let task = tokio::spawn(async move {
                    let _ = server.serve_connection(socket).await;
                });
                held.lock().unwrap().push(task);
            }
        });
        ForkingHost {
            addr,
            target,
            connections,
        }
    }

    fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every connection it holds and sends the next ones to `server`.
    fn switch_to(&self, server: ApiServer) {
        *self.target.lock().unwrap() = server;
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

fn assert_instance_changed(error: &ClientError, expected: Digest, found: Digest) {
    match error {
        ClientError::InstanceChanged {
            expected: e,
            found: f,
            ..
        } => assert_eq!((e, f), (&expected.to_hex(), &found.to_hex())),
        other => panic!("expected InstanceChanged, got {other:?}"),
    }
    let message = error.to_string();
    for needle in [
        "another instance of this computation",
        "no request was sent",
        "fork",
        "--accept-new-instance",
    ] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[tokio::test]
async fn a_client_refuses_another_instance_when_it_reconnects_and_sends_it_nothing() {
    let f = Fixture::new();
    let (a, fingerprint_a) = f.instance();
    let (b, fingerprint_b) = f.instance();
    assert_ne!(fingerprint_a, fingerprint_b);
    let host = ForkingHost::new(a).await;

    let mut alice = Client::connect(&f.policy, &f.alice.identity, &host.address())
        .await
        .unwrap();
    assert_eq!(alice.instance(), Some(fingerprint_a));
    alice.status().await.unwrap();

    // The host drops the connection and routes the retry to a second instance of the same
    // computation, attested by the same service for the same policy.
    host.switch_to(b.clone());
    let error = alice.status().await.unwrap_err();
    assert_instance_changed(&error, fingerprint_a, fingerprint_b);
    // And again on the next call: nothing reaches the second instance.
    let error = alice
        .provide_program(sum_inputs(), &mut NoProgress)
        .await
        .unwrap_err();
    assert_instance_changed(&error, fingerprint_a, fingerprint_b);
    let mut carol = Client::connect(&f.policy, &f.carol.identity, &host.address())
        .await
        .unwrap();
    assert_eq!(carol.instance(), Some(fingerprint_b));
    assert!(!carol.status().await.unwrap().program_provided);
}

#[tokio::test]
async fn a_client_told_to_expect_an_instance_refuses_any_other_before_sending() {
    let f = Fixture::new();
    let (a, fingerprint_a) = f.instance();
    let (b, fingerprint_b) = f.instance();
    let at_a = crate::support::listen(a).await.to_string();
    let at_b = crate::support::listen(b).await.to_string();

    let error =
        Client::connect_to_instance(&f.policy, &f.alice.identity, &at_b, Some(fingerprint_a))
            .await
            .unwrap_err();
    assert_instance_changed(&error, fingerprint_a, fingerprint_b);
    let mut to_a =
        Client::connect_to_instance(&f.policy, &f.alice.identity, &at_a, Some(fingerprint_a))
            .await
            .unwrap();
    to_a.status().await.unwrap();
    // Without an expectation, the first instance reached is the one kept to.
    let to_b = Client::connect_to_instance(&f.policy, &f.alice.identity, &at_b, None)
        .await
        .unwrap();
    assert_eq!(to_b.instance(), Some(fingerprint_b));
}

#[tokio::test]
async fn the_instance_file_pins_the_first_instance_and_is_replaced_only_when_asked() {
    let f = Fixture::new();
    let (a, fingerprint_a) = f.instance();
    let (b, fingerprint_b) = f.instance();
    let at_a = crate::support::listen(a).await.to_string();
    let at_b = crate::support::listen(b).await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = InstancePin::path_beside(&dir.path().join("policy.json"));
    assert_eq!(file, dir.path().join("policy.json.instance"));

    // First contact pins instance A.
    let mut pin = InstancePin::load(&file, &f.policy).unwrap();
    assert_eq!(pin.instance(), None);
    let alice = Client::connect_to_instance(&f.policy, &f.alice.identity, &at_a, pin.instance())
        .await
        .unwrap();
    assert_eq!(pin.record(&alice).unwrap(), PinChange::Pinned);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["format"], INSTANCE_PIN_FORMAT);
    assert_eq!(written["instance"], fingerprint_a.to_hex());
    assert_eq!(written["policy_sha256"], f.policy.hash().to_hex());
    assert_eq!(written["computation"], "shared-patients");

    // A later session expects A, and refuses B.
    let mut pin = InstancePin::load(&file, &f.policy).unwrap();
    assert_eq!(pin.instance(), Some(fingerprint_a));
    let error = Client::connect_to_instance(&f.policy, &f.alice.identity, &at_b, pin.instance())
        .await
        .unwrap_err();
    assert_instance_changed(&error, fingerprint_a, fingerprint_b);
    let again = Client::connect_to_instance(&f.policy, &f.alice.identity, &at_a, pin.instance())
        .await
        .unwrap();
    assert_eq!(pin.record(&again).unwrap(), PinChange::Unchanged);

    // Accepting the new instance: connect without an expectation, record it.
    let accepted = Client::connect_to_instance(&f.policy, &f.alice.identity, &at_b, None)
        .await
        .unwrap();
    assert_eq!(
        pin.record(&accepted).unwrap(),
        PinChange::Replaced {
            previous: fingerprint_a
        }
    );
    assert_eq!(
        InstancePin::load(&file, &f.policy).unwrap().instance(),
        Some(fingerprint_b)
    );

    // The file pins nothing for another policy, and is replaced by its instance.
    let other = Fixture::new();
    let (c, fingerprint_c) = other.instance();
    let at_c = crate::support::listen(c).await.to_string();
    let mut other_pin = InstancePin::load(&file, &other.policy).unwrap();
    assert_eq!(other_pin.instance(), None);
    assert_eq!(other_pin.held().unwrap().instance, fingerprint_b);
    let to_c = Client::connect(&other.policy, &other.alice.identity, &at_c)
        .await
        .unwrap();
    match other_pin.record(&to_c).unwrap() {
        PinChange::ReplacedOtherPolicy { previous } => {
            assert_eq!(previous.instance, fingerprint_b);
        }
        change => panic!("{change:?}"),
    }
    assert_eq!(other_pin.instance(), Some(fingerprint_c));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "no partial file is left behind"
    );
}

#[tokio::test]
async fn two_clients_pinning_at_once_agree_or_the_second_is_refused() {
    let f = Fixture::new();
    let (a, fingerprint_a) = f.instance();
    let (b, fingerprint_b) = f.instance();
    let at_a = crate::support::listen(a).await.to_string();
    let at_b = crate::support::listen(b).await.to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.instance");
    // Both read the file before either wrote it; each reached another instance (a fork).
    let mut first = InstancePin::load(&file, &f.policy).unwrap();
    let mut second = InstancePin::load(&file, &f.policy).unwrap();
    let mut third = InstancePin::load(&file, &f.policy).unwrap();
    let to_a = Client::connect(&f.policy, &f.alice.identity, &at_a)
        .await
        .unwrap();
    let to_b = Client::connect(&f.policy, &f.carol.identity, &at_b)
        .await
        .unwrap();
    assert_eq!(first.record(&to_a).unwrap(), PinChange::Pinned);
    let error = second.record(&to_b).unwrap_err();
    assert_instance_changed(&error, fingerprint_a, fingerprint_b);
    assert_eq!(third.record(&to_a).unwrap(), PinChange::Unchanged);
    assert_eq!(
        InstancePin::load(&file, &f.policy).unwrap().instance(),
        Some(fingerprint_a)
    );
}

#[test]
fn a_corrupt_or_oversized_instance_file_is_refused_with_what_to_do() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json.instance");
    for (bytes, says) in [
        (b"{\"instance\": 3}".to_vec(), "not an instance file"),
        (
            format!(
                "{{\"format\":\"covenant-instance-pin/9\",\"computation\":\"c\",\
                 \"policy_sha256\":\"{h}\",\"instance\":\"{h}\",\"pinned_at\":\"x\"}}",
                h = "ab".repeat(32)
            )
            .into_bytes(),
            "covenant-instance-pin/1",
        ),
        (vec![b' '; MAX_INSTANCE_PIN_BYTES + 1], "larger than"),
    ] {
        std::fs::write(&file, bytes).unwrap();
        let error = InstancePin::load(&file, &f.policy).unwrap_err();
        assert!(
            matches!(error, ClientError::InstancePin { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains(says), "{message}");
        assert!(message.contains("Remove it only if"), "{message}");
    }
}
