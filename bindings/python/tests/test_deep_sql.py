"""Deeply nested and very long SQL through ``execute``: nesting beyond hark's limit of 256
parentheses and function calls raises PostgreSQL's ``54001``, chains of ``||`` and ``::`` of any
length work, and neither crashes the interpreter, even on a thread with a 128 KiB stack (musl's
default). Each case runs in a child process, so that a crash is a failed test, not a lost run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import python_child

# Runs the statements on a 128 KiB thread, on a queue in argv[1], and prints one JSON line per
# statement: its tag, columns and first value, or its error.
CHILD = r"""
import json, sys, threading
import hark

STATEMENTS = [
    "SELECT " + "(" * 10_000 + "1" + ")" * 10_000,
    "SELECT " + "pg_notify(" * 10_000 + "'c'" + ", 'p')" * 10_000,
    "SELECT 'a'" + " || 'b'" * 30_000,
    "SELECT 'x'" + "::text" * 30_000,
    "SELECT " + "(" * 256 + "1" + ")" * 256,
    "SELECT 1",
]

def run(c, sql):
    try:
        r = c.execute(sql)
        return {"tag": r.tag, "columns": list(r.columns), "value": r[0][0]}
    except hark.Error as e:
        return {"error": type(e).__name__, "sqlstate": e.sqlstate, "message": e.message, "hint": e.hint}

def main():
    with hark.connect(sys.argv[1]) as c:
        for sql in STATEMENTS:
            print(json.dumps(run(c, sql)), flush=True)

threading.stack_size(128 * 1024)
t = threading.Thread(target=main)
t.start()
t.join()
"""

TOO_DEEP = {
    "error": "SqlSyntaxError",
    "sqlstate": "54001",
    "message": "stack depth limit exceeded",
    "hint": "Parentheses and function calls may nest at most 256 levels deep in hark; "
    "write the expression with less nesting.",
}


def test_deep_and_long_sql_on_a_small_thread_stack(qdir: Path) -> None:
    child = python_child(CHILD, str(qdir))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, f"the child died (status {child.returncode}): {err}"
    results = [json.loads(line) for line in out.splitlines()]
    assert results == [
        TOO_DEEP,
        TOO_DEEP,
        {"tag": "SELECT 1", "columns": ["?column?"], "value": "a" + "b" * 30_000},
        {"tag": "SELECT 1", "columns": ["text"], "value": "x"},
        {"tag": "SELECT 1", "columns": ["?column?"], "value": "1"},
        {"tag": "SELECT 1", "columns": ["?column?"], "value": "1"},
    ]
