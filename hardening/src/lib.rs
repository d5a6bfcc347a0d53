//! Support for hark's hardening work: the code each fuzz target runs, shared with the regression
//! test that replays the kept corpus and findings under `cargo test` (`tests/fuzz_inputs.rs`), so
//! that what the fuzzer exercised keeps being exercised without nightly tools.
//!
//! Each entry takes arbitrary bytes and must neither panic nor hang; the assertions inside are
//! the properties checked (an error is fine, a wrong success is not).

use hark::{Connection, Options, Queue};
use std::cell::RefCell;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A scratch directory for this process and thread, removed by [`cleanup`] (a fuzzer that stops
/// on a finding leaves it in the temporary directory; it is small).
fn scratch() -> PathBuf {
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_digit(), "");
    let p = std::env::temp_dir().join(format!("hark-fuzz-{}-{thread}", std::process::id()));
    std::fs::create_dir_all(&p).expect("create the scratch directory");
    p
}

/// Removes the calling thread's scratch directory and forgets its queues.
pub fn cleanup() {
    QUEUES.with(|q| q.borrow_mut().clear());
    let _ = std::fs::remove_dir_all(scratch());
}

fn small() -> Options {
    Options::new().max_queue_size(512 << 10).segment_size(64 << 10)
}

thread_local! {
    static QUEUES: RefCell<Vec<(&'static str, Arc<Queue>)>> = const { RefCell::new(Vec::new()) };
}

/// One queue per purpose and thread, created at first use.
fn queue(name: &'static str) -> Arc<Queue> {
    QUEUES.with(|qs| {
        let mut qs = qs.borrow_mut();
        if let Some((_, q)) = qs.iter().find(|(n, _)| *n == name) {
            return q.clone();
        }
        let dir = scratch().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let q = Queue::open(&dir, &small()).expect("create a scratch queue");
        qs.push((name, q.clone()));
        q
    })
}

// Offsets in the control file of the moving positions (`layout.rs`: `Shared` starts at 512 with
// two 64-byte mutex cells, then head, next_txn, six pad words, tail, stop). The test
// `fuzz_inputs::control_offsets_match_the_format` checks them against a live queue.
pub const SHARED_OFFSET: u64 = 512;
pub const HEAD_OFFSET: u64 = SHARED_OFFSET + 128;
pub const TAIL_OFFSET: u64 = HEAD_OFFSET + 64;
pub const STOP_OFFSET: u64 = TAIL_OFFSET + 8;

/// Fuzz target `sql`: any text through the SQL dialect, on a fresh session of a scratch queue,
/// run on a thread with a 128 KiB stack (musl's default, the smallest a caller is likely to give
/// hark), so that input that recurses too deeply crashes here. The text may ask for repetition
/// (see [`expand_repeats`]), so that short inputs reach deep nesting and long chains. Returns the
/// SQLSTATE of the error the text gave, if any.
pub fn sql(data: &[u8]) -> Option<&'static str> {
    let text = expand_repeats(&String::from_utf8_lossy(data)).into_owned();
    let _ = hark::split_statements(&text);
    let q = queue("sql");
    let mut c = Connection::on(q).expect("open a session");
    c.set_notice_handler(Some(Box::new(|_| {})));
    let (mut c, r) = std::thread::Builder::new()
        .stack_size(128 << 10)
        .spawn(move || {
            let r = c.execute(&text).err().map(|e| {
                assert!(!e.message().is_empty(), "an error without a message");
                assert_eq!(e.sqlstate().len(), 5, "SQLSTATE {:?}", e.sqlstate());
                if let Some(p) = e.position() {
                    assert!(p >= 1 && p <= text.chars().count() + 1, "error position {p} outside the text");
                }
                e.sqlstate()
            });
            (c, r)
        })
        .expect("start the statement's thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
    // Whatever state the text left, the session still works: end the block and deliver.
    let _ = c.execute("ROLLBACK");
    c.execute("NOTIFY fuzz_check, 'after'").expect("a session is usable after any statement text");
    for _ in 0..10_000 {
        match c.notifies() {
            Ok(Some(n)) => {
                assert!(c.listening_channels().contains(&n.channel), "delivered on {:?}, not listened", n.channel)
            }
            Ok(None) => break,
            Err(e) => panic!("reading after arbitrary SQL: {e}"),
        }
    }
    r
}

/// Expands repetitions in fuzz input: `\x01` splits the text into parts and, when there are at
/// least three and the last is a decimal count N, the parts before it alternate between copied
/// once and repeated N times (at most 100,000, and at most 1 MiB of repeated text in all). So
/// `SELECT \x01(\x011\x01)\x0110000` is 10,000 nested parentheses around `1`, and
/// `SELECT 'a'\x01 || 'b'\x01\x0130000` a chain of 30,001 strings. Other text is left as it is.
pub fn expand_repeats(text: &str) -> std::borrow::Cow<'_, str> {
    let parts: Vec<&str> = text.split('\x01').collect();
    let count = match parts.split_last() {
        Some((last, rest)) if rest.len() >= 2 && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) => {
            last.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return text.into(),
    };
    let parts = &parts[..parts.len() - 1];
    let repeated: usize = parts.iter().skip(1).step_by(2).map(|p| p.len()).sum();
    let n = count.min(100_000).min((1 << 20) / repeated.max(1));
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        out.push_str(&if i % 2 == 1 { p.repeat(n) } else { (*p).to_owned() });
    }
    out.into()
}

/// The bytes of a freshly created queue's control file and of its first segment holding a few
/// notifications: the starting point that `open_queue` damages.
struct Template {
    control: Vec<u8>,
    segment: Vec<u8>,
}

fn template() -> &'static Template {
    static T: std::sync::OnceLock<Template> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let dir = scratch().join("template");
        let _ = std::fs::remove_dir_all(&dir);
        let mut l = Connection::with_options(&dir, &small()).expect("create the template queue");
        l.listen("a").unwrap();
        let mut n = Connection::on(l.queue().clone()).unwrap();
        n.execute("BEGIN; NOTIFY a, 'one'; NOTIFY b, 'two'; NOTIFY a, ''; COMMIT").unwrap();
        n.notify("a", &"x".repeat(300)).unwrap();
        // Read while l is registered, so the bytes record a listener at position 0.
        let t = Template {
            control: std::fs::read(dir.join("control")).unwrap(),
            segment: std::fs::read(dir.join("000000000000000")).unwrap(),
        };
        drop((l, n));
        let _ = std::fs::remove_dir_all(&dir);
        t
    })
}

/// Applies patches `[offset: 3 bytes][len: 1 byte][bytes…]…` to `file`, skipping `[skip)`.
fn patch(file: &mut [u8], mut data: &[u8], skip: std::ops::Range<usize>) {
    while data.len() >= 4 && !file.is_empty() {
        let mut off = (u32::from_be_bytes([0, data[0], data[1], data[2]]) as usize) % file.len();
        let len = (data[3] as usize).min(data.len() - 4);
        if skip.contains(&off) {
            off = skip.end;
        }
        for (i, &b) in data[4..4 + len].iter().enumerate() {
            if let Some(x) = file.get_mut(off + i).filter(|_| !skip.contains(&(off + i))) {
                *x = b;
            }
        }
        data = &data[4 + len..];
    }
}

/// Fuzz target `open_queue`: a queue directory whose control file and first segment hold
/// arbitrary bytes (raw, or a valid queue's bytes with arbitrary patches, the segment possibly
/// truncated) is opened and used; every step may fail with an error, none may crash.
///
/// The two lock words are never patched: a lock word that says "held" cannot be told from a live
/// holder (the same as a holder stopped with SIGSTOP, a documented limit), so it would only
/// measure the fuzzer's patience.
/// Returns whether the queue opened.
pub fn open_queue(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else { return false };
    let dir = scratch().join("open");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    set_mode(&dir, 0o700);
    let t = template();
    let (control, segment) = if mode % 4 == 0 {
        (rest.to_vec(), None)
    } else {
        // The first byte shares the rest between the control file's patches and the segment's.
        let (sel, body) = rest.split_first().map_or((0, rest), |(&s, b)| (s as usize, b));
        let (a, b) = body.split_at((sel + 1) * body.len() / 256);
        let mut control = t.control.clone();
        let lock_words = SHARED_OFFSET as usize..HEAD_OFFSET as usize;
        patch(&mut control, a, lock_words);
        let mut segment = t.segment.clone();
        patch(&mut segment, b, 0..0);
        if mode % 4 == 3 {
            let keep = b.first().map_or(0, |&x| x as usize * segment.len() / 256);
            segment.truncate(keep);
        }
        (control, Some(segment))
    };
    if std::env::var_os("HARK_FUZZ_DEBUG").is_some() && control.len() >= 720 {
        let word = |o: u64| u64::from_ne_bytes(control[o as usize..o as usize + 8].try_into().unwrap());
        eprintln!("open_queue: head {} tail {} stop {}", word(HEAD_OFFSET), word(TAIL_OFFSET), word(STOP_OFFSET));
    }
    write_file(&dir.join("control"), &control);
    if let Some(s) = segment {
        write_file(&dir.join("000000000000000"), &s);
    }
    let q = match Queue::open(&dir, &Options::default()) {
        Ok(q) => q,
        Err(e) => {
            assert!(!e.message().is_empty());
            if std::env::var_os("HARK_FUZZ_DEBUG").is_some() {
                eprintln!("open_queue: {e}");
            }
            return false;
        }
    };
    let _ = q.stats();
    let mut l = Connection::on(q.clone()).expect("a session on an opened queue");
    l.set_notice_handler(Some(Box::new(|_| {})));
    let _ = l.execute("LISTEN a; LISTEN b");
    let mut n = Connection::on(q.clone()).expect("a second session");
    n.set_notice_handler(Some(Box::new(|_| {})));
    let _ = n.execute("NOTIFY a, 'fresh'");
    let _ = n.queue_usage();
    for _ in 0..10_000 {
        match l.notifies() {
            Ok(Some(x)) => assert!(x.channel == "a" || x.channel == "b", "delivered on {:?}", x.channel),
            _ => break,
        }
    }
    drop((l, n));
    let _ = q.stats();
    true
}

/// Fuzz target `read_segment`: a listener at position 0 walks arbitrary bytes written as the
/// queue's first two segments, up to a head placed at their end. What it delivers must be, in
/// order and once each, exactly what an independent walk of the format finds before the first bad
/// entry (payloads that are not UTF-8 skipped); a bad entry must give an error, never a crash, a
/// read out of bounds or a repeated delivery.
/// Returns how many notifications were delivered.
pub fn read_segment(data: &[u8]) -> usize {
    let dir = queue("read").path().to_path_buf();
    let control = std::fs::OpenOptions::new().write(true).open(dir.join("control")).unwrap();
    let set = |off: u64, v: u64| control.write_all_at(&v.to_ne_bytes(), off).unwrap();
    for off in [HEAD_OFFSET, TAIL_OFFSET, STOP_OFFSET] {
        set(off, 0);
    }
    // Opened anew for each input: a process that saw the head move backwards refuses the queue.
    let q = Queue::open(&dir, &small()).expect("reopen the scratch queue");
    let seg = q.segment_size() as usize;
    let mut l = Connection::on(q.clone()).expect("a session");
    l.set_notice_handler(Some(Box::new(|_| {})));
    l.execute("LISTEN a; LISTEN b; LISTEN \"chan\"").expect("listen");
    let data = &data[..data.len().min(2 * seg)];
    for s in 0..2 {
        let mut bytes = vec![0u8; seg];
        let from = (s * seg).min(data.len());
        let part = &data[from..data.len().min(from + seg)];
        bytes[..part.len()].copy_from_slice(part);
        write_file(&dir.join(format!("{s:015X}")), &bytes);
    }
    let head = (data.len() / 8 * 8) as u64;
    set(HEAD_OFFSET, head);
    let (expected, clean) = reference_walk(data, head as usize, seg, q.max_payload(), &["a", "b", "chan"]);
    let mut got = Vec::new();
    let mut errors = 0;
    // Keep asking after errors: a reader stuck on a bad entry must not hand out anything twice.
    while errors < 4 && got.len() <= expected.len() {
        match l.notifies() {
            Ok(Some(n)) => got.push((n.channel, n.payload, n.pid)),
            Ok(None) => break,
            Err(e) => {
                assert!(!clean, "an error on bytes that hold only valid entries: {e}");
                if std::env::var_os("HARK_FUZZ_DEBUG").is_some() {
                    eprintln!("read_segment: {e}");
                }
                errors += 1;
            }
        }
    }
    assert_eq!(got, expected, "the reader's deliveries differ from the entries before the first bad one");
    drop(l);
    set(HEAD_OFFSET, 0);
    got.len()
}

/// An independent walk of the entry format (`layout.rs`): the notifications on `channels` that a
/// correct reader delivers from `data[..head]`, up to the first invalid entry, and whether the
/// walk met nothing to report.
fn reference_walk(
    data: &[u8],
    head: usize,
    seg: usize,
    max_payload: usize,
    channels: &[&str],
) -> (Vec<(String, String, i32)>, bool) {
    let mut out = Vec::new();
    let mut clean = true;
    let mut pos = 0;
    // The entry header's size (layout.rs): len, kind, lengths, pid, txn, commit time.
    const HDR: usize = 32;
    let u32_at = |p: usize| u32::from_ne_bytes(data[p..p + 4].try_into().unwrap()) as usize;
    while pos < head {
        let room = seg - pos % seg;
        if room < HDR {
            pos += room;
            continue;
        }
        if pos + HDR > data.len() {
            return (out, false);
        }
        let (len, kind, chan_len, payload_len) = (u32_at(pos), data[pos + 4], data[pos + 5] as usize, u32_at(pos + 12));
        let pid = i32::from_ne_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        let ok = len >= HDR
            && len % 8 == 0
            && len <= room
            && pos + len <= head
            && match kind {
                2 => len == room,
                1 => {
                    chan_len > 0 && chan_len <= 63 && payload_len <= max_payload && HDR + chan_len + payload_len <= len
                }
                _ => false,
            };
        if !ok {
            return (out, false);
        }
        if kind == 1 {
            let chan = &data[pos + HDR..pos + HDR + chan_len];
            let payload = &data[pos + HDR + chan_len..pos + HDR + chan_len + payload_len];
            if channels.iter().any(|c| c.as_bytes() == chan) {
                match std::str::from_utf8(payload) {
                    Ok(p) => out.push((String::from_utf8(chan.to_vec()).unwrap(), p.to_owned(), pid)),
                    Err(_) => clean = false, // skipped, reported as an error
                }
            }
        }
        pos += len;
    }
    (out, clean)
}

fn write_file(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).unwrap();
    f.write_all_at(bytes, 0).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fresh directory for one test, removed when dropped; `queue()` is the queue directory inside
/// it (not yet created). Shared by the hardening tests.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("hark-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn queue(&self) -> std::path::PathBuf {
        self.0.join("q")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
