#!/usr/bin/env python3
"""`make bench`: every scenario for hark and, in the same run, for its peers; medians of several
runs; one Markdown table with hark's ratio to each peer, written to bench/RESULTS.md.

Peers: PostgreSQL 15 (a throwaway cluster, fsync off, Unix socket), honker (LISTEN/NOTIFY on
SQLite), this machine's floor (pipe wake-up, memcpy), and hark's own Python and Node bindings as
listeners. A peer that cannot be run is reported as missing, with the reason.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env=None):
    """Runs a hark-bench command and returns the JSON object on its last line."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-400:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def medians(runs):
    """The per-metric median of several JSON reports (same shape)."""
    out = {}

    def walk(prefix, node):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            elif isinstance(v, (int, float)):
                vals = [get(r, key) for r in runs]
                vals = [x for x in vals if x is not None]
                out[key] = statistics.median(vals)

    walk("", runs[0])
    return out


# (label, metric key, unit, higher is better)
ROWS = [
    ("per-commit", "per-commit.notifications_per_s", "notifications/s", True),
    ("batched (1,000 per transaction)", "batched.notifications_per_s", "notifications/s", True),
    ("latency p50", "latency.p50_us", "µs", False),
    ("latency p90", "latency.p90_us", "µs", False),
    ("latency p99", "latency.p99_us", "µs", False),
    ("latency max", "latency.max_us", "µs", False),
    ("fanout, 0 idle listeners", "fanout.k0.notifications_per_s", "notifications/s", True),
    ("fanout, 10 idle listeners", "fanout.k10.notifications_per_s", "notifications/s", True),
    ("fanout, 100 idle listeners", "fanout.k100.notifications_per_s", "notifications/s", True),
    ("fanout, 1,000 idle listeners", "fanout.k1000.notifications_per_s", "notifications/s", True),
    ("patterns: none", "patterns.none.notifications_per_s", "notifications/s", True),
    ("patterns: 100 matching nothing, literal prefix", "patterns.prefix100.notifications_per_s", "notifications/s", True),
    ("patterns: 100 matching nothing, leading wildcard", "patterns.wildcard100.notifications_per_s", "notifications/s", True),
    ("1 notifier", "notifiers.n1.notifications_per_s", "notifications/s", True),
    ("2 notifiers", "notifiers.n2.notifications_per_s", "notifications/s", True),
    ("4 notifiers", "notifiers.n4.notifications_per_s", "notifications/s", True),
    ("7,999-byte payloads", "payload.b7999.notifications_per_s", "notifications/s", True),
    ("1 MiB payloads", "payload.b1048576.notifications_per_s", "notifications/s", True),
    ("broadcast, 1 listener", "broadcast.n1.deliveries_per_s", "deliveries/s", True),
    ("broadcast, 10 listeners", "broadcast.n10.deliveries_per_s", "deliveries/s", True),
    ("broadcast, 100 listeners", "broadcast.n100.deliveries_per_s", "deliveries/s", True),
    ("broadcast, 1 listener: slowest p99, notifier busy", "broadcast.n1.slowest_p99_us", "µs", False),
    ("broadcast, 10 listeners: slowest p99, notifier busy", "broadcast.n10.slowest_p99_us", "µs", False),
    ("broadcast, 100 listeners: slowest p99, notifier busy", "broadcast.n100.slowest_p99_us", "µs", False),
    ("broadcast, 1 listener: slowest p99, notifier idle", "broadcast.n1.slowest_p99_idle_us", "µs", False),
    ("broadcast, 10 listeners: slowest p99, notifier idle", "broadcast.n10.slowest_p99_idle_us", "µs", False),
    ("broadcast, 100 listeners: slowest p99, notifier idle", "broadcast.n100.slowest_p99_idle_us", "µs", False),
    ("durable subscription, per-commit", "subscription.notifications_per_s", "notifications/s", True),
    ("subscriber re-attaching to a backlog", "reattach.notifications_per_s", "notifications/s", True),
]


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "µs":
        return f"{v:,.1f} µs"
    return f"{v:,.0f}/s"


def ratio(h, p, higher):
    if h is None or p is None or h == 0 or p == 0:
        return "—"
    r = h / p if higher else p / h
    return f"{r:,.1f}×"


def sqlite_section(m, h):
    """The SQLite extension against honker and plain hark (bench/sqlite_bench.py, issue 18), with
    the floors measured in the same run beside the goals they bound."""
    g = lambda k: m.get(k)  # noqa: E731
    kinds = ("hark-sqlite", "hark", "honker", "pipe")
    lat = {k: (g(f"latency_p50_us.{k}"), g(f"latency_p99_us.{k}")) for k in kinds}
    out = ["## SQLite: events that commit with the data (issue 18)\n",
           "One row INSERT plus its event per transaction, WAL, `synchronous=NORMAL`, one writer and one "
           "listener process, both Python (`bench/sqlite_bench.py`, medians of the runs). Latency is from the "
           "start of the COMMIT to the listener's receipt, the writer paced so that the listener sleeps; the "
           "floor is the same two Python processes passing the number through a pipe.\n",
           "| | hark SQLite extension | plain hark (NOTIFY, no SQLite) | honker | floor: pipe between the two Python processes |",
           "|---|---|---|---|---|",
           "| commit → listener, p50 / p99 | "
           + " | ".join("—" if p50 is None else f"{p50:.0f} µs / {p99:.0f} µs" for p50, p99 in lat.values()) + " |",
           f"| rows with events per second, 1 writer | {g('rows_per_s.hark-sqlite'):,.0f} | — | {g('rows_per_s.honker'):,.0f} | — |",
           ""]
    cost = {k: g(f"us_per_txn.{k}") for k in ("plain", "loaded", "outbox-sql", "event")}
    out.append("Writer time per one-row transaction (Python, `sqlite3`): "
               f"INSERT alone {cost['plain']:.1f} µs; with the extension loaded {cost['loaded']:.1f} µs; "
               f"with a trigger writing the event's row into a second table in plain SQL (the outbox's own SQLite "
               f"cost, the floor of any event stored in the database) {cost['outbox-sql']:.1f} µs "
               f"({cost['outbox-sql'] / cost['plain']:.2f}× the INSERT alone); INSERT plus its hark event "
               f"{cost['event']:.1f} µs ({cost['event'] / cost['plain']:.2f}× the INSERT alone, "
               f"{cost['event'] / cost['outbox-sql']:.2f}× the floor).")
    auto = {k: g(f"us_per_txn.{k}-auto") for k in ("plain", "event")}
    if None not in auto.values():
        out[-1] += (f" The INSERT alone as the transaction (autocommit mode, the trigger's usual case): "
                    f"{auto['plain']:.1f} µs, with its event {auto['event']:.1f} µs "
                    f"({auto['event'] / auto['plain']:.2f}×).")
    commit = {k: g(f"us_per_commit.{k}") for k in ("plain", "outbox-sql", "event")}
    if None not in commit.values():
        out[-1] += (f" The COMMIT statement alone (what lies between the start of the COMMIT and the publication): "
                    f"{commit['event']:.1f} µs with the event, {commit['outbox-sql']:.1f} µs with the second row in "
                    f"plain SQL, {commit['plain']:.1f} µs for the INSERT alone.")
    out[-1] += "\n"
    rows = [
        ("SQLite latency p50 ≤ 1.5× plain hark's", f"{lat['hark-sqlite'][0] / lat['hark'][0]:.2f}×", lat["hark-sqlite"][0] <= 1.5 * lat["hark"][0]),
        ("SQLite latency p50 ≥ 20× better than honker's", f"{lat['honker'][0] / lat['hark-sqlite'][0]:.1f}×", lat["honker"][0] >= 20 * lat["hark-sqlite"][0]),
        ("SQLite latency p99 ≥ 10× better than honker's", f"{lat['honker'][1] / lat['hark-sqlite'][1]:.1f}×", lat["honker"][1] >= 10 * lat["hark-sqlite"][1]),
        ("rows with events/s ≥ 3× honker's", f"{g('rows_per_s.hark-sqlite') / g('rows_per_s.honker'):.1f}×", g("rows_per_s.hark-sqlite") >= 3 * g("rows_per_s.honker")),
        ("INSERT + event ≤ 1.5× INSERT alone", f"{cost['event'] / cost['plain']:.2f}×", cost["event"] <= 1.5 * cost["plain"]),
    ]
    out += ["| goal (issue 18) | measured | met | the floor in this run |", "|---|---|---|---|"]
    paced = {k: g(f"latency_commit_us.{k}") for k in kinds}
    extra = (paced["hark-sqlite"] or 0) - (paced["hark"] or 0)
    floors = [
        f"the writer's COMMIT (paced) took {paced['hark-sqlite'] or 0:.0f} µs against plain hark's commit "
        f"{paced['hark'] or 0:.0f} µs: plain hark's p50 plus the difference is {lat['hark'][0] + extra:.0f} µs "
        f"({(lat['hark'][0] + extra) / lat['hark'][0]:.2f}×)",
        f"honker's p50 / 20 = {lat['honker'][0] / 20:.0f} µs; plain hark's own p50 {lat['hark'][0]:.0f} µs "
        f"({lat['honker'][0] / lat['hark'][0]:.1f}× honker's), the pipe's {lat['pipe'][0]:.0f} µs"
        if lat["pipe"][0] is not None else "—",
        f"honker's p99 / 10 = {lat['honker'][1] / 10:.0f} µs; plain hark's p99 {lat['hark'][1]:.0f} µs, the pipe's "
        f"{lat['pipe'][1]:.0f} µs" if lat["pipe"][1] is not None else "—",
        f"a writer storing its events in SQLite at the plain-SQL floor: at most {1e6 / cost['outbox-sql']:,.0f}/s "
        f"({1e6 / cost['outbox-sql'] / g('rows_per_s.honker'):.1f}× honker's), with no listener to wake; "
        f"one that only INSERTs, no event at all: {1e6 / cost['plain']:,.0f}/s "
        f"({1e6 / cost['plain'] / g('rows_per_s.honker'):.1f}×)",
        f"a second row in plain SQL: {cost['outbox-sql'] / cost['plain']:.2f}×",
    ]
    out += [f"| {t} | {v} | {'yes' if ok else 'no'} | {f} |" for (t, v, ok), f in zip(rows, floors)]
    floor = h.get("floor.pipe.p50_us") if h else None
    if floor:
        out.append(f"\nThe machine's wake-up floor in this run (pipe between two Rust processes): p50 {floor:.1f} µs.")
    out.append("")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hark-bench", required=True, help='the coordinator, e.g. "target/release/hark bench"')
    ap.add_argument("--pg-peer")
    ap.add_argument("--honker-python")
    ap.add_argument("--python-peer", help="python interpreter with the hark package")
    ap.add_argument("--node-peer", help="node script playing the roles with the Node package (bindings/node)")
    ap.add_argument("--bridge-bench", help="the bridge's benchmark (bridge/examples/bridge_bench.rs), built")
    ap.add_argument("--sqlite-python", help="python with hark, hark.sqlite (extension loadable) and honker")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    a = ap.parse_args()
    quick = ["--quick"] if a.quick else []
    hb = a.hark_bench.split()  # e.g. "target/release/hark bench"
    missing = {}
    results = {}
    bridge_results = None

    print(f"hark: {a.runs} runs of every scenario", flush=True)
    results["hark"] = medians([run_json(hb + ["--json"] + quick) for _ in range(a.runs)])
    machine = run_json(hb + ["--json", "--quick", "floor"])["machine"]

    # PostgreSQL 15, a throwaway cluster for this run.
    if a.pg_peer and os.path.exists(a.pg_peer):
        d = tempfile.mkdtemp(prefix="hark-pg-")
        os.chmod(d, 0o755)
        try:
            conninfo = subprocess.run([os.path.join(HERE, "pg_cluster.sh"), "start", d], check=True,
                                      capture_output=True, text=True).stdout.strip()
            print(f"PostgreSQL: {a.runs} runs", flush=True)
            scen = ["per-commit", "batched", "latency", "notifiers", "payload", "broadcast"]

            def pg():
                r = run_json(hb + ["--json", "--driver", a.pg_peer, conninfo, "--scale", "0.02"] + quick + scen)
                # With 1,000 idle listeners PostgreSQL signals each of them at every commit and
                # runs at tens of commits a second: a tenth of the count keeps the run to minutes.
                f = run_json(hb + ["--json", "--driver", a.pg_peer, conninfo, "--scale", "0.002"] + quick + ["fanout"])
                r["fanout"] = f["fanout"]
                return r

            results["PostgreSQL 15"] = medians([pg() for _ in range(a.runs)])
            if a.bridge_bench and os.path.exists(a.bridge_bench):
                # Two hosts' bridges through this cluster, against its plain clients, same run.
                print(f"bridge: {a.runs} runs", flush=True)
                try:
                    bridge_results = medians([run_json([a.bridge_bench, hb[0], conninfo] + quick)
                                              for _ in range(a.runs)])
                except RuntimeError as e:
                    missing["hark bridge"] = f"could not run: {e}"
        except (RuntimeError, subprocess.CalledProcessError) as e:
            missing["PostgreSQL 15"] = f"could not run: {e}"
        finally:
            subprocess.run([os.path.join(HERE, "pg_cluster.sh"), "stop", d], capture_output=True)
            shutil.rmtree(d, ignore_errors=True)
    else:
        missing["PostgreSQL 15"] = "not installed (needs Debian's postgresql-15 and libpq-dev)"

    def driver_runs(name, program, scen, target, roles=None, scale=None):
        try:
            print(f"{name}: {a.runs} runs", flush=True)
            extra = (["--driver-roles", roles] if roles else []) + (["--scale", scale] if scale else [])
            one = lambda: run_json(hb + ["--json", "--driver", program, target] + extra + quick + scen)
            results[name] = medians([one() for _ in range(a.runs)])
        except RuntimeError as e:
            missing[name] = f"could not run: {e}"

    if a.honker_python:
        driver_runs("honker", f"{a.honker_python} {os.path.join(HERE, 'peers', 'honker_peer.py')}",
                    ["per-commit", "latency"], "{fresh}.db", scale="0.01")
    else:
        missing["honker"] = "not installed (pip install honker failed)"
    if a.python_peer:
        driver_runs("hark (Python listener)", f"{a.python_peer} {os.path.join(HERE, 'peers', 'hark_python_peer.py')}",
                    ["per-commit", "latency"], "{fresh}", roles="listener")
    else:
        missing["hark (Python listener)"] = "the Python binding was not built"
    if a.node_peer:
        driver_runs("hark (Node listener)", f"node {a.node_peer}", ["per-commit", "latency"], "{fresh}", roles="listener")
    else:
        missing["hark (Node listener)"] = "the Node binding was not built"

    sqlite = None
    if a.sqlite_python:
        try:
            print(f"SQLite extension and honker: {a.runs} runs", flush=True)
            sqlite = run_json([a.sqlite_python, os.path.join(HERE, "sqlite_bench.py"), "--runs", str(a.runs)] + quick)
        except RuntimeError as e:
            missing["SQLite extension"] = f"could not run: {e}"
    else:
        missing["SQLite extension"] = "no Python that can load SQLite extensions with honker installed"

    h = results["hark"]
    peers = [p for p in results if p != "hark"]
    lines = []
    lines.append("# hark benchmark results\n")
    lines.append(f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine}, "
                 f"by `make bench` (medians of {a.runs} runs{', quick counts' if a.quick else ''}; "
                 "every peer measured in the same run by the same coordinator, `hark bench --driver`; "
                 "PostgreSQL with 2% (fanout: 0.2%) and honker with 1% of hark's notification counts, so "
                 "that a run takes seconds at their rates: per-commit 20,000 and 10,000 notifications; "
                 "latency runs, paced at one notification every 150 µs, take the same number of samples from "
                 "every peer: 20,000, and 5,000 per listener in broadcast).\n")
    lines.append("Latency is from the notifier's clock just before its commit to the listener's receipt. "
                 "\"Notifier busy\": it spins between its commits, keeping its CPU, so a woken listener runs on "
                 "the other one, which may have to be woken from idle (the main latency rows and the pipe floor); "
                 "\"notifier idle\": it sleeps between them, as a process waiting for its next request.\n")
    lines.append("| scenario | hark | " + " | ".join(peers) + " | " + " | ".join(f"hark vs {p}" for p in peers) + " |")
    lines.append("|---|---|" + "---|" * (2 * len(peers)))
    for label, key, unit, higher in ROWS:
        hv = h.get(key)
        cells = [fmt(results[p].get(key), unit) for p in peers]
        rs = [ratio(hv, results[p].get(key), higher) for p in peers]
        lines.append(f"| {label} | {fmt(hv, unit)} | " + " | ".join(cells) + " | " + " | ".join(rs) + " |")
    lines.append("")
    lines.append("Ratios: throughput is hark ÷ peer; latency is peer ÷ hark (how many times faster hark is). "
                 "The Python and Node columns are hark's bindings as the listener, with the Rust notifier.\n")
    shares = [h.get(f"notifiers.n{n}.listener_cpu_share") for n in (1, 2, 4)]
    if all(x is not None for x in shares):
        lines.append("With more notifier processes than this machine has CPUs, the listener gets less of one: "
                     "it was on a CPU " + ", ".join(f"{100 * x:.0f}%" for x in shares)
                     + " of its life with 1, 2 and 4 notifiers (its CPU time ÷ its wall time, medians).\n")
    lines.append("## The machine's floor\n")
    lines.append(f"- pipe wake-up between two processes: p50 {h.get('floor.pipe.p50_us', 0):.1f} µs, p90 {h.get('floor.pipe.p90_us', 0):.1f} µs, "
                 f"p99 {h.get('floor.pipe.p99_us', 0):.1f} µs, max {h.get('floor.pipe.max_us', 0):.1f} µs")
    lines.append(f"- the same, the writer idle (asleep) between writes: p50 {h.get('floor.pipe_idle.p50_us', 0):.1f} µs, "
                 f"p90 {h.get('floor.pipe_idle.p90_us', 0):.1f} µs, p99 {h.get('floor.pipe_idle.p99_us', 0):.1f} µs, "
                 f"max {h.get('floor.pipe_idle.max_us', 0):.1f} µs")
    lines.append(f"- memcpy bandwidth: {h.get('floor.memcpy_gbps', 0):.1f} GB/s")
    lines.append(f"- hark latency ÷ pipe floor: p50 {h['latency.p50_us'] / h['floor.pipe.p50_us']:.2f}×, "
                 f"p99 {h['latency.p99_us'] / h['floor.pipe.p99_us']:.2f}×\n")
    lines.append("## Backlog (a listener falls behind, then catches up)\n")
    lines.append(f"Backlog: {h.get('backlog.behind_bytes', 0) / 2**30:.2f} GiB.\n")
    lines.append("| phase | notifier RSS | listener RSS | directory | segment files |")
    lines.append("|---|---|---|---|---|")
    for phase in ["before", "behind", "caught_up", "max"]:
        nr, lr = h.get(f"backlog.{phase}.notifier_rss", 0), h.get(f"backlog.{phase}.listener_rss", 0)
        db, sg = h.get(f"backlog.{phase}.dir_bytes", 0), h.get(f"backlog.{phase}.segments", 0)
        lines.append(f"| {phase.replace('_', ' ')} | {nr / 2**20:.0f} MiB | {lr / 2**20:.0f} MiB | "
                     + (f"{db / 2**20:.0f} MiB | {sg:.0f} |" if phase != "max" else "— | — |"))
    lines.append("")
    lines.append("## Goals (issue 7)\n")
    lines.append("| goal | measured | met |")
    lines.append("|---|---|---|")
    pg, hk = results.get("PostgreSQL 15", {}), results.get("honker", {})
    py, nd = results.get("hark (Python listener)", {}), results.get("hark (Node listener)", {})

    def goal(text, value, ok):
        lines.append(f"| {text} | {value} | {'yes' if ok else ('no' if ok is False else 'not measured')} |")

    def cmp(x, y, f):
        return None if x is None or y is None else f(x, y)

    pc, b = h.get("per-commit.notifications_per_s"), h.get("batched.notifications_per_s")
    goal("per-commit ≥ 1,000,000/s", fmt(pc, "/s"), cmp(pc, 1e6, lambda x, y: x >= y))
    goal("per-commit ≥ 40× PostgreSQL", ratio(pc, pg.get("per-commit.notifications_per_s"), True),
         cmp(pc, pg.get("per-commit.notifications_per_s"), lambda x, y: x >= 40 * y))
    goal("batched ≥ 5,000,000/s", fmt(b, "/s"), cmp(b, 5e6, lambda x, y: x >= y))
    goal("batched ≥ 15× PostgreSQL", ratio(b, pg.get("batched.notifications_per_s"), True),
         cmp(b, pg.get("batched.notifications_per_s"), lambda x, y: x >= 15 * y))
    p50, p99 = h.get("latency.p50_us"), h.get("latency.p99_us")
    goal("latency p50 ≤ 1.5× pipe floor p50", f"{p50 / h['floor.pipe.p50_us']:.2f}×", p50 <= 1.5 * h["floor.pipe.p50_us"])
    goal("latency p99 ≤ 3× pipe floor p99", f"{p99 / h['floor.pipe.p99_us']:.2f}×", p99 <= 3 * h["floor.pipe.p99_us"])
    goal("latency p50 ≥ 5× better than PostgreSQL", ratio(p50, pg.get("latency.p50_us"), False),
         cmp(p50, pg.get("latency.p50_us"), lambda x, y: y >= 5 * x))
    goal("latency p50 ≥ 50× better than honker", ratio(p50, hk.get("latency.p50_us"), False),
         cmp(p50, hk.get("latency.p50_us"), lambda x, y: y >= 50 * x))
    k0, k1000 = h.get("fanout.k0.notifications_per_s"), h.get("fanout.k1000.notifications_per_s")
    goal("fanout: 1,000 idle listeners ≥ 90% of none", f"{100 * k1000 / k0:.0f}%", k1000 >= 0.9 * k0)
    p0, pp = h.get("patterns.none.notifications_per_s"), h.get("patterns.prefix100.notifications_per_s")
    if p0 and pp:
        goal("patterns: 100 prefixed pattern subscriptions matching nothing ≥ 90% of none", f"{100 * pp / p0:.0f}%", pp >= 0.9 * p0)
    n1, n4 = h.get("notifiers.n1.notifications_per_s"), h.get("notifiers.n4.notifications_per_s")
    goal("4 notifiers ≥ 90% of 1", f"{100 * n4 / n1:.0f}%", n4 >= 0.9 * n1)
    v = py.get("per-commit.notifications_per_s")
    goal("Python listener ≥ 500,000/s per-commit", fmt(v, "/s"), cmp(v, 5e5, lambda x, y: x >= y))
    v = nd.get("per-commit.notifications_per_s")
    goal("Node listener ≥ 300,000/s per-commit", fmt(v, "/s"), cmp(v, 3e5, lambda x, y: x >= y))
    rss = max(h.get(f"backlog.max.{w}_rss", 0) for w in ["notifier", "listener"])
    goal("backlog: every process's RSS < 64 MiB", f"{rss / 2**20:.0f} MiB", rss < 64 * 2**20)
    sg = h.get("backlog.caught_up.segments")
    goal("backlog: ≤ 2 segment files after catch-up", f"{sg:.0f}", sg is not None and sg <= 2)
    sub, plain = h.get("subscription.notifications_per_s"), h.get("subscription.listen_notifications_per_s")
    goal("subscription per-commit ≥ 90% of a LISTEN's (same run)", f"{100 * sub / plain:.0f}%" if sub and plain else "—",
         cmp(sub, plain, lambda x, y: x >= 0.9 * y))
    ra, rb = h.get("reattach.notifications_per_s"), h.get("reattach.batched_notifications_per_s")
    goal("re-attach after 1,000,000 ≥ a LISTEN's batched rate (same run)", f"{100 * ra / rb:.0f}%" if ra and rb else "—",
         cmp(ra, rb, lambda x, y: x >= y))
    for k in (1, 10, 100):
        hv, pv = h.get(f"broadcast.n{k}.deliveries_per_s"), pg.get(f"broadcast.n{k}.deliveries_per_s")
        goal(f"broadcast to {k}: deliveries/s beat PostgreSQL", ratio(hv, pv, True), cmp(hv, pv, lambda x, y: x > y))
        for key, how in (("slowest_p99_us", "busy"), ("slowest_p99_idle_us", "idle")):
            hv, pv = h.get(f"broadcast.n{k}.{key}"), pg.get(f"broadcast.n{k}.{key}")
            goal(f"broadcast to {k}: slowest listener's p99 beats PostgreSQL (notifier {how})", ratio(hv, pv, False),
                 cmp(hv, pv, lambda x, y: x < y))
    lines.append("")
    lines.append("## Several machines: `hark bridge` through PostgreSQL\n")
    if bridge_results:
        br = bridge_results
        lines.append("Two queue directories, each with its `hark bridge` process, joined through the same cluster; "
                     "PostgreSQL's figures are two plain clients of it (tokio-postgres, the bridge's own client "
                     "library), measured in the same run, in a database of their own (PostgreSQL signals every "
                     "listening backend of a database at each NOTIFY in it, so the bridges' idle backends would "
                     "slow them), the latency rounds in turn with the bridge's; alone and with a second listening "
                     "connection beside the listener: with bridges, PostgreSQL delivers every notification to two "
                     "backends, the receiving bridge's and the sending bridge's own (which listens on the channels "
                     "it sends on), so that column is what PostgreSQL does for a bridged notification. "
                     "PostgreSQL's best batched NOTIFY is the fastest of VALUES or NOTIFY statements, 1 or 50 "
                     "transactions a message, or one prepared unnest a round trip.\n")
        lines.append("| | bridge (host → host) | PostgreSQL client → client | PostgreSQL, two listeners | goal | met |")
        lines.append("|---|---|---|---|---|---|")
        hk50 = br["latency.hark.p50_us"]
        for q in ("p50", "p99"):
            b_, p_ = br[f"latency.bridge.{q}_us"], br[f"latency.postgres.{q}_us"]
            p2 = br.get(f"latency.postgres_two_listeners.{q}_us")
            p2s = f"{p2:,.1f} µs" if p2 is not None else "—"
            if q == "p50":
                lim = p_ + 2 * hk50
                lines.append(f"| latency {q} | {b_:,.1f} µs | {p_:,.1f} µs | {p2s} | ≤ PostgreSQL's + 2 hark wake-ups "
                             f"({hk50:,.1f} µs each) = {lim:,.1f} µs | {'yes' if b_ <= lim else 'no'} |")
            else:
                lines.append(f"| latency {q} | {b_:,.1f} µs | {p_:,.1f} µs | {p2s} | — | — |")
        for n in (1, 10, 100):
            b_, p_ = br.get(f"throughput.n{n}.bridge"), br.get(f"throughput.n{n}.postgres")
            if b_ is None:
                continue
            p2 = br.get(f"throughput.n{n}.postgres_two_listeners")
            p2s = f"{p2:,.0f}/s" if p2 is not None else "—"
            lines.append(f"| streaming, {n} per transaction | {b_:,.0f}/s | {p_:,.0f}/s (best batched NOTIFY) | {p2s} | "
                         f"≥ PostgreSQL's | {'yes' if b_ >= p_ else 'no'} |")
        lines.append("")
    else:
        lines.append("Not measured (PostgreSQL 15 or the bridge's benchmark missing).\n")
    if sqlite:
        lines += sqlite_section(sqlite, h)
    if missing:
        lines.append("## Peers not measured\n")
        for p, why in missing.items():
            lines.append(f"- {p}: {why}")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    with open(a.out, "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
