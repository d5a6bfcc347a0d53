"""`make demo`: processes in four languages talking through one hark queue directory.

A Python listener, a Ruby listener (the Sequel article's, its connection line changed) and a Node
listener LISTEN on "events"; then a C notifier commits its notifications in transactions, after
one transaction that it rolls back, whose notification must never appear. Every line each
process prints is shown, prefixed by who printed it, and the demo fails if any listener misses a
notification or sees the rolled-back one.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 6  # notifications the C notifier commits, 2 per transaction


def start(name, argv, env):
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    if not first:
        sys.exit(f"demo: the {name} did not start")
    print(f"[{name}] {first.rstrip()}", flush=True)
    lines = []

    def pump():
        for line in p.stdout:
            lines.append(line.rstrip())
            print(f"[{name}] {line.rstrip()}", flush=True)

    t = threading.Thread(target=pump)
    t.start()
    return p, t, lines


def main():
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="hark-demo-", dir=base) as tmp:
        env = dict(os.environ, HARK_DIR=os.path.join(tmp, "queue"))
        print(f"queue directory: {env['HARK_DIR']}\n", flush=True)
        listeners = [
            start("Python listener", [os.path.join(ROOT, ".venv", "bin", "python"), "examples/python/listener.py", "--count", str(COUNT)], env),
            # The article's listener prints its line just before its LISTEN; the Node listener's start
            # takes far longer than that LISTEN. It listens until stopped: SIGTERM once it has all.
            start("Ruby listener", ["ruby", "-I", "bindings/ruby/lib", "-e", "$stdout.sync = true; load ARGV.shift",
                                    "examples/ruby/listener.rb"], env),
            start("Node listener", ["node", "examples/node/listener.js", "--count", str(COUNT)], env),
        ]
        names = ["Python listener", "Ruby listener", "Node listener"]
        print("[C notifier] BEGIN; NOTIFY events, 'order-rolled-back'; ROLLBACK; then 3 transactions of 2", flush=True)
        n = subprocess.run([os.path.join(ROOT, "target", "c", "examples", "notifier"), env["HARK_DIR"], "events", "order", str(COUNT), "2"],
                           env=env, capture_output=True, text=True)
        for line in n.stdout.splitlines():
            print(f"[C notifier] {line}", flush=True)
        if n.returncode != 0:
            sys.exit(f"demo: the C notifier failed: {n.stderr}")
        failed = False
        for (p, t, lines), name in zip(listeners, names):
            if name == "Ruby listener":
                deadline = time.monotonic() + 30
                while sum("order-" in l for l in lines) < COUNT and time.monotonic() < deadline:
                    time.sleep(0.05)
                p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                failed = True
                print(f"demo: the {name} timed out", file=sys.stderr)
            t.join()
            got = [l for l in lines if "order-" in l]
            if p.returncode not in (0, -15 if name == "Ruby listener" else 0) or len(got) != COUNT or any("rolled-back" in l for l in lines):
                failed = True
                print(f"demo: the {name} saw {len(got)} of {COUNT} notifications (exit {p.returncode})", file=sys.stderr)
        if failed:
            sys.exit(1)
        print(f"\nAll three listeners received all {COUNT} committed notifications, in commit order; "
              "the rolled-back one never appeared.")


if __name__ == "__main__":
    main()
