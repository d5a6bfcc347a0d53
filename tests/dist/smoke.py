"""The wheel's (and the sdist's) smoke test, run by the interpreter of a fresh venv it was
installed into:  python smoke.py DIR PREFIX

`import hark` must come from PREFIX (the venv), never from the build tree; a listener and a
notifier on DIR must exchange the committed notification and never the rolled-back one.
"""

import os
import sys

import hark

queue, prefix = sys.argv[1], os.path.realpath(sys.argv[2])
where = os.path.realpath(hark.__file__)
assert where.startswith(prefix + os.sep), f"hark imported from {where}, not from {prefix}"

with hark.connect(queue) as listener, hark.connect(queue) as app:
    listener.listen("smoke")
    try:
        with app.transaction():
            app.notify("smoke", "rolled-back")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with app.transaction():
        app.notify("smoke", "from-python")
    got = [(n.channel, n.payload, n.pid) for n in listener.notifies(timeout=10, stop_after=1)]
    assert got == [("smoke", "from-python", app.pid)], got
    assert list(listener.notifies(timeout=0.2)) == [], "a second notification arrived"
print("python smoke: ok", where)

# A daemon thread still waiting in hark when the interpreter exits: CPython ends it with
# pthread_exit, whose unwinding must get through the native module (the wheel links the system's
# unwinder, libgcc_s, for that).
import subprocess  # noqa: E402

child = subprocess.run(
    [sys.executable, "-c", "import sys, threading, time, hark\n"
     "conn = hark.connect(sys.argv[1]); conn.listen('never')\n"
     "threading.Thread(target=lambda: list(conn.notifies(timeout=30)), daemon=True).start()\n"
     "time.sleep(0.3)\n", queue],
    timeout=60,
)
assert child.returncode == 0, f"exit with a daemon thread waiting: status {child.returncode}"
print("python smoke: a daemon thread waiting at exit ends cleanly")
