//! Scratch directories for one test: configs, stores, logs. Removed when the test passes, kept
//! (and their path printed) when it fails, so the logs inside can be read.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh, unique name for this process: `{stem}-{pid}-{n}`. Use it for agent ids, provinces
/// and MQTT client ids so that tests running in parallel against one broker never meet.
pub fn unique(stem: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{stem}-{}-{n}", std::process::id())
}

/// A temporary directory owned by one test.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/netmon-{stem}-{pid}-{n}`.
    pub fn new(stem: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("netmon-{}", unique(stem)));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating scratch directory {}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes a file in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> anyhow::Result<PathBuf> {
        let path = self.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: scratch directory kept at {}",
                self.path.display()
            );
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}
