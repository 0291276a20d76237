#!/usr/bin/env python3
"""Webhook ingestion benchmark for the Hangar agent, on loopback.

Starts `hangar serve` (HANGAR_BIN) in a temp data dir, adds a GitHub account
with a known webhook secret, then posts signed `push` deliveries to
/hooks/github (each with its own X-GitHub-Delivery, so each is stored):

1. throughput: PROCS processes, each on one keep-alive connection, as fast
   as they can for SECONDS; reports durable deliveries/s (answers 202, and
   the rows counted in SQLite afterwards);
2. latency at a fixed rate: RATE deliveries/s for SECONDS, open loop (each
   request is due at its slot whether or not earlier ones were answered),
   spread over PROCS processes; reports p50/p99/max time to the 202.

Standard library only. Usage: webhooks.py [--seconds N] [--rate R] [--procs P]
"""
import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

SECRET = b"bench secret"
BIN = os.environ.get("HANGAR_BIN", os.path.expanduser("~/.cache/hangar/target/release/hangar"))


def payload(i):
    body = json.dumps({
        "ref": "refs/heads/main", "before": "0" * 40, "after": "%040x" % (i + 1),
        "repository": {"full_name": "bench/none"}, "pusher": {"name": "bench"},
    }).encode()
    return body, "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def post(conn, tag, i):
    body, sig = payload(i)
    conn.request("POST", "/hooks/github", body=body, headers={
        "content-type": "application/json", "x-github-event": "push",
        "x-github-delivery": f"{tag}-{i}", "x-github-hook-id": "1", "x-hub-signature-256": sig,
    })
    r = conn.getresponse()
    r.read()
    return r.status


def flood(port, tag, seconds, out):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    ok = i = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ok += post(conn, tag, i) == 202
        i += 1
    out.put(ok)


def paced(port, tag, rate, seconds, offset, procs, out):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.monotonic() + 0.2
    n = int(rate * seconds)
    lat, bad = [], 0
    for k in range(offset, n, procs):
        due = start + k / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        if post(conn, tag, k) != 202:
            bad += 1
        # Open loop: latency counts from the slot, so queueing shows.
        lat.append(time.monotonic() - due)
    out.put((lat, bad))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--procs", type=int, default=4)
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="hangar-bench-hooks-")
    log = open(os.path.join(data, "agent.log"), "wb")
    agent = subprocess.Popen([BIN, "serve", "--http", "127.0.0.1:0", "--no-ssh", "--data-dir", data],
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
        port = int(info["url"].rsplit(":", 1)[1])
        req = urllib.request.Request(info["url"] + "/api/v1/forges", method="POST", data=json.dumps({
            "provider": "github", "url": "http://127.0.0.1:9", "token": "bench", "allow_http": True,
            "webhook_secret": SECRET.decode()}).encode(),
            headers={"authorization": "Bearer " + info["token"], "content-type": "application/json"})
        urllib.request.urlopen(req).read()

        out = mp.Queue()
        ps = [mp.Process(target=flood, args=(port, f"flood{p}", args.seconds, out)) for p in range(args.procs)]
        t0 = time.monotonic()
        [p.start() for p in ps]
        accepted = sum(out.get() for _ in ps)
        [p.join() for p in ps]
        elapsed = time.monotonic() - t0
        db = sqlite3.connect(os.path.join(data, "hangar.db"))
        stored = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        print(f"throughput: {accepted} accepted, {stored} stored in {elapsed:.1f}s "
              f"= {stored / elapsed:.0f} durable deliveries/s ({args.procs} keep-alive clients)")

        ps = [mp.Process(target=paced, args=(port, "paced", args.rate, args.seconds, p, args.procs, out))
              for p in range(args.procs)]
        [p.start() for p in ps]
        results = [out.get() for _ in ps]
        [p.join() for p in ps]
        lat = sorted(x for r in results for x in r[0])
        bad = sum(r[1] for r in results)
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
        print(f"at {args.rate:.0f}/s for {args.seconds:.0f}s: {len(lat)} sent, {bad} not 202; "
              f"ack p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {lat[-1] * 1000:.1f} ms")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
