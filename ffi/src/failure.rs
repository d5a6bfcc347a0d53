//! What a failed call leaves behind (code, SQLSTATE, message), and the checks on C arguments.

use crate::result::hark_result;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;

/// A failed call, as the C side sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub code: hark_result,
    pub sqlstate: &'static str,
    /// The message with PostgreSQL's DETAIL and HINT lines, no trailing newline.
    pub message: String,
    /// What a receive skipped, when it failed with HARK_ERR_GAP.
    pub gap: Option<hark::Gap>,
}

impl Failure {
    pub fn new(code: hark_result, sqlstate: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, sqlstate, message: message.into(), gap: None }
    }

    /// A required pointer argument was NULL (SQLSTATE 22004, null_value_not_allowed).
    pub fn null(what: &str) -> Failure {
        Failure::new(hark_result::HARK_ERR_NULL_PARAMETER, "22004", format!("{what} must not be NULL"))
    }

    pub fn out_of_memory() -> Failure {
        Failure::new(hark_result::HARK_ERR_IO, "53200", "out of memory")
    }
}

impl From<hark::Error> for Failure {
    fn from(e: hark::Error) -> Failure {
        Failure { code: e.kind().into(), sqlstate: e.sqlstate(), message: e.to_string(), gap: e.gap().copied() }
    }
}

/// A C string argument as UTF-8 text. NULL and invalid UTF-8 are failures naming `what`.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    utf8_arg(unsafe { CStr::from_ptr(p) }.to_bytes(), what)
}

/// Bytes from C as UTF-8 text; invalid UTF-8 is PostgreSQL's 22021, naming `what`.
pub(crate) fn utf8_arg<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        let bad = &bytes[e.valid_up_to()..];
        let shown: Vec<String> =
            bad.iter().take(e.error_len().unwrap_or(bad.len()).min(4)).map(|b| format!("0x{b:02x}")).collect();
        // PostgreSQL's wording for text that is not valid in the database encoding.
        Failure::new(
            hark_result::HARK_ERR_INVALID_ARGUMENT,
            "22021",
            format!("invalid byte sequence for encoding \"UTF8\": {} (in {what})", shown.join(" ")),
        )
    })
}

/// A static empty C string, for the "nothing to report" answers.
pub(crate) fn empty() -> *const c_char {
    b"\0".as_ptr().cast()
}

/// Text for C: interior NUL bytes (never produced by hark's own messages) become spaces rather
/// than truncating the string or failing.
pub(crate) fn c_string(s: &str) -> CString {
    match CString::new(s) {
        Ok(c) => c,
        Err(_) => CString::new(s.replace('\0', " ")).expect("no NUL left"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_arg_rejects_null_and_invalid_utf8() {
        let e = unsafe { text_arg(std::ptr::null(), "channel") }.unwrap_err();
        assert_eq!(e.code, hark_result::HARK_ERR_NULL_PARAMETER);
        assert_eq!(e.message, "channel must not be NULL");
        let bad = b"ab\xff\xfe\0";
        let e = unsafe { text_arg(bad.as_ptr().cast(), "payload") }.unwrap_err();
        assert_eq!(e.code, hark_result::HARK_ERR_INVALID_ARGUMENT);
        assert_eq!(e.sqlstate, "22021");
        assert!(e.message.contains("0xff"), "{}", e.message);
        let good = "caf\u{e9}\0";
        assert_eq!(unsafe { text_arg(good.as_ptr().cast(), "x") }.unwrap(), "caf\u{e9}");
    }

    #[test]
    fn c_string_never_fails() {
        assert_eq!(c_string("a\0b").to_bytes(), b"a b");
        assert_eq!(c_string("ok").to_bytes(), b"ok");
    }
}
