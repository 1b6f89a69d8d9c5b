//! Uploads the policy rules out. When the client can tell beforehand (a file over the
//! input's `max_bytes`, not the data or module the policy pins) it refuses before anything is
//! sent; when it cannot (a pipe, whose size is known only once read), the runtime refuses
//! part-way, and that refusal — not a connection reset — is what the principal gets. Either
//! way nothing is stored, nothing changes for the others, and the input can be sent again.
//!
//! The uploads go through a relay like `covenant serve`'s host, where a runtime that stopped
//! reading used to reach the client as a connection reset.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use covenant_client::{ClientError, NoProgress, Progress, State, Upload};
use covenant_runtime::api::MAX_PROGRAM_BYTES;

use crate::support::{B_CSV, served, served_with, sha256_hex, sum_inputs};

/// Records whether an upload started and how much it handed over.
#[derive(Default)]
struct Counted {
    started: bool,
    advanced: u64,
}

impl Progress for Counted {
    fn started(&mut self, _total: Option<u64>) {
        self.started = true;
    }
    fn advanced(&mut self, n: u64) {
        self.advanced += n;
    }
}

/// A sparse file of `len` bytes: instant to make, and far too long to upload in a test.
fn sparse(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

/// A FIFO at `dir/name` whose writer (a thread) writes `bytes` once the upload opens it, and
/// stops when the reader goes away: a stream whose size no one knows before reading it, like
/// `/dev/stdin` or `<(gunzip -c data.gz)`.
fn pipe(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let path = dir.join(name);
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo failed");
    let fifo = path.clone();
    std::thread::spawn(move || {
        // Opening blocks until the reader opens; writing fails once it has gone.
        if let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&fifo) {
            let _ = writer.write_all(&bytes);
        }
    });
    path
}

#[tokio::test]
async fn an_input_over_its_bound_is_refused_before_anything_is_sent() {
    let s = served().await;
    let mut bob = s.connect_relayed(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;
    let before = carol.status().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 1 GiB against the policy's 1 KiB: refused at once, without a byte of it sent.
    let big = sparse(dir.path(), "big.csv", 1 << 30);
    let mut progress = Counted::default();
    let err = bob
        .provide_input("/input/b.csv", big.as_path(), &mut progress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PolicyRefuses {
                rule: "input-too-large",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    for part in [
        "input-too-large",
        "big.csv is 1073741824 bytes",
        "max_bytes for /input/b.csv is 1024",
        "nothing was sent",
        "Send at most 1024 bytes",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    assert!(
        !progress.started && progress.advanced == 0,
        "the upload started"
    );
    // Bytes in memory are measured the same way.
    let err = bob
        .provide_input("/input/b.csv", vec![b'1'; 1025], &mut NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.rule(), Some("input-too-large"), "{err}");
    assert!(matches!(err, ClientError::PolicyRefuses { .. }), "{err:?}");

    // Nothing changed; the input is still absent and goes through when it fits.
    assert_eq!(carol.status().await.unwrap(), before);
    assert_eq!(bob.status().await.unwrap().inputs[1].provided, Some(false));
    let fits = dir.path().join("b.csv");
    std::fs::write(&fits, B_CSV).unwrap();
    let received = bob
        .provide_input("/input/b.csv", fits.as_path(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(received.sha256, sha256_hex(B_CSV));
}

#[tokio::test]
async fn an_input_that_outgrows_its_bound_while_sent_gets_the_runtimes_refusal() {
    let s = served().await;
    let mut bob = s.connect_relayed(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;
    let before = carol.status().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 64 MiB through a pipe against 1 KiB: the runtime refuses part-way while the client is
    // still writing. Twice, on the same client (it reconnects after an abandoned body).
    for round in 0..2 {
        let stream = pipe(dir.path(), &format!("stream-{round}"), vec![b'7'; 64 << 20]);
        let err = bob
            .provide_input("/input/b.csv", Upload::File(stream), &mut NoProgress)
            .await
            .unwrap_err();
        match &err {
            ClientError::Refused {
                status,
                rule,
                message,
            } => {
                assert_eq!((*status, rule.as_str()), (413, "input-too-large"));
                assert!(message.contains("1024 bytes"), "{message}");
            }
            other => panic!("expected the runtime's refusal, got {other:?}: {other}"),
        }
    }

    // Nothing was stored; the others see no change; the input can be sent again.
    assert_eq!(carol.status().await.unwrap(), before);
    let status = bob.status().await.unwrap();
    assert_eq!(status.inputs[1].provided, Some(false));
    assert_eq!(status.state, State::Provisioning);
    let received = bob
        .provide_input(
            "/input/b.csv",
            Upload::File(pipe(dir.path(), "right", B_CSV.to_vec())),
            &mut NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(
        (received.bytes, received.sha256),
        (B_CSV.len() as u64, sha256_hex(B_CSV))
    );
}

#[tokio::test]
async fn an_input_that_is_not_the_pinned_data_is_refused_before_sending_or_by_the_runtime() {
    let s = served_with(|p| p.inputs[1].sha256 = Some(sha256_hex(B_CSV))).await;
    let mut bob = s.connect_relayed(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;
    let before = carol.status().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = b"11,20\n";

    // A file: hashed before sending.
    let file = dir.path().join("b.csv");
    std::fs::write(&file, wrong).unwrap();
    let mut progress = Counted::default();
    let err = bob
        .provide_input("/input/b.csv", file.as_path(), &mut progress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PolicyRefuses {
                rule: "input-hash-mismatch",
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&sha256_hex(wrong)) && message.contains(&sha256_hex(B_CSV)),
        "{message}"
    );
    assert!(!progress.started, "the upload started");

    // A pipe: the runtime finds the mismatch at the end.
    let err = bob
        .provide_input(
            "/input/b.csv",
            Upload::File(pipe(dir.path(), "wrong", wrong.to_vec())),
            &mut NoProgress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 422, rule, .. } if rule == "input-hash-mismatch"),
        "{err:?}"
    );

    assert_eq!(carol.status().await.unwrap(), before);
    std::fs::write(&file, B_CSV).unwrap();
    let received = bob
        .provide_input("/input/b.csv", file.as_path(), &mut NoProgress)
        .await
        .unwrap();
    assert_eq!(received.sha256, sha256_hex(B_CSV));
}

#[tokio::test]
async fn a_program_that_is_not_the_pinned_module_is_refused_before_anything_is_sent() {
    let s = served().await;
    let mut alice = s.connect_relayed(&s.alice).await;
    let mut bob = s.connect_relayed(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;
    let before = carol.status().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let other = dir.path().join("hello.wasm");
    std::fs::write(&other, covenant_guests::HELLO.bytes()).unwrap();
    let mut progress = Counted::default();
    let err = alice
        .provide_program(other.as_path(), &mut progress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PolicyRefuses {
                rule: "program-hash-mismatch",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&s.policy.policy().program.sha256),
        "{err}"
    );
    assert!(!progress.started, "the upload started");

    // Over the runtime's cap: refused on its size, without being read.
    let huge = sparse(dir.path(), "huge.wasm", MAX_PROGRAM_BYTES as u64 + 1);
    let err = alice
        .provide_program(huge.as_path(), &mut NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PolicyRefuses {
                rule: "program-too-large",
                ..
            }
        ),
        "{err:?}"
    );

    // Someone else's program is the runtime's to refuse, by role, before it reads any of
    // it: bob gets the refusal while his 64 MiB are still going out.
    let err = bob
        .provide_program(vec![0u8; 64 << 20], &mut NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused { status: 403, rule, .. } if rule == "not-program-provider"),
        "{err:?}"
    );

    assert_eq!(carol.status().await.unwrap(), before);
    alice
        .provide_program(sum_inputs(), &mut NoProgress)
        .await
        .unwrap();
    assert!(carol.status().await.unwrap().program_provided);
}
