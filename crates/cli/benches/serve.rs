//! End-to-end benchmark of the host and the client: the attestation service and the host run
//! in this process (tokio), the workers are the real `covenant worker` child processes, and
//! the principals are `covenant-client`s over loopback TLS. Figures go to stdout.
//!
//! Run: `cargo bench -p covenant --bench serve`.
//!
//! 1. The small flow: the private-set-intersection example (three principals connect, with
//!    the runtime's attestation verified in the TLS handshake; the program and two inputs go
//!    up; the researcher runs it and waits; all three readers fetch the count). Timed on
//!    workers already up (a computation each: a worker serves one computation, once), and
//!    again from `Host::start` of one policy (worker start, hardening, attestation) to the
//!    last fetch.
//! 2. Upload throughput: one 1 GiB input streamed from a file through the host's relay into
//!    the worker's in-memory file system, against a plain rustls TLS 1.3 transfer of the same
//!    file between two tasks of this process (and plain TCP, and SHA-256 alone).
//! 3. Concurrent computations: one host with K policies, all attested and serving, then the
//!    small flow on all K (at most `COVENANT_BENCH_PARALLEL` flows at once), every result
//!    checked.
//!
//! Knobs: `COVENANT_BENCH_FLOWS` (20), `COVENANT_BENCH_STARTS` (5), `COVENANT_BENCH_UPLOAD_MIB`
//! (1024), `COVENANT_BENCH_UPLOAD_RUNS` (3), `COVENANT_BENCH_HOSTED` (`100,150`: the K values),
//! `COVENANT_BENCH_PARALLEL` (16; 0 runs all K flows at once). Without `--bench` (as
//! `cargo test --benches` runs it) everything is tiny, to check the harness works.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use covenant_attest::PlatformKind;
use covenant_attestation_service::{AttestationService, ServiceConfig, ServiceDir, admin};
use covenant_client::{Client, Identity, NoProgress, RunResult};
use covenant_examples::Example;
use covenant_host::{Host, HostConfig, WorkerInfo};
use covenant_policy::ValidPolicy;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;

const WORKER_PROGRAM: &str = env!("CARGO_BIN_EXE_covenant");
const PSI: &str = "private-set-intersection";
const PSI_RESULT: &str = "/output/shared.txt";
const PRINCIPALS: [&str; 4] = ["hospital-a", "hospital-b", "researcher", "uploader"];
const CHUNK: usize = 256 << 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// "median / p90 / min / max ms" of `samples`.
fn summary(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort();
    format!(
        "median {} ms, p90 {} ms, min {} ms, max {} ms (n = {})",
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.9)),
        ms(sorted[0]),
        ms(*sorted.last().unwrap()),
        sorted.len()
    )
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn workers_rss_kib(workers: &[WorkerInfo]) -> u64 {
    workers.iter().map(|w| rss_kib(w.pid)).sum()
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// The attestation service (in this process, plain HTTP on loopback, SQLite), the software
/// platform the workers attest with, and the principals' identities.
struct Fixture {
    dir: PathBuf,
    service_url: String,
    ca_pem: String,
    measurement: [u8; 32],
    platform_certificate: PathBuf,
    platform_key: PathBuf,
    certificates: BTreeMap<String, String>,
    identities: BTreeMap<String, Identity>,
    _stop_service: oneshot::Sender<()>,
}

impl Fixture {
    async fn new(dir: &Path) -> Fixture {
        let service_dir = ServiceDir::new(dir.join("service"));
        let (ca, db) = service_dir.init(None).await.unwrap();
        let ca_pem = ca.certificate_pem();
        let (platform_pem, platform_key_pem) = covenant_test_support::identity("bench-platform");
        let platform_certificate = dir.join("platform.crt");
        let platform_key = dir.join("platform.key");
        std::fs::write(&platform_certificate, &platform_pem).unwrap();
        std::fs::write(&platform_key, &platform_key_pem).unwrap();
        admin::enroll_platform(
            &db,
            "bench-platform",
            PlatformKind::Software,
            platform_pem.as_bytes(),
        )
        .await
        .unwrap();
        let measurement =
            covenant_attest::software::measure_file(Path::new(WORKER_PROGRAM)).unwrap();
        admin::allow_measurement(&db, "bench-platform", &measurement.to_hex())
            .await
            .unwrap();
        let service = Arc::new(AttestationService::new(db, ca, ServiceConfig::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let service_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(covenant_attestation_service::serve(
            listener,
            service,
            None,
            async move {
                let _ = stopped.await;
            },
        ));
        let mut certificates = BTreeMap::new();
        let mut identities = BTreeMap::new();
        for name in PRINCIPALS {
            let (cert, key) = covenant_test_support::identity(name);
            identities.insert(
                name.to_owned(),
                Identity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap(),
            );
            certificates.insert(name.to_owned(), cert);
        }
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        Fixture {
            dir: dir.to_owned(),
            service_url,
            ca_pem,
            measurement: measurement.as_bytes().try_into().unwrap(),
            platform_certificate,
            platform_key,
            certificates,
            identities,
            _stop_service: stop,
        }
    }

    /// Builds `source` (policy TOML) with the program `wasm`, writes the policy JSON and
    /// returns its path and the validated policy.
    fn policy(&self, source: &str, wasm: &[u8]) -> (PathBuf, ValidPolicy) {
        let files = |path: &str| -> std::io::Result<Vec<u8>> {
            if let Some(name) = path
                .strip_prefix("ids/")
                .and_then(|p| p.strip_suffix(".crt"))
            {
                self.certificates
                    .get(name)
                    .map(|c| c.clone().into_bytes())
                    .ok_or_else(|| std::io::ErrorKind::NotFound.into())
            } else if path == "attestation/ca.crt" {
                Ok(self.ca_pem.clone().into_bytes())
            } else if path.ends_with(".wasm") {
                Ok(wasm.to_vec())
            } else {
                Err(std::io::ErrorKind::NotFound.into())
            }
        };
        let mut policy = covenant_policy::build(source, &files, Some(self.measurement)).unwrap();
        policy.expires =
            covenant_policy::format_utc(time::OffsetDateTime::now_utc() + time::Duration::days(1));
        let valid = covenant_policy::validate(&policy, time::OffsetDateTime::now_utc()).unwrap();
        let path = self
            .dir
            .join("policies")
            .join(format!("{}.json", policy.computation));
        std::fs::write(&path, covenant_policy::to_json_pretty(&policy).unwrap()).unwrap();
        (path, valid)
    }

    /// The private-set-intersection example's policy, as computation `id`.
    fn psi_policy(&self, id: &str, wasm: &[u8], strategy: &str) -> (PathBuf, ValidPolicy) {
        let source = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/private-set-intersection/policy.toml"),
        )
        .unwrap();
        let computation = "computation = \"shared-patients\"";
        let service = "service = \"http://127.0.0.1:3010\"";
        assert!(source.contains(computation) && source.contains(service));
        let jit = "strategy = \"jit\"";
        assert!(source.contains(jit));
        let source = source
            .replace(jit, &format!("strategy = \"{strategy}\""))
            .replace(computation, &format!("computation = \"{id}\""))
            .replace(service, &format!("service = \"{}\"", self.service_url));
        self.policy(&source, wasm)
    }

    fn identity(&self, name: &str) -> &Identity {
        &self.identities[name]
    }

    async fn start_host(&self, policies: Vec<PathBuf>) -> RunningHost {
        let config = HostConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            policies,
            platform: covenant_host::PlatformConfig::Software {
                certificate: self.platform_certificate.clone(),
                key: self.platform_key.clone(),
            },
            attestation_service: None,
            worker_program: WORKER_PROGRAM.into(),
            worker_args: vec!["worker".into()],
        };
        let host = Host::start(config).await.unwrap();
        let address = host.local_addr().unwrap().to_string();
        let workers = host.workers();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(host.run(
            async move {
                let _ = stopped.await;
            },
            |_, _| {},
        ));
        RunningHost {
            address,
            workers,
            stop,
            task,
        }
    }
}

struct RunningHost {
    address: String,
    workers: Vec<WorkerInfo>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<WorkerInfo>>,
}

impl RunningHost {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// One computation of the small flow: its policy, data and expected answer.
struct Small {
    policy: ValidPolicy,
    example: Example,
}

/// Phase times of one small flow.
#[derive(Clone, Copy, Default)]
struct Phases {
    connect: Duration,
    provision: Duration,
    /// Within `provision`: the program's upload, hash check and compilation.
    program: Duration,
    /// Within `provision`: the slower of the two input uploads.
    inputs: Duration,
    run: Duration,
    fetch: Duration,
    total: Duration,
}

/// The small flow: three principals connect at once (each verifying the runtime's
/// attestation in its handshake), the researcher uploads the program while the hospitals
/// upload their lists, the researcher runs and waits, and every reader fetches the count,
/// which must be the plain Rust answer.
async fn small_flow(fixture: &Fixture, host: &str, small: &Small, program: &[u8]) -> Phases {
    let started = Instant::now();
    let policy = &small.policy;
    let (mut researcher, mut a, mut b) = tokio::try_join!(
        Client::connect(policy, fixture.identity("researcher"), host),
        Client::connect(policy, fixture.identity("hospital-a"), host),
        Client::connect(policy, fixture.identity("hospital-b"), host),
    )
    .unwrap();
    let connected = started.elapsed();
    let input = |path: &str| {
        small
            .example
            .inputs
            .iter()
            .find(|i| i.path == path)
            .unwrap()
            .bytes
            .clone()
    };
    let (mut p1, mut p2, mut p3) = (NoProgress, NoProgress, NoProgress);
    let provisioning = Instant::now();
    let (program_time, a_time, b_time) = tokio::try_join!(
        async {
            researcher
                .provide_program(program.to_vec(), &mut p1)
                .await
                .map(|_| provisioning.elapsed())
        },
        async {
            a.provide_input(
                "/input/hospital-a.txt",
                input("/input/hospital-a.txt"),
                &mut p2,
            )
            .await
            .map(|_| provisioning.elapsed())
        },
        async {
            b.provide_input(
                "/input/hospital-b.txt",
                input("/input/hospital-b.txt"),
                &mut p3,
            )
            .await
            .map(|_| provisioning.elapsed())
        },
    )
    .unwrap();
    let provisioned = started.elapsed();
    match researcher.run(true).await.unwrap() {
        RunResult::Finished { record, .. } => assert_eq!(
            record.outcome,
            covenant_sandbox::Outcome::Exited(0),
            "{record:?}"
        ),
        RunResult::Started { .. } => panic!("run(wait = true) did not wait"),
    }
    let ran = started.elapsed();
    let (mut o1, mut o2, mut o3) = (Vec::new(), Vec::new(), Vec::new());
    tokio::try_join!(
        researcher.fetch(PSI_RESULT, &mut o1, &mut p1),
        a.fetch(PSI_RESULT, &mut o2, &mut p2),
        b.fetch(PSI_RESULT, &mut o3, &mut p3),
    )
    .unwrap();
    let total = started.elapsed();
    for out in [o1, o2, o3] {
        assert_eq!(String::from_utf8(out).unwrap(), small.example.expected);
    }
    Phases {
        connect: connected,
        provision: provisioned - connected,
        program: program_time,
        inputs: a_time.max(b_time),
        run: ran - provisioned,
        fetch: total - ran,
        total,
    }
}

fn psi_program() -> Vec<u8> {
    let example = covenant_examples::generate(PSI, 0).unwrap();
    covenant_guests::Guest::named(example.guest)
        .unwrap()
        .bytes()
}

fn psi_computations(
    fixture: &Fixture,
    prefix: &str,
    count: usize,
    program: &[u8],
    strategy: &str,
) -> (Vec<PathBuf>, Vec<Small>) {
    let mut paths = Vec::new();
    let mut smalls = Vec::new();
    for i in 0..count {
        let (path, policy) = fixture.psi_policy(&format!("{prefix}-{i}"), program, strategy);
        paths.push(path);
        smalls.push(Small {
            policy,
            example: covenant_examples::generate(PSI, i as u64).unwrap(),
        });
    }
    (paths, smalls)
}

fn print_phases(label: &str, phases: &[Phases]) {
    let pick = |f: fn(&Phases) -> Duration| phases.iter().map(f).collect::<Vec<_>>();
    println!("{label}: total {}", summary(&pick(|p| p.total)));
    println!(
        "    connect (3 principals, attested TLS): {}",
        summary(&pick(|p| p.connect))
    );
    println!(
        "    provision (program + 2 inputs):       {}",
        summary(&pick(|p| p.provision))
    );
    println!(
        "      program (upload, hash, compile):    {}",
        summary(&pick(|p| p.program))
    );
    println!(
        "      inputs (slower of the two):         {}",
        summary(&pick(|p| p.inputs))
    );
    println!(
        "    run --wait:                           {}",
        summary(&pick(|p| p.run))
    );
    println!(
        "    fetch (3 readers):                    {}",
        summary(&pick(|p| p.fetch))
    );
}

/// 1. The small flow on workers already up, then from `Host::start`.
async fn bench_small(fixture: &Fixture, flows: usize, starts: usize) {
    let program = psi_program();
    let example = covenant_examples::generate(PSI, 0).unwrap();
    let sizes: Vec<usize> = example.inputs.iter().map(|i| i.bytes.len()).collect();
    println!(
        "\n## 1. Small flow ({PSI}: program {} bytes, inputs {sizes:?} bytes)",
        program.len()
    );
    for strategy in ["jit", "interpreter"] {
        let (paths, smalls) = psi_computations(
            fixture,
            &format!("warm-{strategy}"),
            flows + 1,
            &program,
            strategy,
        );
        let started = Instant::now();
        let host = fixture.start_host(paths).await;
        println!(
            "{} workers started and attested in {} ms",
            flows + 1,
            ms(started.elapsed())
        );
        // The first flow warms this process (client TLS, connection set-up); not counted.
        small_flow(fixture, &host.address, &smalls[0], &program).await;
        let mut phases = Vec::new();
        for small in &smalls[1..] {
            phases.push(small_flow(fixture, &host.address, small, &program).await);
        }
        print_phases(
            &format!("strategy {strategy}, after the worker is up, one flow at a time"),
            &phases,
        );
        host.stop().await;
    }

    let mut with_start = Vec::new();
    let mut host_start = Vec::new();
    for i in 0..starts {
        let (paths, smalls) = psi_computations(fixture, &format!("cold{i}"), 1, &program, "jit");
        let started = Instant::now();
        let host = fixture.start_host(paths).await;
        let up = started.elapsed();
        small_flow(fixture, &host.address, &smalls[0], &program).await;
        with_start.push(started.elapsed());
        host_start.push(up);
        host.stop().await;
    }
    println!(
        "strategy jit, including worker start-up: total {}",
        summary(&with_start)
    );
    println!(
        "    of which Host::start (spawn, harden, attest): {}",
        summary(&host_start)
    );
}

/// Writes `bytes` bytes of incompressible-looking data to `path`.
fn write_file(path: &Path, bytes: usize) {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in block.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    let mut left = bytes;
    let mut i: u8 = 0;
    while left > 0 {
        block[0] = i;
        i = i.wrapping_add(1);
        let n = left.min(block.len());
        file.write_all(&block[..n]).unwrap();
        left -= n;
    }
    file.flush().unwrap();
}

fn rate(bytes: usize, elapsed: Duration) -> String {
    let s = elapsed.as_secs_f64();
    format!(
        "{:.0} MB/s ({:.0} MiB/s; {} ms)",
        bytes as f64 / s / 1e6,
        bytes as f64 / s / (1024.0 * 1024.0),
        ms(elapsed)
    )
}

fn upload_source(id: &str, service_url: &str, max: &str) -> String {
    format!(
        r#"computation = "{id}"
expires = "2027-06-01T00:00:00Z"

[principals]
uploader = {{ certificate = "ids/uploader.crt" }}

[program]
file = "sum_inputs.wasm"
provider = "uploader"

[[inputs]]
path = "/input/a.csv"
provider = "uploader"
max_bytes = "{max}"

[[inputs]]
path = "/input/b.csv"
provider = "uploader"
max_bytes = "1KiB"

[[outputs]]
path = "/output/result.txt"
readers = ["uploader"]

[runs]
starters = ["uploader"]
max = 1
rerun_consent = "never"

[execution]
strategy = "jit"
max_memory = "64MiB"
fuel = 1000000000
timeout = "10s"
max_output = "1KiB"
clock = false
random = false

[attestation]
service = "{service_url}"
ca_certificate = "attestation/ca.crt"

[attestation.measurements]
software = ["self"]
"#
    )
}

/// Streams `file` over `writer` in [`CHUNK`]s and shuts it down.
async fn send_file(file: &Path, writer: &mut (impl tokio::io::AsyncWrite + Unpin)) {
    let mut file = tokio::fs::File::open(file).await.unwrap();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        writer.write_all(&buf[..n]).await.unwrap();
    }
    writer.shutdown().await.unwrap();
}

/// Reads `reader` to its end, counting.
async fn drain(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> usize {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return total,
            Ok(n) => total += n,
            // A peer that closes without close_notify after sending everything.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return total,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The same file over plain rustls TLS 1.3 (ring, the provider Covenant uses) between two
/// tasks of this process on loopback.
async fn tls_reference(file: &Path) -> (usize, Duration) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()),
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let receiver = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        drain(&mut tls).await
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let started = Instant::now();
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    send_file(file, &mut tls).await;
    let received = receiver.await.unwrap();
    (received, started.elapsed())
}

/// The same file over plain TCP between two tasks of this process.
async fn tcp_reference(file: &Path) -> (usize, Duration) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        drain(&mut tcp).await
    });
    let started = Instant::now();
    let mut tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    send_file(file, &mut tcp).await;
    let received = receiver.await.unwrap();
    (received, started.elapsed())
}

/// 2. Upload throughput.
async fn bench_upload(fixture: &Fixture, mib_count: usize, runs: usize) {
    let bytes = mib_count << 20;
    println!("\n## 2. Upload of {mib_count} MiB ({bytes} bytes) from a file");
    let file = fixture.dir.join("upload.bin");
    write_file(&file, bytes);
    let program = covenant_guests::Guest::named("sum_inputs").unwrap().bytes();
    let max = format!("{}MiB", mib_count + 1);
    for run in 0..runs {
        let id = format!("upload-{run}");
        let (path, policy) =
            fixture.policy(&upload_source(&id, &fixture.service_url, &max), &program);
        let host = fixture.start_host(vec![path]).await;
        let mut client = Client::connect(&policy, fixture.identity("uploader"), &host.address)
            .await
            .unwrap();
        client
            .provide_program(program.clone(), &mut NoProgress)
            .await
            .unwrap();
        let rss_before = workers_rss_kib(&host.workers);
        let started = Instant::now();
        let received = client
            .provide_input("/input/a.csv", file.as_path(), &mut NoProgress)
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(received.bytes, bytes as u64);
        println!(
            "covenant upload (client → host relay → worker), run {}: {} (worker RSS {} → {})",
            run + 1,
            rate(bytes, elapsed),
            mib(rss_before),
            mib(workers_rss_kib(&host.workers))
        );
        drop(client);
        host.stop().await;
    }
    for run in 0..runs {
        let (received, elapsed) = tls_reference(&file).await;
        assert_eq!(received, bytes);
        println!(
            "reference: rustls TLS 1.3 loopback, one process, run {}: {}",
            run + 1,
            rate(bytes, elapsed)
        );
    }
    for run in 0..runs {
        let (received, elapsed) = tcp_reference(&file).await;
        assert_eq!(received, bytes);
        println!(
            "reference: plain TCP loopback, one process, run {}: {}",
            run + 1,
            rate(bytes, elapsed)
        );
    }
    let data = std::fs::read(&file).unwrap();
    let started = Instant::now();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&data);
    let elapsed = started.elapsed();
    println!(
        "reference: SHA-256 of the same bytes in memory (done once by the client, once by the worker): {} [{}]",
        rate(bytes, elapsed),
        &hex::encode(digest)[..8]
    );
    drop(data);
    std::fs::remove_file(&file).unwrap();
}

/// 3. K computations on one host.
async fn bench_hosted(fixture: &Arc<Fixture>, k: usize, parallel: usize) {
    let program = psi_program();
    println!(
        "\n## 3. {k} computations on one host, flows {}",
        if parallel == 0 {
            "all at once".to_owned()
        } else {
            format!("at most {parallel} at once")
        }
    );
    let (paths, smalls) = psi_computations(fixture, &format!("k{k}"), k, &program, "jit");
    let started = Instant::now();
    let host = fixture.start_host(paths).await;
    let start_up = started.elapsed();
    let idle_rss = workers_rss_kib(&host.workers);
    println!(
        "{k} workers started and attested in {} ms; workers' RSS serving, idle: {} ({} per worker)",
        ms(start_up),
        mib(idle_rss),
        mib(idle_rss / k as u64)
    );
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(idle_rss));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let workers = host.workers.clone();
        let peak = Arc::clone(&peak);
        let sampling = Arc::clone(&sampling);
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let now = workers_rss_kib(&workers);
                peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(if parallel == 0 {
        k
    } else {
        parallel
    }));
    let program = Arc::new(program);
    let started = Instant::now();
    let mut flows = tokio::task::JoinSet::new();
    for small in smalls {
        let limit = Arc::clone(&limit);
        let address = host.address.clone();
        let fixture = Arc::clone(fixture);
        let program = Arc::clone(&program);
        // A task per flow, so the clients' TLS work spreads over the runtime's threads.
        flows.spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            small_flow(&fixture, &address, &small, &program).await
        });
    }
    let mut phases = Vec::new();
    while let Some(done) = flows.join_next().await {
        phases.push(done.unwrap());
    }
    let total = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let after_rss = workers_rss_kib(&host.workers);
    println!(
        "{} flows, every result correct, in {} ms ({:.1} computations/s)",
        phases.len(),
        ms(total),
        phases.len() as f64 / total.as_secs_f64()
    );
    print_phases("    per flow", &phases);
    println!(
        "workers' RSS: peak during the flows {} (sampled every 50 ms), after {}",
        mib(peak.load(std::sync::atomic::Ordering::Relaxed)),
        mib(after_rss)
    );
    host.stop().await;
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (flows, starts, upload_mib, upload_runs, hosted, parallel) = if quick {
        (2, 1, 16, 1, vec![4], 2)
    } else {
        let hosted = std::env::var("COVENANT_BENCH_HOSTED")
            .unwrap_or_else(|_| "100,150".to_owned())
            .split(',')
            .filter_map(|k| k.trim().parse().ok())
            .collect();
        (
            env_usize("COVENANT_BENCH_FLOWS", 20),
            env_usize("COVENANT_BENCH_STARTS", 5),
            env_usize("COVENANT_BENCH_UPLOAD_MIB", 1024),
            env_usize("COVENANT_BENCH_UPLOAD_RUNS", 3),
            hosted,
            env_usize("COVENANT_BENCH_PARALLEL", 16),
        )
    };
    let only = std::env::var("COVENANT_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    println!("# cargo bench -p covenant --bench serve");
    println!(
        "worker program: {}",
        Path::new(WORKER_PROGRAM)
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let temp = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let fixture = Arc::new(Fixture::new(temp.path()).await);
        if wanted("small") {
            bench_small(&fixture, flows, starts).await;
        }
        if wanted("upload") {
            bench_upload(&fixture, upload_mib, upload_runs).await;
        }
        if wanted("hosted") {
            for k in hosted {
                bench_hosted(&fixture, k, parallel).await;
            }
        }
    });
}
