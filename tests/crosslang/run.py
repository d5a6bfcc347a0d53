"""Every language's notifier against every language's listener, as separate processes on one
queue: C, Rust, Python, Node and Ruby, 25 pairs. Each listener must print exactly the committed
notifications, in order, with the notifier's PID. Prints 'N passed, N failed' and exits non-zero
on any failure.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))
PY = os.path.join(ROOT, ".venv", "bin", "python")
PEERS = {
    "C": [os.path.join(ROOT, "target", "c", "examples", "listener")],
    "Rust": [os.path.join(ROOT, "target", "release", "examples", "peer")],
    "Python": [PY, os.path.join(HERE, "peer.py")],
    "Node": ["node", os.path.join(HERE, "peer.js")],
    "Ruby": ["ruby", "-I", os.path.join(ROOT, "bindings", "ruby", "lib"), os.path.join(HERE, "peer.rb")],
}
NOTIFIERS = dict(PEERS, C=[os.path.join(ROOT, "target", "c", "examples", "notifier")])
COUNT, PER_TXN = 20, 3


def listen_argv(lang, d):
    # The C example takes its timeout in milliseconds and no sub-command; the peers share one CLI.
    if lang == "C":
        return PEERS["C"] + [d, "events", str(COUNT), "20000"]
    return PEERS[lang] + ["listen", d, "events", str(COUNT), "20"]


def notify_argv(lang, d):
    return NOTIFIERS[lang] + ([] if lang == "C" else ["notify"]) + [d, "events", "m", str(COUNT), str(PER_TXN)]


def pair(sender, receiver, tmp):
    d = os.path.join(tmp, f"{sender}-{receiver}")
    listen = subprocess.Popen(listen_argv(receiver, d), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = listen.stdout.readline()
    if not ready.startswith("READY"):
        listen.kill()
        return f"listener did not start: {ready!r} {listen.stderr.read()}"
    n = subprocess.run(notify_argv(sender, d), capture_output=True, text=True, timeout=60)
    if n.returncode != 0:
        listen.kill()
        return f"notifier failed: {n.stderr.strip()}"
    pid = n.stdout.split()[-1]
    try:
        out, err = listen.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        listen.kill()
        return "listener timed out"
    want = [f"events\tm-{i}\t{pid}" for i in range(COUNT)]
    got = out.splitlines()
    if listen.returncode != 0 or got != want:
        return f"listener exit {listen.returncode}, got {got[:3]}… ({len(got)} lines) {err.strip()}"
    return None


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="hark-crosslang-") as tmp:
        for sender in NOTIFIERS:
            for receiver in PEERS:
                why = pair(sender, receiver, tmp)
                if why:
                    failed += 1
                    print(f"FAIL {sender} notifier -> {receiver} listener: {why}")
                else:
                    passed += 1
                    print(f"ok   {sender} notifier -> {receiver} listener")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
