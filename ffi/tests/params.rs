//! hark_exec_params and the escape functions driven from Rust: values given as C strings come
//! back exactly, whatever they hold, and what hark cannot do is refused, not guessed.

use hark_ffi::*;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

unsafe fn text(p: *const c_char) -> String {
    unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
}

#[test]
fn values_pass_through_exec_params_and_escaping_unchanged() {
    let dir = std::env::temp_dir().join(format!("hark-ffi-params-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cdir = cstr(dir.to_str().unwrap());
    let hostile = ["'", "\\'", "E'\\''", "$$;$$", "$q$", "--", "/*", ";", "'); NOTIFY evil, 'x'; --"];
    unsafe {
        let c = hark_connect(cdir.as_ptr());
        assert_eq!(hark_status(c), hark_result::HARK_OK);
        for v in hostile {
            let value = cstr(v);
            let values = [value.as_ptr()];
            let q = hark_exec_params(
                c,
                cstr("SELECT $1 AS v").as_ptr(),
                1,
                std::ptr::null(),
                values.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                0,
            );
            assert_eq!(hark_query_status(q), hark_result::HARK_OK, "{v}");
            assert_eq!(text(hark_query_getvalue(q, 0, 0)), v);
            hark_query_clear(q);

            let lit = hark_escape_literal(c, value.as_ptr(), v.len());
            let q = hark_exec(c, cstr(&format!("SELECT {}", text(lit))).as_ptr());
            assert_eq!(text(hark_query_getvalue(q, 0, 0)), v, "{}", text(lit));
            hark_query_clear(q);
            hark_freemem(lit.cast());
        }
        let x = cstr("x");
        let values = [x.as_ptr()];
        let binary = [1];
        let q = hark_exec_params(
            c,
            cstr("SELECT $1").as_ptr(),
            1,
            std::ptr::null(),
            values.as_ptr(),
            std::ptr::null(),
            binary.as_ptr(),
            0,
        );
        assert_eq!(hark_query_status(q), hark_result::HARK_ERR_INVALID_ARGUMENT);
        hark_query_clear(q);
        hark_finish(c);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
