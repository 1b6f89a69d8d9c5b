//! A builder for a running service on loopback with a fresh database, a software platform
//! enrolled and its measurement allowed.

use std::sync::Arc;

use covenant_attest::software::SoftwarePlatform;
use covenant_attest::wire::{AttestationRequest, prepare_attestation};
use covenant_attest::{Digest, Measurement, Nonce, PlatformKind, TrustAnchors};
use covenant_attestation_service::db::{AuditEntry, Counts};
use covenant_attestation_service::{
    AttestationClient, AttestationService, Database, ServiceConfig, ServiceDir, admin,
};
use sqlx::Connection as _;
use tokio::sync::oneshot;

/// A self-signed P-256 identity with CN = `name` (as `covenant identity new` makes it).
pub use covenant_test_support::identity;

pub const MEASUREMENT: Measurement = Measurement::sha256([0x11; 32]);
pub const POLICY: Digest = Digest([0x22; 32]);
pub const COMPUTATION: &str = "computation-7";
pub const PLATFORM: &str = "host-1";

/// Which databases to run on: SQLite always, PostgreSQL when configured.
pub fn backends() -> Vec<&'static str> {
    let mut backends = vec!["sqlite"];
    if std::env::var_os("COVENANT_TEST_POSTGRES_URL").is_some() {
        backends.push("postgres");
    }
    backends
}

/// A fresh database URL for `backend`: `None` for SQLite (the service directory's own file,
/// new with every directory), a new database for PostgreSQL.
pub async fn fresh_database_url(backend: &str) -> Option<String> {
    match backend {
        "sqlite" => None,
        "postgres" => {
            let base = std::env::var("COVENANT_TEST_POSTGRES_URL").unwrap();
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&base).await.unwrap();
            let name = format!("covenant_test_{}", &Nonce::random().unwrap().to_hex()[..16]);
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            Some(with_database(&base, &name))
        }
        other => panic!("unknown backend {other}"),
    }
}

/// `postgres://user:pass@host:port/old?x` → `postgres://user:pass@host:port/NEW?x`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority_and_path.split('/').next().unwrap();
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

pub struct Harness {
    pub backend: &'static str,
    pub service: Arc<AttestationService>,
    pub client: AttestationClient,
    pub platform: SoftwarePlatform,
    pub platform_certificate_pem: String,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    pub async fn start(backend: &'static str) -> Self {
        Self::start_with(backend, ServiceConfig::default(), false).await
    }

    pub async fn start_with(backend: &'static str, config: ServiceConfig, https: bool) -> Self {
        Self::start_inner(backend, config, https, TrustAnchors::pinned()).await
    }

    /// A service that checks hardware evidence against `anchors` (test roots).
    pub async fn start_with_anchors(backend: &'static str, anchors: TrustAnchors) -> Self {
        Self::start_inner(backend, ServiceConfig::default(), false, anchors).await
    }

    async fn start_inner(
        backend: &'static str,
        config: ServiceConfig,
        https: bool,
        anchors: TrustAnchors,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db_url = fresh_database_url(backend).await;
        let service_dir = ServiceDir::new(dir.path().join("service"));
        let (ca, db) = service_dir.init(db_url.as_deref()).await.unwrap();
        let (cert_pem, key_pem) = identity(PLATFORM);
        admin::enroll_platform(&db, PLATFORM, PlatformKind::Software, cert_pem.as_bytes())
            .await
            .unwrap();
        admin::allow_measurement(&db, PLATFORM, &MEASUREMENT.to_hex())
            .await
            .unwrap();
        let platform =
            SoftwarePlatform::new(cert_pem.as_bytes(), key_pem.as_bytes(), MEASUREMENT).unwrap();
        let tls = https.then(|| {
            covenant_attestation_service::tls_config(&ca, &["localhost".into(), "127.0.0.1".into()])
                .unwrap()
        });
        let ca_der = ca.certificate_der().to_vec();
        let service = Arc::new(AttestationService::new(db, ca, config).with_trust_anchors(anchors));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(covenant_attestation_service::serve(
            listener,
            service.clone(),
            tls,
            async move {
                let _ = stop.await;
            },
        ));
        let url = if https {
            format!("https://localhost:{port}")
        } else {
            format!("http://127.0.0.1:{port}")
        };
        let client = AttestationClient::new(&url, Some(&ca_der)).unwrap();
        Self {
            backend,
            service,
            client,
            platform,
            platform_certificate_pem: cert_pem,
            dir,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    pub fn db(&self) -> &Database {
        self.service.database()
    }

    pub async fn nonce(&self) -> Nonce {
        self.client.nonce().await.unwrap().nonce
    }

    /// A well-formed request from the enrolled platform for `nonce`, for [`COMPUTATION`].
    pub fn request(&self, nonce: Nonce) -> (rcgen::KeyPair, AttestationRequest) {
        self.request_for(nonce, COMPUTATION)
    }

    /// A well-formed request from the enrolled platform for `nonce`, for `computation`
    /// (under [`POLICY`]). The service certifies one live instance per computation, so tests
    /// that need several certificates at once name several computations.
    pub fn request_for(
        &self,
        nonce: Nonce,
        computation: &str,
    ) -> (rcgen::KeyPair, AttestationRequest) {
        prepare_attestation(
            &self.platform,
            POLICY,
            computation,
            &["runtime.example".into()],
            nonce,
        )
        .unwrap()
    }

    pub async fn last_audit(&self) -> AuditEntry {
        self.db().audit_log(1).await.unwrap().pop().unwrap()
    }

    pub async fn counts(&self) -> Counts {
        self.db().counts().await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.db().close().await;
    }
}
