//! `hark_result`: the numbered outcome of every call, and its names.

use std::os::raw::{c_char, c_int};

/// The outcome of a call. `HARK_OK` is 0; errors come in numbered blocks that are never
/// renumbered (new codes are only ever added): 1xx bad input or statement, 2xx resources,
/// 3xx the queue directory, 4xx the operating system, 5xx the connection, 9xx the C layer itself.
/// The 1xx–5xx codes and names are those of the core's `ErrorKind` (shared with Python's exception
/// classes and Node's `err.code`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum hark_result {
    /// Success.
    HARK_OK = 0,
    /// A bad argument: empty or too long channel, payload too long, invalid UTF-8, a bad option.
    HARK_ERR_INVALID_ARGUMENT = 100,
    /// The SQL given to hark_exec could not be parsed, or names an unknown statement or function,
    /// or nests parentheses and calls deeper than 256 (SQLSTATE `54001`).
    HARK_ERR_SYNTAX = 101,
    /// A statement not allowed in the current transaction state (aborted block, savepoint outside
    /// a block, unknown savepoint).
    HARK_ERR_TRANSACTION_STATE = 102,
    /// A durable subscription is attached by another live session (SQLSTATE `55006`).
    HARK_ERR_IN_USE = 103,
    /// The queue has reached its maximum size (`too many notifications in the NOTIFY queue`).
    HARK_ERR_QUEUE_FULL = 200,
    /// Every listener slot of the queue is taken.
    HARK_ERR_TOO_MANY_LISTENERS = 201,
    /// The file system is full while allocating a queue segment.
    HARK_ERR_DISK_FULL = 202,
    /// A file of the queue directory holds data that cannot be hark's.
    HARK_ERR_CORRUPTED = 300,
    /// The queue was written by an incompatible version of hark.
    HARK_ERR_INCOMPATIBLE = 301,
    /// The queue directory or one of its files is not safe to use (owner, mode, symlink).
    HARK_ERR_PERMISSION_DENIED = 302,
    /// Any other operating-system error (including running out of memory in this library).
    HARK_ERR_IO = 400,
    /// The connection is not open: its hark_connect failed, or it belongs to the parent of a
    /// forked process.
    HARK_ERR_CLOSED = 500,
    /// A receiver was cut (it fell past its lag limit, or held back a full queue under the cut
    /// policy): notifications were skipped. Given once, by the receive that meets the gap.
    HARK_ERR_GAP = 600,
    /// A required pointer argument was NULL.
    HARK_ERR_NULL_PARAMETER = 900,
    /// A bug inside hark: the call panicked, failed with this code, and closed its session
    /// (hark_status then says HARK_ERR_PANIC); the core's ErrorKind::Panic.
    HARK_ERR_PANIC = 901,
}

/// Every value, in code order.
const ALL: [hark_result; 16] = [
    hark_result::HARK_OK,
    hark_result::HARK_ERR_INVALID_ARGUMENT,
    hark_result::HARK_ERR_SYNTAX,
    hark_result::HARK_ERR_TRANSACTION_STATE,
    hark_result::HARK_ERR_IN_USE,
    hark_result::HARK_ERR_QUEUE_FULL,
    hark_result::HARK_ERR_TOO_MANY_LISTENERS,
    hark_result::HARK_ERR_DISK_FULL,
    hark_result::HARK_ERR_CORRUPTED,
    hark_result::HARK_ERR_INCOMPATIBLE,
    hark_result::HARK_ERR_PERMISSION_DENIED,
    hark_result::HARK_ERR_IO,
    hark_result::HARK_ERR_CLOSED,
    hark_result::HARK_ERR_GAP,
    hark_result::HARK_ERR_NULL_PARAMETER,
    hark_result::HARK_ERR_PANIC,
];

impl hark_result {
    /// Every value, in code order.
    pub fn all() -> [hark_result; 16] {
        ALL
    }

    /// The value whose number is `code`, if any.
    pub fn from_code(code: i32) -> Option<hark_result> {
        ALL.into_iter().find(|r| *r as i32 == code)
    }

    /// The constant's name, NUL-terminated.
    fn name_nul(self) -> &'static str {
        match self {
            hark_result::HARK_OK => "HARK_OK\0",
            hark_result::HARK_ERR_INVALID_ARGUMENT => "HARK_ERR_INVALID_ARGUMENT\0",
            hark_result::HARK_ERR_SYNTAX => "HARK_ERR_SYNTAX\0",
            hark_result::HARK_ERR_TRANSACTION_STATE => "HARK_ERR_TRANSACTION_STATE\0",
            hark_result::HARK_ERR_IN_USE => "HARK_ERR_IN_USE\0",
            hark_result::HARK_ERR_QUEUE_FULL => "HARK_ERR_QUEUE_FULL\0",
            hark_result::HARK_ERR_TOO_MANY_LISTENERS => "HARK_ERR_TOO_MANY_LISTENERS\0",
            hark_result::HARK_ERR_DISK_FULL => "HARK_ERR_DISK_FULL\0",
            hark_result::HARK_ERR_CORRUPTED => "HARK_ERR_CORRUPTED\0",
            hark_result::HARK_ERR_INCOMPATIBLE => "HARK_ERR_INCOMPATIBLE\0",
            hark_result::HARK_ERR_PERMISSION_DENIED => "HARK_ERR_PERMISSION_DENIED\0",
            hark_result::HARK_ERR_IO => "HARK_ERR_IO\0",
            hark_result::HARK_ERR_CLOSED => "HARK_ERR_CLOSED\0",
            hark_result::HARK_ERR_GAP => "HARK_ERR_GAP\0",
            hark_result::HARK_ERR_NULL_PARAMETER => "HARK_ERR_NULL_PARAMETER\0",
            hark_result::HARK_ERR_PANIC => "HARK_ERR_PANIC\0",
        }
    }

    /// The constant's name (`HARK_ERR_QUEUE_FULL`).
    pub fn name(self) -> &'static str {
        let n = self.name_nul();
        &n[..n.len() - 1]
    }
}

impl From<hark::ErrorKind> for hark_result {
    fn from(kind: hark::ErrorKind) -> hark_result {
        // The core promises stable numbers; a kind added there without a constant here is caught
        // by the test below and reported meanwhile as an operating-system error.
        hark_result::from_code(kind.code()).unwrap_or(hark_result::HARK_ERR_IO)
    }
}

/// The name of a `hark_result` value as a string, e.g. `"HARK_ERR_QUEUE_FULL"` for 200, or
/// `"HARK_ERR_UNKNOWN"` for a number that is no `hark_result`. Takes an `int` so that any number
/// may be passed. The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn hark_result_str(result: c_int) -> *const c_char {
    ffi_boundary!(b"HARK_ERR_UNKNOWN\0".as_ptr().cast(), {
        match hark_result::from_code(result) {
            Some(r) => r.name_nul().as_ptr().cast(),
            None => b"HARK_ERR_UNKNOWN\0".as_ptr().cast(),
        }
    })
}

/// The version of libhark, e.g. `"0.1.0"`. The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn hark_version() -> *const c_char {
    ffi_boundary!(b"\0".as_ptr().cast(), { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_core_error_kind_has_its_constant_with_the_same_number_and_name() {
        for kind in hark::ErrorKind::ALL {
            let r = hark_result::from_code(kind.code())
                .unwrap_or_else(|| panic!("no hark_result for {kind:?} = {}", kind.code()));
            assert_eq!(r.name(), kind.name());
            assert_eq!(hark_result::from(kind), r);
        }
        // The C layer's own code stays outside the core's kinds; HARK_ERR_PANIC is the core's
        // Panic kind (a panic is reported the same way in every language).
        assert!(hark::ErrorKind::ALL.iter().all(|k| k.code() != hark_result::HARK_ERR_NULL_PARAMETER as i32));
        assert_eq!(hark_result::from(hark::ErrorKind::Panic), hark_result::HARK_ERR_PANIC);
    }

    #[test]
    fn result_str_names_every_value_and_unknown_numbers() {
        for r in hark_result::all() {
            let s = unsafe { CStr::from_ptr(hark_result_str(r as c_int)) };
            assert_eq!(s.to_str().unwrap(), r.name());
        }
        for bad in [-1, 1, 99, 203, 902, c_int::MAX, c_int::MIN] {
            let s = unsafe { CStr::from_ptr(hark_result_str(bad)) };
            assert_eq!(s.to_bytes(), b"HARK_ERR_UNKNOWN");
        }
        let v = unsafe { CStr::from_ptr(hark_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
