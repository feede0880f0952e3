//! A kubelet-style volume directory, as a mounted Secret or ConfigMap looks.

use std::path::{Path, PathBuf};

/// A directory laid out like a mounted Secret or ConfigMap: `NAME -> ..data/NAME`,
/// `..data -> ..gen_N/`. `update` swaps `..data` atomically, as the kubelet does.
pub struct Volume {
    pub dir: PathBuf,
    generation: u32,
}

impl Volume {
    pub fn new(dir: &Path, files: &[(&str, &[u8])]) -> Volume {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = Volume {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        volume.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        volume
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn update(&mut self, files: &[(&str, &[u8])]) {
        let old = self.generation;
        self.generation += 1;
        let generation = format!("..gen_{}", self.generation);
        let target = self.dir.join(&generation);
        std::fs::create_dir(&target).unwrap();
        for (name, bytes) in files {
            std::fs::write(target.join(name), bytes).unwrap();
        }
        let temporary = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&generation, &temporary).unwrap();
        std::fs::rename(&temporary, self.dir.join("..data")).unwrap();
        if old > 0 {
            std::fs::remove_dir_all(self.dir.join(format!("..gen_{old}"))).unwrap();
        }
    }
}
