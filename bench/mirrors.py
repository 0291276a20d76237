#!/usr/bin/env python3
"""Mirror benchmark, against a real `hangar serve` on loopback, in one run:

  no-op sync    --mirrors pull mirrors (default 100) of small repositories
                served by `git daemon`, nothing changed upstream: the wall time
                from requesting a sync of every mirror (POST .../sync) to all of
                them reporting a new successful attempt; median of --runs
  initial       a pull mirror of the bench repository (bench/README.md; the
                `full` profile, `--quick` for the small one) from `git daemon`:
                from POST /api/v1/mirrors to the mirror reporting `ok`, against
                `git clone --mirror` of the same URL; alternated, median of
                --runs, ratio reported

Targets (issue 7): 100 no-op syncs under 10 s on 2 cores; initial mirror
within 1.05x of `git clone --mirror`.

Usage: bench/mirrors.py [--mirrors 100] [--runs 3] [--quick] [--hangar PATH] [--json FILE]
(default binary: $CARGO_TARGET_DIR or ~/.cache/hangar/target, release/hangar).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from builds import Agent  # noqa: E402
from gitserve import add_hangar_arg, build_repo, client_env, free_port, gitout, log, machine_info, require_hangar, run, wait_port  # noqa: E402


class Daemon:
    """`git daemon` over ROOT (git://127.0.0.1:PORT/PATH)."""

    def __init__(self, root: Path, env: dict):
        self.root, self.env, self.port = root, env, free_port()

    def start(self):
        self.proc = subprocess.Popen(
            [str(Path(gitout("--exec-path", env=self.env)) / "git-daemon"), "--reuseaddr",
             "--listen=127.0.0.1", f"--port={self.port}", f"--base-path={self.root}", "--export-all",
             "--max-connections=128", str(self.root)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def url(self, path: str) -> str:
        return f"git://127.0.0.1:{self.port}/{path}"


def wait_mirrors(agent: Agent, done, timeout=600.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = agent.api("GET", "/mirrors")["items"]
        if done(items):
            return items
        time.sleep(0.02)
    raise RuntimeError(f"mirrors did not finish in {timeout}s: {items}")


def small_repos(root: Path, env: dict, n: int):
    """n bare repositories of one commit each, under ROOT/small/."""
    seed = root / "seed"
    run(["git", "init", "-q", "-b", "main", str(seed)], env=env)
    (seed / "README").write_text("mirror me\n")
    run(["git", "-C", str(seed), "add", "-A"], env=env)
    run(["git", "-C", str(seed), "commit", "-qm", "one"], env=env)
    for i in range(n):
        run(["git", "clone", "-q", "--bare", str(seed), str(root / "served" / "small" / f"r{i}.git")], env=env)


def noop_sync(agent: Agent, daemon: Daemon, n: int, runs: int) -> dict:
    for i in range(n):
        agent.api("POST", "/mirrors", {"url": daemon.url(f"small/r{i}.git"), "name": f"small/r{i}",
                                       "interval_secs": 86400})
    wait_mirrors(agent, lambda items: len(items) >= n and all(m["state"] == "ok" for m in items))
    log(f"{n} mirrors cloned")
    samples = []
    for r in range(runs + 1):
        before = {m["repo"]: m["last_attempt"] for m in agent.api("GET", "/mirrors")["items"]}
        t0 = time.monotonic()
        for i in range(n):
            agent.api("POST", f"/mirrors/small/r{i}/sync")
        items = wait_mirrors(agent, lambda items: all(
            m["state"] == "ok" and m["last_attempt"] != before[m["repo"]] for m in items))
        wall = time.monotonic() - t0
        changed = sum(m["last_refs"] or 0 for m in items)
        if changed:
            raise RuntimeError(f"a no-op sync changed {changed} refs")
        if r:  # the first round warms up
            samples.append(wall)
        log(f"no-op sync of {n} mirrors: {wall:.2f} s{'' if r else ' (warm-up)'}")
    return {"mirrors": n, "median_s": statistics.median(samples), "samples_s": samples}


def initial_mirror(agent: Agent, daemon: Daemon, root: Path, env: dict, runs: int) -> dict:
    url = daemon.url("bench/big.git")
    hangar, clone = [], []
    for r in range(runs + 1):
        order = ["hangar", "git"] if r % 2 == 0 else ["git", "hangar"]
        for who in order:
            if who == "hangar":
                name = f"bench/big{r}"
                t0 = time.monotonic()
                agent.api("POST", "/mirrors", {"url": url, "name": name, "interval_secs": 86400})
                while True:
                    m = agent.api("GET", f"/mirrors/{name}")
                    if m["state"] not in ("new", "syncing"):
                        break
                    time.sleep(0.01)
                wall = time.monotonic() - t0
                if m["state"] != "ok":
                    raise RuntimeError(f"the mirror failed: {m}")
                agent.api("DELETE", f"/repos/{name}")
                if r:  # the first round warms up
                    hangar.append(wall)
            else:
                dst = root / f"clone{r}.git"
                t0 = time.monotonic()
                run(["git", "clone", "-q", "--mirror", url, str(dst)], env=env)
                wall = time.monotonic() - t0
                shutil.rmtree(dst)
                if r:
                    clone.append(wall)
            log(f"initial mirror, {who}: {wall:.2f} s{'' if r else ' (warm-up)'}")
    h, g = statistics.median(hangar), statistics.median(clone)
    return {"hangar_s": h, "git_clone_mirror_s": g, "ratio": h / g, "hangar_samples_s": hangar,
            "git_samples_s": clone}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirrors", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the small bench repository (~15 MB)")
    add_hangar_arg(ap)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    require_hangar(args.hangar)

    root = Path(tempfile.mkdtemp(prefix="hangar-bench-mirrors-"))
    (root / "home").mkdir()
    env = client_env(root / "home")
    run(["git", "config", "--global", "user.name", "bench"], env=env)
    run(["git", "config", "--global", "user.email", "bench@example.com"], env=env)
    repo = build_repo("quick" if args.quick else "full", env)
    served = root / "served"
    (served / "bench").mkdir(parents=True)
    shutil.copytree(repo.base, served / "bench" / "big.git")
    small_repos(root, env, args.mirrors)
    daemon = Daemon(served, env)
    daemon.start()
    agent_env = dict(env, HANGAR_ALLOW_LOCAL_MIRRORS="true", HANGAR_MAINTENANCE="false")
    agent = Agent(args.hangar, root, agent_env)
    minfo = machine_info()
    try:
        agent.start()
        try:
            noop = noop_sync(agent, daemon, args.mirrors, args.runs)
            initial = initial_mirror(agent, daemon, root, env, args.runs)
        finally:
            agent.stop()
    finally:
        daemon.stop()
    minfo["loadavg_end"] = os.getloadavg()
    result = {"machine": minfo, "binary": str(args.hangar),
              "bench_repo": {"profile": repo.meta["profile"], "pack_mib": repo.meta["pack_bytes"] / 2**20,
                             "objects": repo.meta["objects"]},
              "noop_sync": noop, "initial_mirror": initial}
    met = lambda ok: "MET" if ok else "NOT MET"  # noqa: E731
    print(f"""
machine: {minfo['cpu']}, nproc {minfo['nproc']}, {minfo['mem']}, kernel {minfo['kernel']}, {minfo['git']}
load average at start {' '.join(f'{x:.2f}' for x in minfo['loadavg_start'])}, at end {' '.join(f'{x:.2f}' for x in minfo['loadavg_end'])}
bench repository: {repo.meta['profile']}, {repo.meta['objects']} objects, pack {repo.meta['pack_bytes'] / 2**20:.1f} MiB; upstream: git daemon on loopback

measurement                                   hangar   git clone --mirror   ratio   target
no-op sync of {noop['mirrors']} mirrors (s)            {noop['median_s']:8.2f}                    -       -   < 10 s: {met(noop['median_s'] < 10)}
initial mirror of the bench repository (s) {initial['hangar_s']:8.2f}             {initial['git_clone_mirror_s']:8.2f}   {initial['ratio']:.2f}x   <= 1.05x: {met(initial['ratio'] <= 1.05)}

all samples (s): no-op sync {', '.join(f'{x:.2f}' for x in noop['samples_s'])}; initial hangar {', '.join(f'{x:.2f}' for x in initial['hangar_samples_s'])}; git clone --mirror {', '.join(f'{x:.2f}' for x in initial['git_samples_s'])}
""")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
