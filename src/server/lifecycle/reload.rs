//! Reloads the serving certificate and the policy when their files change.
//!
//! Kubernetes updates a mounted Secret or ConfigMap by pointing the `..data` symlink of the
//! volume directory at a new directory, so the files' own inodes never change: the watch
//! is on the directory. Events are debounced (a writer touches several files), the files
//! are compared with what was last loaded, and a slow periodic check covers lost events.
//! Something that fails to load is refused, logged and counted; the old one stays.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use rustls::crypto::CryptoProvider;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::config::policy_from_bytes;
use crate::policy_file::read_policy_file;
use crate::server::http::app::App;
use crate::server::tls::resolver::{CertResolver, LoadedCert, load_cert};

/// Quiet time after the last event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// Longest wait for quiet, so that a busy directory cannot postpone a reload for ever.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// Re-read anyway this often, in case an event was lost.
const RESYNC: Duration = Duration::from_secs(60);
/// Re-read this often when no watcher could be set up.
const POLL_WITHOUT_WATCHER: Duration = Duration::from_secs(5);

pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub resolver: Arc<CertResolver>,
    pub provider: Arc<CryptoProvider>,
    /// The bytes of the pair last tried, so that an unchanged file is not reloaded.
    pub last: (Vec<u8>, Vec<u8>),
}

pub struct PolicyFile {
    pub path: PathBuf,
    pub last: Vec<u8>,
}

pub struct Reloader {
    pub cert: Option<CertFiles>,
    pub policy: Option<PolicyFile>,
    pub app: Arc<App>,
    /// The last refusal of each, so that a file that stays broken is reported once.
    cert_failure: Option<String>,
    policy_failure: Option<String>,
}

/// Stops watching when dropped.
pub struct ReloadHandle {
    _watcher: Option<RecommendedWatcher>,
    task: JoinHandle<()>,
}

impl Drop for ReloadHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reloader {
    pub fn new(cert: Option<CertFiles>, policy: Option<PolicyFile>, app: Arc<App>) -> Reloader {
        Reloader {
            cert,
            policy,
            app,
            cert_failure: None,
            policy_failure: None,
        }
    }

    /// Starts watching; None when there is nothing to watch.
    pub fn spawn(mut self) -> Option<ReloadHandle> {
        let mut directories: Vec<PathBuf> = Vec::new();
        let mut names: Vec<OsString> = Vec::new();
        let files = self.cert.iter().flat_map(|c| [&c.cert, &c.key]);
        for file in files.chain(self.policy.iter().map(|p| &p.path)) {
            let directory = directory_of(file);
            if !directories.contains(&directory) {
                directories.push(directory);
            }
            names.extend(file.file_name().map(OsStr::to_os_string));
        }
        if directories.is_empty() {
            return None;
        }
        let changed = Arc::new(Notify::new());
        let (watcher, period) = match watch(&directories, names, changed.clone()) {
            Ok(watcher) => (Some(watcher), RESYNC),
            Err(error) => {
                warn!(
                    %error,
                    every_s = POLL_WITHOUT_WATCHER.as_secs(),
                    "cannot watch the certificate and policy directories; polling them instead"
                );
                (None, POLL_WITHOUT_WATCHER)
            }
        };
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = changed.notified() => {
                        // Wait until the writer is done: no event for DEBOUNCE.
                        let give_up = tokio::time::Instant::now() + MAX_DEBOUNCE;
                        while tokio::time::Instant::now() < give_up
                            && tokio::time::timeout(DEBOUNCE, changed.notified()).await.is_ok()
                        {}
                    }
                    () = tokio::time::sleep(period) => {}
                }
                self.reload().await;
            }
        });
        Some(ReloadHandle {
            _watcher: watcher,
            task,
        })
    }

    async fn reload(&mut self) {
        debug!("checking the certificate and policy files");
        self.reload_cert().await;
        self.reload_policy().await;
    }

    async fn reload_cert(&mut self) {
        let Some(files) = &mut self.cert else { return };
        let read = match tokio::fs::read(&files.cert).await {
            Ok(cert) => tokio::fs::read(&files.key).await.map(|key| (cert, key)),
            Err(error) => Err(error),
        };
        let pair = match read {
            Ok(pair) => pair,
            Err(error) => {
                let reason = format!(
                    "cannot read {} or {}: {error}",
                    files.cert.display(),
                    files.key.display()
                );
                return self.tls_refused(reason);
            }
        };
        if pair == files.last {
            return;
        }
        files.last = pair;
        let loaded = load_cert(
            &files.last.0,
            &files.last.1,
            &files.cert,
            &files.key,
            &files.provider,
        );
        match loaded {
            Ok(LoadedCert {
                key,
                not_after,
                serial,
            }) => {
                files.resolver.replace(key, &serial);
                let metrics = &self.app.metrics;
                metrics.record_tls_reload(true);
                if let Some(not_after) = not_after {
                    metrics.cert_not_after.set(not_after);
                }
                self.cert_failure = None;
                info!(
                    cert = %files.cert.display(),
                    not_after = not_after.unwrap_or_default(),
                    %serial,
                    "TLS certificate reloaded; new handshakes present it, open connections close once idle"
                );
            }
            Err(error) => self.tls_refused(error.to_string()),
        }
    }

    fn tls_refused(&mut self, reason: String) {
        if self.cert_failure.as_ref() == Some(&reason) {
            return;
        }
        self.app.metrics.record_tls_reload(false);
        error!(reason = %reason, "new TLS certificate refused; the previous certificate stays in use");
        self.cert_failure = Some(reason);
    }

    async fn reload_policy(&mut self) {
        let Some(file) = &mut self.policy else { return };
        let origin = file.path.display().to_string();
        let bytes = match read_policy_file(&file.path) {
            Ok(bytes) => bytes,
            Err(error) => return self.policy_refused(error.to_string()),
        };
        if bytes == file.last {
            return;
        }
        file.last = bytes;
        match policy_from_bytes(&file.last, &origin) {
            Ok(policy) => {
                self.app.policy.store(Arc::new(policy));
                self.app.metrics.record_config_reload(true);
                self.policy_failure = None;
                info!(config = %origin, "policy reloaded; new reviews use it");
            }
            Err(error) => self.policy_refused(error.to_string()),
        }
    }

    fn policy_refused(&mut self, reason: String) {
        if self.policy_failure.as_ref() == Some(&reason) {
            return;
        }
        self.app.metrics.record_config_reload(false);
        error!(reason = %reason, "new policy refused; the previous policy stays in force");
        self.policy_failure = Some(reason);
    }
}

fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn watch(
    directories: &[PathBuf],
    names: Vec<OsString>,
    changed: Arc<Notify>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) if !is_read(&event.kind) && concerns(&event.paths, &names) => {
                changed.notify_one()
            }
            Ok(_) => {}
            // An overflowed queue lost events: re-read to be safe.
            Err(_) => changed.notify_one(),
        }
    })?;
    for directory in directories {
        watcher.watch(directory, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

/// Whether an event touches a watched file or the kubelet's `..data` machinery; other
/// files in the same directory (a log, an editor's swap file) do not cause re-reads.
fn concerns(paths: &[PathBuf], names: &[OsString]) -> bool {
    paths.is_empty()
        || paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                names.iter().any(|watched| watched == name)
                    || name.as_encoded_bytes().starts_with(b"..")
            })
        })
}

/// Our own reads of the files show up as events too; they change nothing.
fn is_read(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Read | AccessKind::Open(_) | AccessKind::Close(AccessMode::Read)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_events_about_the_watched_files_count() {
        let names = vec![OsString::from("tls.crt"), OsString::from("policy.yaml")];
        let concerns = |path: &str| concerns(&[PathBuf::from(path)], &names);
        assert!(concerns("/etc/deployguard/tls/tls.crt"));
        assert!(concerns("/etc/deployguard/tls/..data"));
        assert!(concerns("/etc/deployguard/tls/..data_tmp"));
        assert!(concerns("/etc/deployguard/tls/..2026_11_28_11_30_00.123"));
        assert!(concerns("policy.yaml"));
        assert!(!concerns("/etc/deployguard/policy/deployguard.log"));
        assert!(!concerns("/etc/deployguard/policy/.policy.yaml.swp"));
        assert!(concerns_nothing_given(&names));
    }

    fn concerns_nothing_given(names: &[OsString]) -> bool {
        concerns(&[], names)
    }

    #[test]
    fn reads_are_not_changes() {
        assert!(is_read(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(is_read(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!is_read(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!is_read(&EventKind::Create(
            notify::event::CreateKind::File
        )));
    }
}
