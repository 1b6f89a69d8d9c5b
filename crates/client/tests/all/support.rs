//! Fixtures: an attestation service (CA + software platform), three principals whose keys the
//! test holds, the sum_inputs policy, and a served computation on a loopback listener.

use std::net::SocketAddr;

use covenant_client::{Client, Identity};
use covenant_policy::{Policy, Strategy, ValidPolicy};
use covenant_runtime::api::{ApiServer, ServerIdentity};
use covenant_runtime::{Computation, ReceiptSigner};
pub use covenant_test_support::{Service, listen, listen_relayed, sha256_hex, validate};

pub const A_CSV: &[u8] = b"1,2,3\n4\n";
pub const B_CSV: &[u8] = b"10,20\n";

/// A principal's credentials: certificate PEM (for the policy) and the client identity.
pub struct Credentials {
    pub pem: String,
    pub key_pem: String,
    pub identity: Identity,
}

/// A self-signed P-256 certificate with CN = `name`, as `covenant identity new` makes one.
pub fn credentials(name: &str) -> Credentials {
    let id = covenant_test_support::principal_identity(name);
    let identity =
        Identity::from_pem(id.certificate_pem.as_bytes(), id.key_pem.as_bytes()).unwrap();
    Credentials {
        pem: id.certificate_pem,
        key_pem: id.key_pem,
        identity,
    }
}

/// The test policy around the sum_inputs guest, for computation "shared-patients" on the
/// interpreter, its principals alice, bob and carol holding `principals`: alice provides the
/// program and `/input/a.csv` and starts runs, bob provides `/input/b.csv`, carol reads
/// `/output/result.txt` and stdout, alice reads stderr.
pub fn policy(service: &Service, principals: [&Credentials; 3]) -> Policy {
    let mut policy =
        covenant_test_support::sum_inputs_policy(&service.ca, &sum_inputs(), Strategy::Interpreter);
    policy.computation = "shared-patients".into();
    for (p, c) in policy.principals.iter_mut().zip(principals) {
        p.certificate = c.pem.clone();
    }
    policy
}

pub fn sum_inputs() -> Vec<u8> {
    covenant_guests::SUM_INPUTS.bytes()
}

/// A computation served on a loopback listener, with the keys of its three principals.
pub struct Served {
    pub policy: ValidPolicy,
    pub alice: Credentials,
    pub bob: Credentials,
    pub carol: Credentials,
    pub server: ApiServer,
    pub addr: SocketAddr,
    /// The same computation behind a relay like the host's (`listen_relayed`).
    pub relayed: SocketAddr,
}

impl Served {
    pub async fn connect(&self, who: &Credentials) -> Client {
        Client::connect(&self.policy, &who.identity, &self.addr.to_string())
            .await
            .unwrap()
    }

    /// A client connected through the relay, as through `covenant serve`.
    pub async fn connect_relayed(&self, who: &Credentials) -> Client {
        Client::connect(&self.policy, &who.identity, &self.relayed.to_string())
            .await
            .unwrap()
    }
}

pub async fn served() -> Served {
    served_with(|_| {}).await
}

/// Serves the test policy after `edit`, attested by a fresh service.
pub async fn served_with(edit: impl FnOnce(&mut Policy)) -> Served {
    let service = Service::new();
    let (alice, bob, carol) = (
        credentials("alice"),
        credentials("bob"),
        credentials("carol"),
    );
    let mut policy = policy(&service, [&alice, &bob, &carol]);
    edit(&mut policy);
    let valid = validate(&policy);
    let server = api_server(&service, &valid, &valid);
    let addr = listen(server.clone()).await;
    let relayed = listen_relayed(server.clone()).await;
    Served {
        policy: valid,
        alice,
        bob,
        carol,
        server,
        addr,
        relayed,
    }
}

/// A server whose attested key was certified for `attested` and whose computation runs
/// `runs` (the same policy, except to stage a misconfigured runtime).
pub fn api_server(service: &Service, attested: &ValidPolicy, runs: &ValidPolicy) -> ApiServer {
    let name = &attested.policy().computation;
    let (key, chain) = service.attested_key_named(attested, name);
    let signer = ReceiptSigner::new(&key, chain.clone()).unwrap();
    let computation = Computation::new(runs.clone(), signer).unwrap();
    ApiServer::new(computation, &ServerIdentity::new(key, chain)).unwrap()
}
