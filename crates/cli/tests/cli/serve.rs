//! `covenant serve`, `covenant worker` and `covenant client` through the real binaries on
//! loopback: a real attestation service, a host with one worker per policy, and the principals
//! as separate `covenant client` processes.
//!
//! Each test builds its own [`Deployment`] in a temporary directory: identities, an initialised
//! attestation service (SQLite) that accepts this very binary's measurement, the policies, and
//! a running `covenant serve`. Everything is a child process killed when the test ends.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers may panic on broken fixtures

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use covenant_guests::Guest;

const BIN: &str = env!("CARGO_BIN_EXE_covenant");

/// The principals of every policy here: two data providers and the program provider, who
/// starts the run.
const PRINCIPALS: [&str; 3] = ["hospital-a", "hospital-b", "researcher"];

/// How long anything here may take before the test gives up (a bound on a hang, not a
/// performance assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// The signal the seccomp filter kills with (Linux).
const SIGSYS: i32 = 31;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn covenant_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the covenant binary runs")
}

fn ok(output: Output, what: &str) -> Output {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

/// Polls `condition` until it holds; panics with `what` after [`PATIENCE`].
fn poll<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    poll(what, || child.try_wait().unwrap())
}

/// Sends `signal` (`-9`, `-INT`) to a process this test started (directly or through the
/// host it started).
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Lines a child writes, collected by a reader thread.
#[derive(Default)]
struct Lines {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                collected.lines.lock().unwrap().0.push(line);
                collected.changed.notify_all();
            }
            collected.lines.lock().unwrap().1 = true;
            collected.changed.notify_all();
        });
        lines
    }

    fn all(&self) -> String {
        self.lines.lock().unwrap().0.join("\n")
    }

    /// The first line (from index `from`) that `matches`, and its index; panics if the
    /// stream ends or [`PATIENCE`] passes first.
    fn wait_for(&self, from: usize, what: &str, matches: impl Fn(&str) -> bool) -> (usize, String) {
        let start = Instant::now();
        let mut guard = self.lines.lock().unwrap();
        loop {
            if let Some((i, line)) = guard
                .0
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, l)| matches(l))
            {
                return (i, line.clone());
            }
            assert!(
                !guard.1,
                "the stream ended before {what}:\n{}",
                guard.0.join("\n")
            );
            let left = PATIENCE
                .checked_sub(start.elapsed())
                .unwrap_or_else(|| panic!("timed out waiting for {what}:\n{}", guard.0.join("\n")));
            guard = self.changed.wait_timeout(guard, left).unwrap().0;
        }
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `covenant serve`.
struct Serve {
    child: Killed,
    address: String,
    /// Computation id → worker pid, as `serve` printed them.
    pids: HashMap<String, u32>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
}

impl Serve {
    /// Waits for `serve` to print that `computation`'s worker ended, and returns the line.
    fn wait_ended(&self, computation: &str) -> String {
        let prefix = format!("computation {computation}: worker ");
        self.stdout
            .wait_for(0, &format!("the end of {computation}"), |l| {
                l.starts_with(&prefix)
                    && (l.contains("worker ended:") || l.contains("worker FAILED:"))
            })
            .1
    }

    fn wait_exit(&mut self) -> ExitStatus {
        wait_exit(&mut self.child.0, "covenant serve to exit")
    }

    fn logs(&self) -> String {
        format!(
            "serve stdout:\n{}\nserve stderr:\n{}",
            self.stdout.all(),
            self.stderr.all()
        )
    }
}

/// What a policy of the deployment differs in.
#[derive(Clone)]
struct Spec {
    computation: &'static str,
    program: Guest,
    max_bytes: &'static str,
    timeout: &'static str,
    required: bool,
    max_output: &'static str,
    /// The program's arguments (after its name).
    args: &'static [&'static str],
}

impl Spec {
    fn psi(computation: &'static str) -> Spec {
        Spec {
            computation,
            program: covenant_guests::PRIVATE_SET_INTERSECTION,
            max_bytes: "8MiB",
            timeout: "60s",
            required: true,
            max_output: "1KiB",
            args: &[],
        }
    }
}

/// Identities, an attestation service, policies and a host, in a temporary directory.
struct Deployment {
    // Dropped in this order: the host, the attestation service, then their directory.
    serve: Option<Serve>,
    _service: Killed,
    service_url: String,
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in PRINCIPALS.iter().chain(&["platform"]) {
            ok(
                covenant_in(root, &["identity", "new", name, "--dir", "ids"]),
                "identity new",
            );
        }
        ok(
            covenant_in(
                root,
                &["attestation-service", "init", "--dir", "attestation"],
            ),
            "attestation-service init",
        );
        ok(
            covenant_in(
                root,
                &[
                    "attestation-service",
                    "enroll-platform",
                    "--dir",
                    "attestation",
                    "laptop",
                    "ids/platform.crt",
                ],
            ),
            "enroll-platform",
        );
        let measurement = measurement(root);
        ok(
            covenant_in(
                root,
                &[
                    "attestation-service",
                    "allow-measurement",
                    "--dir",
                    "attestation",
                    "laptop",
                    &measurement,
                ],
            ),
            "allow-measurement",
        );
        let mut child = Command::new(BIN)
            .current_dir(root)
            .args([
                "attestation-service",
                "serve",
                "--dir",
                "attestation",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let service = Killed(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let service_url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(service_url.starts_with("http://127.0.0.1:"), "{line}");
        Deployment {
            dir,
            service_url,
            serve: None,
            _service: service,
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Builds `NAME.json` from a policy source like the private-set-intersection example's.
    fn policy(&self, name: &str, spec: &Spec) -> PathBuf {
        let root = self.root();
        let wasm = format!("{}.wasm", spec.program.name);
        std::fs::write(root.join(&wasm), spec.program.bytes()).unwrap();
        let expires =
            covenant_policy::format_utc(time::OffsetDateTime::now_utc() + time::Duration::days(1));
        let input = |who: &str| {
            format!(
                "[[inputs]]\npath = \"/input/{who}.txt\"\nprovider = \"{who}\"\n\
                 max_bytes = \"{}\"\nrequired = {}\n\n",
                spec.max_bytes, spec.required
            )
        };
        let source = format!(
            "computation = \"{computation}\"\n\
             expires = \"{expires}\"\n\n\
             [principals]\n\
             hospital-a = {{ certificate = \"ids/hospital-a.crt\" }}\n\
             hospital-b = {{ certificate = \"ids/hospital-b.crt\" }}\n\
             researcher = {{ certificate = \"ids/researcher.crt\" }}\n\n\
             [program]\nfile = \"{wasm}\"\nprovider = \"researcher\"\nargs = {args:?}\n\n\
             {a}{b}\
             [[outputs]]\npath = \"/output/shared.txt\"\n\
             readers = [\"hospital-a\", \"hospital-b\", \"researcher\"]\n\n\
             [[outputs]]\npath = \"stdout\"\n\
             readers = [\"hospital-a\", \"hospital-b\", \"researcher\"]\n\n\
             [runs]\nstarters = [\"researcher\"]\nmax = 1\nrerun_consent = \"never\"\n\n\
             [execution]\nstrategy = \"jit\"\nmax_memory = \"256MiB\"\n\
             timeout = \"{timeout}\"\nmax_output = \"{max_output}\"\nclock = false\nrandom = false\n\n\
             [attestation]\nservice = \"{url}\"\nca_certificate = \"attestation/ca.crt\"\n\n\
             [attestation.measurements]\nsoftware = [\"self\"]\n",
            computation = spec.computation,
            a = input("hospital-a"),
            b = input("hospital-b"),
            timeout = spec.timeout,
            max_output = spec.max_output,
            args = spec.args,
            url = self.service_url,
        );
        let toml = format!("{name}.toml");
        let json = format!("{name}.json");
        std::fs::write(root.join(&toml), source).unwrap();
        ok(
            covenant_in(root, &["policy", "build", &toml, "-o", &json]),
            "policy build",
        );
        root.join(json)
    }

    /// Starts `covenant serve` with these policies and waits until every worker serves.
    fn serve(&mut self, policies: &[&Path]) -> &mut Serve {
        self.serve_with_env(policies, &[])
    }

    /// [`Deployment::serve`] with these variables added to `covenant serve`'s environment.
    fn serve_with_env(&mut self, policies: &[&Path], env: &[(&str, &str)]) -> &mut Serve {
        let mut command = Command::new(BIN);
        command.current_dir(self.root()).arg("serve");
        command.envs(env.iter().copied());
        for policy in policies {
            command.arg("--policy").arg(policy);
        }
        let mut child = command
            .args([
                "--platform-key",
                "ids/platform.key",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Lines::collect(child.stdout.take().unwrap());
        let stderr = Lines::collect(child.stderr.take().unwrap());
        let child = Killed(child);
        let (_, line) = stdout.wait_for(0, "the listening address", |l| {
            l.starts_with("covenant host listening on ")
        });
        let address = line.rsplit(' ').next().unwrap().to_owned();
        let mut pids = HashMap::new();
        let mut from = 0;
        while pids.len() < policies.len() {
            let (i, line) = stdout.wait_for(from, "every worker serving", |l| {
                l.ends_with("attested and serving")
            });
            // "computation ID: worker pid N attested and serving"
            let words: Vec<&str> = line.split(' ').collect();
            let id = words[1].trim_end_matches(':').to_owned();
            pids.insert(id, words[4].parse().unwrap());
            from = i + 1;
        }
        self.serve = Some(Serve {
            child,
            address,
            pids,
            stdout,
            stderr,
        });
        self.serve.as_mut().unwrap()
    }

    fn host(&self) -> &Serve {
        self.serve.as_ref().expect("serve started")
    }

    /// `covenant client` as `who` with `policy`, not yet run.
    fn client_command(&self, policy: &Path, who: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(self.root())
            .arg("client")
            .arg("--policy")
            .arg(policy)
            .args([
                "--cert",
                &format!("ids/{who}.crt"),
                "--key",
                &format!("ids/{who}.key"),
                "--host",
                &self.host().address,
            ])
            .args(args);
        command
    }

    fn client(&self, policy: &Path, who: &str, args: &[&str]) -> Output {
        self.client_command(policy, who, args).output().unwrap()
    }

    /// A client action that must succeed.
    fn client_ok(&self, policy: &Path, who: &str, args: &[&str]) -> Output {
        let output = self.client(policy, who, args);
        assert!(
            output.status.success(),
            "client {who} {args:?}: {}\nstdout: {}\nstderr: {}\n{}",
            output.status,
            text(&output.stdout),
            text(&output.stderr),
            self.host().logs()
        );
        output
    }

    /// `client status --json` as `who`.
    fn status(&self, policy: &Path, who: &str) -> serde_json::Value {
        let output = self.client_ok(policy, who, &["--json", "status"]);
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Writes `ids` one per line to `name` in the deployment's directory.
    fn ids_file(&self, name: &str, ids: &BTreeSet<String>) -> String {
        let mut body = String::new();
        for id in ids {
            body.push_str(id);
            body.push('\n');
        }
        std::fs::write(self.root().join(name), body).unwrap();
        name.to_owned()
    }

    /// The whole flow of a private set intersection on `policy`: both hospitals provide
    /// their lists (made from `seed`), the researcher the program and the run, and every
    /// principal fetches the count, which must be the intersection's size. Returns it.
    fn psi_flow(&self, policy: &Path, seed: usize) -> usize {
        let a: BTreeSet<String> = (0..2000)
            .step_by(2 + seed)
            .map(|i| format!("patient-{i:05}"))
            .collect();
        let b: BTreeSet<String> = (0..2000)
            .step_by(3 + seed)
            .map(|i| format!("patient-{i:05}"))
            .collect();
        let expected = a.intersection(&b).count();
        let tag = policy.file_stem().unwrap().to_str().unwrap().to_owned();
        let a_file = self.ids_file(&format!("{tag}-a.txt"), &a);
        let b_file = self.ids_file(&format!("{tag}-b.txt"), &b);
        let wasm = format!("{}.wasm", covenant_guests::PRIVATE_SET_INTERSECTION.name);
        self.client_ok(policy, "researcher", &["provide-program", &wasm]);
        self.client_ok(
            policy,
            "hospital-a",
            &["provide-input", "/input/hospital-a.txt", &a_file],
        );
        self.client_ok(
            policy,
            "hospital-b",
            &["provide-input", "/input/hospital-b.txt", &b_file],
        );
        let run = self.client_ok(policy, "researcher", &["run", "--wait"]);
        assert!(
            text(&run.stdout).contains("exited with code 0"),
            "{}",
            text(&run.stdout)
        );
        for who in PRINCIPALS {
            let out = format!("{tag}-shared-{who}.txt");
            self.client_ok(policy, who, &["fetch", "/output/shared.txt", "-o", &out]);
            let count = std::fs::read_to_string(self.root().join(&out)).unwrap();
            assert_eq!(count.trim(), expected.to_string(), "{who}'s count");
        }
        expected
    }
}

/// This binary's measurement, as `covenant measurement` prints it.
fn measurement(dir: &Path) -> String {
    let output = ok(covenant_in(dir, &["measurement"]), "measurement");
    let line = text(&output.stdout);
    let hex = line
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    assert_eq!(hex.len(), 64, "{line}");
    hex
}

fn policy_hash(dir: &Path, policy: &Path) -> String {
    let output = ok(
        covenant_in(dir, &["policy", "hash", policy.to_str().unwrap()]),
        "policy hash",
    );
    text(&output.stdout)
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

#[test]
fn three_principals_provide_run_fetch_verify_the_receipt_and_close() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    deployment.serve(&[&policy]);
    let shared = deployment.psi_flow(&policy, 0);
    assert!(shared > 0);

    deployment.client_ok(&policy, "researcher", &["receipt", "-o", "r.jws"]);
    let verify = ok(
        covenant_in(
            deployment.root(),
            &["receipt", "verify", "--policy", "policy.json", "r.jws"],
        ),
        "receipt verify",
    );
    assert!(
        text(&verify.stdout).contains("shared-patients"),
        "{}",
        text(&verify.stdout)
    );

    let stdout = deployment.client_ok(&policy, "hospital-b", &["fetch", "stdout"]);
    assert_eq!(
        text(&stdout.stdout).trim(),
        format!("shared patients: {shared}")
    );

    for who in PRINCIPALS {
        deployment.client_ok(&policy, who, &["close"]);
    }
    let host = deployment.serve.as_mut().unwrap();
    let ended = host.wait_ended("shared-patients");
    assert!(
        ended.contains("worker ended: every principal closed the computation"),
        "{ended}\n{}",
        host.logs()
    );
    let status = host.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", host.logs());
}

#[test]
fn a_killed_worker_is_reported_and_the_other_computation_carries_on() {
    let mut deployment = Deployment::new();
    let spinning = deployment.policy(
        "spinning",
        &Spec {
            computation: "spinning",
            program: covenant_guests::SPIN,
            max_bytes: "1KiB",
            timeout: "1h",
            required: false,
            max_output: "1KiB",
            args: &[],
        },
    );
    let other = deployment.policy("other", &Spec::psi("other"));
    deployment.serve(&[&spinning, &other]);
    let wasm = format!("{}.wasm", covenant_guests::SPIN.name);
    deployment.client_ok(&spinning, "researcher", &["provide-program", &wasm]);
    let run = deployment
        .client_command(&spinning, "researcher", &["run", "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run = Killed(run);
    poll("the spinning run to start", || {
        let status = deployment.status(&spinning, "hospital-a");
        (status["state"] == "running").then_some(())
    });

    let pid = deployment.host().pids["spinning"];
    signal(pid, "-9");

    let status = wait_exit(&mut run.0, "the waiting client to exit");
    let mut stderr = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was lost during the run"), "{stderr}");
    assert!(stderr.contains("worker may have stopped"), "{stderr}");

    let ended = deployment.host().wait_ended("spinning");
    assert_eq!(
        ended,
        "computation spinning: worker FAILED: was killed by signal 9 (SIGKILL)",
        "{}",
        deployment.host().logs()
    );
    // The host still serves the other computation, start to end.
    deployment.psi_flow(&other, 1);
    // And refuses the ended one: the client cannot reach it.
    let gone = deployment.client(&spinning, "hospital-a", &["status"]);
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone.stderr));

    for who in PRINCIPALS {
        deployment.client_ok(&other, who, &["close"]);
    }
    let host = deployment.serve.as_mut().unwrap();
    assert!(
        host.wait_ended("other").contains("worker ended:"),
        "{}",
        host.logs()
    );
    // One computation failed: the host's exit says so.
    assert_eq!(host.wait_exit().code(), Some(1), "{}", host.logs());
}

#[test]
fn two_computations_on_one_host_are_separate() {
    let mut deployment = Deployment::new();
    let a = deployment.policy("study-a", &Spec::psi("study-a"));
    // B differs from A in more than its id (else A under B's id would be B).
    let b = deployment.policy(
        "study-b",
        &Spec {
            max_bytes: "7MiB",
            ..Spec::psi("study-b")
        },
    );
    // Policy A's content under B's computation id: it reaches B's worker by SNI, but B's
    // attested certificate names B's policy hash, not this one.
    let source = std::fs::read_to_string(deployment.root().join("study-a.toml")).unwrap();
    std::fs::write(
        deployment.root().join("a-as-b.toml"),
        source.replace("computation = \"study-a\"", "computation = \"study-b\""),
    )
    .unwrap();
    ok(
        covenant_in(
            deployment.root(),
            &["policy", "build", "a-as-b.toml", "-o", "a-as-b.json"],
        ),
        "policy build",
    );
    deployment.serve(&[&a, &b]);
    let host = deployment.host();
    assert_ne!(host.pids["study-a"], host.pids["study-b"]);

    let a_as_b = deployment.root().join("a-as-b.json");
    let b_hash = policy_hash(deployment.root(), &b);
    let a_as_b_hash = policy_hash(deployment.root(), &a_as_b);
    assert_ne!(b_hash, a_as_b_hash);
    let refused = deployment.client(&a_as_b, "hospital-a", &["status"]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "serves policy {b_hash}, not this policy ({a_as_b_hash})"
        )),
        "{stderr}"
    );

    // What hospital-a gives A is not in B.
    std::fs::write(
        deployment.root().join("a-only.txt"),
        "patient-1\npatient-2\n",
    )
    .unwrap();
    deployment.client_ok(
        &a,
        "hospital-a",
        &["provide-input", "/input/hospital-a.txt", "a-only.txt"],
    );
    let wasm = format!("{}.wasm", covenant_guests::PRIVATE_SET_INTERSECTION.name);
    deployment.client_ok(&a, "researcher", &["provide-program", &wasm]);
    let in_a = deployment.status(&a, "hospital-a");
    assert_eq!(in_a["inputs"][0]["provided"], true, "{in_a}");
    assert_eq!(in_a["program_provided"], true, "{in_a}");
    let in_b = deployment.status(&b, "hospital-a");
    assert_eq!(in_b["computation"], "study-b");
    assert_eq!(in_b["inputs"][0]["provided"], false, "{in_b}");
    assert_eq!(in_b["program_provided"], false, "{in_b}");
    let no_output = deployment.client(
        &b,
        "hospital-a",
        &["fetch", "/output/shared.txt", "-o", "x"],
    );
    assert_eq!(
        no_output.status.code(),
        Some(3),
        "{}",
        text(&no_output.stderr)
    );

    // B runs its whole flow on its own data; A is still where it was.
    deployment.psi_flow(&b, 2);
    let in_a_after = deployment.status(&a, "hospital-a");
    assert_eq!(in_a_after, in_a);
}

#[test]
fn a_guest_snooping_beside_another_computation_finds_only_its_own_data() {
    let mut deployment = Deployment::new();
    let victim = deployment.policy("victim", &Spec::psi("victim"));
    let snoop = deployment.policy(
        "snooping",
        &Spec {
            program: covenant_guests::SNOOP,
            max_output: "64KiB",
            ..Spec::psi("snooping")
        },
    );
    deployment.serve(&[&victim, &snoop]);
    // The victim's data is in its worker (uploaded, not yet run) while the snoop runs.
    let secret: BTreeSet<String> = ["SECRET-OF-THE-VICTIM-7f3c".to_owned()].into();
    let secret_file = deployment.ids_file("secret.txt", &secret);
    deployment.client_ok(
        &victim,
        "hospital-a",
        &["provide-input", "/input/hospital-a.txt", &secret_file],
    );
    let own: BTreeSet<String> = ["own-data-of-the-snoop".to_owned()].into();
    let own_file = deployment.ids_file("own.txt", &own);
    for who in ["hospital-a", "hospital-b"] {
        deployment.client_ok(
            &snoop,
            who,
            &["provide-input", &format!("/input/{who}.txt"), &own_file],
        );
    }
    let wasm = format!("{}.wasm", covenant_guests::SNOOP.name);
    deployment.client_ok(&snoop, "researcher", &["provide-program", &wasm]);
    let run = deployment.client_ok(&snoop, "researcher", &["run", "--wait"]);
    assert!(
        text(&run.stdout).contains("exited with code 0"),
        "{}",
        text(&run.stdout)
    );
    deployment.client_ok(
        &snoop,
        "researcher",
        &["fetch", "/output/shared.txt", "-o", "snooped.txt"],
    );
    let found = std::fs::read_to_string(deployment.root().join("snooped.txt")).unwrap();
    // The walk works: it found the snoop's own inputs...
    assert!(
        found.contains("FILE /input/hospital-a.txt: own-data-of-the-snoop"),
        "{found}"
    );
    // ...and nothing of the other computation, of the host, or of the worker's process.
    assert!(!found.contains("SECRET-OF-THE-VICTIM"), "{found}");
    for denied in [
        "/etc/passwd",
        "/proc/self/environ",
        "/input/../../etc/passwd",
    ] {
        assert!(
            found.contains(&format!("DENIED {denied}:")),
            "{denied}: {found}"
        );
    }
    assert!(!found.contains("root:x:0:0"), "a host file leaked: {found}");
    assert!(!found.lines().any(|l| l.starts_with("ENV ")), "{found}");
    // The victim is as it was.
    let status = deployment.status(&victim, "hospital-b");
    assert_eq!(status["state"], "provisioning", "{status}");
}

#[test]
fn a_hostile_guest_gets_outcomes_never_a_release_it_should_not_or_a_failed_runtime() {
    let mut deployment = Deployment::new();
    let hostile = |computation, args| Spec {
        program: covenant_guests::FS_ATTACK,
        args,
        ..Spec::psi(computation)
    };
    // 1 MiB into the result under the 1 KiB limit; the result made a directory; a hard link
    // from a provider's input into the output directory.
    let flood = deployment.policy(
        "flood",
        &hostile("flood", &["write", "/output/shared.txt", "1048576"]),
    );
    let dir = deployment.policy("dir", &hostile("dir", &["mkdir", "/output/shared.txt"]));
    let link = deployment.policy(
        "link",
        &hostile(
            "link",
            &["link", "/input/hospital-a.txt", "/output/shared.txt"],
        ),
    );
    deployment.serve(&[&flood, &dir, &link]);
    let data: BTreeSet<String> = ["patient-1".to_owned(), "patient-2".to_owned()].into();
    let file = deployment.ids_file("data.txt", &data);
    let wasm = format!("{}.wasm", covenant_guests::FS_ATTACK.name);
    let mut salt = String::new();
    for policy in [&flood, &dir, &link] {
        for who in ["hospital-a", "hospital-b"] {
            let input = format!("/input/{who}.txt");
            let out =
                deployment.client_ok(policy, who, &["--json", "provide-input", &input, &file]);
            let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if who == "hospital-a" {
                salt = answer["salt"].as_str().unwrap().to_owned();
            }
        }
        deployment.client_ok(policy, "researcher", &["provide-program", &wasm]);
    }
    let fetch = |policy: &Path| {
        deployment.client(
            policy,
            "hospital-a",
            &["fetch", "/output/shared.txt", "-o", "got.txt"],
        )
    };

    // Over the limit: the run says so, and no reader gets anything.
    let run = deployment.client_ok(&flood, "researcher", &["run", "--wait"]);
    assert!(
        text(&run.stdout).contains("trapped (output-limit)"),
        "{}",
        text(&run.stdout)
    );
    for output in ["/output/shared.txt", "stdout"] {
        let refused = deployment.client(&flood, "hospital-b", &["fetch", output, "-o", "got.txt"]);
        assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
        assert!(
            text(&refused.stderr).contains("output-withheld"),
            "{}",
            text(&refused.stderr)
        );
    }
    assert!(!deployment.root().join("got.txt").exists());

    // A directory at the output: the guest's outcome, the computation still serves.
    let run = deployment.client_ok(&dir, "researcher", &["run", "--wait"]);
    assert!(
        text(&run.stdout).contains("exited with code 0"),
        "{}",
        text(&run.stdout)
    );
    let refused = fetch(&dir);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("output-not-written"),
        "{}",
        text(&refused.stderr)
    );
    let status = deployment.status(&dir, "hospital-b");
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["program_provided"], true, "{status}");
    assert_eq!(status["failure"], serde_json::Value::Null, "{status}");
    assert_eq!(
        status["runs"][0]["outputs"][0]["status"], "directory",
        "{status}"
    );

    // The link: refused inside the worker; the input is not released as the output, and the
    // receipt still commits to hospital-a's bytes, which its salt opens.
    deployment.client_ok(&link, "researcher", &["run", "--wait"]);
    deployment.client_ok(&link, "hospital-a", &["fetch", "stdout", "-o", "said.txt"]);
    let said = std::fs::read_to_string(deployment.root().join("said.txt")).unwrap();
    assert!(said.contains("link: errno 75 (EXDEV)"), "{said}");
    assert!(!said.contains("TAMPERED"), "{said}");
    deployment.client_ok(&link, "hospital-a", &["receipt", "-o", "link.jws"]);
    let link_json = link.display().to_string();
    let input = format!("/input/hospital-a.txt={file}");
    let salt = format!("/input/hospital-a.txt={salt}");
    // fetch -o left the output's salt beside it, readable by its user only; it opens the
    // receipt's commitment to what was fetched.
    let salt_file = deployment.root().join("said.txt.salt");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&salt_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    ok(
        covenant_in(
            deployment.root(),
            &[
                "receipt",
                "verify",
                "--policy",
                &link_json,
                "link.jws",
                "--file",
                &input,
                "--salt",
                &salt,
                "--file",
                "stdout=said.txt",
                "--salt",
                "stdout=@said.txt.salt",
            ],
        ),
        "receipt verify --file",
    );
}

#[test]
fn a_client_pinned_to_another_policy_fails_attestation_and_changes_nothing() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    let other = deployment.policy(
        "other",
        &Spec {
            max_bytes: "9MiB",
            ..Spec::psi("shared-patients")
        },
    );
    let served = policy_hash(deployment.root(), &policy);
    let pinned = policy_hash(deployment.root(), &other);
    assert_ne!(served, pinned);
    deployment.serve(&[&policy]);
    std::fs::write(deployment.root().join("a.txt"), "patient-1\n").unwrap();
    deployment.client_ok(
        &policy,
        "hospital-a",
        &["provide-input", "/input/hospital-a.txt", "a.txt"],
    );
    let before = deployment.status(&policy, "hospital-a");

    std::fs::write(deployment.root().join("b.txt"), "patient-1\n").unwrap();
    for args in [
        &["status"][..],
        &["provide-input", "/input/hospital-b.txt", "b.txt"],
    ] {
        let refused = deployment.client(&other, "hospital-b", args);
        let stderr = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "serves policy {served}, not this policy ({pinned})"
            )),
            "{stderr}"
        );
    }
    let json = deployment.client(&other, "hospital-b", &["--json", "status"]);
    assert_eq!(json.status.code(), Some(4));
    let error: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(error["error"], "attestation", "{error}");

    assert_eq!(deployment.status(&policy, "hospital-a"), before);
    let b_view = deployment.status(&policy, "hospital-b");
    assert_eq!(b_view["inputs"][1]["provided"], false, "{b_view}");
}

#[test]
fn workers_are_hardened() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));

    let probe = |call: &str| {
        Command::new(BIN)
            .current_dir(deployment.root())
            .args([
                "worker",
                "--policy",
                "policy.json",
                "--platform-cert",
                "ids/platform.crt",
                "--platform-key",
                "ids/platform.key",
                "--hardening-probe",
                call,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for call in ["socket", "exec"] {
        let output = probe(call);
        assert_eq!(
            output.status.signal(),
            Some(SIGSYS),
            "{call}: {} {}",
            output.status,
            text(&output.stderr)
        );
    }
    let open = probe("open");
    let stderr = text(&open.stderr);
    assert_eq!(open.status.signal(), None, "{stderr}");
    assert!(!open.status.success(), "{stderr}");
    assert!(stderr.contains("hardening probe Open: Err("), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");

    let host = deployment.serve(&[&policy]);
    let pid = host.pids["shared-patients"];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nSeccomp:\t2\n"), "{status}");
    assert!(status.contains("\nNoNewPrivs:\t1\n"), "{status}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .unwrap_or_else(|| panic!("{limits}"));
    let values: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(values[..2], ["0", "0"], "{limits}");
    let limit = |name: &str| -> Vec<String> {
        let line = limits
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name}: {limits}"));
        line.split_whitespace().take(2).map(str::to_owned).collect()
    };
    let address_space = covenant_host::hardening::WORKER_ADDRESS_SPACE_BYTES.to_string();
    assert_eq!(
        limit("Max address space"),
        [address_space.clone(), address_space]
    );
    let files = covenant_host::hardening::WORKER_MAX_DESCRIPTORS.to_string();
    assert_eq!(limit("Max open files"), [files.clone(), files]);
}

#[test]
fn a_connection_that_names_no_computation_is_closed_and_the_host_carries_on() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    let nowhere = deployment.policy("nowhere", &Spec::psi("nowhere"));
    deployment.serve(&[&policy]);
    let address = deployment.host().address.clone();

    // Not TLS at all.
    let mut tcp = std::net::TcpStream::connect(&address).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buffer = [0u8; 64];
    match tcp.read(&mut buffer) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the host answered a non-TLS connection: {other:?}"),
    }

    // TLS, for a computation this host does not serve.
    let unknown = deployment.client(&nowhere, "hospital-a", &["status"]);
    let stderr = text(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lost during the TLS handshake"), "{stderr}");

    let status = deployment.status(&policy, "hospital-a");
    assert_eq!(status["state"], "provisioning", "{status}");
    let host = deployment.serve.as_mut().unwrap();
    assert!(
        host.child.0.try_wait().unwrap().is_none(),
        "{}",
        host.logs()
    );
}

#[test]
fn an_upload_cut_off_midway_leaves_no_input_and_can_be_sent_again() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy(
        "policy",
        &Spec {
            max_bytes: "64MiB",
            ..Spec::psi("shared-patients")
        },
    );
    deployment.serve(&[&policy]);
    let root = deployment.root().to_owned();

    // The client reads its file from a pipe this test feeds: it is mid-upload for certain
    // when it is killed, having sent far more than any buffer on the way holds.
    let fifo = root.join("upload.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let upload = deployment
        .client_command(
            &policy,
            "hospital-a",
            &["provide-input", "/input/hospital-a.txt", "upload.fifo"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut upload = Killed(upload);
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let line = b"patient-00000000000000000000000000000000000000000000000000000000\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    for _ in 0..16 {
        pipe.write_all(&chunk).unwrap();
    }
    let pid = upload.0.id();
    signal(pid, "-9");
    let status = wait_exit(&mut upload.0, "the killed upload");
    assert_eq!(status.signal(), Some(9));
    drop(pipe);

    // The runtime discards what it had: the input is not there.
    let status = deployment.status(&policy, "hospital-a");
    assert_eq!(status["inputs"][0]["provided"], false, "{status}");
    assert_eq!(status["state"], "provisioning", "{status}");

    let ids: BTreeSet<String> = (0..100_000).map(|i| format!("patient-{i:07}")).collect();
    let file = deployment.ids_file("a.txt", &ids);
    // Until the runtime has seen the connection go, it may still count the cut-off upload
    // as under way (and says so); then the whole file is accepted.
    let args = ["provide-input", "/input/hospital-a.txt", file.as_str()];
    let sent = poll("the input to be accepted again", || {
        let output = deployment.client(&policy, "hospital-a", &args);
        if output.status.code() == Some(3) && text(&output.stderr).contains("upload-in-progress") {
            return None;
        }
        Some(output)
    });
    assert!(
        sent.status.success(),
        "{}\n{}",
        text(&sent.stderr),
        deployment.host().logs()
    );
    assert!(
        text(&sent.stdout).contains("bytes stored"),
        "{}",
        text(&sent.stdout)
    );
    let status = deployment.status(&policy, "hospital-a");
    assert_eq!(status["inputs"][0]["provided"], true, "{status}");
}

#[test]
fn a_worker_that_cannot_start_is_a_clear_error_and_nothing_is_left_running() {
    let deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    let policy = policy.to_str().unwrap();
    // A platform key the attestation service never enrolled: the service refuses the worker.
    let refused = covenant_in(
        deployment.root(),
        &[
            "serve",
            "--policy",
            policy,
            "--platform-key",
            "ids/hospital-a.key",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("computation shared-patients: the worker did not start")
            && stderr.contains("the attestation service refused the worker"),
        "{stderr}"
    );
    // A platform certificate that is not the key's: the worker says so before hardening.
    let mismatched = covenant_in(
        deployment.root(),
        &[
            "serve",
            "--policy",
            policy,
            "--platform-key",
            "ids/platform.key",
            "--platform-cert",
            "ids/hospital-b.crt",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&mismatched.stderr);
    assert_eq!(mismatched.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the software platform") && stderr.contains("does not match"),
        "{stderr}"
    );
    // A hardware platform on a machine without configfs-tsm: the worker names the path it
    // could not use.
    let missing = covenant_in(
        deployment.root(),
        &[
            "serve",
            "--policy",
            policy,
            "--platform",
            "sev-snp",
            "--tsm-report-root",
            "no-configfs-here",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the sev-snp platform") && stderr.contains("no-configfs-here"),
        "{stderr}"
    );
    // None left a worker behind.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !text(&ps.stdout)
            .lines()
            .any(|l| l.contains("worker") && l.contains(policy)),
        "a worker is still running"
    );
}

/// Runs `covenant worker` by hand in the deployment's directory, with no host on its control
/// channel (stdin is empty), as `workers_are_hardened` does.
fn worker_by_hand(deployment: &Deployment, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(deployment.root())
        .arg("worker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The private-set-intersection policy `name` with the interpreter strategy (built from the
/// jit one's source).
fn interpreter_policy(deployment: &Deployment, name: &str, computation: &'static str) -> PathBuf {
    deployment.policy(name, &Spec::psi(computation));
    let toml = format!("{name}.toml");
    let source = std::fs::read_to_string(deployment.root().join(&toml)).unwrap();
    assert!(source.contains("strategy = \"jit\""), "{source}");
    std::fs::write(
        deployment.root().join(&toml),
        source.replace("strategy = \"jit\"", "strategy = \"interpreter\""),
    )
    .unwrap();
    let json = format!("{name}.json");
    ok(
        covenant_in(deployment.root(), &["policy", "build", &toml, "-o", &json]),
        "policy build",
    );
    deployment.root().join(json)
}

/// Reads a file of `/proc/PID/` that only a process allowed to trace the worker may read.
/// `None` if this test may not: the worker is not dumpable, so a process of the same user
/// without `CAP_SYS_PTRACE` (a compromised host, this test run without privileges) is refused
/// — which is the protection itself. Anything else is a failure.
fn read_if_permitted<T>(what: &str, read: impl FnOnce() -> std::io::Result<T>) -> Option<T> {
    match read() {
        Ok(value) => Some(value),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("{what}: refused to this test ({e}): the worker is not dumpable");
            None
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

#[test]
fn every_filter_rule_stops_its_probe_in_a_real_worker_of_each_strategy() {
    let deployment = Deployment::new();
    deployment.policy("jit", &Spec::psi("jit-probes"));
    interpreter_policy(&deployment, "interpreter", "interpreter-probes");
    let probe = |strategy: &str, call: &str| {
        worker_by_hand(
            &deployment,
            &[
                "--policy",
                &format!("{strategy}.json"),
                "--platform-cert",
                "ids/platform.crt",
                "--platform-key",
                "ids/platform.key",
                "--strategy",
                strategy,
                "--hardening-probe",
                call,
            ],
        )
    };
    let killed = |strategy: &str, call: &str| {
        let output = probe(strategy, call);
        assert_eq!(
            output.status.signal(),
            Some(SIGSYS),
            "{strategy} {call}: {} {}",
            output.status,
            text(&output.stderr)
        );
    };
    // Refused with an errno: the worker carries on (and, with no host, fails to attest).
    let refused = |strategy: &str, call: &str, said: &str| {
        let output = probe(strategy, call);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.signal(), None, "{strategy} {call}: {stderr}");
        assert!(stderr.contains(said), "{strategy} {call}: {stderr}");
    };
    // Allowed: the probe returns Ok, and the worker says the filter let it through.
    let allowed = |strategy: &str, call: &str, name: &str| {
        let output = probe(strategy, call);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.signal(), None, "{strategy} {call}: {stderr}");
        assert!(
            stderr.contains(&format!("hardening probe {name}: Ok(())")),
            "{strategy} {call}: {stderr}"
        );
    };
    for strategy in ["jit", "interpreter"] {
        // Another process's limits (a pid that cannot exist, so nothing changes if the filter
        // lets it through).
        killed(strategy, "prlimit");
        // O_ASYNC on a descriptor: the way to have the kernel signal another process.
        killed(strategy, "fcntl-async");
        // A host path's metadata, by statx, by newfstatat with AT_EMPTY_PATH, and by std.
        let stat = probe(strategy, "stat");
        let stderr = text(&stat.stderr);
        assert_eq!(stat.status.signal(), None, "{strategy}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("hardening probe Stat: statx"))
            .unwrap_or_else(|| panic!("{strategy}: {stderr}"));
        // None succeeded. newfstatat and std (statx, then its fallbacks) get EACCES; rustix
        // answers ENOSYS for statx when its own availability check (a statx with null
        // pointers, EFAULT on any kernel since 4.11) is refused too.
        assert!(!line.contains("Ok("), "{strategy}: {line}");
        assert!(
            line.contains("statx Err(Os { code: 13,") || line.contains("statx Err(Os { code: 38,"),
            "{strategy}: {line}"
        );
        assert!(
            line.contains("newfstatat Err(Os { code: 13,")
                && line.contains("metadata Err(Os { code: 13,"),
            "{strategy}: {line}"
        );
        // The rules of before still hold.
        killed(strategy, "socket");
        refused(strategy, "open", "Permission denied");
    }
    // Executable memory and memfd: the interpreter's filter kills them...
    killed("interpreter", "exec-memory");
    killed("interpreter", "memfd");
    // ...the jit's allows them (it compiles code and makes memory images).
    allowed("jit", "exec-memory", "ExecMemory");
    allowed("jit", "memfd", "Memfd");
}

#[test]
fn an_interpreter_computation_runs_start_to_end_under_its_own_filter() {
    let mut deployment = Deployment::new();
    let policy = interpreter_policy(&deployment, "policy", "interpreted");
    let host = deployment.serve(&[&policy]);
    let pid = host.pids["interpreted"];
    // The host started it with the interpreter's filter (the policy's strategy).
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--strategy").unwrap();
    assert_eq!(args[at + 1], "interpreter", "{args:?}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nSeccomp:\t2\n"), "{status}");

    let shared = deployment.psi_flow(&policy, 0);
    assert!(shared > 0);
    deployment.client_ok(&policy, "researcher", &["receipt", "-o", "r.jws"]);
    let verify = ok(
        covenant_in(
            deployment.root(),
            &["receipt", "verify", "--policy", "policy.json", "r.jws"],
        ),
        "receipt verify",
    );
    assert!(
        text(&verify.stdout).contains("on interpreter"),
        "{}",
        text(&verify.stdout)
    );
    for who in PRINCIPALS {
        deployment.client_ok(&policy, who, &["close"]);
    }
    let host = deployment.serve.as_mut().unwrap();
    assert!(
        host.wait_ended("interpreted")
            .contains("worker ended: every principal closed the computation"),
        "{}",
        host.logs()
    );
    assert_eq!(host.wait_exit().code(), Some(0), "{}", host.logs());
}

#[test]
fn a_worker_hardened_for_another_strategy_than_its_policys_refuses_to_serve() {
    let deployment = Deployment::new();
    interpreter_policy(&deployment, "interpreter", "interpreted");
    // The jit's filter (looser: executable memory) for an interpreter policy.
    let output = worker_by_hand(
        &deployment,
        &[
            "--policy",
            "interpreter.json",
            "--platform-cert",
            "ids/platform.crt",
            "--platform-key",
            "ids/platform.key",
            "--strategy",
            "jit",
        ],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "this worker was hardened for the jit strategy, but the policy selects interpreter: \
             start it with `--strategy interpreter`"
        ),
        "{stderr}"
    );
}

#[test]
fn a_worker_parses_nothing_before_it_is_hardened() {
    let deployment = Deployment::new();
    deployment.policy("policy", &Spec::psi("shared-patients"));
    std::fs::write(deployment.root().join("malformed.json"), "{ not a policy").unwrap();
    std::fs::write(
        deployment.root().join("malformed.key"),
        "not a key at all\n",
    )
    .unwrap();
    let run = |policy: &str, key: &str, probe: &str| {
        worker_by_hand(
            &deployment,
            &[
                "--policy",
                policy,
                "--platform-cert",
                "ids/platform.crt",
                "--platform-key",
                key,
                "--hardening-probe",
                probe,
            ],
        )
    };
    for (policy, key, refusal) in [
        (
            "malformed.json",
            "ids/platform.key",
            "the policy is not valid",
        ),
        ("policy.json", "malformed.key", "the software platform"),
    ] {
        // The probe runs right after hardening: the worker dies in it, never having parsed
        // the malformed file. Had it parsed first, it would exit with the refusal instead.
        let output = run(policy, key, "socket");
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.signal(),
            Some(SIGSYS),
            "{policy} {key}: {stderr}"
        );
        assert!(!stderr.contains(refusal), "{policy} {key}: {stderr}");
        // With a probe the filter refuses without killing, the refusal comes after it.
        let output = run(policy, key, "open");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{policy} {key}: {stderr}");
        let probed = stderr
            .find("hardening probe Open: Err(")
            .unwrap_or_else(|| panic!("{policy} {key}: {stderr}"));
        let refused = stderr
            .find(refusal)
            .unwrap_or_else(|| panic!("{policy} {key}: {stderr}"));
        assert!(probed < refused, "{policy} {key}: {stderr}");
    }
    // A file too large to be a policy is refused while reading, before hardening: the probe
    // never runs.
    std::fs::write(
        deployment.root().join("huge.json"),
        vec![b' '; covenant_policy::bounds::MAX_POLICY_BYTES + 1],
    )
    .unwrap();
    let output = run("huge.json", "ids/platform.key", "socket");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is larger than"), "{stderr}");
}

#[test]
fn a_worker_refuses_a_certificate_from_another_ca_than_the_policys() {
    let deployment = Deployment::new();
    deployment.policy("policy", &Spec::psi("shared-patients"));
    // A second attestation service's CA, which the policy names, while the host uses the
    // deployment's service (the policy's URL): its certificate is for the worker's key, for
    // this policy and measurement, but issued by a CA the parties did not name.
    ok(
        covenant_in(
            deployment.root(),
            &["attestation-service", "init", "--dir", "other-attestation"],
        ),
        "attestation-service init (the other CA)",
    );
    let source = std::fs::read_to_string(deployment.root().join("policy.toml")).unwrap();
    std::fs::write(
        deployment.root().join("other-ca.toml"),
        source.replace(
            "ca_certificate = \"attestation/ca.crt\"",
            "ca_certificate = \"other-attestation/ca.crt\"",
        ),
    )
    .unwrap();
    ok(
        covenant_in(
            deployment.root(),
            &["policy", "build", "other-ca.toml", "-o", "other-ca.json"],
        ),
        "policy build",
    );
    let policy = deployment.root().join("other-ca.json");
    let policy = policy.to_str().unwrap();
    let refused = covenant_in(
        deployment.root(),
        &[
            "serve",
            "--policy",
            policy,
            "--platform-key",
            "ids/platform.key",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("computation shared-patients: the worker did not start: attestation:")
            && stderr.contains("not issued by the attestation service named in the policy")
            && stderr.contains("the worker does not serve with it"),
        "{stderr}"
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !text(&ps.stdout)
            .lines()
            .any(|l| l.contains("worker") && l.contains(policy)),
        "a worker is still running"
    );
}

#[test]
fn a_serving_worker_holds_no_platform_key_and_none_of_the_hosts_environment() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    let root = deployment.root().to_owned();
    // A preload library that does not exist: should the variable reach a process, its loader
    // says so on stderr (and a worker's stderr is in the host's, prefixed).
    let preload = root.join("absent-preload.so").display().to_string();
    let secret = "COVENANT_TEST_SECRET";

    // Positive control: a worker started by hand with the variables names them in its log.
    let by_hand = Command::new(BIN)
        .current_dir(&root)
        .args([
            "worker",
            "--policy",
            "policy.json",
            "--platform-cert",
            "ids/platform.crt",
            "--platform-key",
            "ids/platform.key",
            "--hardening-probe",
            "open",
        ])
        .env(secret, "x")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&by_hand.stderr);
    assert!(
        said.contains("started with environment variables a worker does not take")
            && said.contains(secret)
            && !said.contains("=x"),
        "{said}"
    );

    let host = deployment.serve_with_env(&[&policy], &[(secret, "x"), ("LD_PRELOAD", &preload)]);
    let pid = host.pids["shared-patients"];
    // The worker's log (in the host's stderr) has neither the loader's complaint nor the
    // worker's warning: the variables did not reach it. (The host itself, which has them,
    // shows the loader's line unprefixed.)
    let logs = host.stderr.all();
    assert!(
        !logs.lines().any(|l| l.starts_with("[worker ")
            && (l.contains("LD_PRELOAD") || l.contains("environment variables"))),
        "{logs}"
    );
    // Its initial environment, where the kernel keeps it.
    if let Some(environ) =
        read_if_permitted("environ", || std::fs::read(format!("/proc/{pid}/environ")))
    {
        for entry in environ.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let name = entry.split('=').next().unwrap();
            assert!(
                covenant_host::worker::WORKER_ENVIRONMENT.contains(&name),
                "the worker was started with {name}"
            );
        }
    }
    // No descriptor to any file it read at start (the key among them): nothing to read the
    // key again through.
    if let Some(fds) = read_if_permitted("fd", || std::fs::read_dir(format!("/proc/{pid}/fd"))) {
        let root = root.canonicalize().unwrap();
        for fd in fds {
            let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
            assert!(
                !target.starts_with(&root),
                "the worker holds {}",
                target.display()
            );
        }
    }
    // Its memory: neither the key (PKCS#8 DER), nor its private scalar (either byte order),
    // nor a line of its PEM, anywhere the worker can write (heap, stacks, data).
    let key_pem = std::fs::read(root.join("ids/platform.key")).unwrap();
    let der = covenant_attest::pem::pkcs8_key_from_pem(&key_pem, "the platform key")
        .unwrap()
        .secret_pkcs8_der()
        .to_vec();
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .unwrap();
    let scalar = der[at + 5..at + 37].to_vec();
    let reversed: Vec<u8> = scalar.iter().rev().copied().collect();
    let pem_line = text(&key_pem).lines().nth(1).unwrap().as_bytes().to_vec();
    let needles = [
        ("the PKCS#8 key", der),
        ("the private scalar", scalar),
        ("the private scalar, little-endian", reversed),
        ("a line of the PEM file", pem_line),
    ];
    if let Some(mem) = read_if_permitted("mem", || std::fs::File::open(format!("/proc/{pid}/mem")))
    {
        use std::os::unix::fs::FileExt as _;
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let mut scanned = 0usize;
        for line in maps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields[1].starts_with("rw") {
                continue;
            }
            let (start, end) = fields[0].split_once('-').unwrap();
            let start = u64::from_str_radix(start, 16).unwrap();
            let end = u64::from_str_radix(end, 16).unwrap();
            // Bounded: a reservation the size of a guest's memory is not read whole.
            let length = usize::try_from((end - start).min(256 << 20)).unwrap();
            let mut bytes = vec![0u8; length];
            if mem.read_exact_at(&mut bytes, start).is_err() {
                continue;
            }
            scanned += length;
            for (what, needle) in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "{what} is in the worker's memory ({line})"
                );
            }
        }
        assert!(
            scanned > 0,
            "nothing of the worker's memory was read:\n{maps}"
        );
    }
    // And it serves: the key was used for its attestation, not kept for it.
    let status = deployment.status(&policy, "hospital-a");
    assert_eq!(status["state"], "provisioning", "{status}");
}

/// The serials of the attested certificates the deployment's service issued, oldest first.
fn issued_serials(deployment: &Deployment) -> Vec<String> {
    let audit = ok(
        covenant_in(
            deployment.root(),
            &[
                "attestation-service",
                "audit",
                "--dir",
                "attestation",
                "--json",
            ],
        ),
        "attestation-service audit",
    );
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&audit.stdout).unwrap();
    entries
        .iter()
        .filter(|e| e["action"] == "attest" && e["outcome"] == "ok")
        .map(|e| e["serial"].as_str().unwrap().to_owned())
        .collect()
}

/// `covenant serve` for `policy` that must fail to start because its worker is refused as a
/// second instance of a live computation; returns its stderr.
fn serve_refused_as_a_second_instance(
    deployment: &Deployment,
    policy: &Path,
    live: &str,
) -> String {
    let refused = covenant_in(
        deployment.root(),
        &[
            "serve",
            "--policy",
            policy.to_str().unwrap(),
            "--platform-key",
            "ids/platform.key",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    for needle in [
        "computation shared-patients: the worker did not start",
        "the attestation service refused the worker",
        "instance-already-live",
        "already has a live attested instance",
        &format!("certificate {live}"),
        "would fork the computation",
        &format!("revoke --certificate {live}"),
    ] {
        assert!(stderr.contains(needle), "{needle}:\n{stderr}");
    }
    stderr
}

/// The instance `covenant client` pinned for `policy` (its `.instance` file).
fn pinned_instance(policy: &Path) -> String {
    let file = format!("{}.instance", policy.display());
    let pinned: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    pinned["instance"].as_str().unwrap().to_owned()
}

#[test]
fn a_second_host_for_a_served_computation_has_its_worker_refused_and_the_first_still_serves() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    deployment.serve(&[&policy]);
    std::fs::write(deployment.root().join("a.txt"), "patient-1\n").unwrap();
    deployment.client_ok(
        &policy,
        "hospital-a",
        &["provide-input", "/input/hospital-a.txt", "a.txt"],
    );
    let serials = issued_serials(&deployment);
    let [live] = serials.as_slice() else {
        panic!("one certificate: {serials:?}")
    };
    let live = live.clone();

    // The same policy and platform key on a second host: its worker is refused, and the host
    // says why (the refusal names the live instance and how it is freed).
    serve_refused_as_a_second_instance(&deployment, &policy, &live);
    let audit = ok(
        covenant_in(
            deployment.root(),
            &[
                "attestation-service",
                "audit",
                "--dir",
                "attestation",
                "--json",
            ],
        ),
        "audit",
    );
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&audit.stdout).unwrap();
    assert!(
        entries.iter().any(|e| e["action"] == "attest"
            && e["outcome"] == "refused"
            && e["code"] == "instance-already-live"),
        "the refusal is audited: {entries:?}"
    );
    assert_eq!(issued_serials(&deployment), [live.as_str()]);

    // The first host still serves the computation, with its data.
    let status = deployment.status(&policy, "hospital-b");
    assert_eq!(status["inputs"][0]["provided"], true, "{status}");
    std::fs::write(deployment.root().join("b.txt"), "patient-1\npatient-2\n").unwrap();
    deployment.client_ok(
        &policy,
        "hospital-b",
        &["provide-input", "/input/hospital-b.txt", "b.txt"],
    );
    let wasm = format!("{}.wasm", covenant_guests::PRIVATE_SET_INTERSECTION.name);
    deployment.client_ok(&policy, "researcher", &["provide-program", &wasm]);
    deployment.client_ok(&policy, "researcher", &["run", "--wait"]);
    deployment.client_ok(
        &policy,
        "hospital-b",
        &["fetch", "/output/shared.txt", "-o", "shared.txt"],
    );
    let shared = std::fs::read_to_string(deployment.root().join("shared.txt")).unwrap();
    assert_eq!(shared.trim(), "1");
    // Its receipts name the instance every client pinned.
    deployment.client_ok(&policy, "researcher", &["receipt", "-o", "r.jws"]);
    let verify = ok(
        covenant_in(
            deployment.root(),
            &["receipt", "verify", "--policy", "policy.json", "r.jws"],
        ),
        "receipt verify",
    );
    let pinned = pinned_instance(&policy);
    assert!(
        text(&verify.stdout).contains(&format!("instance {pinned}")),
        "{}",
        text(&verify.stdout)
    );
}

#[test]
fn a_client_that_spoke_to_one_instance_refuses_the_next_until_told_to_accept_it() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    deployment.serve(&[&policy]);
    let first = deployment.client_ok(&policy, "hospital-a", &["status"]);
    assert!(
        text(&first.stderr).contains("note: pinned instance"),
        "{}",
        text(&first.stderr)
    );
    let instance_a = pinned_instance(&policy);

    // Instance A ends: every principal closes it; the worker's signed end statement reaches
    // the attestation service through the host, which frees the computation.
    for who in PRINCIPALS {
        deployment.client_ok(&policy, who, &["close"]);
    }
    let ended = deployment.host().wait_ended("shared-patients");
    let serial_a = issued_serials(&deployment)[0].clone();
    assert!(
        ended.contains(&format!(
            "the attestation service recorded the end of instance {serial_a}"
        )),
        "{ended}\n{}",
        deployment.host().logs()
    );
    let host = deployment.serve.as_mut().unwrap();
    assert_eq!(host.wait_exit().code(), Some(0), "{}", host.logs());

    // Instance B of the same computation is attested; the client that spoke to A refuses it.
    deployment.serve(&[&policy]);
    assert_eq!(issued_serials(&deployment).len(), 2);
    let refused = deployment.client(&policy, "hospital-a", &["status"]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("another instance of this computation")
            && stderr.contains(&format!("not {instance_a}"))
            && stderr.contains("--accept-new-instance"),
        "{stderr}"
    );
    let json = deployment.client(&policy, "hospital-a", &["--json", "status"]);
    assert_eq!(json.status.code(), Some(4));
    let error: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(error["error"], "instance-changed", "{error}");
    // Nothing was sent: an upload is refused the same way and B has no input.
    std::fs::write(deployment.root().join("a.txt"), "patient-1\n").unwrap();
    let upload = deployment.client(
        &policy,
        "hospital-a",
        &["provide-input", "/input/hospital-a.txt", "a.txt"],
    );
    assert_eq!(upload.status.code(), Some(4), "{}", text(&upload.stderr));
    assert_eq!(pinned_instance(&policy), instance_a);

    // Told the change is expected, it accepts B and pins it.
    let accepted =
        deployment.client_ok(&policy, "hospital-a", &["--accept-new-instance", "status"]);
    let instance_b = pinned_instance(&policy);
    assert_ne!(instance_b, instance_a);
    assert!(
        text(&accepted.stderr).contains(&format!(
            "accepted a new instance of this computation: {instance_b} (was {instance_a})"
        )),
        "{}",
        text(&accepted.stderr)
    );
    let status = deployment.status(&policy, "hospital-b");
    assert_eq!(status["inputs"][0]["provided"], false, "{status}");
    deployment.client_ok(&policy, "hospital-a", &["status"]);
}

#[test]
fn an_operator_frees_the_computation_of_a_dead_worker_by_revoking_its_certificate() {
    let mut deployment = Deployment::new();
    let policy = deployment.policy("policy", &Spec::psi("shared-patients"));
    deployment.serve(&[&policy]);
    let pid = deployment.host().pids["shared-patients"];
    // The worker dies without a word: no end statement, its certificate stays live.
    signal(pid, "-9");
    let host = deployment.serve.as_mut().unwrap();
    let ended = host.wait_ended("shared-patients");
    assert!(ended.contains("worker FAILED"), "{ended}");
    assert!(!ended.contains("recorded the end of instance"), "{ended}");
    assert_eq!(host.wait_exit().code(), Some(1));
    let serials = issued_serials(&deployment);
    let [dead] = serials.as_slice() else {
        panic!("one certificate: {serials:?}")
    };
    let dead = dead.clone();
    serve_refused_as_a_second_instance(&deployment, &policy, &dead);

    // The operator checks the worker is gone, then revokes its certificate (audited).
    ok(
        covenant_in(
            deployment.root(),
            &[
                "attestation-service",
                "revoke",
                "--dir",
                "attestation",
                "--certificate",
                &dead,
                "--reason",
                "its worker died",
            ],
        ),
        "revoke",
    );
    deployment.serve(&[&policy]);
    assert_eq!(issued_serials(&deployment).len(), 2);
}

/// The first flight of a real TLS client naming `server_name`: one ClientHello record.
fn client_hello(server_name: &str) -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).unwrap();
    hello
}

#[test]
fn a_flood_of_client_hellos_neither_kills_the_worker_nor_costs_its_inputs() {
    // 2,000 well-formed ClientHellos naming the computation, held open, as a stranger could
    // send: the host relays each to the worker before anyone is authenticated.
    const FLOOD: usize = 2000;
    let mut deployment = Deployment::new();
    let policy = deployment.policy("flooded", &Spec::psi("flooded"));
    let other = deployment.policy("bystander", &Spec::psi("bystander"));
    deployment.serve(&[&policy, &other]);
    let data: BTreeSet<String> = ["patient-7".to_owned()].into();
    let file = deployment.ids_file("flooded-a.txt", &data);
    deployment.client_ok(
        &policy,
        "hospital-a",
        &["provide-input", "/input/hospital-a.txt", &file],
    );
    let hello = client_hello("flooded");
    let address = deployment.host().address.clone();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        match std::net::TcpStream::connect(&address) {
            Ok(mut stream) => {
                // A connection the host already closed is fine: the flood is what counts.
                let _ = stream.write_all(&hello);
                flood.push(stream);
            }
            Err(e) => panic!(
                "connecting to the host failed after {} connections: {e}",
                flood.len()
            ),
        }
    }
    // During the flood: the worker is alive (a status goes through, or is refused for room,
    // never because the worker died).
    let pid = deployment.host().pids["flooded"];
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the worker died during the flood"
    );
    // The host relays at most MAX_CONNECTIONS_PER_COMPUTATION to the flooded computation, so
    // another computation on the same host is served during the flood.
    let bystander = deployment.client_ok(&other, "hospital-b", &["--json", "status"]);
    let bystander: serde_json::Value = serde_json::from_slice(&bystander.stdout).unwrap();
    assert_eq!(bystander["state"], "provisioning", "{bystander}");
    drop(flood);
    // After it: a genuine principal is served and the input is intact.
    let status = poll("the worker to serve again after the flood", || {
        let out = deployment.client(&policy, "hospital-a", &["--json", "status"]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    });
    assert_eq!(status["inputs"][0]["provided"], true, "{status}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the worker died after the flood"
    );
    let logs = deployment.host().logs();
    assert!(!logs.contains("worker FAILED"), "{logs}");
}

#[test]
fn a_host_cannot_turn_up_a_workers_log_to_read_the_program() {
    // The host reads the worker's log; with RUST_LOG=trace the engine would print the
    // program's code there. The worker's filter is fixed.
    let mut deployment = Deployment::new();
    let policy = deployment.policy("quiet", &Spec::psi("quiet"));
    deployment.serve_with_env(&[&policy], &[("RUST_LOG", "trace")]);
    let wasm = format!("{}.wasm", covenant_guests::PRIVATE_SET_INTERSECTION.name);
    deployment.client_ok(&policy, "researcher", &["provide-program", &wasm]);
    let logs = deployment.host().logs();
    let worker_lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("[worker ")).collect();
    assert!(
        worker_lines.iter().any(|l| l.contains("serving")),
        "the worker logs at info: {logs}"
    );
    for line in worker_lines {
        assert!(
            !line.contains("TRACE") && !line.contains("DEBUG") && !line.contains("cranelift"),
            "{line}"
        );
    }
}

#[test]
fn sigterm_stops_the_workers_in_order_and_frees_their_computations() {
    // What a service manager sends on a restart: the workers stop and report their ends, so
    // that the restarted host's workers are attested again at once.
    let mut deployment = Deployment::new();
    let policy = deployment.policy("restarted", &Spec::psi("restarted"));
    deployment.serve(&[&policy]);
    let host_pid = deployment.host().child.0.id();
    signal(host_pid, "-TERM");
    let ended = deployment.host().wait_ended("restarted");
    assert!(
        ended.contains("recorded the end of instance"),
        "{ended}\n{}",
        deployment.host().logs()
    );
    let host = deployment.serve.as_mut().unwrap();
    assert_eq!(host.wait_exit().code(), Some(0), "{}", host.logs());
    deployment.serve = None;
    // A new host for the same computation is attested: nothing is held until expiry.
    deployment.serve(&[&policy]);
    let status = deployment.status(&policy, "hospital-a");
    assert_eq!(status["state"], "provisioning", "{status}");
}
