//! What a restarted bridge must remember of the transactions it received: the last commit number
//! committed locally from each origin (another bridge), so that a transaction that origin sends
//! again (it crashed after PostgreSQL's COMMIT and before its local acknowledgement) is not
//! committed twice, even when this bridge restarted in between.
//!
//! Two places hold it, and together they are exact at any instant a bridge can be killed:
//! * the queue itself: the `hark.bridge.origin` notification that starts each local transaction
//!   the bridge commits from a marked PostgreSQL transaction carries that origin and number
//!   (`wire::origin_payload`), in the same local commit, so the two cannot part;
//! * `bridge.NAME.origins` in the queue directory, for what the queue no longer hands out: the
//!   bridge reads its own transactions back through its durable subscription (`outbound.rs`
//!   skips them), and before it acknowledges any of them it rewrites this file (a new file renamed
//!   over the old, so a reader sees the old or the new one whole).
//!
//! At start the file is read, then the subscription hands out every own transaction after the
//! last acknowledgement, before anything from PostgreSQL is committed: a transaction committed
//! locally is in one or the other, whatever instruction the bridge was killed at. The file is not
//! synced to disk: the queue it describes does not survive a reboot either.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("bridge.{name}.origins"))
}

/// The last commit number of each origin, as the file holds them (none when there is no file).
pub fn load(dir: &Path, name: &str) -> Result<HashMap<String, u64>, String> {
    let path = path_of(dir, name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("could not read {}: {e}", path.display())),
    };
    let mut out = HashMap::new();
    for line in text.lines() {
        // `TXN ORIGIN`: the origin last, since it may hold spaces.
        let parsed = line.split_once(' ').and_then(|(t, o)| Some((o, t.parse::<u64>().ok()?)));
        let Some((origin, txn)) = parsed else {
            return Err(format!("{}: unreadable line {line:?}", path.display()));
        };
        out.insert(origin.to_owned(), txn);
    }
    Ok(out)
}

/// Replaces the file with `last` (written aside, then renamed over it).
pub fn save(dir: &Path, name: &str, last: &HashMap<String, u64>) -> std::io::Result<()> {
    let path = path_of(dir, name);
    let aside = dir.join(format!("bridge.{name}.origins.new"));
    let mut text = String::new();
    let mut entries: Vec<_> = last.iter().collect();
    entries.sort();
    for (origin, txn) in entries {
        text.push_str(&format!("{txn} {origin}\n"));
    }
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&aside)?;
        f.write_all(text.as_bytes())?;
    }
    std::fs::rename(&aside, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_saved_loads_back_and_a_missing_file_is_empty() {
        let dir = std::env::temp_dir().join(format!("hark-bridge-origins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(load(&dir, "b").unwrap().is_empty());
        let last: HashMap<String, u64> = [("a@h x#1".to_owned(), 7), ("b@g#2".to_owned(), 0)].into_iter().collect();
        save(&dir, "b", &last).unwrap();
        assert_eq!(load(&dir, "b").unwrap(), last);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
