#!/usr/bin/env python3
"""Git over SSH: Hangar's built-in server against OpenSSH sshd + git-shell.

Both serve the same repositories on loopback ports and are driven by the same
OpenSSH client and git. Operations, alternating between the servers, median
of --runs (at least 5):

  clone        a source-like repository (400 commits, 200 files)
  pack stream  a repository holding one 64 MiB incompressible file
  no-op fetch  `git fetch` in an up-to-date clone
  push         20 new commits

The sshd is private: its own config, host key and authorized_keys in a temp
dir, on a loopback port, started and stopped by PID. It logs in as the
current user with git-shell forced through authorized_keys, the usual way to
host git over sshd. openssh-server is installed with apt-get if missing.

Usage: bench/gitssh.py [--runs N] [--hangar PATH]
(builds `cargo build --release -p hangar-agent` when PATH is not given).
"""

import argparse
import json
import os
import platform
import pwd
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    kw.setdefault("check", True)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(cmd, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on port {port}")


def ensure_sshd():
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd:
        return sshd
    print("==> installing openssh-server", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(sudo + ["apt-get", "update", "-qq"], env=env)
    run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-server"], env=env)
    return "/usr/sbin/sshd"


def git_env(ssh_command):
    return dict(
        os.environ,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_SSH_COMMAND=ssh_command,
    )


def make_source_repo(path):
    """400 commits over 200 text files, written with git fast-import."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(5000)]
    run(["git", "init", "-q", "--bare", "--initial-branch=main", path])
    files = {f"src/m{i:03}.txt": " ".join(rng.choices(words, k=300)) for i in range(200)}
    out = []
    for c in range(400):
        out.append(f"commit refs/heads/main\nmark :{c + 1}\ncommitter Bench <b@e> {1700000000 + c} +0000\n")
        msg = f"change {c}"
        out.append(f"data {len(msg)}\n{msg}\n")
        if c:
            out.append(f"from :{c}\n")
        for name in (rng.sample(sorted(files), 200) if c == 0 else rng.sample(sorted(files), 5)):
            files[name] = files[name] + "\n" + " ".join(rng.choices(words, k=40))
            data = files[name].encode()
            out.append(f"M 100644 inline {name}\ndata {len(data)}\n")
            out.append(data.decode() + "\n")
    run(["git", "fast-import", "--quiet"], cwd=path, input="".join(out).encode())


def make_blob_repo(path, size=64 << 20):
    """One commit holding `size` bytes of incompressible data."""
    work = path + ".work"
    run(["git", "init", "-q", "-b", "main", work])
    with open(os.path.join(work, "blob.bin"), "wb") as f:
        f.write(os.urandom(size))
    env = git_env("ssh")
    run(["git", "add", "blob.bin"], cwd=work, env=env)
    run(["git", "commit", "-q", "-m", "blob"], cwd=work, env=env)
    run(["git", "clone", "-q", "--bare", work, path])
    shutil.rmtree(work)


class Sshd:
    def __init__(self, tmp, client_pub, repos):
        self.dir = os.path.join(tmp, "sshd")
        os.makedirs(self.dir)
        self.port = free_port()
        self.repos = repos
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, "host_key")])
        git_shell = shutil.which("git-shell")
        if not git_shell:
            sys.exit("git-shell not found (it comes with git)")
        keys = os.path.join(self.dir, "authorized_keys")
        with open(keys, "w") as f:
            f.write(
                f'command="{git_shell} -c \\"$SSH_ORIGINAL_COMMAND\\"",no-port-forwarding,'
                f"no-agent-forwarding,no-X11-forwarding,no-pty {client_pub}"
            )
        os.chmod(keys, 0o600)
        config = os.path.join(self.dir, "sshd_config")
        with open(config, "w") as f:
            # Debian's stock settings where they matter for speed (PAM on),
            # plus what a private instance needs.
            f.write(
                f"Port {self.port}\nListenAddress 127.0.0.1\n"
                f"HostKey {self.dir}/host_key\nAuthorizedKeysFile {keys}\n"
                f"PidFile {self.dir}/sshd.pid\nStrictModes no\nUsePAM yes\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\nAcceptEnv LANG LC_* GIT_PROTOCOL\n"
            )
        os.makedirs("/run/sshd", exist_ok=True)
        sshd = ensure_sshd()
        self.proc = subprocess.Popen(
            [sshd, "-D", "-f", config, "-E", os.path.join(self.dir, "log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        self.user = pwd.getpwuid(os.getuid()).pw_name

    def url(self, name):
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.repos}/{name}.git"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class Hangar:
    def __init__(self, tmp, binary, client_pub, repos):
        self.dir = os.path.join(tmp, "hangar")
        self.log = os.path.join(tmp, "hangar.log")
        log = open(self.log, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--data-dir", self.dir],
            stdout=log,
            stderr=log,
            env=dict(os.environ, HANGAR_LOG="warn", HANGAR_MAINTENANCE="false"),
        )
        agent_json = os.path.join(self.dir, "agent.json")
        deadline = time.time() + 30
        while not os.path.exists(agent_json) or "ssh" not in open(agent_json).read():
            if time.time() > deadline or self.proc.poll() is not None:
                sys.exit("the Hangar agent did not start:\n" + open(self.log).read())
            time.sleep(0.05)
        info = json.load(open(agent_json))
        self.url, self.token = info["url"], info["token"]
        self.port = int(info["ssh"].rsplit(":", 1)[1])
        self.api("POST", "/api/v1/keys", {"key": client_pub})
        # Same repositories: their bare copies go where Hangar keeps repos.
        for name in os.listdir(repos):
            repo = name[: -len(".git")]
            self.api("POST", "/api/v1/repos", {"name": f"bench/{repo}"})
            target = os.path.join(self.dir, "repos", "bench", name)
            shutil.rmtree(target)
            shutil.copytree(os.path.join(repos, name), target, symlinks=True)

    def api(self, method, path, body):
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            return json.load(r)

    def url_for(self, name):
        return f"ssh://git@127.0.0.1:{self.port}/bench/{name}.git"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def timed(cmd, cwd, env):
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr.decode()}")
    return elapsed


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    git = run(["git", "--version"]).stdout.decode().strip()
    ssh = run(["ssh", "-V"]).stderr.decode().strip()
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores; {git}; {ssh}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per operation and server (>= 5)")
    parser.add_argument("--hangar", help="the hangar binary (default: build the release one)")
    args = parser.parse_args()
    if args.runs < 5:
        sys.exit("--runs must be at least 5")
    tmp = tempfile.mkdtemp(prefix="hangar-bench-ssh-")
    binary = args.hangar
    if not binary:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        print("==> cargo build --release -p hangar-agent", flush=True)
        run(["cargo", "build", "--release", "-q", "-p", "hangar-agent"], cwd=ROOT, stdout=None, stderr=None)
        # A copy, so another checkout sharing the target dir cannot swap it mid-run.
        binary = shutil.copy(os.path.join(target, "release", "hangar"), os.path.join(tmp, "hangar"))

    servers = []
    try:
        repos = os.path.join(tmp, "repos")
        os.makedirs(repos)
        print("==> making repositories", flush=True)
        make_source_repo(os.path.join(repos, "source.git"))
        make_blob_repo(os.path.join(repos, "blob.git"))
        client = os.path.join(tmp, "client")
        os.makedirs(client)
        key = os.path.join(client, "id_ed25519")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        pub = open(key + ".pub").read().strip()
        ssh_cmd = (
            f"ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes "
            f"-o UserKnownHostsFile={client}/known_hosts -o StrictHostKeyChecking=accept-new -o LogLevel=ERROR"
        )
        env = git_env(ssh_cmd)

        sshd = Sshd(tmp, pub, repos)
        servers.append(sshd)
        hangar = Hangar(tmp, binary, pub, repos)
        servers.append(hangar)
        targets = {"hangar": hangar.url_for, "openssh": sshd.url}

        work = os.path.join(tmp, "work")
        os.makedirs(work)
        # Up-to-date clones for no-op fetches, and clones to push from.
        for name, url in targets.items():
            run(["git", "clone", "-q", url("source"), f"fetch-{name}"], cwd=work, env=env)
            run(["git", "clone", "-q", url("source"), f"push-{name}"], cwd=work, env=env)

        def clone(name, url, i):
            return timed(["git", "clone", "-q", "--bare", url("source"), f"c-{name}-{i}"], work, env)

        def stream(name, url, i):
            return timed(["git", "clone", "-q", "--bare", url("blob"), f"b-{name}-{i}"], work, env)

        def fetch(name, url, i):
            return timed(["git", "fetch", "-q", "origin"], os.path.join(work, f"fetch-{name}"), env)

        def push(name, url, i):
            repo = os.path.join(work, f"push-{name}")
            for n in range(20):
                with open(os.path.join(repo, "bench.txt"), "a") as f:
                    f.write(f"{name} {i} {n} {random.random()}\n")
                run(["git", "add", "bench.txt"], cwd=repo, env=env)
                run(["git", "commit", "-q", "-m", f"bench {i} {n}"], cwd=repo, env=env)
            return timed(["git", "push", "-q", "origin", "HEAD:main"], repo, env)

        operations = [
            ("clone", clone),
            ("pack stream (64 MiB)", stream),
            ("no-op fetch", fetch),
            ("push 20 commits", push),
        ]
        results = {}
        for label, op in operations:
            print(f"==> {label}", flush=True)
            times = {name: [] for name in targets}
            for i in range(args.runs):
                # Alternate which server goes first, so neither always gets a warm cache.
                order = list(targets.items()) if i % 2 == 0 else list(reversed(targets.items()))
                for name, url in order:
                    times[name].append(op(name, url, i))
                for d in os.listdir(work):
                    if d.startswith(("c-", "b-")):
                        shutil.rmtree(os.path.join(work, d))
            results[label] = {name: statistics.median(t) for name, t in times.items()}

        print(f"\nMachine: {machine()}")
        print(f"Median of {args.runs} alternating runs; ratio = Hangar / OpenSSH (below 1 is faster).\n")
        print(f"{'operation':<24}{'Hangar':>10}{'OpenSSH':>10}{'ratio':>8}{'speed-up':>10}")
        for label, r in results.items():
            h, o = r["hangar"], r["openssh"]
            print(f"{label:<24}{h * 1000:>8.0f}ms{o * 1000:>8.0f}ms{h / o:>8.2f}{o / h:>9.2f}x")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
