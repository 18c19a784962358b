//! Identity: random ids kept in the data directory under EMQX's file names.

use std::path::Path;
use std::process::Command;

use crate::support::{capture_logs, start};
use crate::switches::quiet;

fn is_fresh_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read id file")
}

#[tokio::test]
async fn ids_are_created_once_and_stable_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = start(quiet(), dir.path());
    let report = first.preview();
    first.shutdown().await;
    assert!(is_fresh_id(&report.uuid), "{}", report.uuid);
    let cluster = report.cluster_uuid.clone().expect("cluster uuid");
    assert!(is_fresh_id(&cluster), "{cluster}");
    assert_ne!(report.uuid, cluster);
    assert_eq!(read(&dir.path().join("node.uuid")), report.uuid);
    assert_eq!(read(&dir.path().join("cluster.uuid")), cluster);

    let second = start(quiet(), dir.path());
    let again = second.preview();
    assert_eq!(again.uuid, report.uuid);
    assert_eq!(again.cluster_uuid, report.cluster_uuid);
    assert_eq!(again.deletion_secret_sha256, report.deletion_secret_sha256);
    second.shutdown().await;
}

#[tokio::test]
async fn ids_written_by_emqx_are_kept_as_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    // EMQX does not zero-pad its hex groups, and ends the file with a newline.
    let node = "E3C1A2-6186-11ED-AD7C-D5AAB80CED2";
    let cluster = "5EAAF818-186-1ED-AC1D-3DFDC18ED1BB";
    std::fs::write(dir.path().join("node.uuid"), format!("{node}\n")).expect("write");
    std::fs::write(dir.path().join("cluster.uuid"), cluster).expect("write");
    let agent = start(quiet(), dir.path());
    let report = agent.preview();
    assert_eq!(report.uuid, node);
    assert_eq!(report.cluster_uuid.as_deref(), Some(cluster));
    report.validate().expect("valid report");
    assert_eq!(
        read(&dir.path().join("node.uuid")),
        format!("{node}\n"),
        "file untouched"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_id_file_is_replaced_with_a_warning() {
    let (logs, _guard) = capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("node.uuid"), "not an id at all").expect("write");
    std::fs::write(dir.path().join("cluster.uuid"), [0xff, 0xfe, 0x00]).expect("write");
    let agent = start(quiet(), dir.path());
    let report = agent.preview();
    assert!(is_fresh_id(&report.uuid), "{}", report.uuid);
    assert_eq!(read(&dir.path().join("node.uuid")), report.uuid);
    assert_eq!(
        read(&dir.path().join("cluster.uuid")),
        report.cluster_uuid.clone().expect("cluster")
    );
    assert_eq!(logs.count("WARN", "corrupt"), 2, "{}", logs.text());
    agent.shutdown().await;
}

/// Makes a directory read-only for this process: permissions for a normal user; for
/// root (which ignores permissions) the immutable attribute. Undone on drop.
struct ReadOnly<'a>(&'a Path);

impl<'a> ReadOnly<'a> {
    fn new(dir: &'a Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let guard = Self(dir);
        if !is_writable(dir) {
            return guard;
        }
        let status = Command::new("chattr").arg("+i").arg(dir).status();
        assert!(
            status.is_ok_and(|s| s.success()) && !is_writable(dir),
            "cannot make {} read-only here: run as a normal user, or as root on a file \
             system that supports `chattr +i`",
            dir.display()
        );
        guard
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o755));
    }
}

fn is_writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let created = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    created
}

#[tokio::test]
async fn a_read_only_data_directory_keeps_ids_in_memory_with_one_warning() {
    let (logs, _guard) = capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let read_only = ReadOnly::new(&data);

    let agent = start(quiet(), &data);
    let first = agent.preview();
    assert!(is_fresh_id(&first.uuid), "{}", first.uuid);
    assert_eq!(agent.preview().uuid, first.uuid, "held in memory");
    assert_eq!(agent.preview().cluster_uuid, first.cluster_uuid);
    assert!(agent.status().enable);
    assert_eq!(
        logs.count("WARN", "cannot write to the data directory"),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        logs.count("WARN", ""),
        1,
        "no other warning: {}",
        logs.text()
    );
    agent.shutdown().await;
    drop(read_only);
    assert_eq!(
        std::fs::read_dir(&data).expect("list").count(),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn a_stopped_node_previews_with_its_own_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let offline = beacon_agent::read_preview(dir.path());
    offline.validate().expect("valid preview");
    assert_eq!((offline.up_time, offline.num_clients), (Some(0), Some(0)));
    let agent = start(quiet(), dir.path());
    let running = agent.preview();
    agent.shutdown().await;
    assert_eq!(
        running.uuid, offline.uuid,
        "the ids the preview showed are the node's"
    );
    assert_eq!(running.cluster_uuid, offline.cluster_uuid);
}
