//! Turning a [`hark::Error`] into the matching `hark.errors` exception.
//!
//! The exception classes are defined in Python (`hark/errors.py`) so that they are ordinary,
//! picklable, documented classes; this side only names the class by the error's C constant
//! (`HARK_ERR_QUEUE_FULL` → `hark.QueueFullError`), which keeps one vocabulary across languages.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static FROM_NATIVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception for `err`. This runs Python code (`hark.errors._from_native`), which may
/// release the GIL: never call it while holding a connection (see `lock.rs`).
pub(crate) fn to_py(err: hark::Error) -> PyErr {
    Python::attach(|py| match build(py, &err) {
        Ok(exc) => PyErr::from_value(exc),
        // Only reachable if the package itself is broken; still say what the error was.
        Err(import_failure) => {
            let e = pyo3::exceptions::PyRuntimeError::new_err(format!("{} ({})", err, err.kind().name()));
            e.set_cause(py, Some(import_failure));
            e
        }
    })
}

fn build<'py>(py: Python<'py>, err: &hark::Error) -> PyResult<Bound<'py, PyAny>> {
    let factory = FROM_NATIVE.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("hark.errors")?.getattr("_from_native")?.unbind())
    })?;
    let gap = err.gap().map(|g| (g.skipped, g.first_txn, g.last_txn, g.resumed_at));
    factory.bind(py).call1((
        err.kind().name(),
        err.message(),
        err.sqlstate(),
        err.detail(),
        err.hint(),
        err.position(),
        gap,
    ))
}

/// `Result<T, hark::Error>` → `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for hark::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
