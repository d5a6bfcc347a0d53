//! PostgreSQL's rules (R1–R31 of the behaviour reference), session by session. Sessions here are
//! separate connections in one process, which the engine treats exactly like separate processes
//! (each has its own slot, socket and position); cross-process tests live in `processes.rs`.

mod common;

use common::{drain, pairs, TempDir};
use hark::{Connection, ErrorKind, Notice, Options, TransactionStatus};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

fn two(t: &TempDir) -> (Connection, Connection) {
    let q = t.queue();
    (Connection::open(&q).unwrap(), Connection::open(&q).unwrap())
}

fn notices(c: &mut Connection) -> Arc<Mutex<Vec<Notice>>> {
    let v = Arc::new(Mutex::new(Vec::new()));
    let w = v.clone();
    c.set_notice_handler(Some(Box::new(move |n: &Notice| w.lock().unwrap().push(n.clone()))));
    v
}

fn err(r: hark::Result<impl std::fmt::Debug>) -> hark::Error {
    r.expect_err("expected an error")
}

#[test]
fn r1_identifiers_fold_quote_and_truncate() {
    let t = TempDir::new("r1");
    let (mut a, mut b) = two(&t);
    a.execute("LISTEN Foo; LISTEN \"Bar\"").unwrap();
    assert_eq!(a.listening_channels(), ["foo", "Bar"]);
    b.execute("NOTIFY FOO, 'x'; NOTIFY \"Bar\", 'y'; NOTIFY bar, 'z'").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("foo", "x"), ("Bar", "y")]));

    let e = err(b.execute("NOTIFY select"));
    assert_eq!((e.message(), e.sqlstate(), e.position()), ("syntax error at or near \"select\"", "42601", Some(8)));
    b.execute("NOTIFY \"select\"").unwrap();
    let e = err(b.execute("NOTIFY \"\""));
    assert_eq!(e.message(), "zero-length delimited identifier at or near \"\"\"\"");

    let long = "x".repeat(70);
    let seen = notices(&mut a);
    a.execute(&format!("LISTEN {long}")).unwrap();
    let n = seen.lock().unwrap().clone();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].sqlstate, "42622");
    assert_eq!(n[0].message, format!("identifier \"{long}\" will be truncated to \"{}\"", &long[..63]));
    b.set_notice_handler(Some(Box::new(|_| {})));
    b.execute(&format!("NOTIFY {long}, 'long'")).unwrap();
    assert_eq!(drain(&mut a), pairs(&[(&long[..63], "long")]));
    // Truncation never splits a character: 62 ASCII bytes then a 2-byte 'é' is cut before it.
    let multi = format!("{}é", "y".repeat(62));
    a.execute(&format!("LISTEN \"{multi}\"")).unwrap();
    assert!(a.listening_channels().contains(&"y".repeat(62)));
}

#[test]
fn r2_pg_notify_takes_the_channel_verbatim_and_checks_in_order() {
    let t = TempDir::new("r2");
    let (mut a, mut b) = two(&t);
    a.execute("LISTEN \"MiXed\"").unwrap();
    let r = b.execute("SELECT pg_notify('MiXed', 'v')").unwrap();
    assert_eq!(
        (r.tag.as_str(), r.columns.clone(), r.rows.clone()),
        ("SELECT 1", vec!["pg_notify".to_string()], vec![vec![Some(String::new())]])
    );
    assert_eq!(drain(&mut a), pairs(&[("MiXed", "v")]));
    for (sql, msg) in [
        ("SELECT pg_notify(NULL, 'p')", "channel name cannot be empty"),
        ("SELECT pg_notify('', 'p')", "channel name cannot be empty"),
        (&format!("SELECT pg_notify('{}', 'p')", "c".repeat(64)), "channel name too long"),
        (&format!("SELECT pg_notify('c', '{}')", "p".repeat(8000)), "payload string too long"),
        (&format!("SELECT pg_notify('{}', '{}')", "c".repeat(64), "p".repeat(8000)), "channel name too long"),
    ] {
        let e = err(b.execute(sql));
        assert_eq!((e.message(), e.sqlstate(), e.kind()), (msg, "22023", ErrorKind::InvalidArgument), "{sql}");
    }
    let e = err(b.execute("SELECT pg_notify(1, 'x')"));
    assert_eq!((e.message(), e.sqlstate()), ("function pg_notify(integer, unknown) does not exist", "42883"));
    // The direct API applies the same checks.
    assert_eq!(err(b.notify("", "")).message(), "channel name cannot be empty");
    assert_eq!(err(b.notify(&"c".repeat(64), "")).message(), "channel name too long");
    assert_eq!(err(b.listen(&"c".repeat(64))).message(), "channel name too long");
    b.notify(&"c".repeat(63), "").unwrap();
    // As with pg_notify, a bad argument inside a block aborts the block.
    b.begin().unwrap();
    b.notify("c", "kept?").unwrap();
    err(b.notify("", "x"));
    assert_eq!(b.transaction_status(), TransactionStatus::InError);
    b.rollback().unwrap();
}

#[test]
fn r3_payload_limits_forms_and_equivalence() {
    let t = TempDir::new("r3");
    let (mut a, mut b) = two(&t);
    a.execute("LISTEN c").unwrap();
    b.notify("c", &"p".repeat(7999)).unwrap();
    assert_eq!(drain(&mut a)[0].1.len(), 7999);
    // 4000 × 'é' is 8000 bytes in UTF-8: too long.
    assert_eq!(err(b.notify("c", &"é".repeat(4000))).message(), "payload string too long");
    let e = err(b.notify("c", "a\0b"));
    assert_eq!((e.sqlstate(), e.message()), ("22021", "invalid byte sequence for encoding \"UTF8\": 0x00"));
    // Omitted, NULL and '' are the same payload, folded within a transaction.
    b.execute("BEGIN; NOTIFY c; SELECT pg_notify('c', NULL); NOTIFY c, ''; SELECT pg_notify('c', ''); COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "")]));
    b.execute("NOTIFY c, E'tab\\there'; NOTIFY c, $$dollar 'quoted'$$; NOTIFY c, $x$a$$b$x$; NOTIFY c, 'it''s'")
        .unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "tab\there"), ("c", "dollar 'quoted'"), ("c", "a$$b"), ("c", "it's")]));
    // NOTIFY takes a string constant only; expressions go through pg_notify.
    let e = err(b.execute("NOTIFY c, 'a' || 'b'"));
    assert_eq!((e.message(), e.position()), ("syntax error at or near \"||\"", Some(15)));
    b.execute("SELECT pg_notify('c', 'pay' || 'load')").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "payload")]));
}

#[test]
fn r3_max_payload_is_configurable_up_to_one_mebibyte() {
    let t = TempDir::new("r3big");
    let q = t.queue();
    let opts = Options::new().max_payload(1 << 20);
    let mut a = Connection::with_options(&q, &opts).unwrap();
    let mut b = Connection::with_options(&q, &opts).unwrap();
    a.listen("big").unwrap();
    let payload: String = (0..(1 << 20)).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    b.notify("big", &payload).unwrap();
    b.notify("big", "small").unwrap();
    assert_eq!(err(b.notify("big", &format!("{payload}x"))).message(), "payload string too long");
    let got = drain(&mut a);
    assert_eq!(got.len(), 2);
    assert!(got[0].1 == payload && got[1].1 == "small");
    // Reopening with a different explicit size is refused, not silently ignored.
    let e = err(Connection::with_options(&q, &Options::new().max_payload(7999)));
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    Connection::open(&q).unwrap();
}

#[test]
fn r4_matching_is_exact() {
    let t = TempDir::new("r4");
    let (mut a, mut b) = two(&t);
    a.listen("orders").unwrap();
    for ch in ["Orders", "orders ", "order", "orders2"] {
        b.notify(ch, "x").unwrap();
    }
    b.notify("orders", "yes").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("orders", "yes")]));
}

#[test]
fn r6_r12_receiver_gets_channel_payload_and_sender_pid_including_self() {
    let t = TempDir::new("r6");
    let (mut a, mut b) = two(&t);
    a.listen("c").unwrap();
    b.notify("c", "from b").unwrap();
    a.notify("c", "from a").unwrap();
    a.consume_input().unwrap();
    let n1 = a.notifies().unwrap().unwrap();
    let n2 = a.notifies().unwrap().unwrap();
    assert_eq!((n1.payload.as_str(), n1.pid), ("from b", b.backend_pid()));
    assert_eq!((n2.payload.as_str(), n2.pid), ("from a", a.backend_pid()));
    assert_eq!(n2.pid, std::process::id() as i32);
    // READ ONLY transactions may listen and notify.
    a.execute("BEGIN READ ONLY; NOTIFY c, 'ro'; COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "ro")]));
}

#[test]
fn r6_each_session_has_its_own_backend_pid_as_each_postgresql_connection_has() {
    let t = TempDir::new("r6-pids");
    let q = t.queue();
    let mut sessions: Vec<Connection> = (0..20).map(|_| Connection::open(&q).unwrap()).collect();
    let pids: Vec<i32> = sessions.iter().map(|c| c.backend_pid()).collect();
    // The process's first session shows its id, as `ps` does; the others have ids no Linux
    // process has (at least 2^22); no two live sessions share one.
    assert_eq!(pids[0], std::process::id() as i32);
    assert!(pids[1..].iter().all(|&p| p >= 1 << 22), "{pids:?}");
    assert_eq!(pids.iter().collect::<HashSet<_>>().len(), pids.len(), "{pids:?}");
    // pg_backend_pid() and every notification name the sending session, so that the usual
    // "skip my own" test skips exactly one session's notifications.
    sessions[0].listen("c").unwrap();
    for (i, c) in sessions.iter_mut().enumerate() {
        assert_eq!(c.execute("SELECT pg_backend_pid()").unwrap().rows, [[Some(pids[i].to_string())]]);
        c.notify("c", &i.to_string()).unwrap();
    }
    let me = sessions[0].backend_pid();
    sessions[0].consume_input().unwrap();
    let mut from_others = Vec::new();
    while let Some(n) = sessions[0].notifies().unwrap() {
        assert_eq!(n.pid, pids[n.payload.parse::<usize>().unwrap()], "{n:?}");
        if n.pid != me {
            from_others.push(n.payload);
        }
    }
    assert_eq!(from_others, (1..20).map(|i| i.to_string()).collect::<Vec<_>>());
    // `hark stat` shows each listener's backend PID beside its process's id.
    sessions[5].listen("c").unwrap();
    let stats = sessions[0].queue().stats().unwrap();
    let shown: Vec<(i32, i32)> = stats.listeners.iter().map(|l| (l.pid, l.os_pid)).collect();
    assert_eq!(shown, [(pids[0], pids[0]), (pids[5], std::process::id() as i32)]);
    // A closed session's PID may be taken again (as the kernel reuses a process id), a live
    // one's never.
    drop(sessions.remove(0));
    let again = Connection::open(&q).unwrap();
    assert_eq!(again.backend_pid(), pids[0]);
    let mut live: Vec<i32> = sessions.iter().map(|c| c.backend_pid()).collect();
    live.push(again.backend_pid());
    assert_eq!(live.iter().collect::<HashSet<_>>().len(), live.len(), "{live:?}");
}

#[test]
fn r7_notify_is_transactional() {
    let t = TempDir::new("r7");
    let (mut a, mut b) = two(&t);
    a.listen("c").unwrap();
    b.begin().unwrap();
    b.notify("c", "1").unwrap();
    assert!(drain(&mut a).is_empty(), "visible before commit");
    b.rollback().unwrap();
    assert!(drain(&mut a).is_empty(), "visible after rollback");
    // An error inside the block aborts it: nothing is sent, even with COMMIT.
    b.execute("BEGIN").unwrap();
    b.execute("NOTIFY c, 'doomed'").unwrap();
    err(b.execute("SELECT pg_notify('', 'x')"));
    assert_eq!(b.transaction_status(), TransactionStatus::InError);
    let e = err(b.execute("NOTIFY c, 'ignored'"));
    assert_eq!(
        (e.sqlstate(), e.message()),
        ("25P02", "current transaction is aborted, commands ignored until end of transaction block")
    );
    assert_eq!(b.execute("COMMIT").unwrap().tag, "ROLLBACK");
    assert_eq!(b.transaction_status(), TransactionStatus::Idle);
    // Several statements in one call are one implicit transaction: an error undoes them all.
    err(b.execute("NOTIFY c, 'first'; SELECT pg_notify('c', NULL || 'x'); SELECT pg_notify('', 'y')"));
    assert!(drain(&mut a).is_empty());
    // A parse error anywhere means nothing runs.
    err(b.execute("NOTIFY c, 'first'; NOTIFY"));
    assert!(drain(&mut a).is_empty());
    b.execute("NOTIFY c, 'ok'").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "ok")]));
}

#[test]
fn r8_r9_listen_takes_effect_at_commit_and_replays_in_order() {
    let t = TempDir::new("r8");
    let (mut a, mut b) = two(&t);
    a.execute("BEGIN; LISTEN c").unwrap();
    // Uncommitted LISTENs are not listed inside the transaction.
    let r = a.execute("SELECT pg_listening_channels()").unwrap();
    assert!(r.rows.is_empty() && r.tag == "SELECT 0");
    b.notify("c", "during").unwrap();
    a.execute("ROLLBACK").unwrap();
    b.notify("c", "after rollback").unwrap();
    assert!(drain(&mut a).is_empty());
    assert!(a.listening_channels().is_empty());

    // Savepoint rolled back: its LISTEN is undone; released: it passes to the parent.
    a.execute("BEGIN; SAVEPOINT s; LISTEN x; ROLLBACK TO s; SAVEPOINT t; LISTEN y; RELEASE t; COMMIT").unwrap();
    assert_eq!(a.listening_channels(), ["y"]);
    a.execute("UNLISTEN *").unwrap();

    for (sql, want) in [
        ("BEGIN; LISTEN a; UNLISTEN *; LISTEN b; COMMIT", vec!["b"]),
        ("UNLISTEN *; BEGIN; LISTEN c1; UNLISTEN *; COMMIT", vec![]),
        ("UNLISTEN *; BEGIN; LISTEN e; UNLISTEN e; COMMIT", vec![]),
        ("UNLISTEN *; BEGIN; UNLISTEN *; LISTEN e; COMMIT", vec!["e"]),
    ] {
        a.execute(sql).unwrap();
        assert_eq!(a.listening_channels(), want, "{sql}");
    }
}

#[test]
fn r10_listen_and_unlisten_are_idempotent() {
    let t = TempDir::new("r10");
    let (mut a, mut b) = two(&t);
    a.execute("LISTEN c; LISTEN c").unwrap();
    a.execute("LISTEN c").unwrap();
    a.execute("UNLISTEN nothing").unwrap();
    b.notify("c", "once").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "once")]));
    a.execute("UNLISTEN *").unwrap();
    a.execute("UNLISTEN *").unwrap();
    b.notify("c", "none").unwrap();
    assert!(drain(&mut a).is_empty());
}

#[test]
fn r11_listen_and_notify_in_one_transaction() {
    let t = TempDir::new("r11");
    let (mut a, _b) = two(&t);
    a.execute("BEGIN; NOTIFY c, 'before listen'; LISTEN c; COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "before listen")]));
    a.execute("BEGIN; UNLISTEN c; NOTIFY c, 'after unlisten'; COMMIT").unwrap();
    assert!(drain(&mut a).is_empty());
}

#[test]
fn r13_no_delivery_inside_a_block_then_delivery_after_it() {
    let t = TempDir::new("r13");
    let (mut a, mut b) = two(&t);
    a.listen("c").unwrap();
    for end in ["COMMIT", "ROLLBACK"] {
        a.execute("BEGIN").unwrap();
        b.notify("c", end).unwrap();
        a.consume_input().unwrap();
        assert!(a.notifies().unwrap().is_none(), "delivered inside a block");
        assert!(!a.wait(Some(std::time::Duration::from_millis(20))).unwrap());
        a.execute(end).unwrap();
        assert_eq!(a.pending(), 1, "delivered right after {end}");
        assert_eq!(drain(&mut a), pairs(&[("c", end)]));
    }
    // Also from a failed block.
    a.execute("BEGIN").unwrap();
    b.notify("c", "failed").unwrap();
    err(a.execute("SELECT nosuch()"));
    assert!(drain(&mut a).is_empty());
    a.execute("ROLLBACK").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "failed")]));
}

#[test]
fn r15_filtering_happens_at_read_time() {
    let t = TempDir::new("r15");
    let (mut a, mut b) = two(&t);
    a.execute("LISTEN c; LISTEN d").unwrap();
    a.execute("BEGIN; UNLISTEN c").unwrap();
    b.notify("c", "dropped").unwrap();
    b.notify("d", "kept").unwrap();
    a.execute("COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("d", "kept")]));
}

#[test]
fn r16_duplicates_fold_within_a_transaction_only() {
    let t = TempDir::new("r16");
    let (mut a, mut b) = two(&t);
    a.execute("LISTEN d; LISTEN e").unwrap();
    b.execute("BEGIN; NOTIFY d, 'a'; NOTIFY e, 'a'; NOTIFY d, 'b'; NOTIFY d, 'a'; COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("d", "a"), ("e", "a"), ("d", "b")]));
    b.execute("NOTIFY d, 'a'; NOTIFY d, 'a'").unwrap(); // one implicit transaction
    b.execute("NOTIFY d, 'a'").unwrap();
    b.execute("NOTIFY d, 'a'").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("d", "a"), ("d", "a"), ("d", "a")]));
    // The reference example: a rolled-back occurrence does not count.
    b.execute("BEGIN; SAVEPOINT s; NOTIFY d,'a'; ROLLBACK TO s; NOTIFY d,'b'; NOTIFY d,'a'; COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("d", "b"), ("d", "a")]));
    // A duplicate in a released savepoint keeps the parent's earlier position.
    b.execute("BEGIN; NOTIFY d, 'x'; NOTIFY d, 'y'; SAVEPOINT s; NOTIFY d, 'z'; NOTIFY d, 'x'; RELEASE s; COMMIT")
        .unwrap();
    assert_eq!(drain(&mut a), pairs(&[("d", "x"), ("d", "y"), ("d", "z")]));
    // Past 16 pending notifications the hash table gives the same result.
    let mut sql = String::from("BEGIN;");
    for i in 0..40 {
        sql += &format!("NOTIFY d, '{}';", i % 25);
    }
    sql += "COMMIT";
    b.execute(&sql).unwrap();
    let got: Vec<String> = drain(&mut a).into_iter().map(|x| x.1).collect();
    assert_eq!(got, (0..25).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[test]
fn r17_order_is_commit_order_across_transactions() {
    let t = TempDir::new("r17");
    let q = t.queue();
    let mut l1 = Connection::open(&q).unwrap();
    let mut l2 = Connection::open(&q).unwrap();
    let mut x = Connection::open(&q).unwrap();
    let mut y = Connection::open(&q).unwrap();
    l1.listen("c").unwrap();
    l2.listen("c").unwrap();
    x.execute("BEGIN; NOTIFY c, 'x1'").unwrap(); // notified first ...
    y.execute("BEGIN; NOTIFY c, 'y1'; COMMIT").unwrap(); // ... committed second
    x.execute("NOTIFY c, 'x2'; COMMIT").unwrap();
    let want = pairs(&[("c", "y1"), ("c", "x1"), ("c", "x2")]);
    assert_eq!(drain(&mut l1), want);
    assert_eq!(drain(&mut l2), want);
}

#[test]
fn r19_a_new_listener_sees_only_later_commits() {
    let t = TempDir::new("r19");
    let (mut a, mut b) = two(&t);
    let mut other = Connection::open(a.queue().path()).unwrap();
    other.listen("c").unwrap(); // keeps old entries in the queue
    b.notify("c", "before").unwrap();
    a.listen("c").unwrap();
    b.notify("c", "after").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("c", "after")]));
    assert_eq!(drain(&mut other), pairs(&[("c", "before"), ("c", "after")]));
}

#[test]
fn r22_closing_and_discard_all_unlisten() {
    let t = TempDir::new("r22");
    let (mut a, mut b) = two(&t);
    a.listen("c").unwrap();
    b.notify("c", "unread").unwrap();
    assert_eq!(a.queue().stats().unwrap().listeners.len(), 1);
    a.close();
    assert_eq!(err(a.notifies()).kind(), ErrorKind::Closed);
    assert!(b.queue().stats().unwrap().listeners.is_empty());
    b.execute("LISTEN c; LISTEN d").unwrap();
    let e = err(b.execute("BEGIN; DISCARD ALL"));
    assert_eq!(e.message(), "DISCARD ALL cannot run inside a transaction block");
    b.execute("ROLLBACK").unwrap();
    assert_eq!(b.execute("DISCARD ALL").unwrap().tag, "DISCARD ALL");
    assert!(b.listening_channels().is_empty());
}

#[test]
fn r24_listening_channels_in_listen_order() {
    let t = TempDir::new("r24");
    let (mut a, _) = two(&t);
    a.execute("LISTEN zeta; LISTEN alpha; LISTEN mid").unwrap();
    let r = a.execute("SELECT pg_listening_channels()").unwrap();
    assert_eq!(r.columns, ["pg_listening_channels"]);
    let rows: Vec<_> = r.rows.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(rows, ["zeta", "alpha", "mid"]);
    assert_eq!(r.tag, "SELECT 3");
}

/// Checked against PostgreSQL 15 with `max_prepared_transactions = 10` (for the R25 message) and
/// with its default 0 (for the others, which hark gives since it has no two-phase commit).
#[test]
fn r25_prepare_transaction_is_refused_and_ends_the_transaction() {
    let t = TempDir::new("r25");
    let (mut a, mut b) = two(&t);
    b.listen("x").unwrap();
    let said = notices(&mut a);
    let r25 = "cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY";
    // Outside a block: a warning, and the tag of a rollback.
    assert_eq!(a.execute("PREPARE TRANSACTION 'a'").unwrap().tag, "ROLLBACK");
    assert_eq!(said.lock().unwrap().pop().unwrap().message, "there is no transaction in progress");
    // After NOTIFY (or pg_notify): refused, and the transaction is over, its notification gone.
    for notify in ["NOTIFY x, 'never'", "SELECT pg_notify('x', 'never')"] {
        a.execute("BEGIN").unwrap();
        a.execute(notify).unwrap();
        let e = err(a.execute("PREPARE TRANSACTION 'b'"));
        assert_eq!((e.kind(), e.sqlstate(), e.message()), (ErrorKind::TransactionState, "0A000", r25));
        assert_eq!(a.transaction_status(), TransactionStatus::Idle);
    }
    a.execute("NOTIFY x, 'after'").unwrap();
    assert_eq!(drain(&mut b), pairs(&[("x", "after")]));
    // A notification undone by ROLLBACK TO does not count; a transaction with nothing of hark's
    // in it meets the missing two-phase commit instead.
    a.execute("BEGIN; SAVEPOINT s; NOTIFY y; ROLLBACK TO s").unwrap();
    let e = err(a.execute("PREPARE TRANSACTION 'g'"));
    assert_eq!((e.sqlstate(), e.message()), ("55000", "prepared transactions are disabled"));
    assert_eq!(a.transaction_status(), TransactionStatus::Idle);
    // UNLISTEN in a session that never listened is not even recorded (PostgreSQL's quirk) ...
    a.execute("BEGIN; UNLISTEN foo").unwrap();
    assert_eq!(err(a.execute("PREPARE TRANSACTION 'c'")).sqlstate(), "55000");
    // ... but it is once the session has listened, even after it stopped.
    a.execute("LISTEN q").unwrap();
    a.execute("UNLISTEN *").unwrap();
    a.execute("BEGIN; UNLISTEN foo").unwrap();
    assert_eq!(err(a.execute("PREPARE TRANSACTION 'f'")).message(), r25);
    a.execute("BEGIN; LISTEN z").unwrap();
    assert_eq!(err(a.execute("PREPARE TRANSACTION 'i'")).message(), r25);
    assert!(a.listening_channels().is_empty(), "the prepared LISTEN took effect");
    // In a failed block it is a rollback; in one string, a warning and then the same refusal.
    a.execute("BEGIN").unwrap();
    assert!(a.execute("SELECT pg_notify('', 'x')").is_err());
    assert_eq!(a.execute("PREPARE TRANSACTION 'h'").unwrap().tag, "ROLLBACK");
    assert_eq!(a.transaction_status(), TransactionStatus::Idle);
    said.lock().unwrap().clear();
    assert_eq!(err(a.execute("NOTIFY x, 'one string'; PREPARE TRANSACTION 'j'")).message(), r25);
    assert_eq!(said.lock().unwrap()[0].message, "there is no transaction in progress");
    assert!(drain(&mut b).is_empty());
    // Nothing was prepared, so nothing can be finished; not inside a block either.
    let e = err(a.execute("COMMIT PREPARED 'c'"));
    assert_eq!((e.sqlstate(), e.message()), ("42704", "prepared transaction with identifier \"c\" does not exist"));
    assert_eq!(
        err(a.execute("ROLLBACK PREPARED 'zz'")).message(),
        "prepared transaction with identifier \"zz\" does not exist"
    );
    a.execute("BEGIN").unwrap();
    let e = err(a.execute("COMMIT PREPARED 'zz'"));
    assert_eq!((e.sqlstate(), e.message()), ("25001", "COMMIT PREPARED cannot run inside a transaction block"));
    assert_eq!(a.transaction_status(), TransactionStatus::InError);
    a.execute("ROLLBACK").unwrap();
    assert_eq!(err(a.execute("PREPARE TRANSACTION")).message(), "syntax error at end of input");
}

#[test]
fn r29_queue_usage_counts_whole_pages() {
    let t = TempDir::new("r29");
    let q = t.queue();
    let opts = Options::new().max_queue_size(1 << 20).segment_size(64 << 10);
    let mut a = Connection::with_options(&q, &opts).unwrap();
    let mut b = Connection::with_options(&q, &opts).unwrap();
    a.listen("c").unwrap();
    b.notify("c", "small").unwrap();
    // Less than a page of unread data reads as 0, as PostgreSQL.
    assert_eq!(b.execute("SELECT pg_notification_queue_usage()").unwrap().rows, [[Some("0".to_string())]]);
    for _ in 0..20 {
        b.notify("c", &"p".repeat(1000)).unwrap();
    }
    // 20 × 1.1 KB ≈ 2.7 pages past the first entry: 2 whole pages of 128.
    let u = b.queue_usage().unwrap();
    assert_eq!(u, 2.0 / 128.0);
    assert_eq!(b.execute("SELECT pg_notification_queue_usage()").unwrap().rows, [[Some("0.015625".to_string())]]);
    drain(&mut a);
    assert_eq!(b.queue_usage().unwrap(), 0.0);
}

#[test]
fn transaction_control_messages_match_postgres() {
    let t = TempDir::new("txctl");
    let (mut a, _) = two(&t);
    let seen = notices(&mut a);
    assert_eq!(a.execute("COMMIT").unwrap().tag, "COMMIT");
    assert_eq!(a.execute("ROLLBACK").unwrap().tag, "ROLLBACK");
    assert_eq!(
        a.execute("START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE").unwrap().tag,
        "START TRANSACTION"
    );
    assert_eq!(a.execute("BEGIN").unwrap().tag, "BEGIN");
    assert_eq!(a.execute("END").unwrap().tag, "COMMIT");
    let msgs: Vec<_> = seen.lock().unwrap().iter().map(|n| (n.severity.as_str(), n.message.clone())).collect();
    assert_eq!(
        msgs,
        [
            ("WARNING", "there is no transaction in progress".to_string()),
            ("WARNING", "there is no transaction in progress".to_string()),
            ("WARNING", "there is already a transaction in progress".to_string()),
        ]
    );
    for (sql, msg, state) in [
        ("SAVEPOINT s", "SAVEPOINT can only be used in transaction blocks", "25P01"),
        ("RELEASE s", "RELEASE SAVEPOINT can only be used in transaction blocks", "25P01"),
        ("ROLLBACK TO s", "ROLLBACK TO SAVEPOINT can only be used in transaction blocks", "25P01"),
        ("COMMIT AND CHAIN", "COMMIT AND CHAIN can only be used in transaction blocks", "25P01"),
        ("SELECT 1; SAVEPOINT s", "SAVEPOINT can only be used in transaction blocks", "25P01"),
        ("LISTEN", "syntax error at end of input", "42601"),
        ("LISTEN;", "syntax error at or near \";\"", "42601"),
        ("DISCARD;", "syntax error at or near \";\"", "42601"),
        ("FROB x", "syntax error at or near \"FROB\"", "42601"),
        ("SELECT 'abc", "unterminated quoted string at or near \"'abc\"", "42601"),
        ("SELECT nosuch()", "function nosuch() does not exist", "42883"),
        ("SELECT 1 || 2", "operator does not exist: integer || integer", "42883"),
        ("SELECT x", "column \"x\" does not exist", "42703"),
    ] {
        let e = err(a.execute(sql));
        assert_eq!((e.message(), e.sqlstate()), (msg, state), "{sql}");
        assert_eq!(a.transaction_status(), TransactionStatus::Idle);
    }
    a.execute("BEGIN").unwrap();
    let e = err(a.execute("RELEASE nosuch"));
    assert_eq!((e.message(), e.sqlstate()), ("savepoint \"nosuch\" does not exist", "3B001"));
    assert_eq!(a.transaction_status(), TransactionStatus::InError);
    assert_eq!(err(a.execute("BEGIN")).sqlstate(), "25P02");
    a.execute("ROLLBACK").unwrap();
    // ROLLBACK TO a savepoint leaves the failed state; the savepoint stays.
    a.execute("BEGIN; SAVEPOINT s").unwrap();
    err(a.execute("SELECT nosuch()"));
    a.execute("ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(a.transaction_status(), TransactionStatus::InTrans);
    a.execute("ROLLBACK TO s; RELEASE SAVEPOINT s; COMMIT AND CHAIN").unwrap();
    assert_eq!(a.transaction_status(), TransactionStatus::InTrans);
    // COMMIT AND CHAIN commits, but the session stays in a block: nothing is delivered yet.
    a.execute("LISTEN chained; NOTIFY chained, 'in chain'; COMMIT AND CHAIN").unwrap();
    assert!(drain(&mut a).is_empty());
    a.execute("COMMIT").unwrap();
    assert_eq!(drain(&mut a), pairs(&[("chained", "in chain")]));
    a.execute("ABORT").unwrap();
    assert_eq!(a.transaction_status(), TransactionStatus::Idle);
}

#[test]
fn select_of_constants_and_functions() {
    let t = TempDir::new("select");
    let (mut a, _) = two(&t);
    let one = |a: &mut Connection, sql: &str| {
        let r = a.execute(sql).unwrap();
        (r.columns, r.rows.into_iter().next().unwrap())
    };
    assert_eq!(one(&mut a, "SELECT 1"), (vec!["?column?".into()], vec![Some("1".into())]));
    assert_eq!(
        one(&mut a, "select 1 as x, 'a' || 'b' AS \"Y\", null, true, 2.50, -3"),
        (
            vec!["x".into(), "Y".into(), "?column?".into(), "bool".into(), "?column?".into(), "?column?".into()],
            vec![Some("1".into()), Some("ab".into()), None, Some("t".into()), Some("2.50".into()), Some("-3".into())]
        )
    );
    assert_eq!(
        one(&mut a, "SELECT pg_backend_pid()"),
        (vec!["pg_backend_pid".into()], vec![Some(std::process::id().to_string())])
    );
    assert_eq!(one(&mut a, "SELECT '42'::int, 7::text").0, vec!["int4".to_string(), "text".to_string()]);
    assert_eq!(one(&mut a, "SELECT 'a' || NULL").1, vec![None]);
    assert_eq!(one(&mut a, "SELECT 'n=' || 5").1, vec![Some("n=5".into())]);
    assert_eq!(one(&mut a, "/* comment */ SELECT 1 -- trailing").1, vec![Some("1".into())]);
    assert!(a.execute("  ;; -- nothing").unwrap().is_empty_query());
    let e = err(a.execute("SELECT 'x'::int"));
    assert_eq!((e.message(), e.position()), ("invalid input syntax for type integer: \"x\"", Some(8)));
    let r = a.execute("SELECT 1, 'a', 2.5, true, pg_notification_queue_usage(), pg_notify('c', 'x'), NULL").unwrap();
    assert_eq!(r.types, ["int4", "text", "numeric", "bool", "float8", "void", "text"]);
    // Casts give their column the type cast to, and `real` keeps single precision (values and
    // types checked against PostgreSQL 15 with psql's \gdesc).
    let r = a
        .execute("SELECT 1::int8, 1::int2, '3.14159265358979'::real, 1234567::real, 0.000012345::real, 1.1::real::float8, 'x'::varchar, '{}'::jsonb, NULL::int8, 100000::real")
        .unwrap();
    assert_eq!(r.types, ["int8", "int2", "float4", "float4", "float4", "float8", "varchar", "jsonb", "int8", "float4"]);
    let row: Vec<Option<&str>> = r.rows[0].iter().map(|v| v.as_deref()).collect();
    assert_eq!(
        row,
        [
            Some("1"),
            Some("1"),
            Some("3.1415927"),
            Some("1.234567e+06"),
            Some("1.2345e-05"),
            Some("1.100000023841858"),
            Some("x"),
            Some("{}"),
            None,
            Some("100000")
        ]
    );
    assert_eq!(err(a.execute("SELECT '1e39'::real")).message(), "\"1e39\" is out of range for type real");
    // Cast errors and their positions, as PostgreSQL 15 gives them: an untyped literal is parsed
    // with the statement (its position), a typed value is converted at run time (none), and an
    // impossible cast points at the `::`.
    for (sql, message, position) in [
        ("SELECT 99999999999::int4", "integer out of range", None),
        ("SELECT '99999999999'::int4", "value \"99999999999\" is out of range for type integer", Some(8)),
        ("SELECT '70000'::int2", "value \"70000\" is out of range for type smallint", Some(8)),
        ("SELECT 1e39::real", "\"1000000000000000000000000000000000000000\" is out of range for type real", None),
        ("SELECT '1e400'::float8", "\"1e400\" is out of range for type double precision", Some(8)),
        ("SELECT 'x'::text::int4", "invalid input syntax for type integer: \"x\"", None),
        ("SELECT 2.5::bool", "cannot cast type numeric to boolean", Some(11)),
        ("SELECT 1::nosuch", "type \"nosuch\" does not exist", Some(11)),
    ] {
        let e = err(a.execute(sql));
        assert_eq!((e.message(), e.position()), (message, position), "{sql}");
    }
    assert_eq!(
        one(&mut a, "SELECT 'inf'::float8, '-Infinity'::real").1,
        vec![Some("Infinity".into()), Some("-Infinity".into())]
    );
    // Every statement's result, as psql shows a line of several.
    let (results, r) = a.execute_all("SELECT 1; SELECT 2, 3; LISTEN x");
    r.unwrap();
    assert_eq!(results.iter().map(|r| r.tag.as_str()).collect::<Vec<_>>(), ["SELECT 1", "SELECT 1", "LISTEN"]);
    let (results, r) = a.execute_all("SELECT 1; SELECT nosuch(); SELECT 3");
    assert_eq!((results.len(), r.unwrap_err().sqlstate()), (1, "42883"));
}
