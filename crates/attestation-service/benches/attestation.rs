//! Attestation service benchmark: attestations per second and latency percentiles, on SQLite
//! and (when `COVENANT_TEST_POSTGRES_URL` is set) PostgreSQL.
//!
//! Run: `cargo bench -p covenant-attestation-service --bench attestation`.
//!
//! Each attestation is what a host does for one worker: `POST /v1/nonces`, the runtime's
//! preparation (key, CSR, evidence; not timed), `POST /v1/attestations`, each for a computation
//! of its own (the service certifies one live instance per computation). The service runs in
//! this process on loopback, over plain HTTP, one TCP connection per call; `CONCURRENCY` clients
//! run at once. Settings: `COVENANT_BENCH_ATTESTATIONS` (default 2000) and
//! `COVENANT_BENCH_CONCURRENCY` (default 16). Client and server share the machine's cores, so
//! the figures are a floor for the service alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use covenant_attest::software::SoftwarePlatform;
use covenant_attest::wire::prepare_attestation;
use covenant_attest::{Digest, Measurement, Nonce, PlatformKind};
use covenant_attestation_service::{
    AttestationClient, AttestationService, ServiceConfig, ServiceDir, admin,
};
use sqlx::Connection as _;

const WARM_UP: usize = 50;

/// Numbers the benchmark's computations: one attestation each.
static COMPUTATIONS: AtomicUsize = AtomicUsize::new(0);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn identity() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench-host");
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

async fn fresh_postgres(base: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(base).await.unwrap();
    let name = format!(
        "covenant_bench_{}",
        &Nonce::random().unwrap().to_hex()[..12]
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let (scheme, rest) = base.split_once("://").unwrap();
    let authority = rest.split(['/', '?']).next().unwrap();
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn run(backend: &str, db_url: Option<String>, total: usize, concurrency: usize) {
    let temp = tempfile::tempdir().unwrap();
    let dir = ServiceDir::new(temp.path().join("service"));
    let (ca, db) = dir.init(db_url.as_deref()).await.unwrap();
    let (cert, key) = identity();
    let measurement = Measurement::sha256([0x42; 32]);
    admin::enroll_platform(&db, "bench-host", PlatformKind::Software, cert.as_bytes())
        .await
        .unwrap();
    admin::allow_measurement(&db, "bench-host", &measurement.to_hex())
        .await
        .unwrap();
    let platform =
        Arc::new(SoftwarePlatform::new(cert.as_bytes(), key.as_bytes(), measurement).unwrap());
    let service = Arc::new(AttestationService::new(db, ca, ServiceConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(covenant_attestation_service::serve(
        listener,
        service.clone(),
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = AttestationClient::new(&url, None).unwrap();

    let attest_once = |client: AttestationClient, platform: Arc<SoftwarePlatform>| async move {
        let started = Instant::now();
        let nonce = client.nonce().await.unwrap().nonce;
        let nonce_latency = started.elapsed();
        let computation = format!("bench-{}", COMPUTATIONS.fetch_add(1, Ordering::Relaxed));
        let (_, request) =
            prepare_attestation(platform.as_ref(), Digest([7; 32]), &computation, &[], nonce)
                .unwrap();
        let submitted = Instant::now();
        client.attest(&request).await.unwrap();
        (nonce_latency, submitted.elapsed())
    };

    for _ in 0..WARM_UP {
        attest_once(client.clone(), platform.clone()).await;
    }

    let started = Instant::now();
    let per_worker = total / concurrency;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let platform = platform.clone();
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                latencies.push(attest_once(client.clone(), platform.clone()).await);
            }
            latencies
        });
    }
    let mut nonce_latencies = Vec::new();
    let mut attest_latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        for (nonce, attest) in done.unwrap() {
            nonce_latencies.push(nonce);
            attest_latencies.push(attest);
        }
    }
    let elapsed = started.elapsed();
    let count = attest_latencies.len();
    nonce_latencies.sort();
    attest_latencies.sort();
    let counts = service.database().counts().await.unwrap();
    assert_eq!(counts.certificates as usize, count + WARM_UP);

    println!(
        "| {backend} | {count} | {concurrency} | {:.0} | {} | {} | {} | {} | {} | {} |",
        count as f64 / elapsed.as_secs_f64(),
        ms(percentile(&attest_latencies, 0.50)),
        ms(percentile(&attest_latencies, 0.90)),
        ms(percentile(&attest_latencies, 0.99)),
        ms(*attest_latencies.last().unwrap()),
        ms(percentile(&nonce_latencies, 0.50)),
        ms(percentile(&nonce_latencies, 0.99)),
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    service.database().close().await;
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a tiny round
    // then so the bench is checked to work without taking minutes.
    let quick = !std::env::args().any(|a| a == "--bench");
    let total = if quick {
        32
    } else {
        env_usize("COVENANT_BENCH_ATTESTATIONS", 2000)
    };
    let concurrency = if quick {
        4
    } else {
        env_usize("COVENANT_BENCH_CONCURRENCY", 16)
    }
    .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| database | attestations | concurrency | attestations/s | attest p50 ms | p90 ms | p99 ms | max ms | nonce p50 ms | nonce p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    runtime.block_on(run("SQLite", None, total, concurrency));
    match std::env::var("COVENANT_TEST_POSTGRES_URL") {
        Ok(base) => runtime.block_on(async {
            let url = fresh_postgres(&base).await;
            run("PostgreSQL", Some(url), total, concurrency).await;
        }),
        Err(_) => println!("(PostgreSQL skipped: COVENANT_TEST_POSTGRES_URL is not set)"),
    }
}
