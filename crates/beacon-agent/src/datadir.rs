//! The agent's files in the node's data directory, and how they are written: atomically
//! (temporary file, fsync, rename, fsync of the directory), so that a crash leaves either
//! the old or the new content, never a torn file. Every file is created readable by its
//! owner only (0600): the ids link reports to this node and the deletion secret proves it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{debug, warn};

/// Node id, EMQX's file name (raw text).
pub(crate) const NODE_UUID_FILE: &str = "node.uuid";
/// Cluster id, EMQX's file name (raw text).
pub(crate) const CLUSTER_UUID_FILE: &str = "cluster.uuid";
/// The switch set at runtime.
pub(crate) const RUNTIME_FILE: &str = "telemetry/runtime.json";
/// Last successful report time and the counters it carried.
pub(crate) const STATE_FILE: &str = "telemetry/state.json";
/// The last reports that left the machine, one JSON object a line.
pub(crate) const SENT_LOG_FILE: &str = "telemetry/sent.jsonl";
/// Secret whose SHA-256 the report carries, so the node can later ask for deletion.
pub(crate) const SECRET_FILE: &str = "telemetry/deletion.secret";

/// The data directory, with a memory of whether writing to it has already failed.
#[derive(Debug)]
pub(crate) struct DataDir {
    root: PathBuf,
    warned_unwritable: AtomicBool,
}

impl DataDir {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            warned_unwritable: AtomicBool::new(false),
        }
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    /// The content of `file`, or `None` when it does not exist.
    pub(crate) fn read(&self, file: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(file)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The content of `file` as trimmed text (lossy UTF-8), or `None` when it does not exist.
    pub(crate) fn read_text(&self, file: &str) -> io::Result<Option<String>> {
        let bytes = self.read(file)?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).trim().to_owned()))
    }

    /// Deletes `file`; one that does not exist is not an error.
    pub(crate) fn remove(&self, file: &str) -> io::Result<()> {
        match fs::remove_file(self.path(file)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes `file` atomically, without logging; the caller reports the error.
    pub(crate) fn try_save(&self, file: &str, bytes: &[u8]) -> io::Result<()> {
        write_atomic(&self.path(file), bytes)
    }

    /// Writes `file` atomically; on failure the value lives on in memory only. A read-only
    /// directory fails every write, so only the first failure is a warning.
    pub(crate) fn save(&self, file: &str, bytes: &[u8]) {
        let Err(error) = self.try_save(file, bytes) else {
            return;
        };
        let path = self.path(file);
        if self.warned_unwritable.swap(true, Ordering::Relaxed) {
            debug!(path = %path.display(), %error, "cannot write telemetry file");
        } else {
            warn!(
                dir = %self.root.display(),
                path = %path.display(),
                %error,
                "cannot write to the data directory; telemetry ids and state are kept in \
                 memory and will not survive a restart"
            );
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let written = write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        // Best effort: the temporary file may not even exist.
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_dir(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_private(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `path` with its final mode, so that no other user can open it in between.
#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    File::create(path)
}

/// Makes the rename durable; directories cannot be opened for syncing on Windows.
fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().to_path_buf());
        data.save(STATE_FILE, b"first");
        data.save(STATE_FILE, b"second");
        assert_eq!(
            data.read(STATE_FILE).expect("read"),
            Some(b"second".to_vec())
        );
        let names: Vec<_> = fs::read_dir(dir.path().join("telemetry"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        assert_eq!(data.read(RUNTIME_FILE).expect("read"), None);
    }
}
