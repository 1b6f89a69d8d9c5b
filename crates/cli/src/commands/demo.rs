//! `covenant demo [EXAMPLE]`: one collaborative computation, end to end, on this machine.
//!
//! It plays every part with the real components: identities for every party, an attestation
//! service on SQLite, a software platform enrolled with this build's measurement accepted, the
//! example's policy built, the host with its hardened worker process, and each principal over
//! mutually authenticated TLS on loopback — upload, run, fetch, verify the receipt, close.
//! Everything is left in a directory it names, with `COMMANDS.md` giving the commands to do
//! each step by hand. Its processes (the worker) end when it ends, on Ctrl-C too.
//!
//! The example sources are compiled in (`examples/NAME/policy.toml`); their data comes from
//! `covenant-examples` (seedable) and their programs from `covenant-guests`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Args;
use covenant_attestation_service::{AttestationService, ServiceConfig, ServiceDir};
use covenant_client::{Client, Identity, NoProgress, RunResult};
use covenant_host::{Host, HostConfig, PlatformConfig, WorkerState};
use time::OffsetDateTime;

use super::Exit;

/// The example whose policy source is `examples/NAME/policy.toml`, compiled in.
macro_rules! example_sources {
    ($($name:literal),* $(,)?) => {
        /// Every example `covenant demo` can run: its directory name under `examples/` and
        /// its policy source.
        pub const EXAMPLES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../../../examples/", $name, "/policy.toml")))),*
        ];
    };
}

example_sources!(
    "private-set-intersection",
    "intersection-sum",
    "linear-regression",
    "macd",
    "edit-distance",
    "shamir",
);

/// The default example.
pub const DEFAULT_EXAMPLE: &str = "private-set-intersection";

/// The file that marks a directory as made by `covenant demo`, so that a later demo may
/// replace it. A directory without it is never touched.
const MARKER: &str = ".covenant-demo";

/// The platform's name in the demo's attestation service.
const PLATFORM_NAME: &str = "demo-platform";

/// The seed the demo's data is generated from, unless `--seed` says otherwise.
const DEFAULT_SEED: u64 = 2026;

/// The subcommand's long help (`--help`).
pub const LONG_ABOUT: &str = "Run one example computation end to end on this machine, with the real \
    components: identities for every party, an attestation service on SQLite, a software \
    platform enrolled, the policy built, the host with its hardened worker process, and each \
    principal over mutually authenticated TLS on loopback (upload, run, fetch, verify the \
    receipt, close). Says what it does at each step, prints the result and the verified \
    receipt, and leaves everything in a directory with COMMANDS.md, the commands to redo \
    each step by hand. Examples: private-set-intersection (default), intersection-sum, \
    linear-regression, macd, edit-distance, shamir (the directories under examples/).";

/// Arguments of `covenant demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The example: a directory under `examples/`.
    #[arg(default_value = DEFAULT_EXAMPLE, value_name = "EXAMPLE")]
    pub example: String,
    /// Where to leave everything [default: covenant-demo/EXAMPLE]. Replaced if an earlier
    /// demo made it; refused if it exists otherwise.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Seed for the example's generated data.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

/// `covenant demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let Some(&(name, source)) = EXAMPLES.iter().find(|(n, _)| *n == args.example) else {
        let names: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
        return Err(Exit::refused(format!(
            "there is no example {:?}; choose one of: {}",
            args.example,
            names.join(", ")
        )));
    };
    let example = covenant_examples::generate(name, args.seed)
        .with_context(|| format!("the example {name} has no data generator"))?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| Path::new("covenant-demo").join(name));
    prepare_dir(&dir)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = demo(&dir, source, &example, args.seed) => result.map(|()| ExitCode::SUCCESS),
            _ = tokio::signal::ctrl_c() => {
                println!();
                println!("Interrupted: stopping the worker and the attestation service.");
                Ok(ExitCode::from(130))
            }
        }
    });
    // Dropping the runtime drops the host's tasks, whose worker processes are killed with
    // them (and would exit anyway, their control channel closed): nothing outlives the demo.
    drop(runtime);
    if outcome.is_err() {
        println!();
        println!(
            "The demo stopped. Everything it made so far is in {}.",
            dir.display()
        );
    }
    outcome
}

/// Creates `dir`, replacing it only if an earlier demo made it.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.join(MARKER).is_file() {
            return Err(Exit::refused(format!(
                "{} exists and was not made by `covenant demo`; choose another with --dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the earlier demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `covenant demo`; the next demo may replace this directory\n",
    )
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    Ok(())
}

/// Prints a numbered step.
fn step(number: u32, title: &str) {
    println!();
    println!("[{number}/7] {title}");
}

/// Prints a detail of the current step.
fn say(text: impl std::fmt::Display) {
    println!("      {text}");
}

async fn demo(
    dir: &Path,
    source: &str,
    example: &covenant_examples::Example,
    seed: u64,
) -> anyhow::Result<()> {
    let name = example.name;
    let guest = covenant_guests::Guest::named(example.guest)
        .with_context(|| format!("no guest program named {}", example.guest))?;
    let program = std::fs::read(guest.path).with_context(|| {
        format!(
            "reading the guest program {} (built with this binary; rebuild if it has gone)",
            guest.path
        )
    })?;
    println!("Covenant demo: {name} (data seed {seed})");
    println!("Everything goes into {}/", dir.display());

    // 1. Identities.
    let principals = principal_names(source)?;
    step(
        1,
        "Identities: an X.509 certificate and a P-256 key for every party",
    );
    let ids = dir.join("ids");
    for principal in principals.iter().map(String::as_str).chain(["platform"]) {
        super::identity::create(&ids, principal)?;
    }
    say(format!(
        "{} in ids/, and `platform` for the software platform the worker runs on",
        principals.join(", ")
    ));

    // 2. Attestation service.
    step(
        2,
        "Attestation service: a CA and an SQLite database, serving on loopback",
    );
    let service_dir = ServiceDir::new(dir.join("attestation"));
    let (ca, db) = service_dir
        .init(None)
        .await
        .context("creating the attestation service")?;
    let platform_pem =
        std::fs::read(ids.join("platform.crt")).context("reading ids/platform.crt")?;
    covenant_attestation_service::admin::enroll_platform(
        &db,
        PLATFORM_NAME,
        covenant_attest::PlatformKind::Software,
        &platform_pem,
    )
    .await
    .context("enrolling the platform")?;
    let measurement = hex::encode(super::measurement::self_measurement()?);
    covenant_attestation_service::admin::allow_measurement(&db, PLATFORM_NAME, &measurement)
        .await
        .context("accepting this build's measurement")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening for the attestation service")?;
    let service_addr = listener
        .local_addr()
        .context("the attestation service's address")?;
    let service = Arc::new(AttestationService::new(db, ca, ServiceConfig::default()));
    let (stop_service, service_stopped) = tokio::sync::oneshot::channel::<()>();
    let service_task = tokio::spawn(covenant_attestation_service::serve(
        listener,
        Arc::clone(&service),
        None,
        async move {
            let _ = service_stopped.await;
        },
    ));
    say("database: attestation/attestation.db; CA: attestation/ca.crt");
    say(format!(
        "enrolled the software platform {PLATFORM_NAME:?} (ids/platform.crt)"
    ));
    say(format!("accepts this build's measurement {measurement}"));
    say(format!("listening on http://{service_addr}"));

    // 3. Policy.
    step(
        3,
        "Policy: the example's policy.toml built into policy.json",
    );
    let program_file = program_file_name(source)?;
    std::fs::write(dir.join(&program_file), &program)
        .with_context(|| format!("writing {program_file}"))?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).context("creating data/")?;
    for input in &example.inputs {
        std::fs::write(data.join(input.file_name()), &input.bytes)
            .with_context(|| format!("writing data/{}", input.file_name()))?;
    }
    let expires = OffsetDateTime::now_utc() + time::Duration::days(1);
    let source = localise(source, &format!("http://{service_addr}"), expires)?;
    std::fs::write(dir.join("policy.toml"), &source).context("writing policy.toml")?;
    let read = |path: &str| std::fs::read(dir.join(path));
    let policy = covenant_policy::build(
        &source,
        &read,
        Some(super::measurement::self_measurement()?),
    )
    .map_err(|e| anyhow::anyhow!("the example's policy does not build: {e}"))?;
    let valid = covenant_policy::validate(&policy, OffsetDateTime::now_utc())
        .map_err(|problems| anyhow::anyhow!("the example's policy is not valid: {problems}"))?;
    let json = covenant_policy::to_json_pretty(&policy).context("serialising the policy")?;
    std::fs::write(dir.join("policy.json"), json).context("writing policy.json")?;
    say(format!(
        "computation {:?}, policy hash {}",
        policy.computation,
        valid.hash()
    ));
    say(format!(
        "the program {program_file} is pinned by its SHA-256 {}",
        policy.program.sha256
    ));
    say(format!(
        "{} inputs from {} providers; the expiry is moved to a day from now",
        policy.inputs.len(),
        {
            let mut providers: Vec<&str> =
                policy.inputs.iter().map(|i| i.provider.as_str()).collect();
            providers.sort_unstable();
            providers.dedup();
            providers.len()
        }
    ));

    // 4. Host and worker.
    step(
        4,
        "Host: a worker process for the computation, hardened and attested",
    );
    let config = HostConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        policies: vec![dir.join("policy.json")],
        platform: PlatformConfig::Software {
            certificate: ids.join("platform.crt"),
            key: ids.join("platform.key"),
        },
        attestation_service: None,
        worker_program: std::env::current_exe().context("finding this executable")?,
        worker_args: vec!["worker".into()],
    };
    let host = Host::start(config).await.context("starting the host")?;
    let host_addr = host.local_addr().context("the host's address")?;
    for worker in host.workers() {
        say(format!(
            "worker pid {}: rlimits, no core dumps, no_new_privs, seccomp allow-list (no sockets, no exec, no file opens)",
            worker.pid
        ));
    }
    say(
        "attested by the service: certificate for the worker's own TLS key, naming its \
         measurement and the policy hash",
    );
    say(format!(
        "host listening on {host_addr}; it routes by the computation id (TLS SNI) and relays ciphertext"
    ));
    let (stop_host, host_stopped) = tokio::sync::oneshot::channel::<()>();
    let host_task = tokio::spawn(host.run(
        async move {
            let _ = host_stopped.await;
        },
        |_, _| {},
    ));

    // 5. Provision.
    step(
        5,
        "Provision: each principal connects and uploads what the policy assigns it",
    );
    let host_text = host_addr.to_string();
    let mut clients = Vec::new();
    for principal in &principals {
        let identity = Identity::from_pem(
            &std::fs::read(ids.join(format!("{principal}.crt")))?,
            &std::fs::read(ids.join(format!("{principal}.key")))?,
        )
        .with_context(|| format!("loading {principal}'s identity"))?;
        let client = Client::connect(&valid, &identity, &host_text)
            .await
            .with_context(|| format!("{principal} connecting"))?;
        clients.push((principal.clone(), client));
    }
    say(format!(
        "{} connected; each checked the worker's attested certificate (CA, measurement, policy hash) before sending anything",
        principals.join(", ")
    ));
    let provider = &policy.program.provider;
    client_of(&mut clients, provider)?
        .provide_program(program.clone(), &mut NoProgress)
        .await
        .with_context(|| format!("{provider} uploading the program"))?;
    say(format!(
        "{provider} uploaded the program ({} bytes); the worker checked its SHA-256",
        program.len()
    ));
    for input in &example.inputs {
        let provider = &policy
            .inputs
            .iter()
            .find(|i| i.path == input.path)
            .with_context(|| format!("the policy names no input {}", input.path))?
            .provider;
        let received = client_of(&mut clients, provider)?
            .provide_input(input.path, data.join(input.file_name()), &mut NoProgress)
            .await
            .with_context(|| format!("{provider} uploading {}", input.path))?;
        say(format!(
            "{provider} uploaded {} ({} bytes, SHA-256 {}…)",
            input.path,
            received.bytes,
            &received.sha256[..16]
        ));
    }

    // 6. Run.
    let starter = policy
        .runs
        .starters
        .first()
        .context("the policy names no run starter")?;
    step(
        6,
        "Run: the program runs in the worker under the policy's limits",
    );
    let (record, receipt) = match client_of(&mut clients, starter)?
        .run(true)
        .await
        .with_context(|| format!("{starter} starting the run"))?
    {
        RunResult::Finished { record, receipt } => (record, receipt),
        RunResult::Started { .. } => bail!("the runtime answered a waited-for run early"),
    };
    say(format!(
        "{starter} started run {}: {} after {} ms, {} fuel",
        record.run,
        record.outcome,
        record.wall_time_us / 1000,
        record.fuel_used
    ));

    // 7. Results and receipt.
    step(
        7,
        "Results: each reader fetches what the policy lets it read; the receipt is verified",
    );
    let readers = &policy
        .outputs
        .iter()
        .find(|o| o.path == example.output)
        .with_context(|| format!("the policy names no output {}", example.output))?
        .readers;
    let mut result = Vec::new();
    let mut salt = String::new();
    for reader in readers {
        let mut bytes = Vec::new();
        salt = client_of(&mut clients, reader)?
            .fetch(example.output, &mut bytes, &mut NoProgress)
            .await
            .with_context(|| format!("{reader} fetching {}", example.output))?
            .salt;
        say(format!(
            "{reader} fetched {} ({} bytes)",
            example.output,
            bytes.len()
        ));
        result = bytes;
    }
    let result_text = String::from_utf8_lossy(&result).into_owned();
    std::fs::write(dir.join("result.txt"), &result).context("writing result.txt")?;
    println!();
    println!("      The result ({}):", example.output);
    for line in result_text.lines() {
        println!("        {line}");
    }
    if result_text != example.expected {
        bail!(
            "the result differs from the answer computed in plain Rust from the same data:\n{}",
            example.expected
        );
    }
    say("It equals the answer computed in plain Rust from the same data.");
    std::fs::write(dir.join("receipt.jws"), &receipt).context("writing receipt.jws")?;
    let verified = covenant_runtime::verify_receipt(&receipt, &valid)
        .map_err(|e| anyhow::anyhow!("the receipt does not verify: {e}"))?;
    let claims = &verified.claims;
    println!();
    say(
        "The receipt (receipt.jws) verifies against the policy: signed by the worker's attested key,",
    );
    say(format!(
        "  computation {}, run {}, engine {}, outcome {}, fuel {}",
        claims.computation, claims.run, claims.engine, claims.outcome, claims.fuel_used
    ));
    say(format!("  policy  {}", claims.policy_sha256));
    say(format!(
        "  instance {} (the worker's attested key)",
        claims.instance
    ));
    say(format!("  program {}", claims.program_sha256));
    for input in &claims.inputs {
        say(format!(
            "  input   {} committed to as {}",
            input.path, input.commitment
        ));
    }
    for output in &claims.outputs {
        match &output.commitment {
            Some(c) => say(format!("  output  {} committed to as {c}", output.path)),
            None => say(format!("  output  {} {}", output.path, output.status)),
        }
    }
    covenant_runtime::check_opening(claims, example.output, &salt, result.as_slice())
        .map_err(|e| anyhow::anyhow!("the result does not match the receipt: {e}"))?;
    say(format!(
        "The result opens the receipt's commitment with the salt only its readers got ({}...);",
        &salt[..salt.len().min(12)]
    ));
    say("a principal who may not read it cannot test guesses against the receipt.");

    // Close: every principal agrees; the worker wipes its data and exits.
    for (_, client) in &mut clients {
        client.close().await.context("closing the computation")?;
    }
    // Hang up, so that the worker need not wait for idle connections before it exits.
    drop(clients);
    let ended = host_task.await.context("the host task")?;
    drop(stop_host);
    for worker in &ended {
        if let WorkerState::Ended { reason, clean } = &worker.state {
            if !clean {
                bail!("the worker ended abnormally: {reason}");
            }
            println!();
            println!("Closed: {reason}. The computation's data went with it.");
        }
    }
    let _ = stop_service.send(());
    let _ = service_task.await;
    service.database().close().await;

    std::fs::write(
        dir.join("COMMANDS.md"),
        commands(name, &principals, &policy, &program_file, example),
    )
    .context("writing COMMANDS.md")?;
    println!();
    println!(
        "Done. {}/COMMANDS.md has the commands to do each step by hand.",
        dir.display()
    );
    Ok(())
}

fn client_of<'a>(
    clients: &'a mut [(String, Client)],
    principal: &str,
) -> anyhow::Result<&'a mut Client> {
    clients
        .iter_mut()
        .find(|(name, _)| name == principal)
        .map(|(_, client)| client)
        .with_context(|| format!("the policy names no principal {principal}"))
}

/// The principals of a source, in its order: the keys of its `[principals]` table.
fn principal_names(source: &str) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = toml::from_str(source).context("the example's policy.toml")?;
    let principals = table
        .get("principals")
        .and_then(toml::Value::as_table)
        .context("the example's policy.toml has no [principals]")?;
    Ok(principals.keys().cloned().collect())
}

/// The program file a source names (`[program] file`).
fn program_file_name(source: &str) -> anyhow::Result<String> {
    let table: toml::Table = toml::from_str(source).context("the example's policy.toml")?;
    let file = table
        .get("program")
        .and_then(|p| p.get("file"))
        .and_then(toml::Value::as_str)
        .context("the example's policy.toml has no [program] file")?;
    if file.contains('/') || file.starts_with('.') {
        bail!("the example's program file {file:?} is not a plain file name");
    }
    Ok(file.to_owned())
}

/// The example's source with this demo's attestation service and an expiry a day away: the
/// lines `service = ...` and `expires = ...` are replaced, everything else (comments too) kept.
fn localise(source: &str, service_url: &str, expires: OffsetDateTime) -> anyhow::Result<String> {
    let expires = covenant_policy::format_utc(expires);
    let (mut saw_service, mut saw_expires) = (false, false);
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        if line.starts_with("service =") || line.starts_with("service=") {
            saw_service = true;
            let _ = writeln!(out, "service = \"{service_url}\"");
        } else if line.starts_with("expires =") || line.starts_with("expires=") {
            saw_expires = true;
            let _ = writeln!(out, "expires = \"{expires}\"");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !(saw_service && saw_expires) {
        bail!("the example's policy.toml has no `service =` or `expires =` line to set");
    }
    Ok(out)
}

/// `COMMANDS.md`: every step by hand, in a fresh directory beside the demo's.
fn commands(
    name: &str,
    principals: &[String],
    policy: &covenant_policy::Policy,
    program_file: &str,
    example: &covenant_examples::Example,
) -> String {
    let mut s = String::new();
    let client = |who: &str| {
        format!("covenant client --policy policy.json --cert ids/{who}.crt --key ids/{who}.key")
    };
    let _ = writeln!(s, "# Covenant demo `{name}` by hand\n");
    let _ = writeln!(
        s,
        "`covenant demo {name}` did each of these steps in-process. To do them yourself, start in a \
         fresh directory with the example's source, program and data (run from this directory):\n"
    );
    let _ = writeln!(s, "```sh");
    let _ = writeln!(
        s,
        "mkdir ../by-hand && cp policy.toml {program_file} ../by-hand/ && cp -r data ../by-hand/"
    );
    let _ = writeln!(s, "cd ../by-hand");
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "1. Identities, one per party and one for the platform:\n\n```sh"
    );
    for p in principals.iter().map(String::as_str).chain(["platform"]) {
        let _ = writeln!(s, "covenant identity new {p} --dir ids");
    }
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "2. The attestation service (a CA and an SQLite database), the platform enrolled, this \
         build's measurement accepted; leave it running in its own terminal:\n\n```sh"
    );
    let _ = writeln!(s, "covenant attestation-service init --dir attestation");
    let _ = writeln!(
        s,
        "covenant attestation-service enroll-platform --dir attestation {PLATFORM_NAME} ids/platform.crt"
    );
    let _ = writeln!(
        s,
        "covenant attestation-service allow-measurement --dir attestation {PLATFORM_NAME} \"$(covenant measurement)\""
    );
    let _ = writeln!(
        s,
        "covenant attestation-service serve --dir attestation --listen 127.0.0.1:3010"
    );
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "3. The policy. Set `service = \"http://127.0.0.1:3010\"` under `[attestation]` in \
         policy.toml, then build it; every party checks it and compares hashes:\n\n```sh"
    );
    let _ = writeln!(s, "covenant policy build policy.toml -o policy.json");
    let _ = writeln!(s, "covenant policy check policy.json");
    let _ = writeln!(s, "covenant policy hash policy.json");
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "4. The host, with a hardened worker for the computation; leave it running in its own \
         terminal (it listens on 127.0.0.1:7443, where `covenant client` connects by default):\n\n```sh"
    );
    let _ = writeln!(
        s,
        "covenant serve --policy policy.json --platform-key ids/platform.key"
    );
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "5. Each principal provides what the policy assigns it:\n\n```sh"
    );
    let _ = writeln!(
        s,
        "{} provide-program {program_file}",
        client(&policy.program.provider)
    );
    for input in &example.inputs {
        if let Some(named) = policy.inputs.iter().find(|i| i.path == input.path) {
            let _ = writeln!(
                s,
                "{} provide-input {} data/{}",
                client(&named.provider),
                input.path,
                input.file_name()
            );
        }
    }
    let _ = writeln!(s, "```\n");
    let _ = writeln!(s, "6. The run:\n\n```sh");
    if let Some(starter) = policy.runs.starters.first() {
        let _ = writeln!(s, "{} run --wait", client(starter));
    }
    let _ = writeln!(s, "```\n");
    let _ = writeln!(s, "7. Results, the receipt, and the end:\n\n```sh");
    let mut verify = "covenant receipt verify --policy policy.json receipt.jws".to_owned();
    if let Some(output) = policy.outputs.iter().find(|o| o.path == example.output) {
        for (i, reader) in output.readers.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(
                    s,
                    "{} fetch {} -o result.txt   # and result.txt.salt, which checks it against the receipt",
                    client(reader),
                    output.path
                );
            } else {
                let _ = writeln!(s, "{} fetch {}", client(reader), output.path);
            }
        }
        if let Some(reader) = output.readers.first() {
            let _ = writeln!(s, "{} receipt -o receipt.jws", client(reader));
            verify = format!(
                "{verify} \\\n    --file {path}=result.txt --salt {path}=@result.txt.salt",
                path = output.path
            );
        }
    }
    let _ = writeln!(s, "{verify}");
    for p in principals {
        let _ = writeln!(s, "{} close", client(p));
    }
    let _ = writeln!(s, "```");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_knows_every_example_the_examples_crate_does() {
        let names: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, covenant_examples::NAMES);
    }

    #[test]
    fn every_example_source_localises_and_names_its_program() {
        let now = OffsetDateTime::now_utc();
        for (name, source) in EXAMPLES {
            let local = localise(source, "http://127.0.0.1:1", now).unwrap();
            assert!(local.contains("service = \"http://127.0.0.1:1\""), "{name}");
            assert!(!program_file_name(source).unwrap().is_empty(), "{name}");
            assert!(principal_names(source).unwrap().len() >= 2, "{name}");
            assert!(covenant_examples::generate(name, 1).is_some(), "{name}");
        }
    }
}
