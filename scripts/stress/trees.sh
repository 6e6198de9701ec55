#!/usr/bin/env bash
# Tree-version drill: directory puts (one tree version per put) killed at random moments, and
# concurrent tree writers racing gc and a killer.
#
# Part A, one local format-2 vault, nothing concurrent (so `gc --grace 0s` is safe):
# - A source tree of FILES (3000) files of 1-64 KiB random bytes in 30 directories (some nested,
#   one with a space and non-ASCII letters in its name; a mix of modes and of past mtimes), 3 files
#   of 4-16 MiB, symlinks (relative, dangling, absolute, to a directory, to its parent) and empty
#   directories (one nested).
# - Calibration: the first (full) put, then 3 finished incremental puts (each after a round's
#   changes) and one finished `put --reread`. The incremental kill window follows the median of
#   the last 5 finished incremental puts (the calibration's, then those between rounds).
# - N rounds. With probability 1/2 a round starts with a finished put (changes, snapshot, put, the
#   checks below): a killed put does not move the base of the next incremental put, so without
#   these the changes to read pile up and the kill window (timed by a 2% put) falls short. Then:
#   change ~2% of the files (CHANGE_PCT) - rewritten in place, replaced by a rename (new
#   inode), rewritten in place at the same size with the old mtime put back (only ctime tells),
#   or appended to - sometimes add or remove files, a directory, retarget a symlink, chmod a file;
#   a snapshot of the tree (sha256 of every file, and type/mode/mtime/size/target of every entry);
#   then `put --json SRC t` (1 in 4 with --reread, timed by the --reread calibration) SIGKILLed
#   after a random delay in [0, 1.2 x the calibrated put]. Afterwards the versions of `t` must have
#   risen by 0 (killed before its commit) or 1 (committed; a finished put's receipt names it),
#   none may have gone; a new version is got into a fresh directory, which must `diff -r
#   --no-dereference` clean against the source and match its snapshot (modes, mtimes, symlinks,
#   empty dirs). With probability 1/3 versions beyond the newest KEEP_VERSIONS (3) are removed;
#   every 5th round a full `gc --yes --grace 0s`; then `verify` (no read) must pass.
# - At the end: `verify --read-data` clean; the versions listed are exactly those expected; every
#   one gets and matches its snapshot; then two `gc --grace 0s` and the same again.
#
# Part B, concurrent writers with gc at the vault's real grace (never --grace 0s while they run):
# - `init --gc-grace GRACE` (20s). WRITERS (3) loops for SECONDS, each on its own copy of a
#   B_FILES (500) file tree (plus one 1-4 MiB file; the copies start identical, so chunks dedup
#   across writers): change ~5% of its files (B_CHANGE_PCT), snapshot, put to `shared` or to
#   `w<i>` (50/50); after a put, with probability 1/3, get a random older version of its own
#   (checked against its snapshot) and `rm --yes` it; sleep 0-1 s.
# - A gc loop: `gc --yes --json` (the vault's grace) every 1-4 s; any non-zero exit fails.
# - A killer: every KILL_MIN-KILL_MAX (3-8) s, wait for a writer to be running ldv (put or rm,
#   checked through /proc), then SIGKILL it 0-100 ms later.
# - At the end: `verify --read-data` exit 0; every version a successful put reported and no rm
#   removed gets and matches its snapshot (and its listed sha256 is the receipt's); a version whose
#   rm was killed is gone or matches; every listed version comes from a receipt or from a killed
#   put (then it must match that put's snapshot, each killed put at most once); no removed version
#   is listed. Then quiescent gc: `gc`, wait grace + 5 s, `gc`, `gc`, and all the checks again.
#
# usage: scripts/stress/trees.sh [N=30] [SECONDS=300]
# env:   BIN=path to ldv (default target/release/ldv; copied to WORKDIR/ldv before use)
#        WORKDIR=dir (default mktemp under /tmp; kept on failure or KEEP=1), PART=A|B (default both)
#        FILES=3000 DIRS=30 BIG=3 CHANGE_PCT=2 KEEP_VERSIONS=3
#        B_FILES=500 B_CHANGE_PCT=5 WRITERS=3 GRACE=20s KILL_MIN=3 KILL_MAX=8 (KILL=0: no killer)
set -uo pipefail

N=${1:-30}
DURATION=${2:-300}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${BIN:-$ROOT/target/release/ldv}")
[[ -x $BIN ]] || {
    echo "no ldv binary at $BIN (set BIN=)" >&2
    exit 2
}
PART=${PART:-AB}
FILES=${FILES:-3000}
DIRS=${DIRS:-30}
BIG=${BIG:-3}
CHANGE_PCT=${CHANGE_PCT:-2}
KEEP_VERSIONS=${KEEP_VERSIONS:-3}
B_FILES=${B_FILES:-500}
B_CHANGE_PCT=${B_CHANGE_PCT:-5}
WRITERS=${WRITERS:-3}
GRACE=${GRACE:-20s}
KILL=${KILL:-1}
KILL_MIN=${KILL_MIN:-3}
KILL_MAX=${KILL_MAX:-8}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-trees.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
export LDV_CACHE_DIR=$WORK/cache
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG LDV_VAULT_FORMAT
export LC_ALL=C
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$LDV_CACHE_DIR"
LOGS=$WORK/logs
FAIL=$WORK/failures
mkdir -p "$LOGS" "$FAIL"
# A private copy, so a rebuild does not change the binary mid-run.
LDV=$WORK/ldv
cp "$BIN" "$LDV" || exit 2

rand() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
log() { echo "[$(date +%T)] $*" | tee -a "$LOGS/summary" >&2; }
failures=0
round=-
fail() {
    failures=$((failures + 1))
    echo "FAILURE (round $round): $*" | tee -a "$LOGS/failures" "$LOGS/summary" >&2
}
count() { find "$1" -type f ! -name '.ldv-tmp.*' "${@:2}" 2>/dev/null | wc -l; }
tmp_files() { find "$1" -name '.ldv-tmp.*' 2>/dev/null | wc -l; }
median() { sort -n | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print 0}'; }

# snapshot DIR OUT: OUT.sha = sha256 of every regular file; OUT.meta = every entry below DIR
# with its type, mode, mtime (ns), size (files) and target (symlinks). The root's own mtime is
# left out (get sets up DEST itself).
snapshot() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$2.sha"
    (cd "$1" && find . -mindepth 1 \( -type f -printf 'f %m %T@ %s %p\n' \) -o \
        \( -type d -printf 'd %m %T@ %p\n' \) -o \( -type l -printf 'l %T@ %l -> %p\n' \) \
        -o -printf '? %p\n' | sort) >"$2.meta"
}
# same_as_snapshot DIR SNAP WHAT: snapshot DIR and compare; on a difference, keep both and fail.
same_as_snapshot() {
    local dir=$1 snap=$2 what=$3 tag
    snapshot "$dir" "$dir.got"
    if ! cmp -s "$dir.got.sha" "$snap.sha"; then
        tag=$FAIL/content-$(date +%s%N)
        diff "$snap.sha" "$dir.got.sha" >"$tag.diff"
        fail "$what: restored file contents differ from the snapshot ($(grep -c '^[<>]' "$tag.diff") lines; $tag.diff): $(head -4 "$tag.diff" | tr '\n' ' ')"
        return 1
    fi
    if ! cmp -s "$dir.got.meta" "$snap.meta"; then
        tag=$FAIL/meta-$(date +%s%N)
        diff "$snap.meta" "$dir.got.meta" >"$tag.diff"
        fail "$what: restored entries (type/mode/mtime/size/target) differ from the snapshot ($tag.diff): $(head -4 "$tag.diff" | tr '\n' ' ')"
        return 1
    fi
    rm -f "$dir.got.sha" "$dir.got.meta"
}

cat >"$WORK/gen.py" <<'EOF'
import os, random, shutil, sys

KIB, MIB = 1 << 10, 1 << 20
NOW_NS = 1_700_000_000 * 10**9

def write(p, n):
    with open(p, "wb") as f:
        f.write(os.urandom(n))

def small():
    return random.randint(1 * KIB, 64 * KIB)

def build(root, nfiles, ndirs, nbig, bmin, bmax):
    os.makedirs(root)
    dirs = []
    for d in range(ndirs):
        if d % 5 == 4 and dirs:
            p = os.path.join(dirs[-1], f"sub{d:02d}")
        elif d == 7:
            p = f"d{d:02d} spaced ünï"
        else:
            p = f"d{d:02d}"
        dirs.append(p)
        os.makedirs(os.path.join(root, p))
    for k in range(nfiles):
        p = os.path.join(root, random.choice(dirs), f"f{k:05d}")
        write(p, small())
        r = random.random()
        if r < 0.10:
            os.chmod(p, 0o600)
        elif r < 0.15:
            os.chmod(p, 0o755)
        elif r < 0.18:
            os.chmod(p, 0o444)
        if random.random() < 0.3:  # an mtime in the past, with nanoseconds
            t = NOW_NS - random.randint(0, 3 * 365 * 86400 * 10**9)
            os.utime(p, ns=(t, t))
    for b in range(nbig):
        write(os.path.join(root, dirs[b % len(dirs)], f"big{b}.bin"), random.randint(bmin * MIB, bmax * MIB))
    d1 = os.path.join(root, dirs[1 % len(dirs)])
    target = sorted(n for n in os.listdir(d1) if os.path.isfile(os.path.join(d1, n)))
    os.symlink(f"../{dirs[1 % len(dirs)]}/{target[0] if target else 'missing'}", os.path.join(root, dirs[0], "rel-link"))
    os.symlink("no/such/file", os.path.join(root, "dangling"))
    os.symlink(dirs[2 % len(dirs)], os.path.join(root, "dirlink"))
    os.symlink("..", os.path.join(root, dirs[3 % len(dirs)], "parent-link"))
    os.symlink("/etc/hostname", os.path.join(root, "abs-link"))
    os.makedirs(os.path.join(root, "empty"))
    os.makedirs(os.path.join(root, dirs[0], "empty-nested", "deeper"))
    os.chmod(os.path.join(root, dirs[0], "empty-nested"), 0o700)

def walk(root):
    files, links, dirs = [], [], []
    for dp, dn, fn in os.walk(root):
        for n in dn:
            p = os.path.join(dp, n)
            (links if os.path.islink(p) else dirs).append(p)
        for n in fn:
            p = os.path.join(dp, n)
            (links if os.path.islink(p) else files).append(p)
    return files, links, dirs

def change(p, tally):
    st = os.stat(p)
    if not os.access(p, os.W_OK):  # a read-only file (not root): make it writable for the change
        os.chmod(p, st.st_mode | 0o200)
    c = random.random()
    if c < 0.45:  # rewritten in place (same inode), new size
        write(p, small())
        tally["inplace"] += 1
    elif c < 0.65:  # replaced by a rename (new inode)
        tmp = p + ".new~"
        write(tmp, small())
        os.chmod(tmp, st.st_mode & 0o7777)
        os.replace(tmp, p)
        tally["renamed"] += 1
    elif c < 0.85:  # same size in place, the old mtime put back: only ctime changes
        write(p, st.st_size)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        tally["same_size_old_mtime"] += 1
    else:  # appended to
        with open(p, "ab") as f:
            f.write(os.urandom(random.randint(1, 100)))
        tally["appended"] += 1

def mutate(root, pct):
    files, links, dirs = walk(root)
    tally = dict(inplace=0, renamed=0, same_size_old_mtime=0, appended=0, big_edit=0,
                 added=0, removed=0, dir_added=0, dir_removed=0, relinked=0, chmod=0)
    smalls = [f for f in files if os.path.getsize(f) <= 65 * KIB]
    bigs = [f for f in files if os.path.getsize(f) > 65 * KIB]
    for p in random.sample(smalls, min(len(smalls), max(1, round(len(smalls) * pct / 100)))):
        change(p, tally)
    if bigs and random.random() < 0.25:  # a 64 KiB region of a big file, in place
        p = random.choice(bigs)
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.seek(random.randint(0, size - 64 * KIB))
            f.write(os.urandom(64 * KIB))
        tally["big_edit"] += 1
    homes = [d for d in dirs if "empty" not in os.path.relpath(d, root)] or [root]
    if random.random() < 0.3:
        for _ in range(random.randint(1, 10)):
            write(os.path.join(random.choice(homes), f"n{random.getrandbits(40):010x}"), small())
            tally["added"] += 1
    if random.random() < 0.3:
        for p in random.sample(smalls, min(len(smalls) // 2, random.randint(1, 10))):
            if os.path.exists(p):
                os.remove(p)
                tally["removed"] += 1
    if random.random() < 0.1:
        d = os.path.join(random.choice(homes), f"nd{random.getrandbits(32):08x}")
        os.makedirs(d)
        for _ in range(random.randint(1, 5)):
            write(os.path.join(d, f"g{random.getrandbits(32):08x}"), small())
        tally["dir_added"] += 1
    extra = [d for d in dirs if os.path.basename(d).startswith("nd") and os.path.isdir(d)]
    if extra and random.random() < 0.05:
        shutil.rmtree(random.choice(extra))
        tally["dir_removed"] += 1
    if random.random() < 0.1:
        p = os.path.join(root, "dangling")
        if os.path.islink(p):
            os.remove(p)
            os.symlink(f"no/such/file{random.getrandbits(16)}", p)
            tally["relinked"] += 1
    if random.random() < 0.1:
        files, _, _ = walk(root)
        os.chmod(random.choice(files), random.choice([0o600, 0o640, 0o644, 0o755]))
        tally["chmod"] += 1
    print(" ".join(f"{k}={v}" for k, v in tally.items() if v))

if __name__ == "__main__":
    if sys.argv[1] == "build":  # build ROOT NFILES NDIRS NBIG BIG_MIN_MIB BIG_MAX_MIB
        build(sys.argv[2], *map(int, sys.argv[3:8]))
    elif sys.argv[1] == "mutate":  # mutate ROOT PCT
        mutate(sys.argv[2], float(sys.argv[3]))
EOF
gen() { python3 "$WORK/gen.py" "$@"; }

# ==== Part A ===================================================================================
a_between=0 a_rounds=0 a_killed_before=0 a_killed_packs=0 a_killed_segment=0 a_killed_after=0 a_finished=0 a_puts=0 a_gcs=0 a_removed=0
part_a() {
    local A=$WORK/a
    local VAULT=$A/vault URL=file://$A/vault SRC=$A/src SNAP=$A/snap RESTORE=$A/restore
    local EXPECTED=$LOGS/a-expected # version \t snapshot, oldest first
    mkdir -p "$A" "$SNAP"
    ldv() { "$LDV" --vault "$URL" --no-progress "$@"; }
    : >"$EXPECTED"
    : >"$LOGS/a-rounds"
    ldv init >"$LOGS/a-init.out" 2>&1 || {
        fail "A: init: $(cat "$LOGS/a-init.out")"
        return
    }
    gen build "$SRC" "$FILES" "$DIRS" "$BIG" 4 16
    log "A: vault $VAULT; source: $(find "$SRC" -type f | wc -l) files, $(find "$SRC" -type l | wc -l) symlinks, $(find "$SRC" -type d | wc -l) dirs, $(du -sb "$SRC" | cut -f1) bytes"

    versions_of_t() { ldv ls --versions --json t 2>>"$LOGS/a-ls.err" | jq -r '.[] | select(.name == "t") | .version' | sort; }
    # check_new VERSION SNAP WHAT: get VERSION into a fresh dir; diff it against the source (not
    # changed since the put) and its snapshot.
    check_new() {
        local version=$1 snap=$2 what=$3 rc=0
        rm -rf "$RESTORE"
        ldv get "t@$version" "$RESTORE" >"$LOGS/a-get.out" 2>"$LOGS/a-get.err" || rc=$?
        if ((rc != 0)); then
            fail "$what: get t@$version exited $rc: $(head -c 600 "$LOGS/a-get.err")"
            return 1
        fi
        if ! diff -r --no-dereference "$SRC" "$RESTORE" >"$LOGS/a-diff.out" 2>&1; then
            cp "$LOGS/a-diff.out" "$FAIL/a-diff-$round.out"
            fail "$what: t@$version differs from the source: $(head -5 "$LOGS/a-diff.out" | tr '\n' ' ')"
        fi
        same_as_snapshot "$RESTORE" "$snap" "$what: t@$version"
    }
    quick_verify() {
        local rc=0
        ldv verify --json >"$LOGS/a-qv.json" 2>"$LOGS/a-qv.err" || rc=$?
        if ((rc != 0)); then
            fail "verify exited $rc: $(jq -c '.problems[:5]' "$LOGS/a-qv.json" 2>/dev/null) $(head -c 800 "$LOGS/a-qv.err")"
            cp "$LOGS/a-qv.json" "$LOGS/a-verify-failed-$round.json"
        fi
    }
    full_gc() {
        local rc=0 t0
        t0=$(now_ms)
        ldv gc --yes --grace 0s --json >"$LOGS/a-gc.json" 2>"$LOGS/a-gc.err" || rc=$?
        ((rc == 0)) || fail "gc --grace 0s exited $rc: $(head -c 800 "$LOGS/a-gc.err")"
        a_gcs=$((a_gcs + 1))
        echo "$round $(($(now_ms) - t0)) ms $(jq -c '{dead: .plan.dead_bytes, sweep: .plan.sweep_objects, repack: .plan.repack_packs, result}' "$LOGS/a-gc.json" 2>/dev/null)" >>"$LOGS/a-gcs"
    }
    # finished_put WHAT [--reread]: mutate (unless WHAT is "first"), snapshot, put to the end.
    finished_put() {
        local what=$1 rc=0 t0 snap version
        shift
        [[ $what == first ]] || gen mutate "$SRC" "$CHANGE_PCT" >>"$LOGS/a-mutations"
        snap=$SNAP/$what
        snapshot "$SRC" "$snap"
        t0=$(now_ms)
        ldv put --json "$@" "$SRC" t >"$LOGS/a-put.json" 2>"$LOGS/a-put.err" || rc=$?
        LAST_PUT_MS=$(($(now_ms) - t0))
        a_puts=$((a_puts + 1))
        if ((rc != 0)); then
            fail "$what: put exited $rc: $(head -c 800 "$LOGS/a-put.err")"
            return 1
        fi
        version=$(jq -r .version "$LOGS/a-put.json")
        echo -e "$version\t$snap" >>"$EXPECTED"
        check_receipt "$LOGS/a-put.json" "$snap" "$what"
        check_new "$version" "$snap" "$what"
    }
    # check_receipt JSON SNAP WHAT: complete, nothing skipped, the file count, the listing's sha256.
    check_receipt() {
        local j=$1 snap=$2 what=$3 files version sha
        files=$(wc -l <"$snap.sha")
        [[ $(jq -r '.complete' "$j") == true && $(jq -r '.skipped | length' "$j") == 0 ]] ||
            fail "$what: receipt not complete: $(jq -c '{complete, skipped}' "$j")"
        [[ $(jq -r .files "$j") == "$files" ]] || fail "$what: receipt says $(jq -r .files "$j") files, the tree has $files"
        version=$(jq -r .version "$j")
        sha=$(ldv stat "t@$version" --json 2>/dev/null | jq -r .sha256)
        [[ $sha == "$(jq -r .sha256 "$j")" ]] || fail "$what: stat t@$version sha256 $sha, receipt $(jq -r .sha256 "$j")"
    }

    local LAST_PUT_MS=0 T_inc T_reread i
    round=calibrate
    finished_put first || return
    log "A: first put (everything new): $LAST_PUT_MS ms; $(jq -c '{files, files_read, bytes_read, new_chunks, bytes_uploaded}' "$LOGS/a-put.json")"
    : >"$LOGS/a-cal-ms"
    for i in 1 2 3; do
        finished_put "cal$i" || return
        echo "$LAST_PUT_MS" >>"$LOGS/a-cal-ms"
        log "A: calibration put $i (incremental): $LAST_PUT_MS ms; $(jq -c '{files, files_read, files_reused, bytes_read, new_chunks, bytes_uploaded}' "$LOGS/a-put.json")"
    done
    T_inc=$(median <"$LOGS/a-cal-ms")
    finished_put cal-reread --reread || return
    T_reread=$LAST_PUT_MS
    log "A: calibration put --reread: $T_reread ms; $(jq -c '{files, files_read, files_reused, bytes_read}' "$LOGS/a-put.json")"
    log "A: kill windows: [0, 1.2 x $T_inc ms] (incremental), [0, 1.2 x $T_reread ms] (--reread)"
    quick_verify

    local r st delay reread T before after new gone nnew p0 p1 s0 s1 snap outcome pid mut version
    local files_read_sum=0 files_reused_sum=0 reread_puts=0
    for ((r = 1; r <= N; r++)); do
        round=$r
        a_rounds=$((a_rounds + 1))
        # With probability 1/2 a finished put first: a killed put does not move the base of the
        # next one, so without these the changes to read would pile up round after round.
        if (($(rand 2) == 0)) && finished_put "r$r-before"; then
            a_between=$((a_between + 1))
            echo "$LAST_PUT_MS" >>"$LOGS/a-cal-ms"
            T_inc=$(tail -5 "$LOGS/a-cal-ms" | median)
            echo -e "round $r-before\tincremental\t-\texit 0\tfinished ($LAST_PUT_MS ms)\t-\t-\t-\t$(jq -c '{files_read, files_reused, elapsed_ms}' "$LOGS/a-put.json")" >>"$LOGS/a-rounds"
        fi
        mut=$(gen mutate "$SRC" "$CHANGE_PCT")
        echo "round $r: $mut" >>"$LOGS/a-mutations"
        snap=$SNAP/r$r
        snapshot "$SRC" "$snap"
        reread=()
        T=$T_inc
        if (($(rand 4) == 0)); then
            reread=(--reread)
            T=$T_reread
            reread_puts=$((reread_puts + 1))
        fi
        delay=$(rand $((T * 12 / 10 + 1)))
        before=$(versions_of_t)
        p0=$(count "$VAULT/packs")
        s0=$(count "$VAULT/index" ! -name 'mark-*')
        st=0
        "$LDV" --vault "$URL" --no-progress put --json "${reread[@]}" "$SRC" t >"$LOGS/a-kput.json" 2>"$LOGS/a-kput.err" &
        pid=$!
        sleep_ms "$delay"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || st=$?
        a_puts=$((a_puts + 1))
        after=$(versions_of_t)
        p1=$(count "$VAULT/packs")
        s1=$(count "$VAULT/index" ! -name 'mark-*')
        new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
        gone=$(comm -23 <(echo "$before") <(echo "$after") | sed '/^$/d')
        nnew=$(sed '/^$/d' <<<"$new" | wc -l)
        [[ -z $gone ]] || fail "versions of t vanished during a put: $gone"
        outcome=
        if ((st == 0)); then
            outcome=finished
            a_finished=$((a_finished + 1))
            version=$(jq -r .version "$LOGS/a-kput.json")
            if ((nnew != 1)) || [[ $new != "$version" ]]; then
                fail "a finished put reported t@$version, but the new versions are [$new]"
            fi
            check_receipt "$LOGS/a-kput.json" "$snap" "round $r"
            files_read_sum=$((files_read_sum + $(jq -r .files_read "$LOGS/a-kput.json")))
            files_reused_sum=$((files_reused_sum + $(jq -r .files_reused "$LOGS/a-kput.json")))
        elif ((st == 137)); then
            if ((nnew == 0)); then
                outcome=killed-before-commit
                a_killed_before=$((a_killed_before + 1))
                if ((s1 > s0)); then
                    a_killed_segment=$((a_killed_segment + 1))
                elif ((p1 > p0)); then
                    a_killed_packs=$((a_killed_packs + 1))
                fi
            elif ((nnew == 1)); then
                outcome=killed-after-commit
                a_killed_after=$((a_killed_after + 1))
            else
                outcome=killed-$nnew-versions
                fail "a killed put left $nnew new versions: $new"
            fi
        else
            outcome=failed-$st
            fail "put exited $st before the kill: $(head -c 800 "$LOGS/a-kput.err")"
        fi
        if ((nnew >= 1)); then
            while read -r version; do
                [[ -n $version ]] || continue
                echo -e "$version\t$snap" >>"$EXPECTED"
                check_new "$version" "$snap" "round $r ($outcome)"
            done <<<"$new"
        fi
        echo -e "round $r\t${reread[*]:-incremental}\tdelay $delay ms of $T\texit $st\t$outcome\tpacks +$((p1 - p0))\tsegments +$((s1 - s0))\ttmp $(tmp_files "$VAULT")\t$( ((st == 0)) && jq -c '{files_read, files_reused, elapsed_ms}' "$LOGS/a-kput.json")" >>"$LOGS/a-rounds"
        if (($(rand 3) == 0)); then
            while (($(wc -l <"$EXPECTED") > KEEP_VERSIONS)); do
                read -r version _ < <(head -1 "$EXPECTED")
                ldv rm --yes "t@$version" >>"$LOGS/a-rm.out" 2>&1 || fail "rm t@$version exited $?"
                sed -i 1d "$EXPECTED"
                a_removed=$((a_removed + 1))
            done
        fi
        ((r % 5 == 0)) && full_gc
        quick_verify
    done
    round=end
    log "A: $a_rounds rounds ($reread_puts with --reread): $a_killed_before killed before the commit ($a_killed_packs of them after writing packs, $a_killed_segment after writing an index segment), $a_killed_after killed after it, $a_finished finished (files read $files_read_sum, reused $files_reused_sum); $a_between finished puts between rounds; $a_removed versions removed, $a_gcs full gcs"
    log "A: kill delays (ms) by outcome: $(awk -F'\t' '$3 != "-" {split($3, a, " "); d[$5] = d[$5] " " a[2]} END {for (o in d) printf "%s:%s; ", o, d[o]}' "$LOGS/a-rounds")"
    log "A: finished incremental puts: $(median <"$LOGS/a-cal-ms") ms median, $(sort -n "$LOGS/a-cal-ms" | head -1)-$(sort -n "$LOGS/a-cal-ms" | tail -1) ms"
    log "A: vault $(du -sb "$VAULT" | cut -f1) bytes, $(count "$VAULT/packs") packs, $(count "$VAULT/index" ! -name 'mark-*') segments, $(count "$VAULT/index" -name 'mark-*') marks, $(tmp_files "$VAULT") temp files"

    a_check() {
        local phase=$1 rc=0 n=0 version snap listed
        ldv verify --read-data --json >"$LOGS/a-verify-$phase.json" 2>"$LOGS/a-verify-$phase.err" || rc=$?
        ((rc == 0)) || fail "A $phase: verify --read-data exited $rc: $(jq -c '.problems[:5]' "$LOGS/a-verify-$phase.json" 2>/dev/null) $(head -c 800 "$LOGS/a-verify-$phase.err")"
        listed=$(versions_of_t)
        [[ $listed == "$(cut -f1 "$EXPECTED" | sort)" ]] ||
            fail "A $phase: listed versions [$(echo $listed)] are not the expected [$(cut -f1 "$EXPECTED" | tr '\n' ' ')]"
        while IFS=$'\t' read -r version snap; do
            n=$((n + 1))
            rm -rf "$RESTORE"
            rc=0
            ldv get "t@$version" "$RESTORE" >"$LOGS/a-get.out" 2>"$LOGS/a-get.err" || rc=$?
            if ((rc != 0)); then
                fail "A $phase: get t@$version exited $rc: $(head -c 600 "$LOGS/a-get.err")"
                continue
            fi
            same_as_snapshot "$RESTORE" "$snap" "A $phase: t@$version"
        done <"$EXPECTED"
        log "A $phase: verify --read-data: $(jq -c '{versions, chunks_referenced, chunks_read, bytes_read, orphan_chunks, problems: (.problems | length)}' "$LOGS/a-verify-$phase.json" 2>/dev/null); $n versions got and compared"
    }
    a_check final
    full_gc
    full_gc
    log "A: after two more gcs: vault $(du -sb "$VAULT" | cut -f1) bytes, $(count "$VAULT/packs") packs, $(tmp_files "$VAULT") temp files"
    a_check after-gc
    rm -rf "$RESTORE"
}

# ==== Part B ===================================================================================
b_puts=0 b_puts_ok=0 b_puts_killed=0 b_gcs=0 b_committed_by_killed=0
part_b() {
    local Bd=$WORK/b
    local VAULT=$Bd/vault URL=file://$Bd/vault RUN=$Bd/run SNAP=$Bd/snap
    mkdir -p "$Bd" "$RUN" "$SNAP" "$LOGS/b-gc"
    G=(--vault "$URL" --no-progress)
    ldv() { "$LDV" "${G[@]}" "$@"; }
    round=b-setup
    ldv init --gc-grace "$GRACE" >"$LOGS/b-init.out" 2>&1 || {
        fail "B: init: $(cat "$LOGS/b-init.out")"
        return
    }
    local GRACE_S
    GRACE_S=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(s|m|h)?', sys.argv[1]); print(int(m[1])*{'s':1,'m':60,'h':3600,None:1}[m[2]])" "$GRACE")
    gen build "$Bd/base" "$B_FILES" 10 1 1 4
    local i
    for ((i = 0; i < WRITERS; i++)); do cp -a "$Bd/base" "$Bd/src.w$i"; done
    log "B: vault $VAULT (grace $GRACE); $WRITERS writers, each a copy of a tree of $(find "$Bd/base" -type f | wc -l) files, $(du -sb "$Bd/base" | cut -f1) bytes"

    local START DEADLINE
    START=$(date +%s)
    DEADLINE=$((START + DURATION))

    # Files: puts.wI  seq \t name \t rc \t ms \t version \t snapshot \t t0 \t t1 \t receipt summary
    #        live.wI  name \t version \t snapshot \t receipt sha256 (committed, not removed)
    #        killed.wI  name \t snapshot (puts killed: they may have committed)
    #        uncertain.wI  as live (rm killed); removed.wI name@version (rm exit 0)
    writer() {
        local i=$1 seq=0 src=$Bd/src.w$i cur=$RUN/cur.w$i
        local puts=$LOGS/b-puts.w$i live=$RUN/live.w$i
        : >"$live"
        : >"$RUN/killed.w$i"
        : >"$RUN/uncertain.w$i"
        : >"$RUN/removed.w$i"
        : >"$puts"
        : >"$LOGS/b-rms.w$i"
        while (($(date +%s) < DEADLINE)); do
            seq=$((seq + 1))
            local name snap rc t0 t1 version rsha
            gen mutate "$src" "$B_CHANGE_PCT" >>"$LOGS/b-mutations.w$i"
            snap=$SNAP/w$i-$seq
            snapshot "$src" "$snap"
            if (($(rand 2) == 0)); then name=shared; else name=w$i; fi
            t0=$(now_ms)
            "$LDV" "${G[@]}" put --json "$src" "$name" >"$RUN/w$i.out" 2>"$RUN/w$i.err" &
            echo "$!" >"$cur"
            rc=0
            wait "$!" 2>/dev/null || rc=$?
            : >"$cur"
            t1=$(now_ms)
            version=- rsha=-
            if ((rc == 0)); then
                version=$(jq -r .version "$RUN/w$i.out")
                rsha=$(jq -r .sha256 "$RUN/w$i.out")
                printf '%s\t%s\t%s\t%s\n' "$name" "$version" "$snap" "$rsha" >>"$live"
                if [[ $(jq -r .complete "$RUN/w$i.out") != true || $(jq -r .files "$RUN/w$i.out") != "$(wc -l <"$snap.sha")" ]]; then
                    echo "w$i put #$seq $name@$version: $(jq -c '{complete, skipped, files}' "$RUN/w$i.out"), the tree has $(wc -l <"$snap.sha") files" >"$FAIL/b-receipt-w$i-$seq"
                fi
            elif ((rc == 137)); then
                printf '%s\t%s\n' "$name" "$snap" >>"$RUN/killed.w$i"
            else
                cp "$RUN/w$i.err" "$FAIL/b-put-w$i-$seq.err"
                echo "w$i put #$seq $name exit $rc after $((t1 - t0)) ms: $(head -c 600 "$RUN/w$i.err")" >"$FAIL/b-put-w$i-$seq.what"
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$seq" "$name" "$rc" "$((t1 - t0))" "$version" "$snap" "$t0" "$t1" \
                "$( ((rc == 0)) && jq -c '{files_read, files_reused, new_chunks}' "$RUN/w$i.out")" >>"$puts"

            # Sometimes check and remove a random older version of its own (not the newest).
            local n line victim vname vver vsnap vsha grc
            n=$(wc -l <"$live")
            if ((n > 1 && $(rand 3) == 0)); then
                line=$(($(rand $((n - 1))) + 1))
                victim=$(sed -n "${line}p" "$live")
                IFS=$'\t' read -r vname vver vsnap vsha <<<"$victim"
                rm -rf "$RUN/pre.w$i"
                grc=0
                "$LDV" "${G[@]}" get "$vname@$vver" "$RUN/pre.w$i" >/dev/null 2>"$RUN/w$i.geterr" || grc=$?
                if ((grc != 0)); then
                    echo "w$i: get $vname@$vver before its rm exited $grc: $(head -c 600 "$RUN/w$i.geterr")" >"$FAIL/b-preget-w$i-$seq.what"
                else
                    snapshot "$RUN/pre.w$i" "$RUN/pre.w$i.got"
                    if ! cmp -s "$RUN/pre.w$i.got.sha" "$vsnap.sha" || ! cmp -s "$RUN/pre.w$i.got.meta" "$vsnap.meta"; then
                        cp -a "$RUN/pre.w$i" "$FAIL/b-preget-w$i-$seq.dir"
                        echo "w$i: $vname@$vver before its rm differs from its snapshot $vsnap: $(diff "$vsnap.sha" "$RUN/pre.w$i.got.sha" | head -3 | tr '\n' ' ') $(diff "$vsnap.meta" "$RUN/pre.w$i.got.meta" | head -3 | tr '\n' ' ')" >"$FAIL/b-preget-w$i-$seq.what"
                    fi
                fi
                echo 1 >>"$RUN/prechecked.w$i"
                t0=$(now_ms)
                "$LDV" "${G[@]}" rm --yes "$vname@$vver" >"$RUN/w$i.rmout" 2>"$RUN/w$i.rmerr" &
                echo "$!" >"$cur"
                rc=0
                wait "$!" 2>/dev/null || rc=$?
                : >"$cur"
                printf '%s@%s\t%s\t%s\n' "$vname" "$vver" "$rc" "$(($(now_ms) - t0))" >>"$LOGS/b-rms.w$i"
                if ((rc == 0)); then
                    sed -i "${line}d" "$live"
                    echo "$vname@$vver" >>"$RUN/removed.w$i"
                elif ((rc == 137)); then
                    sed -i "${line}d" "$live"
                    printf '%s\n' "$victim" >>"$RUN/uncertain.w$i"
                else
                    echo "w$i rm $vname@$vver exit $rc: $(head -c 600 "$RUN/w$i.rmerr")" >"$FAIL/b-rm-w$i-$seq.what"
                fi
            fi
            sleep "$(rand 11)e-1"
        done
    }

    gc_loop() {
        local k=0 rc t0 t1
        : >"$LOGS/b-gcs"
        while (($(date +%s) < DEADLINE)); do
            k=$((k + 1))
            t0=$(now_ms)
            rc=0
            ldv gc --yes --json >"$LOGS/b-gc/$k.json" 2>"$LOGS/b-gc/$k.err" || rc=$?
            t1=$(now_ms)
            printf '%s\t%s\t%s\n' "$k" "$rc" "$((t1 - t0))" >>"$LOGS/b-gcs"
            ((rc == 0)) || echo "gc $k exit $rc after $((t1 - t0)) ms: $(head -c 600 "$LOGS/b-gc/$k.err")" >"$FAIL/b-gc-$k.what"
            sleep "$((1 + $(rand 3))).$(rand 10)"
        done
    }

    running_ldv() { # running_ldv I: the pid of writer I's put or rm if one runs now
        local pid cmd
        pid=$(cat "$RUN/cur.w$1" 2>/dev/null)
        [[ -n $pid ]] || return 1
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
        [[ $cmd == "$LDV "* ]] || return 1
        echo "$pid"
    }
    killer() {
        local i pid cmd tries what
        : >"$LOGS/b-kills"
        while (($(date +%s) < DEADLINE)); do
            sleep "$((KILL_MIN + $(rand $((KILL_MAX - KILL_MIN + 1))))).$(rand 10)"
            pid=
            for ((tries = 0; tries < 60 && ${#pid} == 0; tries++)); do
                for i in $(shuf -i 0-$((WRITERS - 1))); do
                    pid=$(running_ldv "$i") && break
                done
                [[ -n $pid ]] || sleep 0.05
            done
            if [[ -z $pid ]]; then
                printf '%s\t-\t-\tidle\n' "$(date +%s.%N)" >>"$LOGS/b-kills"
                continue
            fi
            sleep "0.$(printf '%03d' "$(rand 100)")"
            cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || cmd=
            what=$(awk '{for (j = 1; j <= NF; j++) if ($j == "put" || $j == "rm") {print $j; exit}}' <<<"$cmd")
            if [[ $(running_ldv "$i") == "$pid" ]] && kill -KILL "$pid" 2>/dev/null; then
                printf '%s\tw%s\t%s\t%s\n' "$(date +%s.%N)" "$i" "$pid" "$what" >>"$LOGS/b-kills"
            else
                printf '%s\tw%s\t%s\tgone\n' "$(date +%s.%N)" "$i" "$pid" >>"$LOGS/b-kills"
            fi
        done
    }

    local pids=()
    for ((i = 0; i < WRITERS; i++)); do
        writer "$i" &
        pids+=($!)
    done
    gc_loop &
    pids+=($!)
    if ((KILL)); then
        killer &
        pids+=($!)
    fi
    log "B: running $WRITERS writers, a gc loop and $( ((KILL)) && echo a killer || echo no killer) for $DURATION s"
    local p
    for p in "${pids[@]}"; do wait "$p"; done
    round=b-end
    log "B: loops done after $(($(date +%s) - START)) s"

    cat "$LOGS"/b-puts.w* >"$LOGS/b-puts"
    cat "$LOGS"/b-rms.w* >"$LOGS/b-rms"
    cat "$RUN"/live.w* >"$RUN/live"
    cat "$RUN"/uncertain.w* >"$RUN/uncertain"
    cat "$RUN"/killed.w* >"$RUN/killed"
    cat "$RUN"/removed.w* >"$RUN/removed"
    b_puts=$(wc -l <"$LOGS/b-puts")
    b_puts_ok=$(awk -F'\t' '$3 == 0' "$LOGS/b-puts" | wc -l)
    b_puts_killed=$(awk -F'\t' '$3 == 137' "$LOGS/b-puts" | wc -l)
    b_gcs=$(wc -l <"$LOGS/b-gcs")
    local rms rms_ok rms_killed
    rms=$(wc -l <"$LOGS/b-rms")
    rms_ok=$(awk -F'\t' '$2 == 0' "$LOGS/b-rms" | wc -l)
    rms_killed=$(awk -F'\t' '$2 == 137' "$LOGS/b-rms" | wc -l)
    log "B: puts: $b_puts ($b_puts_ok ok, $b_puts_killed killed, $((b_puts - b_puts_ok - b_puts_killed)) failed); to shared $(awk -F'\t' '$2 == "shared" && $3 == 0' "$LOGS/b-puts" | wc -l) ok; ok puts $(awk -F'\t' '$3 == 0 {print $4}' "$LOGS/b-puts" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "median %d ms, max %d ms", a[int((NR+1)/2)], a[NR]}')"
    log "B: files read / reused by ok puts: $(awk -F'\t' '$3 == 0 {print $9}' "$LOGS/b-puts" | jq -s -c '{files_read: (map(.files_read) | add), files_reused: (map(.files_reused) | add)}')"
    log "B: rms: $rms ($rms_ok ok, $rms_killed killed), each after a get that matched or a failure; kills: $(awk -F'\t' '$4 == "put"' "$LOGS/b-kills" | wc -l) of puts, $(awk -F'\t' '$4 == "rm"' "$LOGS/b-kills" | wc -l) of rms, $(awk -F'\t' '$4 == "gone"' "$LOGS/b-kills" | wc -l) finished first, $(awk -F'\t' '$4 == "idle"' "$LOGS/b-kills" | wc -l) ticks idle"
    gc_sum() { jq -s "[.[] | $1 // 0] | add // 0" "$LOGS"/b-gc/*.json 2>/dev/null; }
    log "B: gcs: $b_gcs ($(awk -F'\t' '$2 != 0' "$LOGS/b-gcs" | wc -l) failed); deleted $(gc_sum .result.deleted_objects) objects ($(gc_sum .result.bytes_freed) bytes), repacked $(gc_sum .result.bytes_repacked) bytes into $(gc_sum .result.packs_written) packs, condemned $(gc_sum .result.condemned), rescued packs $(gc_sum .plan.rescued_packs); wall $(cut -f3 "$LOGS/b-gcs" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "median %d ms, max %d ms", a[int((NR+1)/2)], a[NR]}')"
    local f
    for f in "$FAIL"/b-*.what "$FAIL"/b-receipt-*; do
        [[ -e $f ]] && fail "B: $(cat "$f")"
    done

    b_check() {
        local phase=$1 rc=0 name version snap sha n=0 bad=0 D=$Bd/restore
        ldv verify --read-data --json >"$LOGS/b-verify-$phase.json" 2>"$LOGS/b-verify-$phase.err" || rc=$?
        ((rc == 0)) || fail "B $phase: verify --read-data exited $rc: $(jq -c '.problems[:5]' "$LOGS/b-verify-$phase.json" 2>/dev/null) $(head -c 800 "$LOGS/b-verify-$phase.err")"
        log "B $phase: verify --read-data exit $rc: $(jq -c '{versions, chunks_referenced, chunks_read, bytes_read, orphan_chunks, problems: (.problems | length)}' "$LOGS/b-verify-$phase.json" 2>/dev/null)"
        ldv ls -l --versions --json >"$LOGS/b-ls-$phase.json" 2>"$LOGS/b-ls-$phase.err" || fail "B $phase: ls exited $?"
        jq -r '.[] | [.name, .version, .sha256] | @tsv' "$LOGS/b-ls-$phase.json" | sort >"$RUN/listed"
        while IFS=$'\t' read -r name version snap sha; do
            n=$((n + 1))
            grep -qxF "$name"$'\t'"$version"$'\t'"$sha" "$RUN/listed" ||
                fail "B $phase: $name@$version (receipt sha256 $sha) is not listed with that sha256: $(grep -F "$version" "$RUN/listed")"
            rm -rf "$D"
            rc=0
            ldv get "$name@$version" "$D" >/dev/null 2>"$LOGS/b-get.err" || rc=$?
            if ((rc != 0)); then
                bad=$((bad + 1))
                fail "B $phase: get $name@$version exited $rc: $(head -c 600 "$LOGS/b-get.err")"
                continue
            fi
            same_as_snapshot "$D" "$snap" "B $phase: $name@$version" || bad=$((bad + 1))
        done <"$RUN/live"
        log "B $phase: $n versions committed by a put and not removed: $((n - bad)) got and matched, $bad bad"
        local un=0 ungone=0
        while IFS=$'\t' read -r name version snap sha; do
            un=$((un + 1))
            rm -rf "$D"
            rc=0
            ldv get "$name@$version" "$D" >/dev/null 2>"$LOGS/b-get.err" || rc=$?
            if ((rc == 3)); then
                ungone=$((ungone + 1))
            elif ((rc != 0)); then
                fail "B $phase: get $name@$version (its rm was killed) exited $rc: $(head -c 600 "$LOGS/b-get.err")"
            else
                same_as_snapshot "$D" "$snap" "B $phase: $name@$version (its rm was killed)"
            fi
        done <"$RUN/uncertain"
        log "B $phase: $un versions whose rm was killed: $ungone gone, $((un - ungone)) still there"
        # Every listed version must be known: a receipt, or a killed put whose snapshot it matches.
        cut -f1,2 "$RUN/live" "$RUN/uncertain" | sort >"$RUN/known"
        local unknown=0 by_killed=0 digest ksnap matched
        : >"$RUN/matched-killed"
        while IFS=$'\t' read -r name version sha; do
            grep -qxF "$name"$'\t'"$version" "$RUN/known" && continue
            rm -rf "$D"
            rc=0
            ldv get "$name@$version" "$D" >/dev/null 2>"$LOGS/b-get.err" || rc=$?
            if ((rc != 0)); then
                unknown=$((unknown + 1))
                fail "B $phase: $name@$version is listed, no receipt made it, and get exited $rc: $(head -c 600 "$LOGS/b-get.err")"
                continue
            fi
            snapshot "$D" "$D.got"
            matched=
            while IFS=$'\t' read -r _ ksnap; do
                if cmp -s "$D.got.sha" "$ksnap.sha" && cmp -s "$D.got.meta" "$ksnap.meta"; then
                    matched=$ksnap
                    break
                fi
            done < <(awk -F'\t' -v n="$name" '$1 == n' "$RUN/killed")
            if [[ -n $matched ]]; then
                by_killed=$((by_killed + 1))
                if grep -qxF "$matched" "$RUN/matched-killed"; then
                    fail "B $phase: $name@$version is a second version from the killed put of $matched"
                fi
                echo "$matched" >>"$RUN/matched-killed"
                echo -e "$name\t$version\t$matched" >>"$LOGS/b-committed-by-killed-$phase"
            else
                unknown=$((unknown + 1))
                cp -a "$D" "$FAIL/b-unknown-$name@$version"
                fail "B $phase: $name@$version (sha256 $sha) is listed but matches no receipt and no killed put's tree (kept in $FAIL/b-unknown-$name@$version)"
            fi
        done <"$RUN/listed"
        b_committed_by_killed=$by_killed
        local back=0 nv
        while read -r nv; do
            grep -q "^${nv%@*}"$'\t'"${nv#*@}"$'\t' "$RUN/listed" && back=$((back + 1))
        done <"$RUN/removed"
        ((back == 0)) || fail "B $phase: $back versions removed by a successful rm are listed"
        log "B $phase: listed $(wc -l <"$RUN/listed") versions: $by_killed committed by puts killed before their receipt, $unknown unknown; $back removed ones listed"
        log "B $phase: vault $(du -sb "$VAULT" | cut -f1) bytes; $(count "$VAULT/packs") packs, $(count "$VAULT/index" -name 'mark-*') marks, $(count "$VAULT/index" ! -name 'mark-*') segments, $(tmp_files "$VAULT") temp files"
        rm -rf "$D" "$D.got.sha" "$D.got.meta"
    }
    b_check after-run
    local step rc
    for step in 1 2 3; do
        if ((step == 2)); then
            log "B: waiting the grace ($GRACE_S s + 5 s) before the sweeping gc"
            sleep $((GRACE_S + 5))
        fi
        rc=0
        ldv gc --yes --json >"$LOGS/b-gc-final-$step.json" 2>"$LOGS/b-gc-final-$step.err" || rc=$?
        ((rc == 0)) || fail "B: final gc $step exited $rc: $(head -c 600 "$LOGS/b-gc-final-$step.err")"
        log "B: final gc $step: $(jq -c '{dead: .plan.dead_bytes, condemn: (.plan.dead_packs + .plan.orphan_packs), repack: .plan.repack_packs, sweep: .plan.sweep_objects, rescued: .plan.rescued_packs, freed: .result.bytes_freed, deleted: .result.deleted_objects, leftovers: .result.leftovers_removed}' "$LOGS/b-gc-final-$step.json" 2>/dev/null)"
    done
    b_check after-final-gc
}

T_START=$(date +%s)
log "binary $BIN ($("$LDV" --version 2>&1)), copied to $LDV; work dir $WORK; N=$N SECONDS=$DURATION"
[[ $PART == *A* ]] && part_a
[[ $PART == *B* ]] && part_b
round=summary
log "summary: part A: $a_rounds rounds, $a_killed_before killed before commit, $a_killed_after killed after commit, $a_finished finished, $a_puts puts ($a_between finished between rounds), $a_gcs gcs; part B: $b_puts puts ($b_puts_ok ok, $b_puts_killed killed, $b_committed_by_killed of them committed), $b_gcs gcs; $(($(date +%s) - T_START)) s; failures: $failures"
if ((failures > 0)); then
    log "FAILED: $failures failures; work dir kept at $WORK (logs: $LOGS, evidence: $FAIL)"
    exit 1
fi
log "OK"
if [[ -z ${KEEP:-} ]]; then
    rm -rf "$WORK"
else
    log "kept $WORK"
fi
