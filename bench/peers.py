#!/usr/bin/env python3
"""ldv side by side with peer tools (issue 6). Run through bench/peers.sh, which installs the peers,
builds ldv, starts the loopback S3 server and passes its address in the environment.

Every measured command runs under `/usr/bin/time -f %M` (peak RSS of the command and its children)
and is timed by this script (wall seconds); each row is the median of --runs runs. Put rows reset
their destination before every run (a fresh directory, repository, vault or bucket), so every run
measures a first put; get rows read the store the last put run left and remove their output before
every run, and every get is checked against the source (outside the timing). Writes BENCHMARKS.md
(tables, ratios, targets, machine, the command to rerun); progress goes to stderr.
"""

import argparse
import base64
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
TARGET_RSS_MIB = 256

# ---------------------------------------------------------------------------------------------
# plumbing


def log(msg):
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(cmd, **kw):
    """Runs an untimed helper command; raises Failed with its stderr tail on a non-zero exit."""
    p = subprocess.run(cmd, stdout=kw.pop("stdout", subprocess.DEVNULL), stderr=subprocess.PIPE, **kw)
    if p.returncode != 0:
        raise Failed(f"{shlex.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.decode(errors='replace')[-600:]}")
    return p


def rm(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def tree_bytes(path):
    """Apparent size (sum of st_size) of every file under path."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return total


def timed(cmd, env, stdout=None):
    """Runs cmd once under /usr/bin/time; returns (wall seconds, peak RSS KiB)."""
    with tempfile.NamedTemporaryFile("r", prefix="ldv-bench-time.", delete=False) as tf:
        tfile = tf.name
    try:
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL
        try:
            t0 = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tfile] + [str(c) for c in cmd],
                               stdout=out, stderr=subprocess.PIPE, env=env)
            wall = time.perf_counter() - t0
        finally:
            if stdout:
                out.close()
        if p.returncode != 0:
            raise Failed(f"{shlex.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.decode(errors='replace')[-800:]}")
        with open(tfile) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        return wall, int(lines[-1])
    finally:
        os.remove(tfile)


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 1 else f"{x:.2f}" if x < 100 else f"{x:.0f}"


def fmt_bytes(n):
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def fmt_size_mib(mib):
    return f"{mib // 1024} GiB" if mib % 1024 == 0 and mib >= 1024 else f"{mib} MiB"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}"


# ---------------------------------------------------------------------------------------------
# stores: where a put goes


class LocalStore:
    kind = "local"

    def __init__(self, path):
        self.path = path

    def reset(self):
        rm(self.path)

    def stored(self):
        return tree_bytes(self.path) if os.path.exists(self.path) else 0

    def drop(self):
        rm(self.path)


class S3Store:
    """A bucket of its own on s3s-fs. s3s-fs keeps a bucket as a directory under its root and each
    object's metadata in two sidecar files `.bucket-<b64 bucket>.object-<b64 key>.*.json` in the
    root: bytes stored = the bucket's files plus its sidecars, as on disk."""

    kind = "s3"

    def __init__(self, s3, bucket):
        self.s3 = s3
        self.bucket = bucket
        self.dir = os.path.join(s3.root, bucket)

    def _sidecars(self):
        for entry in os.scandir(self.s3.root):
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

    def reset(self):
        self.drop()
        os.mkdir(self.dir)  # how s3s-fs creates a bucket (scripts/s3-servers does the same)

    def stored(self):
        return tree_bytes(self.dir) + sum(e.stat().st_size for e in self._sidecars())

    def drop(self):
        rm(self.dir)
        for e in list(self._sidecars()):
            os.remove(e.path)


class S3:
    def __init__(self):
        self.endpoint = os.environ["LDV_TEST_S3_S3SFS_ENDPOINT"]
        self.root = os.environ["LDV_TEST_S3_S3SFS_ROOT"]
        self.key = os.environ["LDV_TEST_S3_ACCESS_KEY"]
        self.secret = os.environ["LDV_TEST_S3_SECRET_KEY"]
        self.region = os.environ.get("LDV_TEST_S3_REGION", "us-east-1")


# ---------------------------------------------------------------------------------------------
# tools: each knows how to prepare a store, and the put / get command lines for a file or a tree


class Tool:
    name = "?"
    needs_init = False

    def __init__(self, h):
        self.h = h

    def prepare(self, store):
        """Untimed: whatever the store needs before a first put (init a vault or repository)."""

    def extra_reset(self):
        """Untimed: local state of the tool to clear with its store (caches)."""


class Ldv(Tool):
    name = "ldv"

    def __init__(self, h):
        super().__init__(h)
        self.n = 0

    def config(self, store):
        path = os.path.join(self.h.work, "ldv-config", f"{store.kind}-{os.path.basename(getattr(store, 'path', None) or store.bucket)}.toml")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if store.kind == "local":
            body = f'[profiles.bench]\nbackend = {{ type = "local", path = "{store.path}" }}\n'
        else:
            s3 = self.h.s3
            body = ('[profiles.bench]\nbackend = { type = "s3", '
                    f'endpoint = "{s3.endpoint}", path_style = true, bucket = "{store.bucket}", prefix = "vault/", '
                    f'region = "{s3.region}", access_key_id = "{s3.key}", secret_access_key = "{s3.secret}" }}\n')
        with open(path, "w") as f:
            f.write(body)
        os.chmod(path, 0o600)
        return path

    def base(self, store):
        return [self.h.ldv, "-q", "--no-progress", "--config", self.config(store), "--profile", "bench"]

    def prepare(self, store):
        run(self.base(store) + ["init"], env=self.h.env)

    def put(self, store, src, name):
        return self.base(store) + ["put", src, name]

    def get(self, store, name, dest):
        return self.base(store) + ["get", name, dest]

    # a tree is put as NAME/<path> and `ldv get NAME DEST` writes it to DEST/<path>
    put_tree = put

    def get_tree(self, store, name, dest):
        return self.get(store, name, dest), dest


class Rclone(Tool):
    name = "rclone"

    def remote(self, store, name):
        if store.kind == "local":
            return os.path.join(store.path, name)
        return f"s3:{store.bucket}/{name}"

    def prepare(self, store):
        if store.kind == "local":
            os.makedirs(store.path, exist_ok=True)

    def put(self, store, src, name):
        return ["rclone", "-q", "copyto", src, self.remote(store, name)]

    def get(self, store, name, dest):
        return ["rclone", "-q", "copyto", self.remote(store, name), dest]

    # On S3 the tree goes to the bucket's root: for a remote path `s3:bucket/tree`, rclone first
    # HEADs the key `tree`, which s3s-fs (keeping `tree/` as a directory) answers with a 500 after
    # ~50 s, twice; real S3 answers 404 at once. The bucket is the tool's own, so nothing changes.
    def tree_remote(self, store, name):
        return f"s3:{store.bucket}" if store.kind == "s3" else self.remote(store, name)

    def put_tree(self, store, src, name):
        return ["rclone", "-q", "copy", src, self.tree_remote(store, name)]

    def get_tree(self, store, name, dest):
        return ["rclone", "-q", "copy", self.tree_remote(store, name), dest], dest


class Restic(Tool):
    name = "restic"

    def repo(self, store):
        if store.kind == "local":
            return store.path
        return f"s3:{self.h.s3.endpoint}/{store.bucket}/repo"

    def extra_reset(self):
        rm(self.h.env["RESTIC_CACHE_DIR"])

    def prepare(self, store):
        run(["restic", "-q", "-r", self.repo(store), "init"], env=self.h.env)

    # restic keeps the absolute path it was given: `restic restore latest --target DIR` writes
    # DIR/<that path> (older versions: DIR/<basename>)
    @staticmethod
    def restored(dest, src):
        full = os.path.join(dest, os.path.abspath(src).lstrip("/"))
        return full if os.path.exists(full) else os.path.join(dest, os.path.basename(src))

    def put(self, store, src, name):
        return ["restic", "-q", "-r", self.repo(store), "backup", src]

    def get(self, store, name, dest):
        return ["restic", "-q", "-r", self.repo(store), "restore", "latest", "--target", dest]

    put_tree = put

    def get_tree(self, store, name, dest):
        return self.get(store, name, dest), None


class Aws(Tool):
    name = "aws s3 cp"

    def put(self, store, src, name):
        return [self.h.aws, "--endpoint-url", self.h.s3.endpoint, "s3", "cp", "--only-show-errors", src, f"s3://{store.bucket}/{name}"]

    def get(self, store, name, dest):
        return [self.h.aws, "--endpoint-url", self.h.s3.endpoint, "s3", "cp", "--only-show-errors", f"s3://{store.bucket}/{name}", dest]


class Cp(Tool):
    name = "cp"

    def prepare(self, store):
        os.makedirs(store.path, exist_ok=True)

    def put(self, store, src, name):
        return ["cp", src, os.path.join(store.path, name)]

    def get(self, store, name, dest):
        return ["cp", os.path.join(store.path, name), dest]

    def put_tree(self, store, src, name):
        return ["cp", "-r", src, os.path.join(store.path, name)]

    def get_tree(self, store, name, dest):
        return ["cp", "-r", os.path.join(store.path, name), dest], dest


# ---------------------------------------------------------------------------------------------
# rows


class Row:
    def __init__(self, section, tool, op, command, units=None, unit_name=None):
        self.section, self.tool, self.op, self.command = section, tool, op, command
        self.units, self.unit_name = units, unit_name  # bytes (MB/s) or files (files/s) per run
        self.times, self.rss = [], []
        self.stored = None
        self.error = None
        self.extra = {}

    @property
    def median(self):
        return median(self.times)

    @property
    def peak_rss_mib(self):
        return max(self.rss) / 1024 if self.rss else None

    def rate(self):
        m = self.median
        if m is None or not self.units:
            return "—"
        if self.unit_name == "files":
            return f"{self.units / m:,.0f} files/s"
        return f"{self.units / m / 1e6:,.0f} MB/s"


class Harness:
    def __init__(self, a):
        self.a = a
        self.ldv = os.environ.get("LDV_BIN") or "ldv"
        self.aws = os.environ.get("AWS_BIN") or "aws"
        self.s3 = S3() if "LDV_TEST_S3_S3SFS_ENDPOINT" in os.environ else None
        self.work = tempfile.mkdtemp(prefix="ldv-peers.", dir=a.tmp)
        self.data = tempfile.mkdtemp(prefix="ldv-peers-data.", dir=a.data) if a.data else os.path.join(self.work, "data")
        self.stores = os.path.join(self.work, "stores")
        self.outs = os.path.join(self.work, "out")
        for d in (self.data, self.stores, self.outs):
            os.makedirs(d, exist_ok=True)
        env = dict(os.environ)
        for var in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_ENDPOINT_URL", "LDV_CONFIG", "LDV_PROFILE", "LDV_VAULT",
                    "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            env.pop(var, None)  # plain HTTP on loopback: no CA bundle (rclone refuses one), no proxy
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env["RESTIC_PASSWORD"] = "ldv-bench"
        env["RESTIC_CACHE_DIR"] = os.path.join(self.work, "restic-cache")
        env["RCLONE_CONFIG"] = os.path.join(self.work, "rclone.conf")  # empty: remotes come from the env
        open(env["RCLONE_CONFIG"], "w").close()
        env["XDG_CONFIG_HOME"] = os.path.join(self.work, "xdg-config")
        env["XDG_DATA_HOME"] = os.path.join(self.work, "xdg-data")
        env["XDG_CACHE_HOME"] = os.path.join(self.work, "xdg-cache")  # format 2 caches remote vaults' index there
        if self.s3:
            env.update({
                "AWS_ACCESS_KEY_ID": self.s3.key, "AWS_SECRET_ACCESS_KEY": self.s3.secret,
                "AWS_REGION": self.s3.region, "AWS_DEFAULT_REGION": self.s3.region,
                "AWS_CONFIG_FILE": os.path.join(self.work, "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.work, "aws-credentials"),
                "RCLONE_CONFIG_S3_TYPE": "s3", "RCLONE_CONFIG_S3_PROVIDER": "Other",
                "RCLONE_CONFIG_S3_ENDPOINT": self.s3.endpoint, "RCLONE_CONFIG_S3_ACCESS_KEY_ID": self.s3.key,
                "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": self.s3.secret, "RCLONE_CONFIG_S3_REGION": self.s3.region,
                "RCLONE_CONFIG_S3_FORCE_PATH_STYLE": "true",
            })
        self.env = env
        self.rows = []
        self.tools = {"ldv": Ldv(self), "rclone": Rclone(self), "restic": Restic(self), "aws": Aws(self), "cp": Cp(self)}
        self.step = 0

    # -- data -------------------------------------------------------------------------------

    # Data is made for the sections that need it and removed after them, so that at most one
    # section's data is on disk at a time (the 1 GiB file, or the 2 GiB file and its second
    # version, or the tree).

    def make_file(self):
        self.file = os.path.join(self.data, "file.bin")
        log(f"data: {fmt_size_mib(self.a.size_mib)} random file")
        with open(self.file, "wb") as f:
            subprocess.run(["head", "-c", str(self.a.size_mib * MIB), "/dev/urandom"], stdout=f, check=True)
        run(["sync"])

    def make_edit(self):
        a = self.a
        self.v1 = os.path.join(self.data, "edit-v1.bin")
        self.v2 = os.path.join(self.data, "edit-v2.bin")
        log(f"data: {fmt_size_mib(a.edit_size_mib)} random file and its second version")
        with open(self.v1, "wb") as f:
            subprocess.run(["head", "-c", str(a.edit_size_mib * MIB), "/dev/urandom"], stdout=f, check=True)
        self.edits = make_second_version(self.v1, self.v2, seed=a.seed)
        run(["sync"])

    def make_tree(self):
        a = self.a
        self.tree = os.path.join(self.data, "tree")
        log(f"data: {a.files:,} random files of {a.file_kib} KiB in a tree")
        make_tree(self.tree, a.files, a.file_kib * 1024, a.seed)
        run(["sync"])

    def drop_data(self):
        for name in os.listdir(self.data):
            rm(os.path.join(self.data, name))

    # -- measuring --------------------------------------------------------------------------

    def progress(self, row, i, wall=None):
        self.step += 1
        what = f"{row.section} / {row.tool} {row.op}"
        log(f"{what}: run {i + 1}/{self.a.runs}" + (f": {wall:.2f} s" if wall is not None else ""))

    def measure(self, row, cmd, stdout=None):
        run(["sync"])  # no dirty pages of an earlier command are written back during this one
        wall, rss = timed(cmd, self.env, stdout=stdout)
        row.times.append(wall)
        row.rss.append(rss)
        return wall

    def add(self, row):
        self.rows.append(row)
        return row

    def new_local(self, label):
        return LocalStore(os.path.join(self.stores, label))

    def new_s3(self, label):
        return S3Store(self.s3, label)

    def store(self, kind, label):
        return self.new_local(label) if kind == "local" else self.new_s3(label)

    # -- sections ---------------------------------------------------------------------------

    def limits(self):
        sec = "limits"
        size = self.a.size_mib * MIB
        out = os.path.join(self.outs, "limits.bin")
        rows = [
            (self.add(Row(sec, "sha256sum", "read + hash", "sha256sum FILE", size)), ["sha256sum", self.file], None),
            (self.add(Row(sec, "cp", "copy", "cp FILE OUT", size)), ["cp", self.file, out], None),
            (self.add(Row(sec, "cat", "read", "cat FILE > /dev/null", size)), ["cat", self.file], None),
        ]
        for i in range(self.a.runs):
            for row, cmd, _ in rows:
                rm(out)
                try:
                    w = self.measure(row, cmd)
                    self.progress(row, i, w)
                except Failed as e:
                    row.error = str(e)
        rows[1][0].stored = size
        rm(out)

    def put_then_get(self, sec, kind, names, cmds, units, unit_name, put, get):
        """Each run, for each tool in turn: a fresh store, a timed put, a timed get of what that put
        stored into an empty directory, a check of the output, and the store dropped (so at most
        one tool's store and output are on disk at a time)."""
        puts = {n: self.add(Row(sec, self.tools[n].name, "put", cmds[n][0], units, unit_name)) for n in names}
        gets = {n: self.add(Row(sec, self.tools[n].name, "get", cmds[n][1], units, unit_name)) for n in names}
        out_dir = os.path.join(self.outs, "get")
        for i in range(self.a.runs):
            for n in names:
                tool, prow, grow = self.tools[n], puts[n], gets[n]
                if prow.error:
                    continue
                st = self.store(kind, f"{kind}-{n.replace(' ', '')}")
                try:
                    st.reset()
                    tool.extra_reset()
                    tool.prepare(st)
                    before = st.stored()
                    w = self.measure(prow, put(tool, st))
                    prow.stored = grow.stored = st.stored() - before
                    self.progress(prow, i, w)
                except Failed as e:
                    prow.error = str(e)
                    grow.error = "no put to read"
                    log(f"FAILED {sec} {n} put: {e}")
                    st.drop()
                    continue
                if not grow.error:
                    rm(out_dir)
                    os.makedirs(out_dir)
                    try:
                        cmd, check = get(tool, st, out_dir)  # check: the verifying command, made after the get
                        w = self.measure(grow, cmd)
                        self.progress(grow, i, w)
                        run(check())
                    except Failed as e:
                        grow.error = str(e)
                        log(f"FAILED {sec} {n} get: {e}")
                    rm(out_dir)
                st.drop()
        tool = self.tools["restic"]
        tool.extra_reset()

    def one_file(self, kind):
        """put and get of the big file."""
        sec = f"1 file, {kind}"
        names = ["ldv", "rclone", "restic", "aws" if kind == "s3" else "cp"]
        cmds = {"ldv": ("ldv put FILE NAME", "ldv get NAME OUT"),
                "rclone": ("rclone copyto FILE DEST", "rclone copyto DEST OUT"),
                "restic": ("restic backup FILE", "restic restore latest --target DIR"),
                "aws": ("aws s3 cp FILE s3://B/K", "aws s3 cp s3://B/K OUT"),
                "cp": ("cp FILE DIR/", "cp DIR/FILE OUT")}

        def get(tool, st, out_dir):
            if tool.name == "restic":
                return tool.get(st, "file.bin", out_dir), lambda: ["cmp", self.file, Restic.restored(out_dir, self.file)]
            got = os.path.join(out_dir, "file.bin")
            return tool.get(st, "file.bin", got), lambda: ["cmp", self.file, got]

        self.put_then_get(sec, kind, names, cmds, self.a.size_mib * MIB, None,
                          lambda tool, st: tool.put(st, self.file, "file.bin"), get)

    def second_version(self, kind):
        """First put of v1, then timed put of v2 to the same store; bytes stored by the second."""
        sec = f"2nd version, {kind}"
        size = self.a.edit_size_mib * MIB
        names = ["ldv", "restic", "rclone"]
        # Both versions are put from the same path, as a user would after editing the file in place.
        cur_dir = os.path.join(self.data, "edit")
        cur = os.path.join(cur_dir, "model.bin")
        os.makedirs(cur_dir, exist_ok=True)
        cmds = {"ldv": ("ldv put FILE NAME", "ldv put FILE NAME (a new version)"),
                "restic": ("restic backup FILE", "restic backup FILE (a second snapshot)"),
                "rclone": ("rclone copyto FILE DEST", "rclone copyto FILE DEST.v2 (a second object)")}
        firsts = {n: self.add(Row(sec, self.tools[n].name, "first put", cmds[n][0], size)) for n in names}
        seconds = {n: self.add(Row(sec, self.tools[n].name, "second put", cmds[n][1], size)) for n in names}
        for i in range(self.a.runs):
            for n in names:
                tool, row1, row2 = self.tools[n], firsts[n], seconds[n]
                if row2.error:
                    continue
                st = self.store(kind, f"{kind}-edit-{n}")
                try:
                    st.reset()
                    tool.extra_reset()
                    tool.prepare(st)
                    rm(cur)
                    os.link(self.v1, cur)
                    s0 = st.stored()
                    w1 = self.measure(row1, tool.put(st, cur, "model.bin"))
                    s1 = st.stored()
                    row1.stored = s1 - s0
                    rm(cur)
                    os.link(self.v2, cur)
                    w2 = self.measure(row2, tool.put(st, cur, "model.bin.v2" if n == "rclone" else "model.bin"))
                    row2.stored = st.stored() - s1
                    row2.extra.setdefault("stored", []).append(row2.stored)
                    self.progress(row2, i, w2)
                    log(f"  (first put {w1:.2f} s, second stored {fmt_bytes(row2.stored)})")
                except Failed as e:
                    row1.error = row2.error = str(e)
                    log(f"FAILED {sec} {n}: {e}")
                finally:
                    st.drop()
        rm(cur_dir)
        self.tools["restic"].extra_reset()

    def small_files(self, kind):
        sec = f"{self.a.files:,} files, {kind}"
        names = ["ldv", "rclone", "restic"] + (["cp"] if kind == "local" else [])
        cmds = {"ldv": ("ldv put DIR NAME", "ldv get NAME OUT"),
                "rclone": ("rclone copy DIR DEST", "rclone copy DEST OUT"),
                "restic": ("restic backup DIR", "restic restore latest --target OUT"),
                "cp": ("cp -r DIR DEST", "cp -r DEST OUT")}

        def get(tool, st, out_dir):
            if tool.name == "restic":
                return tool.get(st, "tree", out_dir), lambda: ["diff", "-r", "-q", self.tree, Restic.restored(out_dir, self.tree)]
            got = os.path.join(out_dir, "tree")
            cmd, got = tool.get_tree(st, "tree", got)
            return cmd, lambda: ["diff", "-r", "-q", self.tree, got]

        self.put_then_get(sec, kind, names, cmds, self.a.files, "files",
                          lambda tool, st: tool.put_tree(st, self.tree, "tree"), get)

    def startup(self):
        row = self.add(Row("startup", "ldv", "--version", "hyperfine --warmup 3 -N 'ldv --version'"))
        out = os.path.join(self.work, "hyperfine.json")
        try:
            run(["hyperfine", "--warmup", "3", "-N", "--export-json", out, f"{shlex.quote(self.ldv)} --version"], env=self.env)
            with open(out) as f:
                res = json.load(f)["results"][0]
            row.times = [res["mean"]]
            row.extra["hyperfine"] = res
            _, rss = timed([self.ldv, "--version"], self.env)
            row.rss = [rss]
            log(f"startup: ldv --version mean {res['mean'] * 1000:.2f} ms over {len(res['times'])} runs")
        except (Failed, KeyError, IndexError, ValueError) as e:
            row.error = str(e)

    def cleanup(self):
        rm(self.work)
        rm(self.data)


def make_second_version(v1, v2, seed):
    """v2 = v1 with one byte inserted at offset 1000, then ten 4 KiB regions overwritten in place at
    random offsets (fixed seed). Returns a description of the edits."""
    rng = random.Random(seed)
    size = os.path.getsize(v1)
    with open(v1, "rb") as src, open(v2, "wb") as dst:
        dst.write(src.read(1000))
        dst.write(b"\x5a")
        while True:
            buf = src.read(8 * MIB)
            if not buf:
                break
            dst.write(buf)
    offsets = sorted(rng.randrange(0, size + 1 - 4096) for _ in range(10))
    with open(v2, "r+b") as f:
        for off in offsets:
            f.seek(off)
            f.write(rng.randbytes(4096))
    return offsets


def make_tree(root, files, size, seed):
    per_dir = 100
    rng = random.Random(seed)
    for i in range(files):
        d = os.path.join(root, f"d{i // per_dir:03d}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i % per_dir:03d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))


# ---------------------------------------------------------------------------------------------
# the report


def sh(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=20).stdout.strip()
    except Exception as e:
        return f"({e})"


def machine_info(h):
    cpu = "?"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "?":
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    def fs_of(path):
        line = (sh(["df", "--output=fstype,source,target", path]).splitlines()[-1:] or ["?"])[0]
        parts = line.split()
        return f"{parts[0]} ({parts[1]} on {parts[2]})" if len(parts) == 3 else line
    os_name = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "features": ", ".join(x for x in ("sha_ni", "aes", "vaes", "avx2", "avx512f") if x in flags) or "none listed",
        "mem": mem,
        "kernel": platform.release(),
        "os": os_name,
        "fs": fs_of(h.work),
        "data_fs": fs_of(h.data),
    }


def versions(h):
    first = lambda s: s.splitlines()[0] if s else "?"
    v = {
        "ldv": first(sh([h.ldv, "--version"])),
        "rclone": first(sh(["rclone", "version"])),
        "restic": first(sh(["restic", "version"])),
        "aws": first(sh([h.aws, "--version"])),
        "hyperfine": first(sh(["hyperfine", "--version"])),
        "sha256sum": first(sh(["sha256sum", "--version"])),
        "s3s-fs": os.environ.get("LDV_BENCH_S3SFS_VERSION", "?"),
    }
    return v


def targets(h):
    """[(target, measured, limit, ratio, PASS/MISS/n/a)] from this run's rows."""
    a = h.a
    R = {}
    for r in h.rows:
        R[(r.section, r.tool, r.op)] = r

    def med(sec, tool, op):
        r = R.get((sec, tool, op))
        return None if r is None or r.error else r.median

    out = []

    def verdict(r, limit, le=True, strict=False):
        if r is None:
            return "n/a"
        if strict:
            return "PASS" if r < limit else "MISS"
        return "PASS" if (r <= limit if le else r >= limit) else "MISS"

    size = fmt_size_mib(a.size_mib)
    if "local" in a.only and "limits" in a.only:
        sha, cp = med("limits", "sha256sum", "read + hash"), med("limits", "cp", "copy")
        floor = max(sha, cp) if sha is not None and cp is not None else None
        for op, lim in (("put", 1.5), ("get", 1.25)):
            t = med("1 file, local", "ldv", op)
            r = ratio(t, floor)
            out.append((f"local {op} of {size}{', verified' if op == 'get' else ''} ≤ {lim} × max(sha256sum, cp)",
                        f"ldv {fmt_s(t)} s; max(sha256sum {fmt_s(sha)} s, cp {fmt_s(cp)} s) = {fmt_s(floor)} s",
                        f"≤ {lim}", r, verdict(r, lim)))
    if "s3" in a.only:
        sec = "1 file, s3"
        for op in ("put", "get"):
            t = med(sec, "ldv", op)
            peers = {n: med(sec, n, op) for n in ("rclone", "restic", "aws s3 cp")}
            known = {n: v for n, v in peers.items() if v is not None}
            fastest = min(known, key=known.get) if known else None
            r = ratio(t, known[fastest]) if fastest else None
            out.append((f"S3 {op} of {size} faster than every peer",
                        f"ldv {fmt_s(t)} s; fastest peer {fastest} {fmt_s(known.get(fastest))} s",
                        "< 1.0", r, verdict(r, 1.0, strict=True)))
            r = ratio(t, peers["rclone"])
            out.append((f"S3 {op} of {size} ≤ 0.8 × rclone", f"ldv {fmt_s(t)} s; rclone {fmt_s(peers['rclone'])} s",
                        "≤ 0.8", r, verdict(r, 0.8)))
    if "edit" in a.only:
        esize = fmt_size_mib(a.edit_size_mib)
        for kind in ("local", "s3"):
            if kind not in a.kinds:
                continue
            sec = f"2nd version, {kind}"
            r2 = R.get((sec, "ldv", "second put"))
            stored = None if r2 is None or r2.error else max(r2.extra.get("stored", [r2.stored]))
            r = ratio(stored, a.edit_size_mib * MIB)
            out.append((f"2nd version of {esize} ({kind}): bytes stored ≤ 5% of the file",
                        f"ldv stored {fmt_bytes(stored)} (most of {a.runs} runs)", "≤ 0.05", r, verdict(r, 0.05)))
            t1, t2 = med(sec, "ldv", "first put"), med(sec, "ldv", "second put")
            r = ratio(t2, t1)
            out.append((f"2nd version of {esize} ({kind}): time ≤ 0.5 × the first put",
                        f"ldv second {fmt_s(t2)} s; first {fmt_s(t1)} s", "≤ 0.5", r, verdict(r, 0.5)))
    if "small" in a.only:
        for kind in ("local", "s3"):
            if kind not in a.kinds:
                continue
            sec = f"{a.files:,} files, {kind}"
            for op in ("put", "get"):
                t, rc = med(sec, "ldv", op), med(sec, "rclone", op)
                r = ratio(rc, t)  # files/s ratio = inverse of the time ratio
                out.append((f"{a.files:,} small files, {kind} {op}: ≥ 2 × rclone's files/s",
                            f"ldv {fmt_s(t)} s, rclone {fmt_s(rc)} s for {a.files:,} files", "≥ 2", r, verdict(r, 2.0, le=False)))
    rss = [r.peak_rss_mib for r in h.rows if r.tool == "ldv" and r.rss and not r.error]
    worst = max(rss) if rss else None
    worst_row = next((r for r in h.rows if r.tool == "ldv" and r.rss and r.peak_rss_mib == worst), None)
    out.append((f"peak RSS ≤ {TARGET_RSS_MIB} MiB in every ldv row",
                f"largest {worst:.0f} MiB ({worst_row.section}, {worst_row.op})" if worst_row else "—",
                f"≤ {TARGET_RSS_MIB} MiB", ratio(worst, TARGET_RSS_MIB), verdict(ratio(worst, TARGET_RSS_MIB), 1.0)))
    if "startup" in a.only:
        t = med("startup", "ldv", "--version")
        r = ratio(t, 0.010)
        out.append(("`ldv --version` starts in under 10 ms", f"mean {t * 1000:.2f} ms (hyperfine)" if t else "—",
                    "< 1.0 (÷ 10 ms)", r, verdict(r, 1.0, strict=True)))
    return out


def report(h, started, ended, load_start, load_end, wall_total, mach, vers):
    a = h.a
    L = []
    w = L.append
    w("# Benchmarks: ldv against peer tools")
    w("")
    w("<!-- Written by bench/peers.sh; do not edit by hand: rerun the command below. -->")
    w("")
    w("Every number below was written by `bench/peers.sh` in one run; nothing is edited by hand. To rerun")
    w("(installs rclone, restic, hyperfine from Debian and awscli from PyPI into `.cache/`, builds ldv in")
    w("release mode, starts s3s-fs on loopback):")
    w("")
    w("```sh")
    w(a.command)
    w("```")
    w("")
    w(f"Run: {started} → {ended} ({wall_total / 60:.1f} min), ldv at `{a.git}`. Load average (1, 5, 15 min):")
    w(f"{load_start} at the start, {load_end} at the end.")
    w("")
    w("## Machine")
    w("")
    w(f"- CPU: {mach['cpu']}, {mach['cores']} logical cores ({mach['features']}); RAM {mach['mem']}")
    w(f"- {mach['os']}, Linux {mach['kernel']}; local stores and s3s-fs's directory on {mach['fs']};")
    w(f"  source data on {mach['data_fs']}")
    w(f"- {vers['ldv']} (release build); {vers['rclone']}; {vers['restic']}; {vers['aws']};")
    w(f"  s3s-fs {vers['s3s-fs']}; {vers['hyperfine']}; {vers['sha256sum']}")
    w("")
    w("## Method")
    w("")
    w(f"- Medians of {a.runs} runs; \"range\" is the fastest and slowest run. Wall time is measured by the")
    w("  harness around each command; peak RSS is `/usr/bin/time`'s maximum resident set of the command")
    w("  (the largest of its runs).")
    w("- Same data for every tool, generated once per run from `/dev/urandom` (incompressible).")
    if mach["data_fs"].startswith("tmpfs"):
        w("  The source data is on tmpfs (`--data`), so every tool reads it from memory alike, as it")
        w("  would from the page cache.")
    else:
        w("  Files are read from the page cache for every tool alike: the harness does not drop caches (it")
        w("  would need to on every run for every tool, and the machine is shared).")
    w("- Put rows: a fresh destination before every run (a new directory, restic repository, ldv vault or")
    w("  S3 bucket; `ldv init` and `restic init` are not timed), so every run is a first put. Each put")
    w("  is followed by a get of what it stored into an empty directory, and the get's output is")
    w("  compared with the source after the timing (`cmp`, `diff -r`). Tools take turns within a run.")
    w("- S3: one `s3s-fs` server on 127.0.0.1 for every tool (plain HTTP, SigV4), a bucket of its own")
    w("  per tool; it stores objects as files, so bytes stored = the bucket's files plus s3s-fs's")
    w("  per-object metadata files, as on disk. Local: bytes stored = apparent size of the destination.")
    w("  rclone puts the small-file tree at its bucket's root on S3: given `s3:bucket/tree`, rclone first")
    w("  HEADs the key `tree`, which s3s-fs (keeping `tree/` as a directory) answers with a 500 after")
    w("  ~50 s, twice (real S3 answers 404 at once).")
    w("- `sync` runs (untimed) before every measured command, so no command pays for the writeback of")
    w("  an earlier one.")
    w("- Every tool runs with its defaults (ldv: a format-2 vault, zstd). ldv's local vault fsyncs each object and its output file")
    w("  (`sync = true`, the default); `cp`, rclone's local backend and `restic restore` do not fsync.")
    w("  restic encrypts and compresses (zstd `auto`; random data does not compress). rclone verifies")
    w("  an MD5 (local) or ETag after each transfer. aws cli runs with its default 10 concurrent requests.")
    if "edit" in a.only:
        w(f"- Second version: v1 is a random {fmt_size_mib(a.edit_size_mib)} file; v2 is v1 with one byte")
        w(f"  inserted at offset 1000 and ten 4 KiB regions overwritten at random offsets (seed {a.seed}).")
        w("  Both are put from the same path into one store; bytes stored = the store's growth during the")
        w("  second put. rclone keeps no versions, so its second version is a second object (`.v2`).")
    w("- Ratio column: ldv's median time ÷ this row's median time for the same operation in the same")
    w("  section (< 1: ldv is faster). In the targets table, small-file ratios are in files/s (ldv ÷")
    w("  rclone, higher is better), the others as stated.")
    w("")
    w("## Targets")
    w("")
    w("| target | measured | limit | ratio | result |")
    w("|---|---|---|---:|---|")
    tg = targets(h)
    for name, measured, limit, r, v in tg:
        w(f"| {name} | {measured} | {limit} | {fmt_ratio(r)} | **{v}** |")
    passes = sum(1 for t in tg if t[4] == "PASS")
    w("")
    w(f"{passes} of {len(tg)} targets pass.")
    w("")
    w("## Results")
    w("")
    w(f"| section | tool | op | command | median s | range s | throughput | peak RSS MiB | bytes stored | ldv ÷ this |")
    w("|---|---|---|---|---:|---|---:|---:|---:|---:|")
    ldv_med = {}
    for r in h.rows:
        if r.tool == "ldv" and not r.error:
            ldv_med[(r.section, r.op)] = r.median
    for r in h.rows:
        if r.error:
            msg = r.error.replace("|", "\\|").replace("\n", " ")[:200]
            w(f"| {r.section} | {r.tool} | {r.op} | `{r.command}` | failed | {msg} | | | | |")
            continue
        rng = f"{fmt_s(min(r.times))}–{fmt_s(max(r.times))}" if len(r.times) > 1 else "—"
        rss = f"{r.peak_rss_mib:.0f}" if r.rss else "—"
        if r.section == "startup":
            hf = r.extra.get("hyperfine", {})
            rng = f"{hf.get('min', 0) * 1000:.2f}–{hf.get('max', 0) * 1000:.2f} ms" if hf else "—"
            w(f"| {r.section} | {r.tool} | {r.op} | `{r.command}` | {r.median * 1000:.2f} ms (mean) | {rng} | — | {rss} | — | — |")
            continue
        stored = r.stored
        if r.extra.get("stored"):
            vals = r.extra["stored"]
            stored = f"{fmt_bytes(median(vals))} ({100 * median(vals) / r.units:.2f}%)" if r.units else fmt_bytes(median(vals))
        else:
            stored = fmt_bytes(stored)
        lm = ldv_med.get((r.section, r.op))
        rr = "—" if r.tool == "ldv" or r.section == "limits" else fmt_ratio(ratio(lm, r.median))
        cmd = r.command.replace("|", "\\|")
        w(f"| {r.section} | {r.tool} | {r.op} | `{cmd}` | {fmt_s(r.median)} | {rng} | {r.rate()} | {rss} | {stored} | {rr} |")
    w("")
    sizes = (f"1 file = {fmt_size_mib(a.size_mib)}; 2nd version = {fmt_size_mib(a.edit_size_mib)}; "
             f"small files = {a.files:,} × {a.file_kib} KiB in {max(1, (a.files + 99) // 100)} directories")
    w(f"Sizes: {sizes}. MB/s = 10⁶ bytes/s. Bytes stored of a get row = what its put stored.")
    failed = [r for r in h.rows if r.error]
    if failed:
        w("")
        w("## Not measured")
        w("")
        for r in failed:
            w(f"- {r.section}, {r.tool} {r.op}: {r.error.splitlines()[0][:300] if r.error else ''}")
    w("")
    return "\n".join(L), tg


def kept_sections(path):
    """Sections other scripts write into the same file between their own BEGIN/END markers
    (bench/format2.sh), carried over unchanged when this report is rewritten."""
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        return ""
    begin, end = "<!-- BEGIN bench/format2.sh", "<!-- END bench/format2.sh -->"
    if begin not in old or end not in old:
        return ""
    return "\n" + old[old.index(begin):old.index(end) + len(end)] + "\n"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return ", ".join(f.read().split()[:3])
    except OSError:
        return "?"


def main():
    p = argparse.ArgumentParser(
        prog="bench/peers.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="bench/peers.sh also takes --rev REV: measure ldv built from commit REV (a clean export under\n"
               ".cache/bench-build/) instead of the work tree; LDV_BIN=/path/to/ldv measures a given binary.")
    p.add_argument("--size-mib", type=int, default=1024, help="the single file (default 1024)")
    p.add_argument("--edit-size-mib", type=int, help="the file with a second version (default 2 × --size-mib)")
    p.add_argument("--files", type=int, default=10000, help="small files in the tree (default 10000)")
    p.add_argument("--file-kib", type=int, default=16, help="size of each small file (default 16)")
    p.add_argument("--runs", type=int, default=3, help="runs per row; medians are reported (default 3)")
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"), help="where data and stores go (default $TMPDIR or /tmp)")
    p.add_argument("--data", help="where the source data goes, if not under --tmp (e.g. /dev/shm when disk is short)")
    p.add_argument("--out", help="the report (default BENCHMARKS.md at the repository root)")
    p.add_argument("--only", default="limits,local,s3,edit,small,startup",
                   help="sections to run, comma-separated (default: all): limits,local,s3,edit,small,startup")
    p.add_argument("--kinds", default="local,s3", help="stores for the edit and small-file sections (default local,s3)")
    p.add_argument("--seed", type=int, default=6, help="seed of the edits (default 6)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--command", default="bench/peers.sh", help=argparse.SUPPRESS)
    p.add_argument("--git", default="?", help=argparse.SUPPRESS)
    a = p.parse_args()
    a.edit_size_mib = a.edit_size_mib or 2 * a.size_mib
    a.only = set(a.only.split(","))
    a.kinds = set(a.kinds.split(","))
    if a.runs < 1:
        p.error("--runs must be at least 1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    a.out = a.out or os.path.join(root, "BENCHMARKS.md")

    h = Harness(a)
    if ("s3" in a.only or "s3" in a.kinds and a.only & {"edit", "small"}) and not h.s3:
        sys.exit("peers: no S3 server: run through bench/peers.sh (or export LDV_TEST_S3_* from scripts/s3-servers start)")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load_start = loadavg()
    t0 = time.monotonic()
    log(f"work directory {h.work}; load average {load_start}")
    try:
        if a.only & {"limits", "local", "s3"}:
            h.make_file()
            if "limits" in a.only:
                h.limits()
            if "local" in a.only:
                h.one_file("local")
            if "s3" in a.only:
                h.one_file("s3")
            h.drop_data()
        if "edit" in a.only:
            h.make_edit()
            for kind in ("local", "s3"):
                if kind in a.kinds:
                    h.second_version(kind)
            h.drop_data()
        if "small" in a.only:
            h.make_tree()
            for kind in ("local", "s3"):
                if kind in a.kinds:
                    h.small_files(kind)
            h.drop_data()
        if "startup" in a.only:
            h.startup()
        wall_total = time.monotonic() - t0
        load_end = loadavg()
        ended = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        text, tg = report(h, started, ended, load_start, load_end, wall_total, machine_info(h), versions(h))
        text += kept_sections(a.out)
        with open(a.out, "w") as f:
            f.write(text)
        log(f"wrote {a.out} in {wall_total / 60:.1f} min; load average {load_end}")
        for name, measured, limit, r, v in tg:
            log(f"  {v:4} {fmt_ratio(r):>6} {limit:>8}  {name}")
    finally:
        if a.keep:
            log(f"kept {h.work}")
        else:
            h.cleanup()


if __name__ == "__main__":
    main()
