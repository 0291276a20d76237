#!/usr/bin/env python3
"""Webhook ingestion benchmark for the Hangar agent, on loopback.

Starts `hangar serve` (--hangar) in a temp data dir, adds a GitHub account
with a known webhook secret, then has `hookload` (bench/src/hookload.rs, a
Rust load generator: a Python client saturates before the agent does) post
signed `push` deliveries to /hooks/github, each with its own
X-GitHub-Delivery, so each is stored:

1. throughput: --connections keep-alive connections, each sending its next
   delivery when the last is answered, for --seconds; reports durable
   deliveries/s (the rows counted in SQLite afterwards, over the run's time);
2. latency at a fixed rate: --rate deliveries/s for --seconds, open loop (each
   delivery is due at its slot whether or not earlier ones were answered, and
   its latency counts from the slot); reports p50/p99/max time to the 202.

Build both binaries first:
  cargo build --release -p hangar-agent -p hangar-bench
Usage: webhooks.py [--seconds N] [--rate R] [--connections C] [--hangar PATH]
"""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gitserve import add_hangar_arg, require_hangar  # noqa: E402

SECRET = "bench secret"


def hookload(binary: Path, url: str, tag: str, args, rate=None) -> dict:
    cmd = [str(binary), "--url", url, "--secret", SECRET, "--tag", tag,
           "--seconds", str(args.seconds), "--connections", str(args.connections)]
    if rate:
        cmd += ["--rate", str(rate)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--connections", type=int, default=16)
    add_hangar_arg(ap)
    args = ap.parse_args()
    require_hangar(args.hangar)
    load = args.hangar.parent / "hookload"
    if not load.exists():
        sys.exit(f"{load} is missing: build it with `cargo build --release -p hangar-bench`")

    data = tempfile.mkdtemp(prefix="hangar-bench-hooks-")
    log = open(os.path.join(data, "agent.log"), "wb")
    agent = subprocess.Popen([str(args.hangar), "serve", "--http", "127.0.0.1:0", "--no-ssh", "--data-dir", data],
                             stdout=log, stderr=log, env={**{k: v for k, v in os.environ.items() if not k.startswith("HANGAR_")},
                                                          "HANGAR_LOG": "warn",
                                                          "HANGAR_ALLOW_LOCAL_MIRRORS": "true"})
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(data, "agent.json")):
            if time.monotonic() > deadline or agent.poll() is not None:
                raise SystemExit("agent did not start:\n" + open(os.path.join(data, "agent.log")).read()[-2000:])
            time.sleep(0.05)
        info = json.load(open(os.path.join(data, "agent.json")))
        req = urllib.request.Request(info["url"] + "/api/v1/forges", method="POST", data=json.dumps({
            "provider": "github", "url": "http://127.0.0.1:9", "token": "bench", "allow_http": True,
            "webhook_secret": SECRET}).encode(),
            headers={"authorization": "Bearer " + info["token"], "content-type": "application/json"})
        urllib.request.urlopen(req).read()

        flood = hookload(load, info["url"], "flood", args)
        db = sqlite3.connect(os.path.join(data, "hangar.db"))
        stored = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        print(f"throughput: {flood['accepted']} accepted, {stored} stored in {flood['elapsed_s']:.1f}s "
              f"= {stored / flood['elapsed_s']:.0f} durable deliveries/s ({args.connections} keep-alive "
              f"connections; ack p50 {flood['latency_ms']['p50']:.1f} ms)")

        paced = hookload(load, info["url"], "paced", args, rate=args.rate)
        lat = paced["latency_ms"]
        print(f"at {args.rate:.0f}/s for {args.seconds:.0f}s: {paced['sent']} sent, "
              f"{paced['sent'] - paced['accepted']} not 202; "
              f"ack p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms")
        print(f"agent: {args.hangar}; machine: {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
