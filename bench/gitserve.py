#!/usr/bin/env python3
"""Git-serving benchmark: Hangar vs `git http-backend` (lighttpd) vs `git daemon`.

Python 3.11, standard library only. See bench/README.md for what is measured
and how to read the output. Entry point: bench/run.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("HANGAR_BENCH_CACHE", Path.home() / ".cache" / "hangar" / "bench"))
DEFAULT_BIN = Path.home() / ".cache" / "hangar" / "target" / "release" / "hangar"
OWNER, NAME = "bench", "big"
REPO_PATH = f"{OWNER}/{NAME}.git"

# Bump when the generator's output changes, so cached repositories are rebuilt.
GEN_VERSION = 2
PROFILES = {
    # ~150 MB packed: ~3000 commits, ~5000 text files, ~330 versions of binary assets.
    "full": dict(seed=20261102, text_files=5000, commits=3000, bin_initial=150,
                 bin_mods=150, bin_bytes=125 << 20, bin_min=16 << 10, bin_max=2 << 20, ext_commits=20),
    # ~15 MB packed, for smoke checks.
    "quick": dict(seed=20261102, text_files=1200, commits=600, bin_initial=40,
                  bin_mods=30, bin_bytes=10 << 20, bin_min=8 << 10, bin_max=512 << 10, ext_commits=20),
}


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


def run(cmd, *, cwd=None, env=None, check=True, capture=True, input=None):
    r = subprocess.run(cmd, cwd=cwd, env=env, input=input,
                       stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE if capture else subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{(r.stderr or b'').decode(errors='replace')[-2000:]}")
    return r


def git(*args, gitdir=None, env=None, check=True):
    cmd = ["git"] + ([f"--git-dir={gitdir}"] if gitdir else []) + list(map(str, args))
    return run(cmd, env=env, check=check)


def gitout(*args, gitdir=None, env=None) -> str:
    return git(*args, gitdir=gitdir, env=env).stdout.decode().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def add_hangar_arg(ap: argparse.ArgumentParser):
    """`--hangar PATH`: the release binary under $CARGO_TARGET_DIR (or ~/.cache/hangar/target)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/hangar/target"))
    ap.add_argument("--hangar", type=Path, default=target / "release" / "hangar")


def require_hangar(binary: Path):
    if not binary.exists():
        sys.exit(f"{binary} is missing: build it with `cargo build --release -p hangar-agent`")


def client_env(home: Path) -> dict:
    """Environment for git clients and servers: no user/system config, no prompts."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("GIT_", "HANGAR_")):
            del env[k]
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", SSH_ASKPASS="", LC_ALL="C")
    return env


# ----------------------------------------------------------------------------
# Repository generator (deterministic, seeded, cached)
# ----------------------------------------------------------------------------

class TextGen:
    def __init__(self, rng: random.Random):
        self.rng = rng
        letters = string.ascii_lowercase
        self.words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(3000)]
        self.punct = [" ", " ", " ", " ", ", ", "(", ") ", ".", " = ", " + ", "::", "; ", " { ", " }", "->"]

    def line(self) -> str:
        r = self.rng
        n = r.randint(1, 10)
        ws = r.choices(self.words, k=n)
        ps = r.choices(self.punct, k=n)
        return "    " * r.randint(0, 4) + "".join(w + p for w, p in zip(ws, ps)).rstrip()

    def lines(self, n: int) -> list[str]:
        return [self.line() for _ in range(n)]


class FastImport:
    def __init__(self, gitdir: Path, env: dict):
        self.p = subprocess.Popen(["git", f"--git-dir={gitdir}", "fast-import", "--quiet", "--done"],
                                  stdin=subprocess.PIPE, env=env)
        self.w = self.p.stdin
        self.mark = 0

    def data(self, b: bytes):
        self.w.write(b"data %d\n" % len(b))
        self.w.write(b)
        self.w.write(b"\n")

    def commit(self, ref: str, who: str, when: int, msg: str, parent: int | None,
               changes: list[tuple[str, bytes | None]]) -> int:
        self.mark += 1
        w = self.w
        w.write(f"commit {ref}\nmark :{self.mark}\n".encode())
        w.write(f"author {who} {when} +0000\ncommitter {who} {when} +0000\n".encode())
        self.data(msg.encode())
        if parent is not None:
            w.write(f"from :{parent}\n".encode())
        for path, content in changes:
            if content is None:
                w.write(f"D {path}\n".encode())
            else:
                w.write(f"M 100644 inline {path}\n".encode())
                self.data(content)
        w.write(b"\n")
        return self.mark

    def tag(self, name: str, mark: int, who: str, when: int, msg: str):
        self.w.write(f"tag {name}\nfrom :{mark}\ntagger {who} {when} +0000\n".encode())
        self.data(msg.encode())

    def reset(self, ref: str, mark: int):
        self.w.write(f"reset {ref}\nfrom :{mark}\n\n".encode())

    def finish(self):
        self.w.write(b"done\n")
        self.w.close()
        if self.p.wait() != 0:
            raise RuntimeError("git fast-import failed")


def generate_history(gitdir: Path, prof: dict, env: dict) -> dict:
    """Writes the whole history with git fast-import. Returns a description."""
    rng = random.Random(prof["seed"])
    tg = TextGen(rng)
    authors = [f"{n} <{n.lower()}@example.com>" for n in
               ["Ada", "Brian", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lea"]]
    tops = {"src": ".rs", "lib": ".c", "tests": ".py", "docs": ".md", "tools": ".sh", "web": ".ts"}
    texts: dict[str, list[str]] = {}
    bins: dict[str, int] = {}  # path -> size

    def new_text_path():
        top = rng.choice(list(tops))
        depth = rng.randint(1, 3)
        parts = [top] + [f"{rng.choice(tg.words)}{rng.randint(0, 30)}" for _ in range(depth)]
        return "/".join(parts) + "/" + rng.choice(tg.words) + tops[top]

    # Binary assets: sizes drawn log-uniform, then scaled so that their sum is exactly
    # bin_bytes (random bytes do not compress: this fixes the pack size).
    brng = random.Random(prof["seed"] + 1)
    lo, hi = prof["bin_min"], prof["bin_max"]
    nbin = prof["bin_initial"] + prof["bin_mods"]
    sizes = [lo * (hi / lo) ** brng.random() for _ in range(nbin)]
    scale = prof["bin_bytes"] / sum(sizes)
    sizes = [max(1024, int(x * scale)) for x in sizes]
    bin_commits = set(brng.sample(range(1, prof["commits"]), prof["bin_mods"]))

    def bin_size():
        return sizes.pop()

    def new_bin_path():
        kind, ext = rng.choice([("images", ".png"), ("sounds", ".wav"), ("models", ".bin"), ("fonts", ".ttf")])
        return f"assets/{kind}/{rng.choice(tg.words)}_{rng.randint(0, 9999):04d}{ext}"

    def enc(lines):
        return ("\n".join(lines) + "\n").encode()

    def edit(lines: list[str]) -> list[str]:
        lines = list(lines)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            pos = rng.randint(0, len(lines))
            k = rng.randint(1, 8)
            if op < 0.45:
                lines[pos:pos + k] = tg.lines(k)
            elif op < 0.85 or len(lines) < 20:
                lines[pos:pos] = tg.lines(k)
            else:
                del lines[pos:pos + k]
        return lines

    fi = FastImport(gitdir, env)
    t0 = 1_700_000_000
    when = t0
    changes = []
    for _ in range(prof["text_files"]):
        p = new_text_path()
        while p in texts:
            p = new_text_path()
        texts[p] = tg.lines(int(20 * (20 ** rng.random())))  # 20..400 lines
        changes.append((p, enc(texts[p])))
    for _ in range(prof["bin_initial"]):
        p = new_bin_path()
        bins[p] = bin_size()
        changes.append((p, brng.randbytes(bins[p])))
    changes.append((".gitattributes", b"*.png binary\n*.wav binary\n*.bin binary\n*.ttf binary\n"))
    main = fi.commit("refs/heads/main", authors[0], when, "Initial import\n", None, changes)
    hot = list(texts)
    rng.shuffle(hot)

    def pick_hot():
        return hot[int(len(hot) * rng.random() ** 3)]

    def make_commit(ref, parent, overlay, i, allow_bins=True):
        nonlocal when
        when += rng.randint(60, 7200)
        ch = []
        touched = set()
        for _ in range(min(12, 1 + int(rng.expovariate(0.6)))):
            p = pick_hot()
            if p in touched or p not in texts and p not in overlay:
                continue
            touched.add(p)
            cur = overlay.get(p, texts.get(p))
            if cur is None:
                continue
            overlay[p] = edit(cur)
            ch.append((p, enc(overlay[p])))
        r = rng.random()
        if r < 0.03:
            p = new_text_path()
            if p not in texts and p not in overlay:
                overlay[p] = tg.lines(rng.randint(10, 200))
                hot.append(p)
                ch.append((p, enc(overlay[p])))
        elif r < 0.04:
            p = rng.choice(hot)
            if (p in texts or p in overlay) and p not in touched:
                overlay[p] = None
                ch.append((p, None))
        if allow_bins and i in bin_commits:
            if brng.random() < 0.7:
                p = brng.choice(sorted(bins))
            else:
                p = new_bin_path()
            bins[p] = bin_size()
            ch.append((p, brng.randbytes(bins[p])))
        if not ch:
            p = pick_hot()
            cur = overlay.get(p, texts.get(p)) or tg.lines(20)
            overlay[p] = edit(cur)
            ch.append((p, enc(overlay[p])))
        msg = f"{rng.choice(['Fix', 'Add', 'Refactor', 'Update', 'Tidy', 'Speed up'])} " \
              f"{' '.join(rng.choices(tg.words, k=rng.randint(2, 6)))} (#{i})\n\n" + \
              "\n".join(" ".join(rng.choices(tg.words, k=10)) for _ in range(rng.randint(0, 4))) + "\n"
        return fi.commit(ref, rng.choice(authors), when, msg, parent, ch)

    def apply(overlay):
        for p, v in overlay.items():
            if v is None:
                texts.pop(p, None)
            else:
                texts[p] = v

    ncommits = 1
    tags = 0
    for i in range(1, prof["commits"]):
        ov = {}
        main = make_commit("refs/heads/main", main, ov, i)
        apply(ov)
        ncommits += 1
        if i % 100 == 0:
            tags += 1
            fi.tag(f"v0.{i // 100}.0", main, authors[1], when, f"Release 0.{i // 100}.0\n")
        if i % 500 == 0:
            fi.reset(f"refs/heads/release/0.{i // 100}", main)
    # Two branches of `ext_commits` commits on top of main:
    #  refs/heads/next  is served (clients that are behind fetch it: "fetch of 20 new commits");
    #  refs/bench/push  is not served (the client pushes it: "push of 20 commits").
    saved_when = when
    ext = {}
    for ref in ("refs/heads/next", "refs/bench/push"):
        when = saved_when
        ov = {}
        tip = main
        for j in range(prof["ext_commits"]):
            tip = make_commit(ref, tip, ov, 100000 + j, allow_bins=False)
        ext[ref] = tip
        ncommits += prof["ext_commits"]
    fi.finish()
    return dict(commits=ncommits, main_commits=prof["commits"], tags=tags,
                text_files=len(texts), binary_files=len(bins))


def tree_copy(src: Path, dst: Path, link_packs=True):
    """Copy a bare repository; pack files are hard-linked (git never writes them in place)."""
    def cp(s, d):
        if link_packs and "/objects/pack/" in s:
            os.link(s, d)
        else:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, copy_function=cp, symlinks=True)


@dataclass
class BenchRepo:
    dir: Path
    meta: dict

    @property
    def gen(self):  # all objects incl. refs/bench/push; the push client
        return self.dir / "gen.git"

    @property
    def base(self):  # what every server serves (packed with bitmaps + commit-graph)
        return self.dir / "base.git"

    @property
    def fclient(self):  # a clone that is `ext_commits` behind on `next`
        return self.dir / "fclient.git"

    @property
    def noop(self):  # an up-to-date clone
        return self.dir / "noop.git"


def build_repo(profile: str, env: dict) -> BenchRepo:
    prof = PROFILES[profile]
    key = hashlib.sha256(json.dumps([GEN_VERSION, prof], sort_keys=True).encode()).hexdigest()[:12]
    d = CACHE / f"repo-{profile}-{key}"
    if (d / "meta.json").exists():
        meta = json.loads((d / "meta.json").read_text())
        log(f"using cached repository {d} (pack {meta['pack_bytes'] / 2**20:.1f} MiB)")
        return BenchRepo(d, meta)
    if d.exists():
        shutil.rmtree(d)
    tmp = Path(str(d) + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    t0 = time.monotonic()
    log(f"generating the {profile} repository in {d} (once; cached afterwards) ...")
    gen, base, fcl, noop = (tmp / n for n in ("gen.git", "base.git", "fclient.git", "noop.git"))
    git("init", "--quiet", "--bare", "-b", "main", gen, env=env)
    desc = generate_history(gen, prof, env)
    log(f"  history written ({time.monotonic() - t0:.0f}s); full delta search repack of the source ...")
    git("-c", "pack.threads=0", "repack", "-adf", "--quiet", gitdir=gen, env=env)
    log(f"  ({time.monotonic() - t0:.0f}s) building the served repository ...")
    git("init", "--quiet", "--bare", "-b", "main", base, env=env)
    git("fetch", "--quiet", "--no-tags", gen, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*",
        gitdir=base, env=env)
    git("repack", "-adb", "--write-bitmap-index", "--quiet", gitdir=base, env=env)
    git("commit-graph", "write", "--reachable", gitdir=base, env=env)
    git("pack-refs", "--all", gitdir=base, env=env)
    packs = list((base / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 1, packs
    refs = gitout("for-each-ref", "--format=%(objectname) %(refname)", gitdir=base, env=env).splitlines()
    refs = {r.split()[1]: r.split()[0] for r in refs}
    main, nxt = refs["refs/heads/main"], refs["refs/heads/next"]
    push_tip = gitout("rev-parse", "refs/bench/push", gitdir=gen, env=env)
    log(f"  ({time.monotonic() - t0:.0f}s) building the client repositories ...")
    # Up-to-date client: the served pack, hard-linked, with remote-tracking refs.
    git("init", "--quiet", "--bare", "-b", "main", noop, env=env)
    for f in (base / "objects" / "pack").iterdir():
        os.link(f, noop / "objects" / "pack" / f.name)
    upd = "".join(f"create {client_ref(r)} {o}\n" for r, o in refs.items())
    run(["git", f"--git-dir={noop}", "update-ref", "--stdin"], env=env, input=upd.encode())
    # Client that is behind on `next` by ext_commits: objects without next's new commits.
    git("init", "--quiet", "--bare", "-b", "main", fcl, env=env)
    specs = [f"{r}:{client_ref(r)}" for r in refs if r != "refs/heads/next"]
    git("fetch", "--quiet", "--no-tags", base, *specs, gitdir=fcl, env=env)
    git("update-ref", "refs/remotes/origin/next", main, gitdir=fcl, env=env)
    git("repack", "-ad", "--quiet", gitdir=fcl, env=env)
    git("pack-refs", "--all", gitdir=fcl, env=env)
    if git("cat-file", "-e", nxt, gitdir=fcl, env=env, check=False).returncode == 0:
        raise RuntimeError("fetch client unexpectedly has the new commits")
    meta = dict(profile=profile, params=prof, gen_version=GEN_VERSION, **desc,
                pack_bytes=packs[0].stat().st_size, refs=refs, main=main, next=nxt, push_tip=push_tip,
                objects=int(gitout("count-objects", "-v", gitdir=base, env=env)
                            .split("in-pack: ")[1].split()[0]),
                generated_in_s=round(time.monotonic() - t0, 1))
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    tmp.rename(d)
    log(f"  done in {time.monotonic() - t0:.0f}s: {meta['commits']} commits, {meta['objects']} objects, "
        f"pack {meta['pack_bytes'] / 2**20:.1f} MiB")
    return BenchRepo(d, meta)


def client_ref(r: str) -> str:
    return "refs/remotes/origin/" + r[len("refs/heads/"):] if r.startswith("refs/heads/") else r


FETCH_SPECS = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]


def install_served_repo(repo: BenchRepo, dst: Path, env: dict):
    """Make the bare repository at dst (existing or not) serve exactly the base pack:
    same pack, .idx, .bitmap, .rev and commit-graph bytes for every server."""
    if not dst.exists():
        git("init", "--quiet", "--bare", "-b", "main", dst, env=env)
    pack_dir = dst / "objects" / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    for f in pack_dir.iterdir():
        f.unlink()
    for f in (repo.base / "objects" / "pack").iterdir():
        shutil.copy2(f, pack_dir / f.name)
    info = dst / "objects" / "info"
    info.mkdir(exist_ok=True)
    shutil.copy2(repo.base / "objects" / "info" / "commit-graph", info / "commit-graph")
    have = gitout("for-each-ref", "--format=%(refname)", gitdir=dst, env=env).split()
    upd = "".join(f"delete {r}\n" for r in have if r not in repo.meta["refs"])
    upd += "".join(f"update {r} {o}\n" for r, o in repo.meta["refs"].items())
    run(["git", f"--git-dir={dst}", "update-ref", "--stdin"], env=env, input=upd.encode())
    git("symbolic-ref", "HEAD", "refs/heads/main", gitdir=dst, env=env)
    git("pack-refs", "--all", gitdir=dst, env=env)


# ----------------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------------

class Server:
    name = "?"
    proc: subprocess.Popen | None = None
    user = "x"
    token: str | None = None

    def url(self) -> str: ...

    def git_url(self) -> str:
        return self.url()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.wait(5)


class LighttpdBackend(Server):
    name = "http-backend"

    def __init__(self, root: Path, env: dict, auth: bool):
        self.root = root
        self.env = env
        self.auth = auth
        self.repo_dir = root / "repos" / REPO_PATH
        self.port = free_port()
        self.token = "hgr_bench_" + hashlib.sha1(str(root).encode()).hexdigest()[:20] if auth else None

    def start(self):
        backend = Path(gitout("--exec-path", env=self.env)) / "git-http-backend"
        conf = self.root / "lighttpd.conf"
        (self.root / "www").mkdir(exist_ok=True)
        (self.root / "upload").mkdir(exist_ok=True)
        auth = ""
        if self.auth:
            (self.root / "users").write_text(f"{self.user}:{self.token}\n")
            auth = f'''
auth.backend = "plain"
auth.backend.plain.userfile = "{self.root / 'users'}"
auth.require = ( "/git/" => ( "method" => "basic", "realm" => "bench", "require" => "valid-user" ) )
'''
        home = self.env["HOME"]
        conf.write_text(f'''
server.modules = ( "mod_alias", "mod_setenv", "mod_cgi", "mod_auth", "mod_authn_file" )
server.bind = "127.0.0.1"
server.port = {self.port}
server.document-root = "{self.root / 'www'}"
server.errorlog = "{self.root / 'error.log'}"
server.upload-dirs = ( "{self.root / 'upload'}" )
server.pid-file = "{self.root / 'lighttpd.pid'}"
server.max-connections = 256
# Stream CGI output to the client with back-pressure instead of buffering whole packs.
server.stream-response-body = 2
server.stream-request-body = 2
{auth}
alias.url = ( "/git/" => "{backend}/" )
$HTTP["url"] =~ "^/git/" {{
    cgi.assign = ( "" => "" )
    setenv.add-environment = (
        "GIT_PROJECT_ROOT" => "{self.root / 'repos'}",
        "GIT_HTTP_EXPORT_ALL" => "",
        "HOME" => "{home}",
        "GIT_CONFIG_NOSYSTEM" => "1",
    )
}}
''')
        if not self.auth:
            git("config", "http.receivepack", "true", gitdir=self.repo_dir, env=self.env)
        self.proc = subprocess.Popen(["lighttpd", "-D", "-f", str(conf)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "wb"),
            start_new_session=True)
        wait_port(self.port)

    def url(self):
        return f"http://127.0.0.1:{self.port}/git/{REPO_PATH}"

    def git_url(self):
        if self.token:
            return f"http://{self.user}:{self.token}@127.0.0.1:{self.port}/git/{REPO_PATH}"
        return self.url()


class GitDaemon(Server):
    name = "daemon"

    def __init__(self, root: Path, env: dict):
        self.root = root
        self.env = env
        self.repo_dir = root / "repos" / REPO_PATH
        self.port = free_port()

    def start(self):
        base = self.root / "repos"
        self.proc = subprocess.Popen(
            [str(Path(gitout("--exec-path", env=self.env)) / "git-daemon"), "--reuseaddr", "--listen=127.0.0.1", f"--port={self.port}",
             f"--base-path={base}", "--export-all", "--enable=receive-pack", "--max-connections=64", str(base)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "wb"),
            start_new_session=True)
        wait_port(self.port)

    def url(self):
        return f"git://127.0.0.1:{self.port}/{REPO_PATH}"


class Hangar(Server):
    name = "hangar"

    def __init__(self, binary: Path, root: Path, env: dict, public: bool):
        self.bin = binary
        self.root = root
        self.data = root / "data"
        self.env = env
        self.public = public
        self.repo_dir = self.data / "repos" / REPO_PATH
        self.port = free_port()

    def start(self):
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--data-dir", str(self.data), "--http", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=open(self.root / "stdout.log", "wb"), stderr=open(self.root / "stderr.log", "wb"),
            start_new_session=True)
        end = time.monotonic() + 60
        agent_json = self.data / "agent.json"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hangar serve exited with {self.proc.returncode}; see {self.root}/stderr.log:\n"
                                   + (self.root / "stderr.log").read_text(errors="replace")[-2000:])
            if agent_json.exists():
                with contextlib.suppress(Exception):
                    with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                        if r.status == 200:
                            break
            if time.monotonic() > end:
                raise RuntimeError(f"hangar did not answer /healthz within 60s; see {self.root}/stderr.log")
            time.sleep(0.1)
        info = json.loads(agent_json.read_text())
        self.token = info["token"]
        log(f"hangar serving at {info.get('url')} (pid {self.proc.pid})")

    def create_repo(self):
        cmd = [str(self.bin), "--data-dir", str(self.data), "repo", "create", f"{OWNER}/{NAME}"]
        if self.public:
            cmd.append("--public")
        r = run(cmd, env=self.env, check=False)
        if r.returncode != 0:
            log(f"`{' '.join(cmd[1:])}` failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}; "
                "trying the REST API")
            req = urllib.request.Request(
                f"http://127.0.0.1:{self.port}/api/v1/repos", method="POST",
                data=json.dumps({"name": f"{OWNER}/{NAME}", "public": self.public}).encode(),
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        if not (self.repo_dir / "HEAD").exists():
            raise RuntimeError(f"hangar created no bare repository at {self.repo_dir}")

    def url(self):
        return f"http://127.0.0.1:{self.port}/{REPO_PATH}"

    def git_url(self):
        if self.public:
            return self.url()
        return f"http://{self.user}:{self.token}@127.0.0.1:{self.port}/{REPO_PATH}"

    def version(self) -> str:
        r = run([str(self.bin), "--version"], env=self.env, check=False)
        return r.stdout.decode(errors="replace").strip() or "?"


# ----------------------------------------------------------------------------
# Process tree sampling (RSS)
# ----------------------------------------------------------------------------

def proc_status(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def proc_parents() -> dict[int, int]:
    parent = {}
    for e in os.scandir("/proc"):
        if e.name.isdigit():
            try:
                with open(f"/proc/{e.name}/stat", "rb") as f:
                    s = f.read()
                fields = s[s.rindex(b")") + 2:].split()
                if fields[0] not in (b"Z", b"X"):  # zombies wait for their parent's reaping
                    parent[int(e.name)] = int(fields[1])
            except (OSError, ValueError):
                pass
    return parent


def descendants(pid: int, parent: dict[int, int] | None = None) -> list[int]:
    if parent is None:
        parent = proc_parents()
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        frontier += kids
    return out


class Sampler(threading.Thread):
    """Samples VmRSS of each server process (alone) and of its children (summed)."""

    def __init__(self, servers: list[Server], interval=0.05):
        super().__init__(daemon=True)
        self.servers = servers
        self.interval = interval
        self.phase = "setup"
        self.peak: dict[tuple[str, str], int] = {}
        self.kids_peak: dict[tuple[str, str], int] = {}
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.wait(self.interval):
            parents = proc_parents()
            for s in self.servers:
                if not s.pid:
                    continue
                rss = proc_status(s.pid).get("VmRSS", 0)
                k = (s.name, self.phase)
                self.peak[k] = max(self.peak.get(k, 0), rss)
                kids = sum(proc_status(c).get("VmRSS", 0) for c in descendants(s.pid, parents))
                self.kids_peak[k] = max(self.kids_peak.get(k, 0), kids)

    def max_over(self, table, name, phases=None):
        return max((v for (n, p), v in table.items() if n == name and (phases is None or p in phases)), default=0)


def wait_quiet(server: Server, timeout=60.0):
    """Waits until the server has no child processes (e.g. background maintenance after a push)."""
    if not server.pid:
        return
    end = time.monotonic() + timeout
    while descendants(server.pid):
        if time.monotonic() > end:
            log(f"warning: {server.name} still has child processes after {timeout:.0f}s; going on")
            return
        time.sleep(0.05)


# ----------------------------------------------------------------------------
# Protocol v2 fetch, discarding the pack
# ----------------------------------------------------------------------------

def pkt(s: bytes) -> bytes:
    return b"%04x" % (len(s) + 4) + s


def v2_request(command: bytes, args: list[bytes]) -> bytes:
    return (pkt(b"command=" + command + b"\n") + pkt(b"agent=hangar-bench/1\n") + pkt(b"object-format=sha1\n")
            + b"0001" + b"".join(pkt(a) for a in args) + b"0000")


def fetch_args(wants: list[str]) -> list[bytes]:
    # What `git clone` asks for, minus progress: thin-pack is off for a clone; ofs-delta on.
    return [b"ofs-delta\n", b"no-progress\n"] + [b"want %s\n" % w.encode() for w in wants] + [b"done\n"]


def read_exact(r, n: int) -> bytes:
    b = r.read(n)
    if len(b) == n:
        return b
    parts = [b]
    got = len(b)
    while got < n:
        c = r.read(n - got)
        if not c:
            raise RuntimeError(f"unexpected end of stream (wanted {n} bytes, got {got})")
        parts.append(c)
        got += len(c)
    return b"".join(parts)


@dataclass
class StreamResult:
    total_s: float
    first_byte_s: float
    pack_bytes: int
    objects: int


def read_fetch_response(r, t0: float) -> StreamResult:
    """Reads a v2 fetch response; the pack (side band 1) is counted and discarded."""
    in_pack = False
    first = None
    nbytes = 0
    header = b""
    while True:
        h = read_exact(r, 4)
        n = int(h, 16)
        if n in (0, 1, 2):  # flush, delim, response-end
            if n == 0 and in_pack:
                break
            if n == 0:
                raise RuntimeError("fetch response ended before the packfile section")
            continue
        data = read_exact(r, n - 4)
        if not in_pack:
            if data.startswith(b"ERR "):
                raise RuntimeError("server error: " + data.decode(errors="replace"))
            if data == b"packfile\n":
                in_pack = True
            continue
        band = data[0]
        if band == 1:
            if first is None:
                first = time.perf_counter() - t0
            if len(header) < 12:
                header += data[1:13 - len(header)]
            nbytes += len(data) - 1
        elif band == 3:
            raise RuntimeError("server error: " + data[1:].decode(errors="replace"))
    total = time.perf_counter() - t0
    if header[:4] != b"PACK":
        raise RuntimeError(f"no pack in the response (header {header!r})")
    return StreamResult(total, first or total, nbytes, int.from_bytes(header[8:12], "big"))


def parse_ls_refs(r) -> list[str]:
    oids = []
    while True:
        n = int(read_exact(r, 4), 16)
        if n == 0:
            return oids
        if n < 4:
            continue
        line = read_exact(r, n - 4)
        if line.startswith(b"ERR "):
            raise RuntimeError(line.decode(errors="replace"))
        oids.append(line.split()[0].decode())


def http_parts(server: Server):
    from urllib.parse import urlsplit
    u = urlsplit(server.url())
    headers = {"Content-Type": "application/x-git-upload-pack-request",
               "Accept": "application/x-git-upload-pack-result", "Git-Protocol": "version=2",
               "User-Agent": "git/2.47-hangar-bench"}
    if server.token and not getattr(server, "public", False):
        cred = base64.b64encode(f"{server.user}:{server.token}".encode()).decode()
        headers["Authorization"] = f"Basic {cred}"
    return u.hostname, u.port, u.path, headers


class V2Client:
    """Speaks protocol v2 to a server (HTTP POST .../git-upload-pack, git://, or a local pipe)."""

    def __init__(self, server: Server | None, pipe_repo: Path | None = None, env=None):
        self.server = server
        self.pipe_repo = pipe_repo
        self.env = env

    def _exchange(self, body: bytes, handler):
        t0 = time.perf_counter()
        s = self.server
        if s is None:  # pipe floor: what http-backend itself runs, without HTTP
            env = dict(self.env, GIT_PROTOCOL="version=2")
            p = subprocess.Popen(["git", "upload-pack", "--stateless-rpc", str(self.pipe_repo)], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1 << 20)
            p.stdin.write(body)
            p.stdin.close()
            try:
                return handler(p.stdout, t0)
            finally:
                p.stdout.close()
                if p.wait() != 0:
                    raise RuntimeError(f"git upload-pack exited with {p.returncode}")
        if isinstance(s, GitDaemon):
            path = f"/{REPO_PATH}"
            with socket.create_connection(("127.0.0.1", s.port)) as sock:
                sock.sendall(pkt(f"git-upload-pack {path}\0host=127.0.0.1:{s.port}\0\0version=2\0".encode()))
                r = sock.makefile("rb", buffering=1 << 20)
                while True:  # capability advertisement
                    n = int(read_exact(r, 4), 16)
                    if n == 0:
                        break
                    if n > 4:
                        read_exact(r, n - 4)
                sock.sendall(body)
                res = handler(r, t0)
                sock.sendall(b"0000")
                r.close()
                return res
        host, port, path, headers = http_parts(s)
        conn = http.client.HTTPConnection(host, port, timeout=120, blocksize=1 << 20)
        try:
            conn.request("POST", path + "/git-upload-pack", body=body, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"{s.name}: HTTP {resp.status} {resp.reason}: {resp.read(500)!r}")
            ctype = resp.getheader("Content-Type", "")
            if ctype != "application/x-git-upload-pack-result":
                raise RuntimeError(f"{s.name}: unexpected Content-Type {ctype!r}")
            res = handler(resp, t0)
            resp.read()
            return res
        finally:
            conn.close()

    def ls_refs(self) -> list[str]:
        return self._exchange(v2_request(b"ls-refs", [b"ref-prefix refs/heads/\n", b"ref-prefix refs/tags/\n"]),
                              lambda r, t0: parse_ls_refs(r))

    def stream_pack(self, wants: list[str]) -> StreamResult:
        return self._exchange(v2_request(b"fetch", fetch_args(wants)), read_fetch_response)


# ----------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------

@dataclass
class Ctx:
    repo: BenchRepo
    servers: list[Server]
    work: Path
    env: dict
    runs: int
    sampler: Sampler
    pipe_repo: Path
    results: dict = field(default_factory=dict)  # measurement -> server -> [values]
    extra: dict = field(default_factory=dict)


def timed(cmd, env) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n"
                           f"{r.stderr.decode(errors='replace')[-2000:]}")
    return dt


def rounds(ctx: Ctx, name: str, participants: list, fn, warmup=1, before=None):
    """Alternates the participants: every round runs each once, the order rotating between rounds."""
    ctx.sampler.phase = name
    res = ctx.results.setdefault(name, {})
    n = len(participants)
    for i in range(warmup + ctx.runs):
        order = participants[i % n:] + participants[:i % n]
        for p in order:
            srv = p if isinstance(p, Server) else None
            for s in ctx.servers:
                wait_quiet(s)
            if before:
                before(p)
            v = fn(p)
            label = p.name if srv else p
            if i >= warmup:
                res.setdefault(label, []).append(v)
        log(f"  {name}: round {i + 1}/{warmup + ctx.runs}" + (" (warm-up)" if i < warmup else ""))


def m_pack_streaming(ctx: Ctx):
    wants = sorted(set(ctx.repo.meta["refs"].values()))
    clients = {s.name: V2Client(s) for s in ctx.servers}
    clients["pipe"] = V2Client(None, ctx.pipe_repo, ctx.env)
    expected = {}
    for name, c in clients.items():  # sanity: every server advertises the same refs
        got = sorted(set(c.ls_refs()))
        if got != wants:
            raise RuntimeError(f"{name}: ls-refs answered {len(got)} oids, expected {len(wants)}")
    ttfb = ctx.results.setdefault("first_byte", {})

    def one(name):
        r = clients[name].stream_pack(wants)
        expected.setdefault(name, set()).add((r.pack_bytes, r.objects))
        if ctx.sampler.phase == "pack_streaming" and one.count >= len(clients):
            ttfb.setdefault(name, []).append(r.first_byte_s)
        one.count += 1
        return r.total_s
    one.count = 0
    rounds(ctx, "pack_streaming", list(clients), one)
    ctx.extra["streamed_pack"] = {k: sorted(v) for k, v in expected.items()}


def m_clone(ctx: Ctx):
    dst = ctx.work / "clone"

    def one(s: Server):
        if dst.exists():
            shutil.rmtree(dst)
        t = timed(["git", "clone", "--bare", "--quiet", s.git_url(), str(dst)], ctx.env)
        got = gitout("rev-parse", "refs/heads/next", gitdir=dst, env=ctx.env)
        if got != ctx.repo.meta["next"]:
            raise RuntimeError(f"{s.name}: clone has next={got}")
        shutil.rmtree(dst)
        return t
    rounds(ctx, "clone", ctx.servers, one)


def m_noop_fetch(ctx: Ctx):
    noop = ctx.work / "noop.git"  # a copy: the cached client stays pristine
    tree_copy(ctx.repo.noop, noop)

    def one(s: Server):
        return timed(["git", f"--git-dir={noop}", "fetch", "--quiet", s.git_url()] + FETCH_SPECS,
                     ctx.env)
    rounds(ctx, "noop_fetch", ctx.servers, one, warmup=2)


def m_fetch20(ctx: Ctx):
    dst = ctx.work / "fclient.git"

    def prep(s):
        if dst.exists():
            shutil.rmtree(dst)
        tree_copy(ctx.repo.fclient, dst)

    def one(s: Server):
        t = timed(["git", f"--git-dir={dst}", "fetch", "--quiet", s.git_url()] + FETCH_SPECS, ctx.env)
        got = gitout("rev-parse", "refs/remotes/origin/next", gitdir=dst, env=ctx.env)
        if got != ctx.repo.meta["next"]:
            raise RuntimeError(f"{s.name}: fetch left next at {got}")
        return t
    rounds(ctx, "fetch20", ctx.servers, one, before=prep)
    shutil.rmtree(dst, ignore_errors=True)


def m_concurrent(ctx: Ctx, n=8):
    """8 clients clone at once, each speaking protocol v2 like `git clone` does on the wire
    (ls-refs, then fetch of every ref tip) and discarding the pack. On a 2-core machine
    eight real `git clone`s would spend most of the CPU in their own index-pack (8 x 150 MB),
    which is not the server's cost and would hide it; real clients sit on other machines."""
    wants = sorted(set(ctx.repo.meta["refs"].values()))
    size = ctx.repo.meta["pack_bytes"]

    def one(s: Server):
        c = V2Client(s)
        errors, sizes = [], []
        start = threading.Barrier(n + 1)

        def clone():
            try:
                start.wait()
                c.ls_refs()
                sizes.append(c.stream_pack(wants).pack_bytes)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=clone) for _ in range(n)]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"{s.name}: {len(errors)} of {n} concurrent clones failed: {errors[0]}")
        if len(set(sizes)) != 1 or abs(sizes[0] - size) > size * 0.1:
            raise RuntimeError(f"{s.name}: concurrent clones got packs of {sorted(set(sizes))} bytes")
        return dt
    rounds(ctx, "concurrent_clones", ctx.servers, one)


def m_concurrent_git(ctx: Ctx, n=8):
    """--real-clones: 8 x `git clone --bare` at once (client index-pack included)."""
    def one(s: Server):
        dsts = [ctx.work / f"cc{i}" for i in range(n)]
        for d in dsts:
            if d.exists():
                shutil.rmtree(d)
        t0 = time.perf_counter()
        procs = [subprocess.Popen(["git", "clone", "--bare", "--quiet", s.git_url(), str(d)], env=ctx.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for d in dsts]
        errs = [(p.wait(), p.stderr.read()) for p in procs]
        t = time.perf_counter() - t0
        bad = [e for e in errs if e[0] != 0]
        if bad:
            raise RuntimeError(f"{s.name}: {len(bad)} of {n} concurrent clones failed: "
                               f"{bad[0][1].decode(errors='replace')[-1000:]}")
        for d in dsts:
            shutil.rmtree(d)
        return t
    rounds(ctx, "concurrent_clones", ctx.servers, one)


def m_push20(ctx: Ctx):
    spec = "refs/bench/push:refs/heads/pushed"

    def one(s: Server):
        t = timed(["git", f"--git-dir={ctx.repo.gen}", "push", "--quiet", s.git_url(), spec], ctx.env)
        got = gitout("rev-parse", "refs/heads/pushed", gitdir=s.repo_dir, env=ctx.env)
        if got != ctx.repo.meta["push_tip"]:
            raise RuntimeError(f"{s.name}: push left pushed at {got}")
        # Undo through the server itself (untimed), so the next round pushes the same 20 commits.
        r = run(["git", f"--git-dir={ctx.repo.gen}", "push", "--quiet", s.git_url(), ":refs/heads/pushed"],
                env=ctx.env, check=False)
        if r.returncode != 0:
            log(f"warning: {s.name}: deleting the pushed branch failed: {r.stderr.decode(errors='replace')}; "
                "deleting it in the repository")
            git("update-ref", "-d", "refs/heads/pushed", gitdir=s.repo_dir, env=ctx.env)
        return t
    rounds(ctx, "push20", ctx.servers, one)


MEASUREMENTS = {
    "pack_streaming": m_pack_streaming,
    "clone": m_clone,
    "noop_fetch": m_noop_fetch,
    "fetch20": m_fetch20,
    "concurrent_clones": m_concurrent,
    "push20": m_push20,
}

ROWS = [  # key, label, unit scale, unit, target (ratio vs http-backend)
    ("clone", "full clone (git clone --bare)", 1, "s", None),
    ("pack_streaming", "pack streaming (v2 fetch, discarded)", 1, "s", 1.05),
    ("first_byte", "time to first pack byte", 1000, "ms", None),
    ("noop_fetch", "no-op fetch", 1000, "ms", 1.2),
    ("fetch20", "fetch of 20 new commits", 1000, "ms", None),
    ("push20", "push of 20 commits", 1000, "ms", None),
    ("concurrent_clones", "8 concurrent clones (v2, wall)", 1, "s", 1.05),
]


# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------

def machine_info() -> dict:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    lv = run(["lighttpd", "-v"], check=False).stdout.decode(errors="replace").strip()
    return dict(nproc=os.cpu_count(), cpu=cpu, mem=mem, kernel=platform.release(),
                loadavg_start=os.getloadavg(), git=gitout("--version"), lighttpd=lv.split(" - ")[0])


def fmt(v, scale):
    x = v * scale
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.3f}" if x < 1 else f"{x:.2f}"


def report(ctx: Ctx, minfo: dict, out=sys.stdout):
    names = [s.name for s in ctx.servers]
    meta = ctx.repo.meta
    p = lambda *a: print(*a, file=out)
    p()
    p("Hangar git-serving benchmark  (" + time.strftime("%Y-%m-%d %H:%M:%S %Z") + ")")
    la = " ".join(f"{x:.2f}" for x in minfo["loadavg_start"])
    lm = " ".join(f"{x:.2f}" for x in minfo.get("loadavg_measure", ()))
    le = " ".join(f"{x:.2f}" for x in os.getloadavg())
    p(f"machine: {minfo['cpu']}, nproc {minfo['nproc']}, {minfo['mem']}, Linux {minfo['kernel']}")
    p(f"load average (1/5/15 min): at start {la}; when measuring began {lm}; at end {le}")
    p(f"software: {minfo['git']}, {minfo['lighttpd']}" + (f", hangar {minfo['hangar']}" if 'hangar' in minfo else ""))
    p(f"repository: {meta['profile']} profile, {meta['commits']} commits, {meta['objects']} objects, "
      f"{meta['text_files']} text + {meta['binary_files']} binary files, {len(meta['refs'])} refs; "
      f"served pack {meta['pack_bytes'] / 2**20:.1f} MiB with bitmap + commit-graph (identical bytes on every server)")
    p(f"method: median of {ctx.runs} runs per server after a warm-up round, servers alternated "
      f"(rotating order); all on 127.0.0.1; auth: {ctx.extra.get('auth')}")
    p()
    cols = names + (["pipe"] if "pipe" not in names else [])
    hdr = f"{'measurement':<38}" + "".join(f"{c:>13}" for c in cols)
    has_h = "hangar" in names
    if has_h:
        hdr += f"{'hangar/http':>13}{'hangar/daemon':>15}  target"
    p(hdr)
    p("-" * len(hdr))
    verdicts = []
    for key, label, scale, unit, target in ROWS:
        data = ctx.results.get(key)
        if not data:
            continue
        med = {k: statistics.median(v) for k, v in data.items()}
        line = f"{label + ' (' + unit + ')':<38}"
        for c in cols:
            line += f"{fmt(med[c], scale) if c in med else '':>13}"
        if has_h and "hangar" in med:
            rh = med["hangar"] / med["http-backend"] if "http-backend" in med else None
            rd = med["hangar"] / med["daemon"] if "daemon" in med else None
            line += f"{(f'{rh:.2f}x' if rh else '-'):>13}{(f'{rd:.2f}x' if rd else '-'):>15}"
            if target and rh:
                ok = rh <= target
                line += f"  <= {target}x http-backend: {'MET' if ok else 'MISSED'}"
                verdicts.append((label, ok))
        p(line)
    # memory
    s = ctx.sampler
    serving = [k for k, *_ in ROWS if k in ctx.results] + ["pack_streaming"]
    p()
    p("memory while serving (peak RSS sampled every 50 ms; server process alone | its child processes summed):")
    for srv in ctx.servers:
        own = s.max_over(s.peak, srv.name, serving)
        kids = s.max_over(s.kids_peak, srv.name, serving)
        line = f"  {srv.name:<13} process {own / 2**20:7.1f} MiB   children {kids / 2**20:7.1f} MiB"
        if srv.name == "hangar":
            hwm = ctx.extra.get("hangar_vmhwm", 0)
            line += f"   (VmHWM {hwm / 2**20:.1f} MiB)"
            ok = max(own, hwm) < 50e6
            line += f"   target < 50 MB (47.7 MiB): {'MET' if ok else 'MISSED'}"
            verdicts.append(("agent RSS", ok))
        p(line)
    if "hangar" in names:
        per = ", ".join(f"{k} {s.peak[('hangar', k)] / 2**20:.1f}" for k in MEASUREMENTS
                        if ('hangar', k) in s.peak)
        p(f"  hangar peak RSS per measurement (MiB): {per}")
    sp = ctx.extra.get("streamed_pack")
    if sp:
        p()
        p("streamed pack per server (bytes, objects): " +
          "; ".join(f"{k} {', '.join(f'{b} B/{o}' for b, o in v)}" for k, v in sp.items()))
    p()
    p("all samples (seconds):")
    for key, *_ in ROWS:
        for srv, vals in ctx.results.get(key, {}).items():
            p(f"  {key:<18} {srv:<13} " + " ".join(f"{v:.4f}" for v in vals))
    if verdicts:
        p()
        p("targets: " + ", ".join(f"{l}: {'MET' if ok else 'MISSED'}" for l, ok in verdicts))


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="Hangar vs git http-backend (lighttpd) vs git daemon, on loopback.")
    ap.add_argument("--quick", action="store_true", help="small repository, 3 runs (smoke check)")
    ap.add_argument("--runs", type=int, help="timed runs per server and measurement (default 5, quick 3)")
    ap.add_argument("--only", help="comma-separated measurements: " + ",".join(MEASUREMENTS))
    ap.add_argument("--no-hangar", action="store_true", help="reference servers only (no agent binary needed)")
    ap.add_argument("--public", action="store_true",
                    help="anonymous access (public hangar repo, no lighttpd auth) instead of token basic auth")
    ap.add_argument("--real-clones", action="store_true",
                    help="8 concurrent clones with the git client (index-pack included; slow on 2 cores)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (server logs, repos)")
    ap.add_argument("--json", help="also write results as JSON to this file")
    args = ap.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    if runs < 1:
        ap.error("--runs must be >= 1")
    if args.real_clones:
        MEASUREMENTS["concurrent_clones"] = m_concurrent_git
    only = args.only.split(",") if args.only else list(MEASUREMENTS)
    for m in only:
        if m not in MEASUREMENTS:
            ap.error(f"unknown measurement {m}")

    hangar_bin = Path(os.environ.get("HANGAR_BIN", DEFAULT_BIN))
    if not args.no_hangar and not (hangar_bin.is_file() and os.access(hangar_bin, os.X_OK)):
        log(f"no hangar binary at {hangar_bin}. Build it with\n"
            "    CARGO_TARGET_DIR=~/.cache/hangar/target cargo build --release -p hangar-agent\n"
            "or point HANGAR_BIN at a binary (e.g. ~/.cache/hangar/target/debug/hangar), "
            "or pass --no-hangar to measure the reference servers only.")
        sys.exit(2)

    minfo = machine_info()  # load average before anything of ours runs
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE))
    home = work / "home"
    home.mkdir()
    env = client_env(home)
    servers: list[Server] = []
    sampler = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        repo = build_repo("quick" if args.quick else "full", env)
        t_setup = time.monotonic()
        if not args.no_hangar:
            h = Hangar(hangar_bin, work / "hangar", env, args.public)
            (work / "hangar").mkdir()
            servers.append(h)
        lt = LighttpdBackend(work / "lighttpd", env, auth=not args.public)
        dm = GitDaemon(work / "daemon", env)
        servers += [lt, dm]
        for s in (lt, dm):
            s.root.mkdir()
            install_served_repo(repo, s.repo_dir, env)
        for s in servers:
            s.start()
        if not args.no_hangar:
            minfo["hangar"] = h.version()
            h.create_repo()
            install_served_repo(repo, h.repo_dir, env)
        sampler = Sampler(servers)
        sampler.start()
        ctx = Ctx(repo, servers, work, env, runs, sampler, pipe_repo=lt.repo_dir)
        ctx.extra["auth"] = "none (public repos)" if args.public else "HTTP basic with a token (hangar and lighttpd)"
        minfo["loadavg_measure"] = os.getloadavg()
        log(f"servers up in {time.monotonic() - t_setup:.1f}s: " +
            ", ".join(f"{s.name} pid {s.pid} {s.url()}" for s in servers))
        # Order matters: push last, since it writes to the served repositories.
        for m in MEASUREMENTS:
            if m in only:
                t = time.monotonic()
                log(f"measuring {m} ...")
                MEASUREMENTS[m](ctx)
                log(f"  {m} took {time.monotonic() - t:.0f}s")
        sampler.phase = "done"
        if not args.no_hangar:
            ctx.extra["hangar_vmhwm"] = proc_status(h.pid).get("VmHWM", 0)
            if h.proc.poll() is not None:
                raise RuntimeError(f"hangar exited during the benchmark with {h.proc.returncode}")
        report(ctx, minfo)
        if args.json:
            Path(args.json).write_text(json.dumps(dict(
                machine=minfo, repo={k: v for k, v in repo.meta.items() if k != "refs"}, runs=runs,
                results=ctx.results, extra={k: v for k, v in ctx.extra.items()},
                rss_peak={f"{n}/{p}": v for (n, p), v in sampler.peak.items()},
                children_rss_peak={f"{n}/{p}": v for (n, p), v in sampler.kids_peak.items()}), indent=1,
                default=list))
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping servers")
        sys.exit(130)
    finally:
        if sampler:
            sampler.stop_ev.set()
        for s in servers:
            with contextlib.suppress(Exception):
                s.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
