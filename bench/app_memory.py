#!/usr/bin/env python3
"""The desktop app's idle memory: a release `hangar-app` under Xvfb and a
private D-Bus session, attached to an agent served by the same binary
(`hangar-app serve`), measured after it sat idle on the dashboard.

Reports RSS and PSS (from /proc/PID/smaps_rollup) of the app and each
WebKit helper process, their sums, and the agent's, so the README can put
the app beside the agent. PSS splits shared pages (WebKit's libraries are
mapped by all three processes), so its sum is the honest total.

    python3 bench/app_memory.py [--app PATH] [--idle SECONDS]

Needs xvfb, xauth and dbus-x11 (scripts/test installs them) and a release
app: `scripts/package --bundles deb` or
`cargo build --release -p hangar-app --features custom-protocol`.
Standard library only; every process it starts is stopped by PID.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gitserve import descendants  # noqa: E402

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/hangar/target"))


def memory(pid):
    """(RSS, PSS) in KiB of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line and not line.startswith(" "))
    except OSError:
        return None
    kib = lambda key: int(fields[key].split()[0])
    return kib("Rss"), kib("Pss")


def name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def exe(pid):
    try:
        return os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        return None


def wait(what, probe, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default=os.path.join(TARGET, "release/hangar-app"))
    parser.add_argument("--idle", type=float, default=30.0, help="seconds idle before measuring [30]")
    args = parser.parse_args()
    if not os.access(args.app, os.X_OK):
        sys.exit(f"no app binary at {args.app}; build it (see --help)")

    temp = tempfile.mkdtemp(prefix="hangar-app-memory-")
    data = os.path.join(temp, "data")
    agent_log = open(os.path.join(temp, "agent.log"), "w")
    agent = subprocess.Popen(
        [args.app, "serve", "--data-dir", data, "--http", "127.0.0.1:0", "--no-ssh"],
        stdout=agent_log, stderr=subprocess.STDOUT)
    app_proc = None
    try:
        agent_file = os.path.join(data, "agent.json")
        url = wait("the agent", lambda: os.path.exists(agent_file) and json.load(open(agent_file))["url"])
        wait("/healthz", lambda: urllib.request.urlopen(f"{url}/healthz").status == 200)

        app_log_path = os.path.join(temp, "app.log")
        env = dict(os.environ, HANGAR_DATA_DIR=data, HANGAR_LOG="info",
                   # Xvfb has no GPU: WebKit draws in software.
                   WEBKIT_DISABLE_COMPOSITING_MODE="1", WEBKIT_DISABLE_DMABUF_RENDERER="1")
        app_proc = subprocess.Popen(
            ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "dbus-run-session", "--", args.app],
            env=env, stdout=open(app_log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait("the dashboard to load", lambda: "page loaded" in open(app_log_path).read())
        time.sleep(args.idle)

        measured = [(p, name(p)) for p in descendants(app_proc.pid)]
        # The app by its binary (its main thread may rename itself), and
        # WebKit's helpers; not Xvfb, D-Bus or the shells around them.
        app_exe = os.path.realpath(args.app)
        measured = [(p, n) for p, n in measured if exe(p) == app_exe or n.startswith("WebKit")]
        rows, rss_sum, pss_sum = [], 0, 0
        for pid, comm in measured:
            m = memory(pid)
            if m:
                rows.append((comm, pid, *m))
                rss_sum += m[0]
                pss_sum += m[1]
        agent_rss, agent_pss = memory(agent.pid) or (0, 0)
        print(f"after {args.idle:.0f} s idle on the dashboard ({url}):")
        print(f"{'process':<20} {'pid':>7} {'RSS MiB':>9} {'PSS MiB':>9}")
        for comm, pid, rss, pss in rows:
            print(f"{comm:<20} {pid:>7} {rss / 1024:>9.1f} {pss / 1024:>9.1f}")
        print(f"{'app + webview':<20} {'':>7} {rss_sum / 1024:>9.1f} {pss_sum / 1024:>9.1f}")
        print(f"{'agent (serve)':<20} {agent.pid:>7} {agent_rss / 1024:>9.1f} {agent_pss / 1024:>9.1f}")
    finally:
        if app_proc is not None:
            # The whole session: the app, its WebKit helpers, dbus, Xvfb.
            try:
                os.killpg(app_proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            app_proc.wait(timeout=20)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)


if __name__ == "__main__":
    main()
