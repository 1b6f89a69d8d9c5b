//! Streamed transfers: a 64 MiB input from a file arrives whole, progress is reported, and a
//! file that cannot be read is named before anything is sent.

use std::io::Write as _;

use covenant_client::{ClientError, NoProgress, Progress, State, Upload};
use sha2::{Digest as _, Sha256};

use crate::support::served_with;

/// Records what a transfer reported.
#[derive(Default)]
struct Recorded {
    total: Option<Option<u64>>,
    advanced: u64,
    calls: u64,
    finished: bool,
}

impl Progress for Recorded {
    fn started(&mut self, total: Option<u64>) {
        self.total = Some(total);
    }
    fn advanced(&mut self, n: u64) {
        self.advanced += n;
        self.calls += 1;
    }
    fn finished(&mut self) {
        self.finished = true;
    }
}

#[tokio::test]
async fn an_input_streamed_from_a_64_mib_file_arrives_whole() {
    const SIZE: usize = 64 << 20;
    let s = served_with(|p| p.inputs[0].max_bytes = SIZE as u64).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut hasher = Sha256::new();
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..SIZE / block.len() {
            for (j, byte) in block.iter_mut().enumerate() {
                *byte = ((i * 7 + j * 13) % 251) as u8;
            }
            hasher.update(&block);
            file.write_all(&block).unwrap();
        }
        file.flush().unwrap();
    }
    let expected = hex::encode(hasher.finalize());

    let mut alice = s.connect(&s.alice).await;
    let mut progress = Recorded::default();
    let received = alice
        .provide_input("/input/a.csv", path.as_path(), &mut progress)
        .await
        .unwrap();
    assert_eq!(received.bytes, SIZE as u64);
    assert_eq!(received.sha256, expected);
    assert_eq!(progress.total, Some(Some(SIZE as u64)));
    assert_eq!(progress.advanced, SIZE as u64);
    assert!(progress.calls >= (SIZE / covenant_client::UPLOAD_CHUNK_BYTES) as u64);
    assert!(progress.finished);
    let status = alice.status().await.unwrap();
    assert_eq!(status.inputs[0].provided, Some(true));
}

#[tokio::test]
async fn a_missing_file_is_named_and_nothing_is_sent() {
    let s = served_with(|_| {}).await;
    let mut alice = s.connect(&s.alice).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let err = alice
        .provide_input(
            "/input/a.csv",
            Upload::File(missing.clone()),
            &mut NoProgress,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Io { path, .. } if *path == missing),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.csv"), "{err}");
    let status = alice.status().await.unwrap();
    assert_eq!(status.inputs[0].provided, Some(false));
    assert_eq!(status.state, State::Provisioning);
}

#[tokio::test]
async fn a_download_reports_its_progress() {
    let s = served_with(|_| {}).await;
    let mut alice = s.connect(&s.alice).await;
    let mut bob = s.connect(&s.bob).await;
    let mut carol = s.connect(&s.carol).await;
    alice
        .provide_program(crate::support::sum_inputs(), &mut NoProgress)
        .await
        .unwrap();
    alice
        .provide_input(
            "/input/a.csv",
            crate::support::A_CSV.to_vec(),
            &mut NoProgress,
        )
        .await
        .unwrap();
    bob.provide_input(
        "/input/b.csv",
        crate::support::B_CSV.to_vec(),
        &mut NoProgress,
    )
    .await
    .unwrap();
    alice.run(true).await.unwrap();
    let mut progress = Recorded::default();
    let mut out = Vec::new();
    let n = carol
        .fetch("/output/result.txt", &mut out, &mut progress)
        .await
        .unwrap()
        .bytes;
    assert_eq!(progress.advanced, n);
    assert_eq!(out.len() as u64, n);
    assert!(progress.total.is_some() && progress.finished);
}
