//! The development certificate's directory: per user and private, so that no other local
//! user can read the key or plant a CA that `curl --cacert` would trust.
//!
//! Files are replaced by writing a temporary file and renaming it over the old one, under
//! an exclusive lock on `.lock`, so that a reader never sees half a file and two servers
//! starting at once agree on one certificate.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::server::tls::dev_error::DevCertError;

/// Where the development files go without `--dev-cert-dir`: the user's runtime directory
/// (a private tmpfs on systemd machines), else the user's cache directory.
pub fn default_dir() -> Result<PathBuf, DevCertError> {
    default_dir_in(|name| std::env::var_os(name))
}

fn default_dir_in(env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, DevCertError> {
    let absolute = |name: &str| {
        env(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_RUNTIME_DIR")
        .or_else(|| absolute("XDG_CACHE_HOME"))
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("deployguard-dev"))
        .ok_or(DevCertError::NoDefaultDir)
}

/// An open, private directory with its lock held until dropped.
pub struct LockedDir {
    dir: PathBuf,
    _lock: File,
}

impl LockedDir {
    /// Creates `dir` (mode 0700) if needed, refuses it if it is not a directory of this
    /// user that only this user can write, and waits for the lock.
    pub fn open(dir: &Path) -> Result<LockedDir, DevCertError> {
        let fail = |reason: String| DevCertError::Dir {
            dir: dir.display().to_string(),
            reason,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(e.to_string()))?;
        let meta = fs::symlink_metadata(dir).map_err(|e| fail(e.to_string()))?;
        if !meta.is_dir() {
            return Err(fail("not a directory".into()));
        }
        if meta.uid() != rustix::process::getuid().as_raw() {
            return Err(fail(format!(
                "it belongs to another user (uid {})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(fail("other users can write to it".into()));
        }
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(".lock"))
            .and_then(|file| {
                rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
                Ok(file)
            })
            .map_err(|e| fail(format!("cannot lock it: {e}")))?;
        Ok(LockedDir {
            dir: dir.to_owned(),
            _lock: lock,
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The file's bytes; None when it does not exist or cannot be read (it is then rewritten).
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.path(name)).ok()
    }

    /// Replaces `name` with `bytes` in one step: a temporary file renamed over it.
    pub fn replace(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), DevCertError> {
        let path = self.path(name);
        let temporary = self.path(&format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&temporary);
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)
            .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
            .and_then(|()| fs::rename(&temporary, &path));
        written.map_err(|error| {
            let _ = fs::remove_file(&temporary);
            DevCertError::Write {
                path: path.display().to_string(),
                error,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn creates_a_private_directory_and_replaces_files_whole() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("a/dev");
        let locked = LockedDir::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        locked.replace("key.pem", b"one", 0o600).unwrap();
        locked.replace("key.pem", b"two", 0o600).unwrap();
        assert_eq!(locked.read("key.pem").unwrap(), b"two");
        assert_eq!(
            fs::metadata(dir.join("key.pem")).unwrap().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn refuses_a_directory_others_can_write_or_that_is_not_a_directory() {
        let temp = tempfile::tempdir().unwrap();
        for (mode, says) in [
            (0o777, "other users can write"),
            (0o770, "other users can write"),
        ] {
            let shared = temp.path().join(format!("shared-{mode:o}"));
            fs::create_dir(&shared).unwrap();
            fs::set_permissions(&shared, fs::Permissions::from_mode(mode)).unwrap();
            let error = LockedDir::open(&shared).err().unwrap().to_string();
            assert!(error.contains(says), "{error}");
            assert!(!shared.join(".lock").exists());
        }
        let file = temp.path().join("file");
        fs::write(&file, "").unwrap();
        let error = LockedDir::open(&file).err().unwrap().to_string();
        assert!(error.contains(&file.display().to_string()), "{error}");
    }

    #[test]
    fn refuses_a_directory_of_another_user() {
        let temp = tempfile::tempdir().unwrap();
        let theirs = temp.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        // Only root can give a directory away; elsewhere there is nothing to test.
        if std::os::unix::fs::chown(&theirs, Some(65534), None).is_err() {
            eprintln!("skipped: cannot chown (not root)");
            return;
        }
        let error = LockedDir::open(&theirs).err().unwrap().to_string();
        assert!(
            error.contains("belongs to another user (uid 65534)"),
            "{error}"
        );
    }

    #[test]
    fn the_default_is_the_runtime_directory_else_the_cache_directory() {
        fn dir(vars: &[(&str, &str)]) -> Option<PathBuf> {
            let env = |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            };
            default_dir_in(env).ok()
        }
        let all = [
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("XDG_CACHE_HOME", "/home/me/.cache-x"),
            ("HOME", "/home/me"),
        ];
        assert_eq!(dir(&all), Some("/run/user/1000/deployguard-dev".into()));
        assert_eq!(
            dir(&all[1..]),
            Some("/home/me/.cache-x/deployguard-dev".into())
        );
        assert_eq!(
            dir(&all[2..]),
            Some("/home/me/.cache/deployguard-dev".into())
        );
        // A relative value is ignored, as the XDG specification asks.
        assert_eq!(
            dir(&[("XDG_RUNTIME_DIR", "run"), ("HOME", "/home/me")]),
            Some("/home/me/.cache/deployguard-dev".into())
        );
        assert_eq!(dir(&[]), None);
    }
}
