//! The service's directory: `ca.crt` (the CA certificate a policy names), `ca.key` (its private
//! key, mode 0600) and, by default, the SQLite database `attestation.db`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use covenant_attest::CertificateAuthority;
use time::OffsetDateTime;

use crate::ServiceError;
use crate::db::Database;
use crate::service::unix_ms;

/// File name of the CA certificate in the service directory.
pub const CA_CERTIFICATE_FILE: &str = "ca.crt";
/// File name of the CA key in the service directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the default SQLite database in the service directory.
pub const DATABASE_FILE: &str = "attestation.db";
/// Common name of the CA certificate `init` makes.
pub const CA_COMMON_NAME: &str = "Covenant attestation service CA";

/// A service directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceDir {
    path: PathBuf,
}

fn io_error(path: &Path, error: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("{}: {error}", path.display()))
}

impl ServiceDir {
    /// The directory at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `DIR/ca.crt`.
    pub fn ca_certificate_path(&self) -> PathBuf {
        self.path.join(CA_CERTIFICATE_FILE)
    }

    /// `DIR/ca.key`.
    pub fn ca_key_path(&self) -> PathBuf {
        self.path.join(CA_KEY_FILE)
    }

    /// `DIR/attestation.db`.
    pub fn database_path(&self) -> PathBuf {
        self.path.join(DATABASE_FILE)
    }

    /// The default database URL: the SQLite file in this directory. `create` chooses whether a
    /// missing file is created (`init`) or an error (every other command).
    ///
    /// # Errors
    /// [`ServiceError::InvalidInput`] if the path cannot be written in a URL (not UTF-8, or
    /// containing `?` or `#`).
    pub fn default_database_url(&self, create: bool) -> Result<String, ServiceError> {
        let path = self.database_path();
        let text = path
            .to_str()
            .filter(|t| !t.contains(['?', '#']))
            .ok_or_else(|| {
                ServiceError::InvalidInput(format!(
                    "{}: cannot be used in a database URL; pass --db",
                    path.display()
                ))
            })?;
        Ok(format!(
            "sqlite://{text}?mode={}",
            if create { "rwc" } else { "rw" }
        ))
    }

    /// Creates the directory (if needed), a new CA (`ca.key`, `ca.crt`) and the database, with
    /// an `init` audit entry. `db_url` defaults to [`ServiceDir::default_database_url`].
    ///
    /// # Errors
    /// [`ServiceError::InvalidInput`] if `ca.key` or `ca.crt` already exists (init never
    /// overwrites a CA); [`ServiceError::Internal`] for file errors; database errors.
    pub async fn init(
        &self,
        db_url: Option<&str>,
    ) -> Result<(CertificateAuthority, Database), ServiceError> {
        for existing in [self.ca_key_path(), self.ca_certificate_path()] {
            if existing.exists() {
                return Err(ServiceError::InvalidInput(format!(
                    "{} already exists; init never replaces a CA",
                    existing.display()
                )));
            }
        }
        std::fs::create_dir_all(&self.path).map_err(|e| io_error(&self.path, e))?;
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(CA_COMMON_NAME, now)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        write_new(&self.ca_key_path(), ca.key_pem().as_bytes(), 0o600)?;
        write_new(
            &self.ca_certificate_path(),
            ca.certificate_pem().as_bytes(),
            0o644,
        )?;
        let url = match db_url {
            Some(url) => url.to_owned(),
            None => self.default_database_url(true)?,
        };
        let db = Database::connect(&url).await?;
        let fingerprint = covenant_attest::Digest::of(ca.certificate_der());
        db.audit(
            unix_ms(now),
            "init",
            "ok",
            "ok",
            &format!("created CA certificate with SHA-256 {fingerprint}"),
            None,
        )
        .await?;
        Ok((ca, db))
    }

    /// Loads the CA from `ca.crt` and `ca.key`.
    ///
    /// # Errors
    /// [`ServiceError::InvalidInput`] if they are missing (run `init` first) or do not match.
    pub fn load_ca(&self) -> Result<CertificateAuthority, ServiceError> {
        let read = |path: PathBuf| {
            covenant_attest::pem::read_pem_file(&path).map_err(|e| {
                ServiceError::InvalidInput(format!(
                    "{e} (is {} an initialised service directory?)",
                    self.path.display()
                ))
            })
        };
        let certificate = read(self.ca_certificate_path())?;
        let key = read(self.ca_key_path())?;
        CertificateAuthority::from_pem(&certificate, &key)
            .map_err(|e| ServiceError::InvalidInput(e.to_string()))
    }

    /// Opens the database (`db_url`, or the directory's SQLite file, which must exist).
    ///
    /// # Errors
    /// Database errors; [`ServiceError::InvalidInput`] if the default file is missing.
    pub async fn open_database(&self, db_url: Option<&str>) -> Result<Database, ServiceError> {
        match db_url {
            Some(url) => Database::connect(url).await,
            None => {
                if !self.database_path().exists() {
                    return Err(ServiceError::InvalidInput(format!(
                        "{} does not exist; run `covenant attestation-service init --dir {}` first",
                        self.database_path().display(),
                        self.path.display()
                    )));
                }
                Database::connect(&self.default_database_url(false)?).await
            }
        }
    }
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), ServiceError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(path, e))
}
