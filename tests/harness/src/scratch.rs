//! Scratch directories for one test: configs, stores, journals, logs. A `tempfile` directory
//! removed when the test passes, kept (and its path printed) when it fails, so the logs inside can
//! be read.

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
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/netmon-{stem}-{random}`.
    pub fn new(stem: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("netmon-{stem}-"))
            .tempdir()
            .with_context(|| format!("creating a scratch directory for {stem}"))?;
        let path = dir.path().to_owned();
        Ok(Self {
            dir: Some(dir),
            path,
        })
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
        let Some(dir) = self.dir.take() else { return };
        if std::thread::panicking() {
            eprintln!(
                "test failed: scratch directory kept at {}",
                dir.keep().display()
            );
        } else if let Err(e) = dir.close() {
            eprintln!("could not remove {}: {e}", self.path.display());
        }
    }
}
