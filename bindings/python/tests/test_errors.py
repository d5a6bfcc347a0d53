"""Errors map to the exception of their family, with PostgreSQL's SQLSTATE and text."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import pytest

import hark
from hark import errors

# The C constants of the core's error kinds (core/src/error.rs, ErrorKind::name) and the class
# each one is raised as: the same identities in every language.
C_NAMES = {
    "HARK_ERR_INVALID_ARGUMENT": hark.InvalidArgumentError,
    "HARK_ERR_SYNTAX": hark.SqlSyntaxError,
    "HARK_ERR_TRANSACTION_STATE": hark.TransactionStateError,
    "HARK_ERR_IN_USE": hark.InUseError,
    "HARK_ERR_QUEUE_FULL": hark.QueueFullError,
    "HARK_ERR_TOO_MANY_LISTENERS": hark.TooManyListenersError,
    "HARK_ERR_DISK_FULL": hark.DiskFullError,
    "HARK_ERR_CORRUPTED": hark.CorruptedError,
    "HARK_ERR_INCOMPATIBLE": hark.IncompatibleError,
    "HARK_ERR_PERMISSION_DENIED": hark.PermissionDeniedError,
    "HARK_ERR_IO": hark.IoError,
    "HARK_ERR_CLOSED": hark.ClosedError,
    "HARK_ERR_GAP": hark.GapError,
    "HARK_ERR_PANIC": hark.InternalError,
}


def test_every_core_error_kind_has_its_class() -> None:
    core_error_rs = Path(__file__).resolve().parents[3] / "core" / "src" / "error.rs"
    names = set(__import__("re").findall(r'"(HARK_ERR_[A-Z_]+)"', core_error_rs.read_text()))
    assert names == set(C_NAMES)
    for code, cls in C_NAMES.items():
        assert cls.code == code
        assert issubclass(cls, hark.Error)
        e = errors._from_native(code, "msg", "XX000", "d", "h", 3)
        assert type(e) is cls
        assert (e.sqlstate, e.detail, e.hint, e.position) == ("XX000", "d", "h", 3)
    assert issubclass(hark.InvalidArgumentError, ValueError)


@pytest.mark.parametrize(
    ("channel", "payload", "message"),
    [
        ("", "x", "channel name cannot be empty"),
        ("c" * 64, "x", "channel name too long"),
        ("ch", "p" * 8000, "payload string too long"),
        ("ch", "é" * 4000, "payload string too long"),  # 8000 bytes in UTF-8
    ],
)
def test_invalid_notify_arguments(conn: hark.Connection, channel: str, payload: str, message: str) -> None:
    with pytest.raises(hark.InvalidArgumentError) as e:
        conn.notify(channel, payload)
    assert str(e.value) == message
    assert e.value.sqlstate == "22023"
    conn.notify("ch", "p" * 7999)  # the limit itself is fine


def test_nul_character_is_refused(conn: hark.Connection) -> None:
    with pytest.raises(hark.InvalidArgumentError) as e:
        conn.notify("ch", "a\0b")
    assert e.value.sqlstate == "22021"


def test_syntax_errors_carry_position(conn: hark.Connection) -> None:
    with pytest.raises(hark.SqlSyntaxError) as e:
        conn.execute("NOTIFY select")
    assert e.value.sqlstate == "42601"
    assert e.value.position == 8
    assert "syntax error" in str(e.value)


def test_savepoint_outside_a_block(conn: hark.Connection) -> None:
    with pytest.raises(hark.TransactionStateError) as e:
        conn.execute("SAVEPOINT s")
    assert e.value.sqlstate == "25P01"


def test_queue_full(qdir: Path) -> None:
    with hark.connect(qdir, max_queue_size=512 * 1024) as listener, hark.connect(qdir) as app:
        listener.listen("ch")  # and never reads, so the queue fills up
        notices: list[hark.Notice] = []
        app.add_notice_handler(notices.append)
        with pytest.raises(hark.QueueFullError) as e:
            for i in range(200):
                app.notify("ch", f"{i:04d}" + "x" * 7000)
        assert e.value.message == "too many notifications in the NOTIFY queue"
        assert e.value.detail is not None and str(e.value).startswith(e.value.message + "\nDETAIL:  ")
        assert e.value.sqlstate == "54000"
        assert app.transaction_status is hark.TransactionStatus.IDLE
        # Nothing of the failed commit is visible; everything before it is, in order.
        got = [n.payload[:4] for n in listener.notifies(timeout=0)]
        assert got == [f"{i:04d}" for i in range(len(got))]
        assert 40 < len(got) < 200
        # On the way, from half full, notifiers were warned and told who holds the queue back.
        half = [n for n in notices if "NOTIFY queue is" in n.message]
        assert half and half[0].severity == "WARNING" and str(listener.pid) in (half[0].detail or "")


def _control(qdir: Path) -> Path:
    with hark.connect(qdir):
        pass
    return qdir / "control"


def test_corrupted_control_file(qdir: Path) -> None:
    control = _control(qdir)
    with control.open("r+b") as f:
        f.write(b"NOTHARK!")
    with pytest.raises(hark.CorruptedError, match="not a hark queue"):
        hark.connect(qdir)


def test_incompatible_queue_version(qdir: Path) -> None:
    control = _control(qdir)
    with control.open("r+b") as f:
        f.seek(8)
        f.write(struct.pack("<I", 999))
    with pytest.raises(hark.IncompatibleError, match="format version 999"):
        hark.connect(qdir)


def test_directory_open_to_the_group_is_refused(qdir: Path) -> None:
    qdir.mkdir(mode=0o700)
    os.chmod(qdir, 0o770)
    with pytest.raises(hark.PermissionDeniedError) as e:
        hark.connect(qdir)
    assert e.value.hint is not None and "group_shared" in e.value.hint
    assert "HINT:" in str(e.value)
    with hark.connect(qdir, group_shared=True) as c:
        c.notify("ch", "shared")


def test_errors_survive_pickling(conn: hark.Connection) -> None:
    with pytest.raises(hark.InvalidArgumentError) as e:
        conn.notify("", "x")
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is hark.InvalidArgumentError
    assert (str(again), again.sqlstate) == ("channel name cannot be empty", "22023")


# psycopg's classes (the DB-API's) that each family derives from, as psycopg classes its SQLSTATE.
DBAPI_CLASS = {
    hark.InvalidArgumentError: hark.DataError,
    hark.SqlSyntaxError: hark.ProgrammingError,
    hark.TransactionStateError: hark.DatabaseError,
    hark.InUseError: hark.OperationalError,
    hark.QueueFullError: hark.OperationalError,
    hark.TooManyListenersError: hark.OperationalError,
    hark.DiskFullError: hark.OperationalError,
    hark.CorruptedError: hark.DatabaseError,
    hark.IncompatibleError: hark.NotSupportedError,
    hark.PermissionDeniedError: hark.ProgrammingError,
    hark.IoError: hark.OperationalError,
    hark.ClosedError: hark.OperationalError,
    hark.GapError: hark.OperationalError,
    hark.InternalError: hark.DatabaseError,
}


def test_every_family_has_psycopg_s_class() -> None:
    assert set(DBAPI_CLASS) == set(C_NAMES.values())
    for cls, dbapi in DBAPI_CLASS.items():
        assert issubclass(cls, dbapi) and issubclass(dbapi, hark.DatabaseError)
    assert issubclass(hark.DatabaseError, hark.Error) and issubclass(hark.InterfaceError, hark.Error)


def test_os_families_are_also_python_s_os_errors(qdir: Path, tmp_path: Path) -> None:
    qdir.mkdir(mode=0o700)
    os.chmod(qdir, 0o770)
    with pytest.raises(PermissionError) as denied:
        hark.connect(qdir)
    assert type(denied.value) is hark.PermissionDeniedError
    (tmp_path / "file").touch()
    with pytest.raises(OSError) as io:
        hark.connect(tmp_path / "file" / "q")
    assert type(io.value) is hark.IoError
    assert issubclass(hark.DiskFullError, OSError)
    for e in (denied.value, io.value):
        # OSError's constructor did not take the message apart: str(), args and the fields
        # are hark's; errno is None.
        assert str(e).startswith(e.message) and e.args == (e.message,)
        assert e.errno is None and e.sqlstate in ("42501", "58030")
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is type(e) and (str(again), again.sqlstate, again.hint) == (str(e), e.sqlstate, e.hint)
    assert "Not a directory" in str(io.value)


def test_diag_has_psycopg_s_names(conn: hark.Connection, qdir: Path) -> None:
    with pytest.raises(hark.ProgrammingError) as e:
        conn.execute("LISTEN x; SELEC 1")
    d = e.value.diag
    assert (d.severity, d.severity_nonlocalized, d.sqlstate) == ("ERROR", "ERROR", "42601")
    assert d.message_primary == 'syntax error at or near "SELEC"'
    assert d.statement_position == "11"  # a string, as libpq gives every field
    assert d.message_detail is None and d.message_hint is None
    assert d.table_name is None and d.source_file is None and d.context is None
    os.chmod(qdir, 0o770)
    with pytest.raises(hark.PermissionDeniedError) as denied:
        hark.connect(qdir)
    assert denied.value.diag.message_hint == denied.value.hint is not None
    assert denied.value.diag.sqlstate == "42501"
