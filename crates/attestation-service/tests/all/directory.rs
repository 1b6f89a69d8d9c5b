//! The service directory: init writes the CA and database once, and refuses to overwrite.

use std::os::unix::fs::PermissionsExt as _;

use covenant_attestation_service::{ServiceDir, ServiceError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_a_ca_and_a_database_and_never_overwrites_them() {
    let temp = tempfile::tempdir().unwrap();
    let dir = ServiceDir::new(temp.path().join("svc"));
    let (ca, db) = dir.init(None).await.unwrap();
    db.close().await;
    let mode = std::fs::metadata(dir.ca_key_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert!(dir.database_path().exists());
    assert_eq!(
        std::fs::read_to_string(dir.ca_certificate_path()).unwrap(),
        ca.certificate_pem()
    );
    assert_eq!(
        dir.load_ca().unwrap().certificate_der(),
        ca.certificate_der()
    );

    let again = dir.init(None).await;
    assert!(matches!(again, Err(ServiceError::InvalidInput(m)) if m.contains("already exists")));
    assert_eq!(
        dir.load_ca().unwrap().certificate_der(),
        ca.certificate_der()
    );

    let db = dir.open_database(None).await.unwrap();
    let log = db.audit_log(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "init");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninitialised_directory_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let dir = ServiceDir::new(temp.path());
    assert!(matches!(dir.load_ca(), Err(ServiceError::InvalidInput(_))));
    assert!(
        matches!(dir.open_database(None).await, Err(ServiceError::InvalidInput(m)) if m.contains("init"))
    );
    assert!(matches!(
        dir.open_database(Some("mysql://x")).await,
        Err(ServiceError::InvalidInput(_))
    ));
}
