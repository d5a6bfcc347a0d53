//! Replays every kept fuzz input (the seed corpus in `fuzz/corpus/<target>/` and the findings in
//! `fuzz/regressions/<target>/`) through the same code the fuzz targets run, under plain
//! `cargo test`: no nightly features, no cargo-fuzz.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut v = Vec::new();
    for kind in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(root.join(kind).join(target)) {
            v.extend(rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    v.sort();
    v
}

fn replay<T>(target: &str, run: fn(&[u8]) -> T) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no kept inputs for fuzz target {target}");
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| {
            run(&data);
        }) {
            hark_hardening::cleanup();
            std::panic::resume_unwind(Box::new(format!(
                "fuzz input {} failed: {:?}",
                f.display(),
                e.downcast_ref::<String>().map(String::as_str).or(e.downcast_ref::<&str>().copied())
            )));
        }
    }
    hark_hardening::cleanup();
}

#[test]
fn sql_inputs() {
    replay("sql", hark_hardening::sql);
}

#[test]
fn open_queue_inputs() {
    replay("open_queue", hark_hardening::open_queue);
}

#[test]
fn read_segment_inputs() {
    replay("read_segment", hark_hardening::read_segment);
}

/// The seeds reach what they were written for: a valid queue opens, a newer format does not; the
/// hand-made segments deliver exactly their entries on the listened channels.
#[test]
fn seeds_reach_their_paths() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let read = |t: &str, n: &str| std::fs::read(root.join(t).join(n)).unwrap();
    assert!(hark_hardening::open_queue(&read("open_queue", "seed-valid")));
    assert!(!hark_hardening::open_queue(&read("open_queue", "seed-newer-version")));
    assert_eq!(hark_hardening::read_segment(&read("read_segment", "seed-entries")), 3);
    assert_eq!(hark_hardening::read_segment(&read("read_segment", "seed-filler")), 4);
    // A bad entry after a good one in the same read: the good one once, then errors.
    assert_eq!(hark_hardening::read_segment(&read("read_segment", "seed-bad-length")), 1);
    // Deep nesting and long chains, on the target's small stack: nesting beyond hark's limit
    // fails with PostgreSQL's 54001, chains of any length and nesting up to the limit work.
    assert_eq!(hark_hardening::sql(&read("sql", "seed-deep-parentheses")), Some("54001"));
    assert_eq!(hark_hardening::sql(&read("sql", "seed-deep-calls")), Some("54001"));
    assert_eq!(hark_hardening::sql(&read("sql", "seed-deep-unclosed-calls")), Some("54001"));
    assert_eq!(hark_hardening::sql(&read("sql", "seed-deep-at-limit")), None);
    assert_eq!(hark_hardening::sql(&read("sql", "seed-long-concat")), None);
    assert_eq!(hark_hardening::sql(&read("sql", "seed-long-cast")), None);
    assert_eq!(hark_hardening::sql(&read("sql", "seed-long-minus")), None);
    assert_eq!(hark_hardening::sql(&read("sql", "seed-deep-comments")), None);
    hark_hardening::cleanup();
}

/// The repetition syntax of the `sql` target's input.
#[test]
fn sql_inputs_expand_repeats() {
    use hark_hardening::expand_repeats;
    assert_eq!(expand_repeats("SELECT \x01(\x011\x01)\x013"), "SELECT (((1)))");
    assert_eq!(expand_repeats("SELECT 'a'\x01 || 'b'\x01\x012"), "SELECT 'a' || 'b' || 'b'");
    assert_eq!(expand_repeats("SELECT \x01(\x011\x01)\x01x"), "SELECT \x01(\x011\x01)\x01x");
    assert_eq!(expand_repeats("SELECT 1\x0199"), "SELECT 1\x0199");
    assert_eq!(expand_repeats("a\x01b\x01c\x0199999999999999999999999").len(), 100_002);
    // 20 bytes repeated: as many times as fit in 1 MiB.
    assert_eq!(expand_repeats("\x01xxxxxxxxxxxxxxxxxxxx\x01\x0199999").len(), (1 << 20) / 20 * 20);
}

/// The targets write positions into the control file at fixed offsets; they must be the ones the
/// library uses, or `read_segment` would walk nothing.
#[test]
fn control_offsets_match_the_format() {
    use std::os::unix::fs::FileExt;
    let dir = std::env::temp_dir().join(format!("hark-test-offsets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = hark::Connection::open(&dir).unwrap();
    c.listen("a").unwrap();
    c.notify("a", "x").unwrap();
    c.notify("a", "y").unwrap();
    let st = c.queue().stats().unwrap();
    let f = std::fs::File::open(dir.join("control")).unwrap();
    let word = |off| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, off).unwrap();
        u64::from_ne_bytes(b)
    };
    assert_eq!(st.head, 80);
    assert_eq!(word(hark_hardening::HEAD_OFFSET), st.head);
    assert_eq!(word(hark_hardening::TAIL_OFFSET), st.tail);
    assert_eq!(word(hark_hardening::STOP_OFFSET), 0);
    drop(c);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Replays one input for debugging: `HARK_FUZZ_ONE=<file> HARK_FUZZ_TARGET=<target>
/// HARK_FUZZ_DEBUG=1 cargo test -p hark-hardening --test fuzz_inputs one_input -- --nocapture`.
#[test]
fn one_input() {
    let (Some(file), Ok(target)) = (std::env::var_os("HARK_FUZZ_ONE"), std::env::var("HARK_FUZZ_TARGET")) else {
        return;
    };
    let data = std::fs::read(file).unwrap();
    match target.as_str() {
        "sql" => drop(hark_hardening::sql(&data)),
        "open_queue" => drop(hark_hardening::open_queue(&data)),
        "read_segment" => drop(hark_hardening::read_segment(&data)),
        t => panic!("unknown fuzz target {t}"),
    }
    hark_hardening::cleanup();
}
