//! The development certificate: with no `--tls-cert`, a throwaway CA signs a serving
//! certificate for `localhost`, `127.0.0.1` and `::1`. Only the CA certificate is written
//! (for `curl --cacert`); both keys live in memory and die with the process.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use thiserror::Error;

/// Long enough for any dev session; the CA is regenerated at every start anyway.
const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Tolerates a clock that is a little behind on the client side.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, Error)]
pub enum DevCertError {
    #[error("cannot generate the development certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "cannot write the development CA to {path}: {reason} (choose another directory with --dev-cert-dir, or pass --tls-cert and --tls-key)"
    )]
    Write { path: String, reason: String },
}

pub struct DevCert {
    pub ca_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

pub fn generate() -> Result<DevCert, DevCertError> {
    // rcgen takes `time` dates; its epoch date plus the system clock avoids naming the crate.
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    let (not_before, not_after) = (now - BACKDATE, now + VALIDITY);

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "deployguard development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "deployguard development server");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;

    Ok(DevCert {
        ca_pem: ca_cert.pem(),
        chain: vec![cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// Writes `ca.crt` into `dir` (atomically: a running `curl` never reads half a file).
///
/// The default directory sits in the shared /tmp, so a directory someone else could write
/// to is refused: they could swap in their own CA and have `curl --cacert` trust it.
pub fn write_ca(dir: &Path, ca_pem: &str) -> Result<PathBuf, DevCertError> {
    let path = dir.join("ca.crt");
    let fail = |reason: String| DevCertError::Write {
        path: path.display().to_string(),
        reason,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| fail(e.to_string()))?;
    let meta = fs::symlink_metadata(dir).map_err(|e| fail(e.to_string()))?;
    if !meta.is_dir() {
        return Err(fail(format!("{} is not a directory", dir.display())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(fail(format!(
            "{} is writable by other users",
            dir.display()
        )));
    }
    // /proc/self is owned by this process's user; elsewhere the mode check has to do.
    if fs::metadata("/proc/self").is_ok_and(|me| me.uid() != meta.uid()) {
        return Err(fail(format!("{} belongs to another user", dir.display())));
    }
    let temporary = dir.join(format!(".ca.crt.{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temporary)
        .and_then(|mut file| file.write_all(ca_pem.as_bytes()))
        .and_then(|()| fs::rename(&temporary, &path));
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(fail(error.to_string()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_ca_and_refuses_a_shared_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cert = generate().unwrap();
        let target = dir.path().join("dev");
        let path = write_ca(&target, &cert.ca_pem).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), cert.ca_pem);
        // Written again over the old one (every start makes a new CA).
        let again = generate().unwrap();
        write_ca(&target, &again.ca_pem).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), again.ca_pem);

        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        let world_writable = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        fs::set_permissions(&shared, world_writable).unwrap();
        let error = write_ca(&shared, &cert.ca_pem).unwrap_err().to_string();
        assert!(error.contains("writable by other users"), "{error}");
        assert!(!shared.join("ca.crt").exists());
    }
}
