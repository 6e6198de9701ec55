#!/usr/bin/env python3
"""Format 1 against format 2, whole commands, side by side. Run through bench/format2.sh, which
starts the loopback S3 servers (one quiet for timings, one logging every request for counts).

Sections (--only):
  big    put and get of a 1 GiB random file: format 1, format 2 (zstd, the default) and format 2
         with compression none; objects created; requests by kind (PUT, HEAD, GET, LIST)
  edit   a 2 GiB random file, then a second version (100 scattered 4 KiB overwrites and one byte
         inserted in the middle): what the second put uploads, format 1 and format 2
  small  `ldv put DIR NAME` of 10,000 files of 16 KiB in one directory: files/s, objects, packs
  index  a format-2 vault of ~1,000,000 chunks (tiny CDC), then `ldv chunk SMALL` and a put of a
         small file: wall time and peak RSS of loading the index
Each section runs on the local store and, when the S3 servers are up, on S3 (--kinds).

Every timing alternates the configurations within a round (the order rotates each round), each
command on a fresh vault, `sync` before each; rows report the median of --rounds runs and ratios
of medians. Request counts come from one extra, untimed run per configuration: on S3 from the
server's request log, on a local vault from `strace` (renames into the vault = PUTs, following
stats of an object = HEADs, opens of an object for reading = GETs). Writes a Markdown section into
BENCHMARKS.md between the markers (or --out); progress to stderr; raw JSON under the work dir.
"""

import argparse
import base64
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
BEGIN = "<!-- BEGIN bench/format2.sh: written by the script, do not edit by hand -->"
END = "<!-- END bench/format2.sh -->"

# Configurations: format, extra profile lines, label.
CONFIGS = {
    "f1": (1, "", "format 1 (defaults: 1/4/16 MiB chunks, no compression)"),
    "f2": (2, "", "format 2 (defaults: 32/128/512 KiB chunks, packs, zstd)"),
    "f2-none": (2, 'compression = { algorithm = "none" }\n', "format 2, compression none"),
}
TINY = 'chunking = { mode = "cdc", min = "256B", avg = "1KiB", max = "4KiB" }\n'


def log(msg):
    print(f"[format2 {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(cmd, env=None, stdout=subprocess.DEVNULL):
    p = subprocess.run([str(c) for c in cmd], stdout=stdout, stderr=subprocess.PIPE, env=env)
    if p.returncode != 0:
        raise Failed(f"{shlex.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.decode(errors='replace')[-800:]}")
    return p


def rm(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def median(xs):
    return statistics.median(xs) if xs else None


def loadavg():
    with open("/proc/loadavg") as f:
        return ", ".join(f.read().split()[:3])


def keystream(path, nbytes, seed):
    """Deterministic incompressible bytes: AES-256-CTR keystream under a key made from the seed."""
    key = f"{seed:064x}"
    with open(path, "wb") as out:
        enc = subprocess.Popen(["openssl", "enc", "-aes-256-ctr", "-K", key, "-iv", "0" * 32, "-nosalt", "-in", "/dev/zero"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        left = nbytes
        while left:
            buf = enc.stdout.read(min(left, 8 * MIB))
            if not buf:
                raise Failed("openssl keystream ended early")
            out.write(buf)
            left -= len(buf)
        enc.kill()
        enc.wait()


def second_version(v1, v2, seed, overwrites=100, size=4 * KIB):
    """v2 = v1 with `overwrites` regions of `size` bytes overwritten at seeded random offsets and
    one byte inserted in the middle (offsets in v2's coordinates, after the insert)."""
    import random
    rnd = random.Random(seed)
    n = os.path.getsize(v1)
    mid = n // 2
    with open(v1, "rb") as src, open(v2, "wb") as dst:
        left = mid
        while left:
            buf = src.read(min(left, 8 * MIB))
            dst.write(buf)
            left -= len(buf)
        dst.write(bytes([rnd.randrange(256)]))
        shutil.copyfileobj(src, dst, 8 * MIB)
    offsets = sorted(rnd.randrange(0, n + 1 - size) for _ in range(overwrites))
    with open(v2, "r+b") as f:
        for off in offsets:
            f.seek(off)
            f.write(rnd.randbytes(size))
    return offsets, mid


# ---------------------------------------------------------------------------------------------
# stores


class Server:
    def __init__(self, endpoint, root, log_path=None):
        self.endpoint, self.root, self.log = endpoint, root, log_path


class Vault:
    """One vault: a local directory or a bucket of its own on an s3s-fs, with its config file."""

    def __init__(self, h, kind, label, cfg, extra="", server=None):
        self.h, self.kind, self.label, self.cfg = h, kind, label, cfg
        self.fmt = CONFIGS[cfg][0]
        self.extra = CONFIGS[cfg][1] + extra
        self.server = server
        self.cache = os.path.join(h.work, "cache", label)
        if kind == "local":
            self.path = os.path.join(h.stores, label)
            backend = f'backend = {{ type = "local", path = "{self.path}" }}\n'
        else:
            self.bucket = re.sub(r"[^a-z0-9-]", "-", label.lower())[:63]
            self.path = os.path.join(server.root, self.bucket, "v")
            backend = ('backend = { type = "s3", '
                       f'endpoint = "{server.endpoint}", path_style = true, bucket = "{self.bucket}", prefix = "v/", '
                       f'region = "us-east-1", access_key_id = "{h.s3_key}", secret_access_key = "{h.s3_secret}" }}\n')
        self.config = os.path.join(h.work, "config", f"{label}.toml")
        os.makedirs(os.path.dirname(self.config), exist_ok=True)
        with open(self.config, "w") as f:
            f.write("[profiles.p]\n" + backend + self.extra)
        os.chmod(self.config, 0o600)

    def env(self):
        env = dict(self.h.env)
        env["LDV_CACHE_DIR"] = self.cache
        return env

    def base(self):
        return [self.h.ldv, "--no-progress", "--config", self.config, "--profile", "p"]

    def _sidecars(self):
        for entry in os.scandir(self.server.root):
            name = entry.name
            if not name.startswith(".bucket-") or ".object-" not in name:
                continue
            enc = name[len(".bucket-"):name.index(".object-")]
            try:
                dec = base64.b64decode(enc + "=" * (-len(enc) % 4), altchars=b"-_").decode()
            except Exception:
                continue
            if dec == self.bucket:
                yield entry

    def drop(self):
        rm(self.cache)
        if self.kind == "local":
            rm(self.path)
        else:
            rm(os.path.join(self.server.root, self.bucket))
            for e in list(self._sidecars()):
                os.remove(e.path)

    def reset(self):
        """A fresh, empty vault of this configuration (untimed)."""
        self.drop()
        if self.kind == "s3":
            os.mkdir(os.path.join(self.server.root, self.bucket))
        env = self.env()
        env["LDV_VAULT_FORMAT"] = str(self.fmt)
        run(self.base() + ["init"], env=env)

    def objects(self):
        """Objects in the vault by top-level prefix, and their total size."""
        counts, size = Counter(), 0
        for dirpath, _dirs, files in os.walk(self.path):
            rel = os.path.relpath(dirpath, self.path)
            top = rel.split(os.sep)[0] if rel != "." else "(root)"
            for f in files:
                if f.startswith("."):
                    continue
                counts[top] += 1
                try:
                    size += os.lstat(os.path.join(dirpath, f)).st_size
                except FileNotFoundError:
                    pass
        return counts, size


# ---------------------------------------------------------------------------------------------
# request counting

OBJ = re.compile(r"(?:^|/)(ldv-vault\.json|chunks/[0-9a-f]{2}/[0-9a-f]{64}|packs/[0-9a-f]{2}/[0-9a-f]{64}|"
                 r"index/(?:[0-9a-f]{64}|mark-[^/\"?]+)|manifests/[^\"?]+/\d{8}T\d{9}Z-[0-9a-f]{8}|locks/[^/\"?]+)$")


def kind_of(key):
    top = key.split("/")[0]
    return "descriptor" if top == "ldv-vault.json" else top


def count_strace(trace, vault_path):
    """Requests of a local-vault command from an strace log: (op, prefix) -> count."""
    root = re.escape(vault_path.rstrip("/") + "/")
    c = Counter()
    pat_path = re.compile(r'"(' + root + r'[^"]+)"')
    for line in open(trace, errors="replace"):
        m = re.search(r"\b(renameat2|renameat|rename|linkat|link|statx|newfstatat|openat)\(", line)
        if not m:
            continue
        call = m.group(1)
        paths = pat_path.findall(line)
        if not paths:
            continue
        if call in ("renameat2", "renameat", "rename", "linkat", "link"):
            target = paths[-1]
            op = "PUT"
        elif call in ("statx", "newfstatat"):
            if "AT_SYMLINK_NOFOLLOW" in line:
                continue  # the symlink check of each path component, not a head
            target, op = paths[0], "HEAD"
        else:
            if "O_DIRECTORY" in line or "O_WRONLY" in line or "O_RDWR" in line or " = -1 " in line:
                continue
            target, op = paths[0], "GET"
        rel = target[len(vault_path.rstrip("/")) + 1:]
        if not OBJ.search("/" + rel):
            continue
        c[(op, kind_of(rel))] += 1
    return c


S3_REQ = re.compile(r"method: ([A-Z]+), uri: (\S+?),")


def count_s3log(text, bucket):
    from urllib.parse import unquote, urlsplit, parse_qs
    c = Counter()
    for m in S3_REQ.finditer(text):
        method, uri = m.group(1), m.group(2)
        u = urlsplit(uri)
        q = parse_qs(u.query, keep_blank_values=True)
        path = unquote(u.path)
        if not path.startswith(f"/{bucket}"):
            continue
        key = path[len(bucket) + 2:]
        if key.startswith("v/"):
            key = key[2:]
        if "list-type" in q:
            op, pre = "LIST", q.get("prefix", [""])[0]
            pre = pre[2:] if pre.startswith("v/") else pre
            c[(op, kind_of(pre) if pre else "(all)")] += 1
            continue
        if method == "PUT" and "partNumber" in q:
            op = "PUT part"
        elif method == "POST" and "uploads" in q:
            op = "MPU start"
        elif method == "POST" and "uploadId" in q:
            op = "MPU complete"
        else:
            op = method
        c[(op, kind_of(key) if key else "(bucket)")] += 1
    return c


def fmt_counts(c, op, kinds=None):
    n = sum(v for (o, k), v in c.items() if o == op and (kinds is None or k in kinds))
    return n


# ---------------------------------------------------------------------------------------------
# harness


class Row:
    def __init__(self, name):
        self.name = name
        self.wall, self.cpu, self.rss = [], [], []
        self.json = []

    def add(self, wall, cpu, rss, js=None):
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.rss.append(rss)
        if js is not None:
            self.json.append(js)

    @property
    def med(self):
        return median(self.wall)

    @property
    def cpu_med(self):
        return median(self.cpu)

    @property
    def rss_mib(self):
        return max(self.rss) / 1024 if self.rss else None

    def rng(self):
        return f"{fmt_s(min(self.wall))}–{fmt_s(max(self.wall))}" if len(self.wall) > 1 else "—"


def fmt_s(x):
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def fmt_r(x):
    return "—" if x is None else f"{x:.2f}"


def fmt_b(n):
    if n is None:
        return "—"
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def ratio(a, b):
    return a / b if a is not None and b else None


class Harness:
    def __init__(self, a):
        self.a = a
        self.ldv = a.ldv
        os.makedirs(a.tmp, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="ldv-format2.", dir=a.tmp)
        self.data = tempfile.mkdtemp(prefix="ldv-format2-data.", dir=a.data) if a.data else os.path.join(self.work, "data")
        self.stores = os.path.join(self.work, "stores")
        self.outs = os.path.join(self.work, "out")
        self.raw = os.path.join(self.work, "raw")
        for d in (self.data, self.stores, self.outs, self.raw):
            os.makedirs(d, exist_ok=True)
        env = dict(os.environ)
        for var in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "LDV_CONFIG", "LDV_PROFILE", "LDV_VAULT",
                    "LDV_VAULT_FORMAT", "LDV_CACHE_DIR", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                    "ALL_PROXY", "all_proxy", "RUST_LOG"):
            env.pop(var, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        for x in ("CONFIG", "DATA", "CACHE"):
            env[f"XDG_{x}_HOME"] = os.path.join(self.work, f"xdg-{x.lower()}")
        self.env = env
        self.s3 = self.s3count = None
        if os.environ.get("F2_S3_ENDPOINT"):
            self.s3 = Server(os.environ["F2_S3_ENDPOINT"], os.environ["F2_S3_ROOT"])
            self.s3count = Server(os.environ["F2_S3COUNT_ENDPOINT"], os.environ["F2_S3COUNT_ROOT"], os.environ["F2_S3COUNT_LOG"])
            self.s3_key, self.s3_secret = os.environ["F2_S3_KEY"], os.environ["F2_S3_SECRET"]
        self.results = {}
        self.n = 0

    def kinds(self):
        return [k for k in ("local", "s3") if k in self.a.kinds and (k == "local" or self.s3)]

    def vault(self, kind, label, cfg, extra="", counting=False):
        server = (self.s3count if counting else self.s3) if kind == "s3" else None
        return Vault(self, kind, f"{kind}-{label}-{cfg}" + ("-count" if counting else ""), cfg, extra, server)

    def timed(self, cmd, env, tag):
        """Runs cmd under /usr/bin/time after a sync: (wall s, user+sys s, peak RSS KiB, parsed JSON or None)."""
        run(["sync"])
        self.n += 1
        tfile = os.path.join(self.raw, f"{self.n:04d}-{tag}.time")
        ofile = os.path.join(self.raw, f"{self.n:04d}-{tag}.json")
        with open(ofile, "wb") as out:
            t0 = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", tfile] + [str(c) for c in cmd],
                               stdout=out, stderr=subprocess.PIPE, env=env)
            wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise Failed(f"{shlex.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.decode(errors='replace')[-800:]}")
        with open(tfile) as f:
            e, u, s, m = f.read().split()[-4:]
        try:
            with open(ofile) as f:
                js = json.load(f)
        except (ValueError, OSError):
            js = None
        return wall, float(u) + float(s), int(m), js

    def counted(self, v, cmd, tag):
        """One untimed run of cmd, counting its requests (strace locally, the server log on S3)."""
        env = v.env()
        if v.kind == "local":
            trace = os.path.join(self.raw, f"{tag}.strace")
            run(["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=rename,renameat,renameat2,link,linkat,statx,newfstatat,openat",
                 "-s", "512", "-o", trace] + cmd, env=env)
            c = count_strace(trace, v.path)
            os.remove(trace)
            return c
        with open(v.server.log, "rb") as f:
            f.seek(0, 2)
            start = f.tell()
        run(cmd, env=env)
        time.sleep(0.3)
        with open(v.server.log, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
        return count_s3log(text, v.bucket)

    # -- data ----------------------------------------------------------------------------------

    def drop_data(self):
        for name in os.listdir(self.data):
            rm(os.path.join(self.data, name))

    # -- sections ------------------------------------------------------------------------------

    def order(self, cfgs, r):
        k = r % len(cfgs)
        return cfgs[k:] + cfgs[:k]

    def big(self):
        a = self.a
        f = os.path.join(self.data, "big.bin")
        log(f"data: {a.big_mib} MiB random file")
        keystream(f, a.big_mib * MIB, 1)
        out = os.path.join(self.outs, "big.out")
        cfgs = ["f1", "f2", "f2-none"]
        for kind in self.kinds():
            res = {c: {"put": Row("put"), "get": Row("get"), "objects": None, "stored": None} for c in cfgs}
            for r in range(a.rounds):
                for c in self.order(cfgs, r):
                    v = self.vault(kind, "big", c)
                    v.reset()
                    w, cpu, m, js = self.timed(v.base() + ["--json", "put", f, "big.bin"], v.env(), f"big-{kind}-{c}-put")
                    res[c]["put"].add(w, cpu, m, js)
                    res[c]["objects"], res[c]["stored"] = v.objects()
                    rm(out)
                    w2, cpu2, m2, js2 = self.timed(v.base() + ["--json", "get", "big.bin", out], v.env(), f"big-{kind}-{c}-get")
                    res[c]["get"].add(w2, cpu2, m2, js2)
                    run(["cmp", f, out])
                    rm(out)
                    v.drop()
                    log(f"big {kind} {c} round {r + 1}: put {w:.2f} s (cpu {cpu:.2f}), get {w2:.2f} s (cpu {cpu2:.2f})")
            if not a.no_count:
                for c in cfgs:
                    v = self.vault(kind, "big", c, counting=True)
                    v.reset()
                    res[c]["put_req"] = self.counted(v, v.base() + ["--json", "put", f, "big.bin"], f"big-{kind}-{c}-put")
                    rm(out)
                    res[c]["get_req"] = self.counted(v, v.base() + ["--json", "get", "big.bin", out], f"big-{kind}-{c}-get")
                    rm(out)
                    v.drop()
                    log(f"big {kind} {c} requests: put {dict(res[c]['put_req'])} get {dict(res[c]['get_req'])}")
            self.results[("big", kind)] = res
        self.drop_data()

    def edit(self):
        a = self.a
        v1 = os.path.join(self.data, "v1.bin")
        v2 = os.path.join(self.data, "v2.bin")
        log(f"data: {a.edit_mib} MiB random file and its second version")
        keystream(v1, a.edit_mib * MIB, 2)
        second_version(v1, v2, seed=7)
        cfgs = ["f1", "f2"]
        for kind in [k for k in self.kinds() if k in a.edit_kinds]:
            res = {c: {"first": Row("first"), "second": Row("second"), "grew": [], "objects": []} for c in cfgs}
            for r in range(a.rounds):
                for c in self.order(cfgs, r):
                    v = self.vault(kind, "edit", c)
                    v.reset()
                    w1, cpu1, m1, js1 = self.timed(v.base() + ["--json", "put", v1, "model.bin"], v.env(), f"edit-{kind}-{c}-v1")
                    res[c]["first"].add(w1, cpu1, m1, js1)
                    o1, s1 = v.objects()
                    w2, cpu2, m2, js2 = self.timed(v.base() + ["--json", "put", v2, "model.bin"], v.env(), f"edit-{kind}-{c}-v2")
                    res[c]["second"].add(w2, cpu2, m2, js2)
                    o2, s2 = v.objects()
                    res[c]["grew"].append(s2 - s1)
                    res[c]["objects"].append(o2 - o1)
                    v.drop()
                    log(f"edit {kind} {c} round {r + 1}: first {w1:.2f} s, second {w2:.2f} s, "
                        f"uploaded {js2.get('bytes_uploaded') if js2 else '?'}, store grew {s2 - s1}")
            self.results[("edit", kind)] = res
        self.drop_data()

    def small(self):
        a = self.a
        tree = os.path.join(self.data, "tree")
        os.makedirs(tree)
        log(f"data: {a.files:,} random files of {a.file_kib} KiB in one directory")
        blob = os.path.join(self.data, "blob")
        keystream(blob, a.files * a.file_kib * KIB, 3)
        with open(blob, "rb") as src:
            for i in range(a.files):
                with open(os.path.join(tree, f"f{i:05d}.bin"), "wb") as f:
                    f.write(src.read(a.file_kib * KIB))
        os.remove(blob)
        out = os.path.join(self.outs, "tree")
        cfgs = ["f1", "f2"]
        for kind in self.kinds():
            res = {c: {"put": Row("put"), "get": Row("get"), "objects": None, "stored": None} for c in cfgs}
            for r in range(a.rounds):
                for c in self.order(cfgs, r):
                    v = self.vault(kind, "small", c)
                    v.reset()
                    w, cpu, m, js = self.timed(v.base() + ["--json", "put", tree, "tree"], v.env(), f"small-{kind}-{c}-put")
                    res[c]["put"].add(w, cpu, m, None)
                    res[c]["objects"], res[c]["stored"] = v.objects()
                    rm(out)
                    w2, cpu2, m2, js2 = self.timed(v.base() + ["--json", "get", "tree", out], v.env(), f"small-{kind}-{c}-get")
                    res[c]["get"].add(w2, cpu2, m2, None)
                    run(["diff", "-r", tree, out])
                    rm(out)
                    v.drop()
                    log(f"small {kind} {c} round {r + 1}: put {w:.2f} s, get {w2:.2f} s, objects {dict(res[c]['objects'])}")
            if not a.no_count:
                for c in cfgs:
                    v = self.vault(kind, "small", c, counting=True)
                    v.reset()
                    res[c]["put_req"] = self.counted(v, v.base() + ["put", tree, "tree"], f"small-{kind}-{c}-put")
                    rm(out)
                    res[c]["get_req"] = self.counted(v, v.base() + ["get", "tree", out], f"small-{kind}-{c}-get")
                    rm(out)
                    v.drop()
                    log(f"small {kind} {c} requests: put {dict(res[c]['put_req'])} get {dict(res[c]['get_req'])}")
            self.results[("small", kind)] = res
        self.drop_data()

    def index(self):
        a = self.a
        small = os.path.join(self.data, "small.bin")
        keystream(small, 4 * KIB, 5)
        for kind in self.kinds():
            v = self.vault(kind, "index", "f2", extra=TINY)
            empty = self.vault(kind, "index-empty", "f2", extra=TINY)
            v.reset()
            empty.reset()
            build = Row("build")
            chunks = 0
            piece = os.path.join(self.data, "piece.bin")
            i = 0
            while chunks < a.index_chunks and i < 16:
                keystream(piece, a.index_piece_mib * MIB, 100 + i)
                w, cpu, m, js = self.timed(v.base() + ["--json", "put", piece, f"bulk/{i}"], v.env(), f"index-{kind}-build{i}")
                build.add(w, cpu, m, js)
                chunks += js["new_chunks"]
                i += 1
                log(f"index {kind}: put {i} ({a.index_piece_mib} MiB): {js['new_chunks']:,} new chunks in {w:.1f} s, "
                    f"peak RSS {m / 1024:.0f} MiB; {chunks:,} chunks so far")
            rm(piece)
            objs, _ = v.objects()
            isize = sum(os.path.getsize(os.path.join(dp, f)) for dp, _d, fs in os.walk(os.path.join(v.path, "index")) for f in fs)
            rows = {}
            variants = [("loaded", v), ("empty", empty)]
            ops = {
                "chunk": lambda vv: vv.base() + ["--json", "chunk", small],
                "put": lambda vv: vv.base() + ["--json", "put", small, f"small/{self.n}"],
            }
            for r in range(a.rounds):
                for name, vv in self.order(variants, r):
                    for op in ("chunk", "put"):
                        modes = ["cold", "warm"] if kind == "s3" else ["local"]
                        for mode in modes:
                            if mode == "cold":
                                rm(vv.cache)
                            row = rows.setdefault((name, op, mode), Row(op))
                            w, cpu, m, js = self.timed(ops[op](vv), vv.env(), f"index-{kind}-{name}-{op}-{mode}")
                            row.add(w, cpu, m, None)
                            log(f"index {kind} {name} {op} {mode}: {w:.3f} s, peak RSS {m / 1024:.0f} MiB")
            self.results[("index", kind)] = {"build": build, "chunks": chunks, "objects": objs, "index_bytes": isize,
                                              "rows": rows, "pieces": i}
            v.drop()
            empty.drop()
        self.drop_data()


# ---------------------------------------------------------------------------------------------
# report


def report(h, started, ended, load_start, load_end, minutes):
    a = h.a
    R = h.results
    L = []
    w = L.append
    verdicts = []
    w(BEGIN)
    w("")
    w("## Format 2 against format 1 (`bench/format2.sh`)")
    w("")
    w("Every number in this section was written by `bench/format2.sh` in one run. To rerun:")
    w("")
    w("```sh")
    w(a.command)
    w("```")
    w("")
    w(f"Run: {started} → {ended} ({minutes:.1f} min), {a.version} (`{a.git}`, sha256 of the binary `{a.sha[:16]}…`). "
      f"Load average (1, 5, 15 min): {load_start} at the start, {load_end} at the end, on {os.cpu_count()} cores: "
      "the machine was shared with other sessions' builds and tests, so absolute times move a lot between runs; "
      "compare the ratios, which come from configurations alternating within each round.")
    w("")
    w(f"Method: medians of {a.rounds} rounds; in each round every configuration runs once, in an order that rotates "
      "from round to round, on a fresh vault (`ldv init` untimed), with `sync` before every timed command. "
      "Local vaults are on ext4 with the defaults (`sync = true`: every object fsynced); source data on tmpfs. "
      "S3 is `s3s-fs` on 127.0.0.1 (plain HTTP). CPU = user + system seconds of the command (`/usr/bin/time`), "
      "less sensitive to other load than wall time. Format 1 = `LDV_VAULT_FORMAT=1 ldv init`, format 2 = `ldv init`. "
      "Request counts come from one extra, untimed run per configuration: on S3 from the server's request log "
      "(`RUST_LOG=s3s::service=debug`), locally from `strace` (a rename into the vault = a PUT, a stat following links "
      "of an object = a HEAD, an open for reading = a GET). Data: AES-256-CTR keystream (deterministic, incompressible).")
    w("")
    labels = {c: CONFIGS[c][2] for c in CONFIGS}

    def req_cell(c, op, kinds=None):
        return "—" if c is None else str(fmt_counts(c, op, kinds))

    def req_summary(c):
        if not c:
            return "—"
        by = Counter()
        for (o, k), n in c.items():
            if n:
                by[(o, k)] += n
        return ", ".join(f"{o} {k} {n:,}" for (o, k), n in sorted(by.items()))

    # 1 -----------------------------------------------------------------------------------------
    for kind in ("local", "s3"):
        res = R.get(("big", kind))
        if not res:
            continue
        size = a.big_mib * MIB
        w(f"### {a.big_mib // 1024 if a.big_mib >= 1024 else a.big_mib} {'GiB' if a.big_mib >= 1024 else 'MiB'} random file, {kind}")
        w("")
        w("`ldv put FILE NAME` then `ldv get NAME OUT` (output checked with `cmp`, untimed).")
        w("")
        w("| configuration | put s (range) | put MB/s | put CPU s | put ÷ format 1 | get s (range) | get MB/s | get CPU s | get ÷ format 1 | peak RSS put / get MiB | objects after put | stored |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        f1p, f1g = res["f1"]["put"].med, res["f1"]["get"].med
        for c, x in res.items():
            p, g = x["put"], x["get"]
            objs = ", ".join(f"{k} {n:,}" for k, n in sorted(x["objects"].items()))
            w(f"| {labels[c]} | {fmt_s(p.med)} ({p.rng()}) | {size / p.med / 1e6:,.0f} | {fmt_s(p.cpu_med)} | {fmt_r(ratio(p.med, f1p))} "
              f"| {fmt_s(g.med)} ({g.rng()}) | {size / g.med / 1e6:,.0f} | {fmt_s(g.cpu_med)} | {fmt_r(ratio(g.med, f1g))} "
              f"| {p.rss_mib:.0f} / {g.rss_mib:.0f} | {objs} | {fmt_b(x['stored'])} |")
        w("")
        if "put_req" in res["f1"]:
            w("Requests (one counted run per configuration):")
            w("")
            w("| configuration | put: objects written (chunks / packs) | put: write requests | put: HEADs (of chunks) | put: LISTs | put: requests (JSON `total_requests`) | get: GETs | get: requests (JSON) | every request by kind: put; get |")
            w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
            for c, x in res.items():
                pr, gr = x["put_req"], x["get_req"]
                pj = x["put"].json[0] if x["put"].json else {}
                gj = x["get"].json[0] if x["get"].json else {}
                written = fmt_counts(pr, "PUT") + fmt_counts(pr, "MPU complete")
                data_written = fmt_counts(pr, "PUT", {"chunks", "packs"}) + fmt_counts(pr, "MPU complete", {"chunks", "packs"})
                writes = sum(fmt_counts(pr, op) for op in ("PUT", "PUT part", "MPU start", "MPU complete"))
                lists = "—" if kind == "local" else str(fmt_counts(pr, "LIST"))
                total = "—" if kind == "local" else f"{sum(pr.values()):,}"
                gtotal = "—" if kind == "local" else f"{sum(gr.values()):,}"
                w(f"| {labels[c]} | {written} ({data_written}) | {writes} | {fmt_counts(pr, 'HEAD')} ({fmt_counts(pr, 'HEAD', {'chunks'})}) | {lists} "
                  f"| {total} ({pj.get('stats', {}).get('backend', {}).get('total_requests', '—')}) | {fmt_counts(gr, 'GET')} "
                  f"| {gtotal} ({gj.get('stats', {}).get('backend', {}).get('total_requests', '—') if gj else '—'}) | {req_summary(pr)}; {req_summary(gr)} |")
            w("")
            for c in ("f2", "f2-none"):
                n = fmt_counts(res[c]["put_req"], "HEAD", {"chunks"})
                verdicts.append((f"{kind}: HEADs of chunks in a format-2 put ({labels[c]})", f"{n}", "= 0", "PASS" if n == 0 else "FAIL"))
        # zstd cost
        zp, np_ = res["f2"]["put"], res["f2-none"]["put"]
        zg, ng = res["f2"]["get"], res["f2-none"]["get"]
        rp, rg = ratio(zp.med, np_.med), ratio(zg.med, ng.med)
        paired = [z / n for z, n in zip(zp.wall, np_.wall)]
        cpu_r = ratio(zp.cpu_med, np_.cpu_med)
        w(f"zstd (the format-2 default) against compression none on this incompressible file: put {fmt_r(rp)}× "
          f"(per round {', '.join(f'{x:.2f}' for x in paired)}; CPU {fmt_r(cpu_r)}×), get {fmt_r(rg)}× "
          f"(CPU {fmt_r(ratio(zg.cpu_med, ng.cpu_med))}×).")
        w("")
        verdicts.append((f"{kind}: zstd put cost on random data ≤ 5% (wall, ratio of medians)", f"{fmt_r(rp)}", "≤ 1.05",
                         "PASS" if rp is not None and rp <= 1.05 else "FAIL"))
        verdicts.append((f"{kind}: zstd put cost on random data ≤ 5% (CPU)", f"{fmt_r(cpu_r)}", "≤ 1.05",
                         "PASS" if cpu_r is not None and cpu_r <= 1.05 else "FAIL"))

    # 2 -----------------------------------------------------------------------------------------
    for kind in ("local", "s3"):
        res = R.get(("edit", kind))
        if not res:
            continue
        size = a.edit_mib * MIB
        w(f"### Second version of a {a.edit_mib // 1024} GiB file, {kind}")
        w("")
        w("v1: random; v2: v1 with 100 regions of 4 KiB overwritten at seeded random offsets and 1 byte inserted "
          "in the middle. `ldv put v1 model.bin`, then `ldv put v2 model.bin` into the same vault.")
        w("")
        w("| configuration | first put s | second put s | second ÷ first | chunks in v2 | new chunks | `bytes_uploaded` (receipt) | % of file | backend bytes up (JSON stats) | store grew | objects added |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for c, x in res.items():
            js = x["second"].json[0]
            up = js["bytes_uploaded"]
            bup = js.get("stats", {}).get("backend", {}).get("bytes_uploaded")
            objs = ", ".join(f"{k} {n:,}" for k, n in sorted(x["objects"][0].items()) if n)
            w(f"| {labels[c]} | {fmt_s(x['first'].med)} | {fmt_s(x['second'].med)} | {fmt_r(ratio(x['second'].med, x['first'].med))} "
              f"| {js['chunks']:,} | {js['new_chunks']:,} | {fmt_b(up)} | {100 * up / size:.2f}% | {fmt_b(bup)} | {fmt_b(median(x['grew']))} | {objs} |")
            if c == "f2":
                verdicts.append((f"{kind}: second version uploads ≤ 3% of {a.edit_mib // 1024} GiB (format 2)",
                                 f"{100 * up / size:.2f}%", "≤ 3%", "PASS" if up / size <= 0.03 else "FAIL"))
        w("")

    # 3 -----------------------------------------------------------------------------------------
    for kind in ("local", "s3"):
        res = R.get(("small", kind))
        if not res:
            continue
        w(f"### {a.files:,} files of {a.file_kib} KiB in one directory, {kind}")
        w("")
        w("`ldv put DIR NAME`, then `ldv get NAME OUT` (checked with `diff -r`, untimed).")
        w("")
        w("| configuration | put s (range) | put files/s | put CPU s | put ÷ format 1 | get s (range) | get files/s | get ÷ format 1 | peak RSS put / get MiB | objects after put | stored |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        f1p, f1g = res["f1"]["put"].med, res["f1"]["get"].med
        for c, x in res.items():
            p, g = x["put"], x["get"]
            objs = ", ".join(f"{k} {n:,}" for k, n in sorted(x["objects"].items()))
            w(f"| {labels[c]} | {fmt_s(p.med)} ({p.rng()}) | {a.files / p.med:,.0f} | {fmt_s(p.cpu_med)} | {fmt_r(ratio(p.med, f1p))} "
              f"| {fmt_s(g.med)} ({g.rng()}) | {a.files / g.med:,.0f} | {fmt_r(ratio(g.med, f1g))} "
              f"| {p.rss_mib:.0f} / {g.rss_mib:.0f} | {objs} | {fmt_b(x['stored'])} |")
        w("")
        if "put_req" in res["f1"]:
            w("Requests (one counted run per configuration): " + "; ".join(
                f"{labels[c]}: put {sum(x['put_req'].values()):,} ({req_summary(x['put_req'])}), "
                f"get {sum(x['get_req'].values()):,} ({req_summary(x['get_req'])})" for c, x in res.items()) + ".")
            w("")
        packs = res["f2"]["objects"].get("packs", 0)
        verdicts.append((f"{kind}: packs created by the put of {a.files:,} small files ≤ 15", f"{packs}", "≤ 15",
                         "PASS" if packs <= 15 else "FAIL"))
        verdicts.append((f"{kind}: small-file put, format 2 ÷ format 1 files/s", fmt_r(ratio(f1p, res["f2"]["put"].med)), "(higher is better)", "—"))

    # 4 -----------------------------------------------------------------------------------------
    for kind in ("local", "s3"):
        res = R.get(("index", kind))
        if not res:
            continue
        b = res["build"]
        w(f"### Index load, {kind}")
        w("")
        w(f"A format-2 vault with CDC 256 B / 1 KiB / 4 KiB (`{TINY.strip()}`) filled by {res['pieces']} puts of "
          f"{a.index_piece_mib} MiB of random data: {res['chunks']:,} chunks, {res['objects'].get('packs', 0)} packs, "
          f"{res['objects'].get('index', 0)} index segments of {fmt_b(res['index_bytes'])} in all. Each fill put took "
          f"{fmt_s(min(b.wall))}–{fmt_s(max(b.wall))} s with a peak RSS of up to {b.rss_mib:.0f} MiB. Then, on that vault "
          "(\"loaded\") and on an empty format-2 vault with the same profile (\"empty\"), alternating: "
          "`ldv chunk SMALL` (4 KiB file) and `ldv put SMALL NAME`." +
          (" S3 cold = `$LDV_CACHE_DIR` emptied first (every segment downloaded); warm = segments already in "
           "`$LDV_CACHE_DIR/index`." if kind == "s3" else " A local vault's index is read from the vault directly."))
        w("")
        w("| vault | command | cache | median s (range) | CPU s | peak RSS MiB |")
        w("|---|---|---|---:|---:|---:|")
        for (name, op, mode), row in sorted(res["rows"].items()):
            w(f"| {name} | `ldv {'chunk SMALL' if op == 'chunk' else 'put SMALL NAME'}` | {mode if kind == 's3' else '—'} "
              f"| {fmt_s(row.med)} ({row.rng()}) | {fmt_s(row.cpu_med)} | {row.rss_mib:.0f} |")
            if name == "loaded":
                verdicts.append((f"{kind}: `ldv {op}` with {res['chunks']:,} chunks in the index ({mode}): time ≤ 1 s",
                                 f"{fmt_s(row.med)} s", "≤ 1 s", "PASS" if row.med <= 1 else "FAIL"))
                verdicts.append((f"{kind}: `ldv {op}` with {res['chunks']:,} chunks in the index ({mode}): peak RSS ≤ 150 MiB",
                                 f"{row.rss_mib:.0f} MiB", "≤ 150 MiB", "PASS" if row.rss_mib <= 150 else "FAIL"))
        w("")

    w("### Thresholds")
    w("")
    w("| check | measured | limit | result |")
    w("|---|---:|---|---|")
    for name, m, lim, v in verdicts:
        w(f"| {name} | {m} | {lim} | **{v}** |")
    w("")
    w(END)
    return "\n".join(L) + "\n", verdicts


def write_section(path, text):
    old = open(path).read() if os.path.exists(path) else ""
    if BEGIN in old and END in old:
        pre = old[:old.index(BEGIN)]
        post = old[old.index(END) + len(END):].lstrip("\n")
        new = pre + text + ("\n" + post if post else "")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    with open(path, "w") as f:
        f.write(new)


def main():
    p = argparse.ArgumentParser(prog="bench/format2.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ldv", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="big,edit,small,index")
    p.add_argument("--kinds", default="local,s3")
    p.add_argument("--edit-kinds", default="local", help="stores for the edit section (default local)")
    p.add_argument("--big-mib", type=int, default=1024)
    p.add_argument("--edit-mib", type=int, default=2048)
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--file-kib", type=int, default=16)
    p.add_argument("--index-chunks", type=int, default=1_000_000)
    p.add_argument("--index-piece-mib", type=int, default=256)
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))
    p.add_argument("--data", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    p.add_argument("--out", help="file to write the section into (default BENCHMARKS.md at the repository root)")
    p.add_argument("--no-count", action="store_true", help="skip the request-counting runs")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--command", default="bench/format2.sh LDV")
    p.add_argument("--git", default="?")
    a = p.parse_args()
    a.only = set(a.only.split(","))
    a.kinds = set(a.kinds.split(","))
    a.edit_kinds = set(a.edit_kinds.split(","))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    a.out = a.out or os.path.join(root, "BENCHMARKS.md")
    a.version = subprocess.run([a.ldv, "--version"], capture_output=True, text=True).stdout.strip()
    a.sha = subprocess.run(["sha256sum", a.ldv], capture_output=True, text=True).stdout.split()[0]
    h = Harness(a)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_start = loadavg()
    t0 = time.monotonic()
    log(f"work directory {h.work}; load average {load_start}; kinds {h.kinds()}")
    try:
        for sec in ("big", "edit", "small", "index"):
            if sec in a.only:
                getattr(h, sec)()
        text, verdicts = report(h, started, time.strftime("%Y-%m-%d %H:%M:%S %Z"), load_start, loadavg(),
                                (time.monotonic() - t0) / 60)
        with open(os.path.join(h.work, "format2.md"), "w") as f:
            f.write(text)
        write_section(a.out, text)
        print(text)
        log(f"wrote {a.out}; raw output in {h.raw}")
        for name, m, lim, v in verdicts:
            log(f"  {v:4} {m:>10} {lim:>8}  {name}")
    finally:
        if not a.keep:
            rm(h.stores)
            rm(h.outs)
            rm(h.data)


if __name__ == "__main__":
    main()
