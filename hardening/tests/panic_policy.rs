//! hark's panic policy through the C ABI: a bug that panics inside a call is reported as
//! HARK_ERR_PANIC (SQLSTATE XX000), the process goes on, and the session it happened in is closed
//! (its listener slot given back), never left usable in an unknown state. The panic is injected
//! with the core's test hook HARK_FAULT_PANIC_ON_SQL (the `test-hooks` feature, which this crate
//! enables and release builds do not).

use hark_ffi::*;
use std::ffi::{CStr, CString};

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

#[test]
fn a_panic_inside_a_call_is_an_error_and_closes_only_that_session() {
    let dir = std::env::temp_dir().join(format!("hark-panic-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cdir = CString::new(dir.to_str().unwrap()).unwrap();
    // This test binary holds this one test: the hook's variable cannot surprise another.
    std::env::set_var("HARK_FAULT_PANIC_ON_SQL", "SELECT 'boom'");
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // SAFETY: every pointer below comes from the calls themselves and is used as documented.
    unsafe {
        let victim = hark_connect(cdir.as_ptr());
        let other = hark_connect(cdir.as_ptr());
        assert_eq!(hark_status(victim), hark_result::HARK_OK);
        assert_eq!(hark_listen(victim, c("events").as_ptr()), hark_result::HARK_OK);
        assert_eq!(hark_listen(other, c("events").as_ptr()), hark_result::HARK_OK);

        let sql = CString::new("SELECT 'boom'").unwrap();
        let q = hark_exec(victim, sql.as_ptr());
        assert!(!q.is_null(), "a failed call still returns a result");
        assert_eq!(hark_query_status(q), hark_result::HARK_ERR_PANIC);
        assert_eq!(CStr::from_ptr(hark_query_sqlstate(q)).to_str().unwrap(), "XX000");
        let msg = CStr::from_ptr(hark_query_error_message(q)).to_string_lossy().into_owned();
        assert!(msg.contains("internal error in hark") && msg.contains("connection was closed"), "{msg}");
        hark_query_clear(q);

        // The session is closed: its status says why, and every later call fails.
        assert_eq!(hark_status(victim), hark_result::HARK_ERR_PANIC);
        let q = hark_exec(victim, c("SELECT 1").as_ptr());
        assert_eq!(hark_query_status(q), hark_result::HARK_ERR_CLOSED);
        hark_query_clear(q);
        assert_eq!(hark_notify(victim, c("events").as_ptr(), c("x").as_ptr()), hark_result::HARK_ERR_CLOSED);

        // The process and the other session go on, and the victim's listener slot was given back.
        assert_eq!(hark_notify(other, c("events").as_ptr(), c("after").as_ptr()), hark_result::HARK_OK);
        let q = hark_exec(other, c("SELECT pg_listening_channels()").as_ptr());
        assert_eq!(hark_query_status(q), hark_result::HARK_OK);
        hark_query_clear(q);
        let stats = hark::Connection::open(&dir).unwrap().queue().stats().unwrap();
        assert_eq!(stats.listeners.len(), 1, "the panicked session still holds a slot: {:?}", stats.listeners);
        hark_finish(victim);
        hark_finish(other);
    }
    std::panic::set_hook(quiet);
    std::fs::remove_dir_all(&dir).unwrap();
}
