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
//!   skips them), and before it acknowledges any of them it saves the numbers here.
//!
//! At start the file is read, then the subscription hands out every own transaction after the
//! last acknowledgement, before anything from PostgreSQL is committed: a transaction committed
//! locally is in one or the other, whatever instruction the bridge was killed at.
//!
//! The file has two slots of equal size (half the file each); a save writes the next record,
//! numbered and checksummed, over the older slot with one `pwrite`, and a load takes the valid
//! record with the higher number. A save cut short by a kill leaves the other slot whole, and
//! the transactions it was about to acknowledge are still unacknowledged in the queue. (A new
//! file renamed over the old one would do too, but ext4 starts writing a file back to disk when it
//! is renamed over another, which cost the bridge about 100 µs per received transaction.) A
//! record that outgrows its slot is written into a new file of larger slots, renamed over the old
//! one. Nothing is synced to disk: the queue it describes does not survive a reboot either.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "hark-bridge-origins";
const FIRST_SLOT: u64 = 16 * 1024;

pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("bridge.{name}.origins"))
}

/// The bridge's origins file, open.
pub struct Origins {
    dir: PathBuf,
    name: String,
    file: File,
    slot: u64,
    seq: u64,
}

fn open(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h = (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A slot's record: its number and content, or `None` when it holds none whole.
fn parse_slot(slot: &[u8]) -> Option<(u64, HashMap<String, u64>)> {
    let end = slot.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&slot[..end]).ok()?;
    let mut f = header.split(' ');
    if f.next()? != MAGIC {
        return None;
    }
    let seq: u64 = f.next()?.parse().ok()?;
    let len: usize = f.next()?.parse().ok()?;
    let sum: u64 = f.next()?.parse().ok()?;
    let body = slot.get(end + 1..end + 1 + len)?;
    if checksum(body) != sum {
        return None;
    }
    let mut out = HashMap::new();
    for line in std::str::from_utf8(body).ok()?.lines() {
        // `TXN ORIGIN`: the origin last, since it may hold spaces.
        let (t, o) = line.split_once(' ')?;
        out.insert(o.to_owned(), t.parse().ok()?);
    }
    Some((seq, out))
}

fn record(seq: u64, last: &HashMap<String, u64>) -> Vec<u8> {
    let mut entries: Vec<_> = last.iter().collect();
    entries.sort();
    let mut body = String::new();
    for (origin, txn) in entries {
        body.push_str(&format!("{txn} {origin}\n"));
    }
    let mut rec = format!("{MAGIC} {seq} {} {}\n", body.len(), checksum(body.as_bytes())).into_bytes();
    rec.extend_from_slice(body.as_bytes());
    rec
}

impl Origins {
    /// Opens (or creates) the file; the last commit number of each origin it holds.
    pub fn load(dir: &Path, name: &str) -> Result<(Origins, HashMap<String, u64>), String> {
        let path = path_of(dir, name);
        let fail = |e: std::io::Error| format!("could not open {}: {e}", path.display());
        let mut file = open(&path, true).map_err(fail)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(fail)?;
        if bytes.is_empty() {
            file.set_len(2 * FIRST_SLOT).map_err(fail)?;
            let o = Origins { dir: dir.to_owned(), name: name.to_owned(), file, slot: FIRST_SLOT, seq: 0 };
            return Ok((o, HashMap::new()));
        }
        let slot = bytes.len() / 2;
        let best = [&bytes[..slot], &bytes[slot..]].into_iter().filter_map(parse_slot).max_by_key(|(seq, _)| *seq);
        let (seq, last) = best.unwrap_or_default();
        let o = Origins { dir: dir.to_owned(), name: name.to_owned(), file, slot: slot as u64, seq };
        Ok((o, last))
    }

    /// Saves `last` as the file's newest record.
    pub fn save(&mut self, last: &HashMap<String, u64>) -> std::io::Result<()> {
        let seq = self.seq + 1;
        let rec = record(seq, last);
        if rec.len() as u64 <= self.slot {
            self.file.write_all_at(&rec, (seq % 2) * self.slot)?;
        } else {
            // Larger slots, in a new file renamed over the old one.
            let slot = (rec.len() as u64 * 2).next_power_of_two();
            let path = path_of(&self.dir, &self.name);
            let aside = self.dir.join(format!("bridge.{}.origins.new", self.name));
            let _ = std::fs::remove_file(&aside);
            let file = open(&aside, true)?;
            file.set_len(2 * slot)?;
            file.write_all_at(&rec, (seq % 2) * slot)?;
            std::fs::rename(&aside, &path)?;
            (self.file, self.slot) = (file, slot);
        }
        self.seq = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_saved_loads_back_and_a_torn_record_leaves_the_one_before() {
        let dir = std::env::temp_dir().join(format!("hark-bridge-origins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (mut o, last) = Origins::load(&dir, "b").unwrap();
        assert!(last.is_empty());
        let first: HashMap<String, u64> = [("a@h x#1".to_owned(), 7), ("b@g#2".to_owned(), 0)].into_iter().collect();
        o.save(&first).unwrap();
        assert_eq!(Origins::load(&dir, "b").unwrap().1, first);
        let mut second = first.clone();
        second.insert("a@h x#1".to_owned(), 8);
        o.save(&second).unwrap();
        assert_eq!(Origins::load(&dir, "b").unwrap().1, second);
        // A third save torn halfway: the second is what loads.
        let mut third = second.clone();
        third.insert("c#3".to_owned(), 1);
        let rec = record(3, &third);
        o.file.write_all_at(&rec[..rec.len() / 2], o.slot).unwrap();
        assert_eq!(Origins::load(&dir, "b").unwrap().1, second);
        // A record larger than a slot moves to a file of larger slots.
        let many: HashMap<String, u64> = (0..2000).map(|i| (format!("origin-{i}@host#{i:016x}"), i)).collect();
        o.save(&many).unwrap();
        assert!(o.slot > FIRST_SLOT);
        assert_eq!(Origins::load(&dir, "b").unwrap().1, many);
        o.save(&second).unwrap();
        assert_eq!(Origins::load(&dir, "b").unwrap().1, second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
