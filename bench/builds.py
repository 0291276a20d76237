#!/usr/bin/env python3
"""Build runner latency and overhead, against a real `hangar serve` on loopback.

  first step   push (git push over HTTP) to the first step's process running,
               with a free host slot: p50/p95 over --pushes pushes
  log latency  a line written by a step to the same line received by an SSE
               client of `GET /api/v1/builds/{id}/jobs/{job}/log?follow=1`
  overhead     N trivial jobs (`run: "true"`, one host slot) drained: wall time
               per job minus what `sh -c true` alone costs (measured in the
               same run: the reference)
  idle         the agent's RSS and CPU over 10 s with nothing to do

Usage: bench/builds.py [--pushes 50] [--jobs 200] [--hangar PATH] [--json FILE]
(default binary: $CARGO_TARGET_DIR or ~/.cache/hangar/target, release/hangar).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gitserve import add_hangar_arg, client_env, free_port, log, proc_status, require_hangar, run  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Agent:
    def __init__(self, binary: Path, root: Path, env: dict):
        self.bin, self.root, self.env = binary, root, env
        self.data = root / "data"
        self.port = free_port()

    def start(self):
        self.data.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--data-dir", str(self.data), "--http", f"127.0.0.1:{self.port}",
             "--no-ssh"],
            env=self.env, stdout=open(self.root / "agent.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while not (self.data / "agent.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hangar serve did not start; see {self.root}/agent.log")
            time.sleep(0.05)
        self.token = json.loads((self.data / "agent.json").read_text())["token"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def api(self, method: str, path: str, body=None):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def builds(self, repo: str) -> list[dict]:
        return self.api("GET", f"/builds?repo={repo}&limit=100")["items"]

    def wait_build(self, repo: str, count: int, timeout=120.0) -> dict:
        """The `count`-th build of `repo` once finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.builds(repo)
            if len(items) >= count and items[0]["status"] not in ("queued", "running"):
                return self.api("GET", f"/builds/{items[0]['id']}")
            time.sleep(0.02)
        raise RuntimeError(f"build {count} of {repo} did not finish in {timeout}s")


class Work:
    """A clone of one agent repository with a workflow in it."""

    def __init__(self, agent: Agent, root: Path, name: str, env: dict, workflow: str):
        self.agent, self.env, self.repo = agent, env, f"bench/{name}"
        agent.api("POST", "/repos", {"name": self.repo})
        self.dir = root / name
        self.git("init", "-q", "-b", "main", str(self.dir), cwd=root)
        wf = self.dir / ".github" / "workflows"
        wf.mkdir(parents=True)
        (wf / "bench.yml").write_text(workflow)
        self.git("add", "-A")
        self.git("commit", "-qm", "workflow")
        url = f"http://bench:{agent.token}@127.0.0.1:{agent.port}/{self.repo}.git"
        self.git("remote", "add", "origin", url)

    def git(self, *args, cwd=None):
        return run(["git", *args], cwd=cwd or self.dir, env=self.env)

    def push_commit(self, n: int) -> float:
        """Commits and pushes; returns the time the push returned."""
        self.git("commit", "-q", "--allow-empty", "-m", f"change {n}")
        self.git("push", "-q", "origin", "HEAD:refs/heads/main")
        return time.time()


def first_step(agent: Agent, root: Path, env: dict, pushes: int) -> dict:
    marks = root / "marks"
    marks.mkdir()
    work = Work(agent, root, "first-step", env, f"""on: push
jobs:
  mark:
    runs-on: self-hosted
    steps:
      - run: date +%s.%N > {marks}/$GITHUB_SHA
""")
    from_return, from_start = [], []
    for n in range(pushes + 1):
        start = time.time()
        pushed = work.push_commit(n)
        build = agent.wait_build(work.repo, n + 1)
        if build["status"] != "success":
            raise RuntimeError(f"bench build failed: {build}")
        if n == 0:
            continue  # warm-up
        mark = marks / build["sha"]
        if not mark.exists():
            raise RuntimeError(f"build {build['number']} left no mark")
        stepped = float(mark.read_text())
        from_return.append((stepped - pushed) * 1000)
        from_start.append((stepped - start) * 1000)
    return {
        "pushes": pushes,
        "from_push_return_ms": {"p50": pct(from_return, .5), "p95": pct(from_return, .95)},
        "from_push_start_ms": {"p50": pct(from_start, .5), "p95": pct(from_start, .95)},
    }


def log_latency(agent: Agent, root: Path, env: dict, lines: int) -> dict:
    work = Work(agent, root, "log-latency", env, f"""on: push
jobs:
  talk:
    runs-on: self-hosted
    steps:
      - run: |
          sleep 1
          for i in $(seq {lines}); do echo "stamp $(date +%s.%N)"; sleep 0.05; done
""")
    work.push_commit(1)
    deadline = time.monotonic() + 60
    job = None
    while job is None and time.monotonic() < deadline:
        items = agent.builds(work.repo)
        if items and items[0]["status"] == "running":
            build = agent.api("GET", f"/builds/{items[0]['id']}")
            running = [j for j in build["jobs"] if j["status"] == "running"]
            if running:
                job = (build["id"], running[0]["id"])
        time.sleep(0.01)
    if job is None:
        raise RuntimeError("the log job never ran")
    conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=60)
    conn.request("GET", f"/api/v1/builds/{job[0]}/jobs/{job[1]}/log?follow=1",
                 headers={"Authorization": f"Bearer {agent.token}"})
    resp = conn.getresponse()
    latencies = []
    while True:
        raw = resp.fp.readline()
        if not raw or raw.startswith(b"event: end"):
            break
        text = raw.decode(errors="replace")
        if text.startswith("data: ") and "stamp " in text:
            received = time.time()
            latencies.append((received - float(text.split("stamp ", 1)[1])) * 1000)
    conn.close()
    # The first lines may predate the subscription (replayed from the file).
    latencies = latencies[3:]
    if len(latencies) < lines // 2:
        raise RuntimeError(f"only {len(latencies)} live lines received")
    return {"lines": len(latencies), "p50_ms": pct(latencies, .5), "p95_ms": pct(latencies, .95)}


def overhead(agent: Agent, root: Path, env: dict, jobs: int) -> dict:
    values = ", ".join(str(i) for i in range(jobs))
    work = Work(agent, root, "overhead", env, f"""on: push
jobs:
  t:
    runs-on: self-hosted
    strategy:
      matrix:
        n: [{values}]
    steps:
      - run: "true"
""")
    start = time.time()
    work.push_commit(1)
    build = agent.wait_build(work.repo, 1, timeout=600)
    wall = time.time() - start
    if build["status"] != "success" or len(build["jobs"]) != jobs:
        raise RuntimeError(f"overhead build: {build['status']} with {len(build['jobs'])} jobs")
    # The reference: what spawning the step's shell costs without Hangar.
    t0 = time.perf_counter()
    for _ in range(jobs):
        subprocess.run(["bash", "-e", "-c", "true"], check=True)
    shell = time.perf_counter() - t0
    per_job = (wall - shell) / jobs * 1000
    return {"jobs": jobs, "wall_s": wall, "shell_only_s": shell, "overhead_per_job_ms": per_job}


def idle(agent: Agent, seconds=10.0) -> dict:
    time.sleep(3)

    def ticks():
        with open(f"/proc/{agent.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    t0, c0 = time.monotonic(), ticks()
    time.sleep(seconds)
    cpu = (ticks() - c0) / TICK / (time.monotonic() - t0) * 100
    return {"rss_mib": proc_status(agent.proc.pid).get("VmRSS", 0) / 2**20, "cpu_percent": cpu}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pushes", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--lines", type=int, default=60)
    add_hangar_arg(ap)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    require_hangar(args.hangar)

    root = Path(tempfile.mkdtemp(prefix="hangar-bench-builds-"))
    env = client_env(root / "home")
    (root / "home").mkdir()
    run(["git", "config", "--global", "user.name", "bench"], env=env)
    run(["git", "config", "--global", "user.email", "bench@example.com"], env=env)
    agent = Agent(args.hangar, root, env)
    agent.start()
    try:
        idle_before = idle(agent)
        log(f"idle: {idle_before}")
        first = first_step(agent, root, env, args.pushes)
        log(f"first step: {first}")
        logs = log_latency(agent, root, env, args.lines)
        log(f"log latency: {logs}")
        over = overhead(agent, root, env, args.jobs)
        log(f"overhead: {over}")
        idle_after = idle(agent)
        log(f"idle after the runs: {idle_after}")
    finally:
        agent.stop()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "binary": str(args.hangar),
        "first_step": first, "log_latency": logs, "overhead": over,
        "idle": idle_before, "idle_after_runs": idle_after,
    }
    print(f"""
Builds benchmark ({result['machine']})
  push -> first step  p50 {first['from_push_return_ms']['p50']:.1f} ms  p95 {first['from_push_return_ms']['p95']:.1f} ms  (from the push returning; from the push starting: p50 {first['from_push_start_ms']['p50']:.1f} ms, p95 {first['from_push_start_ms']['p95']:.1f} ms; {first['pushes']} pushes)
  log line -> SSE     p50 {logs['p50_ms']:.1f} ms  p95 {logs['p95_ms']:.1f} ms  ({logs['lines']} lines)
  {over['jobs']} jobs drained  {over['wall_s']:.2f} s; `bash -c true` alone {over['shell_only_s']:.2f} s; overhead {over['overhead_per_job_ms']:.1f} ms per job
  idle agent          RSS {idle_before['rss_mib']:.1f} MiB, CPU {idle_before['cpu_percent']:.2f} % (after the runs: {idle_after['rss_mib']:.1f} MiB, {idle_after['cpu_percent']:.2f} %)
""")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
