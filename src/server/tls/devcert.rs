//! The development certificate: with no `--tls-cert`, a CA signs a serving certificate for
//! `localhost`, `127.0.0.1` and `::1`. They are kept in the private development directory
//! and reused while valid, so that a client's `curl --cacert DIR/ca.crt` keeps working
//! across restarts:
//!   - `ca.crt`: the CA certificate, for clients;
//!   - `dev.pem` (0600): the CA certificate, the serving certificate and its key, what the
//!     server reuses. The CA's own key is never stored: nothing else can be signed with it.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::server::tls::cert_fields::not_after_unix;
use crate::server::tls::dev_dir::LockedDir;
use crate::server::tls::dev_error::DevCertError;

const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Tolerates a clock that is a little behind on the client side.
const BACKDATE: Duration = Duration::from_secs(3600);
/// A stored certificate this close to its expiry is replaced rather than reused.
const RENEW_BEFORE: Duration = Duration::from_secs(24 * 3600);
const BUNDLE: &str = "dev.pem";
const CA: &str = "ca.crt";

pub struct DevCert {
    pub ca_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The development certificate in `dir` if it is still valid, else a new one written there;
/// and the path of the CA certificate clients trust.
pub fn load_or_create(
    dir: &Path,
    provider: &CryptoProvider,
) -> Result<(DevCert, PathBuf), DevCertError> {
    let locked = LockedDir::open(dir)?;
    let now = SystemTime::now();
    let reused = locked
        .read(BUNDLE)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|bundle| parse_bundle(&bundle, now, provider));
    let cert = match reused {
        Some(cert) => cert,
        None => {
            let cert = generate(now)?;
            locked.replace(BUNDLE, bundle(&cert).as_bytes(), 0o600)?;
            cert
        }
    };
    // Also after a reuse: ca.crt may be missing or stale while dev.pem is fine.
    if locked.read(CA).as_deref() != Some(cert.ca_pem.as_bytes()) {
        locked.replace(CA, cert.ca_pem.as_bytes(), 0o644)?;
    }
    Ok((cert, locked.path(CA)))
}

fn bundle(cert: &DevCert) -> String {
    let key = match &cert.key {
        PrivateKeyDer::Pkcs8(key) => pem("PRIVATE KEY", key.secret_pkcs8_der()),
        _ => String::new(),
    };
    let leaf = cert
        .chain
        .first()
        .map_or(String::new(), |der| pem("CERTIFICATE", der));
    format!("{}{leaf}{key}", cert.ca_pem)
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .filter_map(|line| std::str::from_utf8(line).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A stored bundle that is whole, matches its key and has more than [`RENEW_BEFORE`] left.
fn parse_bundle(bundle: &str, now: SystemTime, provider: &CryptoProvider) -> Option<DevCert> {
    const END: &str = "-----END CERTIFICATE-----\n";
    let ca_pem = &bundle[..bundle.find(END)? + END.len()];
    let certs = CertificateDer::pem_slice_iter(bundle.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let [ca, leaf] = <[CertificateDer<'static>; 2]>::try_from(certs).ok()?;
    let key = PrivateKeyDer::from_pem_slice(bundle.as_bytes()).ok()?;
    let renew_at = now
        .checked_add(RENEW_BEFORE)?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    let fresh = |der: &CertificateDer| {
        not_after_unix(der).is_some_and(|expiry| expiry > renew_at.as_secs() as i64)
    };
    let chain = vec![leaf, ca];
    let usable = chain.iter().all(fresh)
        && CertifiedKey::from_der(chain.clone(), key.clone_key(), provider).is_ok();
    usable.then(|| DevCert {
        ca_pem: ca_pem.to_owned(),
        chain,
        key,
    })
}

fn generate(now: SystemTime) -> Result<DevCert, DevCertError> {
    let fail = DevCertError::Generate;
    // rcgen takes `time` dates; its epoch date plus the system clock avoids naming the crate.
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    let (not_before, not_after) = (now - BACKDATE, now + VALIDITY);

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "deployguard development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = not_before;
    ca_params.not_after = not_after;
    let ca_key = KeyPair::generate().map_err(fail)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(fail)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "deployguard development server");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    let key = KeyPair::generate().map_err(fail)?;
    let cert = params.signed_by(&key, &issuer).map_err(fail)?;

    Ok(DevCert {
        ca_pem: ca_cert.pem(),
        chain: vec![cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::aws_lc_rs::default_provider()
    }

    #[test]
    fn reuses_a_valid_certificate_across_starts() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("dev");
        let (first, ca_path) = load_or_create(&dir, &provider()).unwrap();
        let stored = fs::read(dir.join(BUNDLE)).unwrap();
        let (again, _) = load_or_create(&dir, &provider()).unwrap();
        assert_eq!(again.ca_pem, first.ca_pem);
        assert_eq!(again.chain, first.chain);
        assert_eq!(fs::read(dir.join(BUNDLE)).unwrap(), stored);
        assert_eq!(fs::read_to_string(&ca_path).unwrap(), first.ca_pem);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(dir.join(BUNDLE)).unwrap().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn replaces_a_certificate_that_is_broken_or_about_to_expire() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("dev");
        let (first, ca_path) = load_or_create(&dir, &provider()).unwrap();
        fs::write(dir.join(BUNDLE), "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
        let (second, _) = load_or_create(&dir, &provider()).unwrap();
        assert_ne!(second.ca_pem, first.ca_pem);
        assert_eq!(fs::read_to_string(&ca_path).unwrap(), second.ca_pem);

        // Made 29.5 days ago: half a day left, less than RENEW_BEFORE.
        let old = SystemTime::now() - VALIDITY + RENEW_BEFORE / 2;
        let expiring = generate(old).unwrap();
        assert!(parse_bundle(&bundle(&expiring), old, &provider()).is_some());
        fs::write(dir.join(BUNDLE), bundle(&expiring)).unwrap();
        let (third, _) = load_or_create(&dir, &provider()).unwrap();
        assert_ne!(third.ca_pem, expiring.ca_pem);
        assert_ne!(third.ca_pem, second.ca_pem);
    }

    #[test]
    fn refuses_a_bundle_whose_key_is_not_the_certificates() {
        let now = SystemTime::now();
        let (one, two) = (generate(now).unwrap(), generate(now).unwrap());
        let mixed = DevCert {
            ca_pem: one.ca_pem.clone(),
            chain: one.chain.clone(),
            key: two.key.clone_key(),
        };
        assert!(parse_bundle(&bundle(&one), now, &provider()).is_some());
        assert!(parse_bundle(&bundle(&mixed), now, &provider()).is_none());
    }

    #[test]
    fn rewrites_a_missing_ca_file_from_the_bundle() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("dev");
        let (first, ca_path) = load_or_create(&dir, &provider()).unwrap();
        fs::remove_file(&ca_path).unwrap();
        let (again, _) = load_or_create(&dir, &provider()).unwrap();
        assert_eq!(again.ca_pem, first.ca_pem);
        assert_eq!(fs::read_to_string(&ca_path).unwrap(), first.ca_pem);
    }
}
