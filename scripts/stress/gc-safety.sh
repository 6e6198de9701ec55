#!/usr/bin/env bash
# Format-2 gc safety drill: lock-free gc (with the vault's own grace, never --grace 0s) racing
# 8 writers that put overlapping data and remove their own older versions, while a killer
# SIGKILLs the writers' ldv processes.
#
# - Pool: POOL_FILES (40) files of 64 KiB - 8 MiB (log-uniform), each a patchwork of slices of
#   BLOCKS (8) shared random 1 MiB blocks, so chunks dedup across files, writers and versions.
# - WRITERS (8) loops. Each put stores, under one of 3 names of its own (w<i>/n0..n2), a pool
#   file as is (45%), a pool file with 1-64 KiB of fresh random bytes inserted at a random
#   offset (35%), or two pool files end to end (20%). After a put, with probability 40%, the
#   writer removes a random older version of its own (`rm --yes NAME@VERSION`). Then it sleeps
#   0-1.5 s. Every put is logged: exit code, killed or not (exit 137), duration, version and
#   sha256 of the receipt, sha256 of the source file.
# - A gc loop: `gc --yes --json` (the vault's grace), 1-4 s apart. Every run's JSON is kept.
# - A killer: every 2-6 s, `kill -9` the ldv process (put or rm) of a random writer (checked
#   through /proc to be that writer's ldv, never the loop).
#
# At the end (the loops stopped):
#   1. `verify --read-data` must exit 0;
#   2. every version a successful put reported and no rm removed must `cat` to its sha256
#      (versions whose rm was killed may be gone; if present they must match);
#   3. every version `ls --versions` lists must be known: from a receipt, or from a killed put
#      (then its sha256 must be that put's source file's);
#   4. puts (and rms, and gcs) that failed without being killed must be 0 (listed with stderr);
#   5. quiescent gc: `gc`, wait the grace, `gc`, `gc`, then 1 and 2 again (the sweep of the
#      marks the run left must not delete anything a version needs).
#
# usage: scripts/stress/gc-safety.sh [SECONDS=600] [VAULT_URL]
#   VAULT_URL: default a local vault file://WORKDIR/vault; s3://bucket/prefix uses the AWS_*
#   variables of the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...), as `ldv` does.
# env: BIN=path to ldv (default: target/release/ldv; copy it somewhere private first)
#      WORKDIR=dir (default mktemp under /tmp; kept on failure or KEEP=1)
#      GRACE=30s (init --gc-grace), WRITERS=8, POOL_FILES=40, BLOCKS=8
#      KILL_MIN=2 KILL_MAX=6 (seconds between kills), KILL=0 disables the killer
#      GC_PAUSE_MAX=4 (seconds, upper bound of the pause between gcs)
set -uo pipefail

DURATION=${1:-600}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${BIN:-$ROOT/target/release/ldv}")
[[ -x $BIN ]] || {
    echo "no ldv binary at $BIN (set BIN=)" >&2
    exit 2
}
GRACE=${GRACE:-30s}
WRITERS=${WRITERS:-8}
POOL_FILES=${POOL_FILES:-40}
BLOCKS=${BLOCKS:-8}
KILL=${KILL:-1}
KILL_MIN=${KILL_MIN:-2}
KILL_MAX=${KILL_MAX:-6}
GC_PAUSE_MAX=${GC_PAUSE_MAX:-4}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-gcsafety.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
export LDV_CACHE_DIR=$WORK/cache
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$LDV_CACHE_DIR"
URL=${2:-file://$WORK/vault}
LOCAL_VAULT=
[[ $URL == file://* ]] && LOCAL_VAULT=${URL#file://}
LOGS=$WORK/logs
POOL=$WORK/pool
RUN=$WORK/run
FAIL=$WORK/failures
mkdir -p "$LOGS" "$POOL" "$RUN/manifests" "$FAIL"
G=(--vault "$URL" --no-progress)
ldv() { "$BIN" "${G[@]}" "$@"; }
rand() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
log() { echo "[$(date +%T)] $*" | tee -a "$LOGS/summary" >&2; }

failures=0
fail() {
    failures=$((failures + 1))
    echo "FAILURE: $*" | tee -a "$LOGS/failures" >&2
}

# ---- content ---------------------------------------------------------------------------------
cat >"$WORK/gen.py" <<'EOF'
import os, random, sys
mode, out = sys.argv[1], sys.argv[2]
if mode == "blocks":                       # gen.py blocks DIR N
    for i in range(int(sys.argv[3])):
        with open(f"{out}/block{i}", "wb") as f:
            f.write(os.urandom(1 << 20))
elif mode == "pool":                       # gen.py pool DIR N BLOCKDIR NBLOCKS
    n, bdir, nb = int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    blocks = [open(f"{bdir}/block{i}", "rb").read() for i in range(nb)]
    for k in range(n):
        size = int(2 ** random.uniform(16, 23))        # 64 KiB .. 8 MiB, log-uniform
        parts, have = [], 0
        while have < size:
            b = random.choice(blocks)
            ln = min(random.randint(16 << 10, 1 << 20), size - have)
            off = random.randint(0, len(b) - ln)
            parts.append(b[off:off + ln]); have += ln
        with open(f"{out}/f{k}", "wb") as f:
            f.write(b"".join(parts))
elif mode == "insert":                     # gen.py insert OUT SRC
    data = open(sys.argv[3], "rb").read()
    at = random.randint(0, len(data))
    with open(out, "wb") as f:
        f.write(data[:at] + os.urandom(random.randint(1 << 10, 64 << 10)) + data[at:])
elif mode == "concat":                     # gen.py concat OUT SRC1 SRC2
    with open(out, "wb") as f:
        f.write((open(sys.argv[3], "rb").read() + open(sys.argv[4], "rb").read())[: 8 << 20])
EOF

log "work dir $WORK; vault $URL; binary $BIN ($("$BIN" --version 2>&1))"
log "pool: $POOL_FILES files from $BLOCKS shared 1 MiB blocks"
mkdir -p "$POOL/blocks"
python3 "$WORK/gen.py" blocks "$POOL/blocks" "$BLOCKS"
python3 "$WORK/gen.py" pool "$POOL" "$POOL_FILES" "$POOL/blocks" "$BLOCKS"
log "pool: $(du -sh --exclude=blocks "$POOL" | cut -f1)"

if ! ldv init --gc-grace "$GRACE" >"$LOGS/init.out" 2>&1; then
    cat "$LOGS/init.out" >&2
    exit 1
fi
log "init: $(tr '\n' ' ' <"$LOGS/init.out")"
GRACE_S=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(s|m|h)?', sys.argv[1]); print(int(m[1])*{'s':1,'m':60,'h':3600,None:1}[m[2]])" "$GRACE")

START=$(date +%s)
DEADLINE=$((START + DURATION))

# ---- writers ---------------------------------------------------------------------------------
# Files: puts.wI  seq \t name \t rc \t killed \t ms \t version \t receipt_sha \t src_sha \t kind
#        rms.wI   name@version \t rc \t killed \t ms
#        live.wI  name \t version \t sha (committed, not removed); uncertain.wI (rm killed)
writer() {
    local i=$1 seq=0 file=$RUN/w$i.file cur=$RUN/cur.w$i prechecked=0 t1
    local puts=$LOGS/puts.w$i rms=$LOGS/rms.w$i live=$RUN/live.w$i uncertain=$RUN/uncertain.w$i
    : >"$live"
    : >"$uncertain"
    while (($(date +%s) < DEADLINE)); do
        seq=$((seq + 1))
        local r kind a b name src_sha rc t0 ms killed version rsha
        r=$(rand 100)
        a=$POOL/f$(rand "$POOL_FILES")
        if ((r < 45)); then
            kind=same
            cp "$a" "$file"
        elif ((r < 80)); then
            kind=insert
            python3 "$WORK/gen.py" insert "$file" "$a"
        else
            kind=concat
            b=$POOL/f$(rand "$POOL_FILES")
            python3 "$WORK/gen.py" concat "$file" "$a" "$b"
        fi
        src_sha=$(sha256sum "$file" | cut -d' ' -f1)
        name=w$i/n$(rand 3)
        t0=$(now_ms)
        "$BIN" "${G[@]}" put --json "$file" "$name" >"$RUN/w$i.out" 2>"$RUN/w$i.err" &
        echo "$!" >"$cur"
        rc=0
        wait "$!" || rc=$?
        : >"$cur"
        t1=$(now_ms)
        ms=$((t1 - t0))
        killed=0
        ((rc == 137)) && killed=1
        version=- rsha=-
        if ((rc == 0)); then
            version=$(jq -r .version "$RUN/w$i.out")
            rsha=$(jq -r .sha256 "$RUN/w$i.out")
            printf '%s\t%s\t%s\n' "$name" "$version" "$rsha" >>"$live"
            # Keep the manifest (its chunk list) for explaining gc refusals later.
            if [[ -n $LOCAL_VAULT ]]; then
                cp -p "$LOCAL_VAULT/manifests/$name/$version" "$RUN/manifests/${name//\//_}@$version" 2>/dev/null
            else
                "$BIN" "${G[@]}" stat --chunks --json "$name@$version" >"$RUN/manifests/${name//\//_}@$version" 2>/dev/null
            fi
            if [[ $rsha != "$src_sha" ]]; then
                echo "w$i put #$seq $name@$version: receipt sha256 $rsha, file $src_sha" >>"$FAIL/receipt-mismatch"
            fi
        elif ((killed == 0)); then
            cp "$RUN/w$i.err" "$FAIL/put-w$i-$seq.err"
            printf 'w%s put #%s %s (%s) exit %s after %s ms\n' "$i" "$seq" "$name" "$kind" "$rc" "$ms" >"$FAIL/put-w$i-$seq.what"
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$seq" "$name" "$rc" "$killed" "$ms" "$version" "$rsha" "$src_sha" "$kind" "$t0" "$t1" >>"$puts"

        # Sometimes remove a random older version of its own (never the one just put).
        local n
        n=$(wc -l <"$live")
        if ((n > 1 && $(rand 100) < 40)); then
            local line victim
            line=$(($(rand $((n - 1))) + 1))
            victim=$(sed -n "${line}p" "$live")
            IFS=$'\t' read -r vname vver vsha <<<"$victim"
            # Every version is read back once before it is removed: a loss must not hide.
            local got crc
            got=$("$BIN" "${G[@]}" cat "$vname@$vver" 2>"$RUN/w$i.caterr" | sha256sum | cut -d' ' -f1)
            crc=${PIPESTATUS[0]}
            if ((crc != 0)) || [[ $got != "$vsha" ]]; then
                cp "$RUN/w$i.caterr" "$FAIL/precat-w$i-$seq.err"
                echo "w$i: $vname@$vver (sha256 $vsha) before its rm at $(now_ms): cat exit $crc, got $got" >"$FAIL/precat-w$i-$seq.what"
            fi
            prechecked=$((prechecked + 1))
            echo "$prechecked" >"$RUN/prechecked.w$i"
            t0=$(now_ms)
            "$BIN" "${G[@]}" rm --yes "$vname@$vver" >"$RUN/w$i.rmout" 2>"$RUN/w$i.rmerr" &
            echo "$!" >"$cur"
            rc=0
            wait "$!" || rc=$?
            : >"$cur"
            ms=$(($(now_ms) - t0))
            killed=0
            ((rc == 137)) && killed=1
            printf '%s@%s\t%s\t%s\t%s\t%s\t%s\n' "$vname" "$vver" "$rc" "$killed" "$ms" "$t0" "$((t0 + ms))" >>"$rms"
            if ((rc == 0)); then
                sed -i "${line}d" "$live"
            elif ((killed == 1)); then
                sed -i "${line}d" "$live"
                printf '%s\n' "$victim" >>"$uncertain"
            else
                cp "$RUN/w$i.rmerr" "$FAIL/rm-w$i-$seq.err"
                echo "w$i rm $vname@$vver exit $rc" >"$FAIL/rm-w$i-$seq.what"
            fi
        fi
        sleep "$(rand 16)e-1"
    done
}

gc_loop() {
    local k=0 rc t0 t1
    while (($(date +%s) < DEADLINE)); do
        k=$((k + 1))
        t0=$(now_ms)
        rc=0
        ldv gc --yes --json >"$LOGS/gc/$k.json" 2>"$LOGS/gc/$k.err" || rc=$?
        t1=$(now_ms)
        printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$rc" "$((t1 - t0))" "$t0" "$t1" >>"$LOGS/gcs"
        if ((rc == 4)) && grep -q 'referenced chunk(s) are missing' "$LOGS/gc/$k.err"; then
            cp "$LOGS/gc/$k.err" "$RUN/gc-refused-$k.err"
        elif ((rc != 0)); then
            cp "$LOGS/gc/$k.err" "$FAIL/gc-$k.err"
        fi
        sleep "$(rand $((GC_PAUSE_MAX * 10 - 9)))e-1"
        sleep 1
    done
}

# running_ldv I: the pid of writer I's ldv if one runs now (checked through /proc), else fails.
running_ldv() {
    local pid cmd
    pid=$(cat "$RUN/cur.w$1" 2>/dev/null)
    [[ -n $pid ]] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmd == "$BIN "* && $cmd == *" w$1/"* ]] || return 1
    echo "$pid"
}

# Every KILL_MIN-KILL_MAX s: look (for up to 3 s) for a writer running ldv, wait a random
# 0-400 ms more, and kill -9 that ldv if it still runs.
killer() {
    local i pid cmd tries what
    while (($(date +%s) < DEADLINE)); do
        sleep "$((KILL_MIN + $(rand $((KILL_MAX - KILL_MIN + 1)))))"
        pid=
        for ((tries = 0; tries < 60 && ${#pid} == 0; tries++)); do
            for i in $(shuf -i 0-$((WRITERS - 1))); do
                pid=$(running_ldv "$i") && break
            done
            [[ -n $pid ]] || sleep 0.05
        done
        if [[ -z $pid ]]; then
            printf '%s\t-\t-\tidle\n' "$(date +%s.%N)" >>"$LOGS/kills"
            continue
        fi
        sleep "0.$(printf '%03d' "$(rand 400)")"
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || cmd=
        what=$(awk '{for (j = 1; j <= NF; j++) if ($j == "put" || $j == "rm") {print $j; exit}}' <<<"$cmd")
        if [[ $(running_ldv "$i") == "$pid" ]] && kill -KILL "$pid" 2>/dev/null; then
            printf '%s\tw%s\t%s\t%s\n' "$(date +%s.%N)" "$i" "$pid" "$what" >>"$LOGS/kills"
        else
            printf '%s\tw%s\t%s\tgone\n' "$(date +%s.%N)" "$i" "$pid" >>"$LOGS/kills"
        fi
    done
}

mkdir -p "$LOGS/gc"
: >"$LOGS/kills"
: >"$LOGS/gcs"
pids=()
for ((i = 0; i < WRITERS; i++)); do
    : >"$LOGS/puts.w$i"
    : >"$LOGS/rms.w$i"
    writer "$i" &
    pids+=($!)
done
gc_loop &
pids+=($!)
if ((KILL)); then
    killer &
    pids+=($!)
fi
log "running $WRITERS writers, a gc loop and $( ((KILL)) && echo a killer || echo no killer) for $DURATION s"
for p in "${pids[@]}"; do wait "$p"; done
log "loops done after $(($(date +%s) - START)) s"

# ---- tallies ---------------------------------------------------------------------------------
cat "$LOGS"/puts.w* >"$LOGS/puts"
cat "$LOGS"/rms.w* >"$LOGS/rms"
cat "$RUN"/live.w* >"$RUN/live"
cat "$RUN"/uncertain.w* >"$RUN/uncertain"
puts_total=$(wc -l <"$LOGS/puts")
puts_ok=$(awk -F'\t' '$3 == 0' "$LOGS/puts" | wc -l)
puts_killed=$(awk -F'\t' '$4 == 1' "$LOGS/puts" | wc -l)
puts_failed=$(awk -F'\t' '$3 != 0 && $4 == 0' "$LOGS/puts" | wc -l)
rms_total=$(wc -l <"$LOGS/rms")
rms_ok=$(awk -F'\t' '$2 == 0' "$LOGS/rms" | wc -l)
rms_killed=$(awk -F'\t' '$3 == 1' "$LOGS/rms" | wc -l)
rms_failed=$(awk -F'\t' '$2 != 0 && $3 == 0' "$LOGS/rms" | wc -l)
kills=$(awk -F'\t' '$4 == "put" || $4 == "rm"' "$LOGS/kills" | wc -l)
gcs_total=$(wc -l <"$LOGS/gcs")
gcs_refused=$(find "$RUN" -name 'gc-refused-*.err' | wc -l)
gcs_failed=$(($(awk -F'\t' '$2 != 0' "$LOGS/gcs" | wc -l) - gcs_refused))
put_ms=$(awk -F'\t' '$3 == 0 {print $5}' "$LOGS/puts" | sort -n | awk '{a[NR]=$1} END {if (NR) {q=int(NR*0.95); if (q < 1) q=1; printf "median %d ms, p95 %d ms, max %d ms", a[int((NR+1)/2)], a[q], a[NR]}}')
log "puts: $puts_total ($puts_ok ok, $puts_killed killed, $puts_failed failed without a kill); ok puts: $put_ms"
log "put kinds ok: $(awk -F'\t' '$3 == 0 {k[$9]++} END {for (x in k) printf "%s %d  ", x, k[x]}' "$LOGS/puts")"
log "rms: $rms_total ($rms_ok ok, $rms_killed killed, $rms_failed failed without a kill)"
log "kills: $kills ($(awk -F'\t' '$4 == "put"' "$LOGS/kills" | wc -l) of puts, $(awk -F'\t' '$4 == "rm"' "$LOGS/kills" | wc -l) of rms; $(awk -F'\t' '$4 == "idle"' "$LOGS/kills" | wc -l) ticks found no ldv running within 3 s, $(awk -F'\t' '$4 == "gone"' "$LOGS/kills" | wc -l) found one that finished before the kill)"
gc_sum() { jq -s "[.[] | $1 // 0] | add // 0" "$LOGS"/gc/*.json 2>/dev/null; }
log "gcs: $gcs_total ($gcs_failed failed, $gcs_refused refused with \"referenced chunk(s) are missing\"); deleted $(gc_sum .result.deleted_objects) objects ($(gc_sum .result.bytes_freed) bytes), repacked $(gc_sum .result.bytes_repacked) bytes into $(gc_sum .result.packs_written) packs, condemned $(gc_sum .result.condemned), marks swept $(gc_sum .plan.marks_to_sweep), rescued packs $(gc_sum .plan.rescued_packs)"
log "gc wall: $(awk -F'\t' '{print $3}' "$LOGS/gcs" | sort -n | awk '{a[NR]=$1} END {if (NR) printf "median %d ms, max %d ms", a[int((NR+1)/2)], a[NR]}')"

if ((puts_failed > 0)); then
    fail "$puts_failed puts failed without being killed:"
    for f in "$FAIL"/put-*.what; do
        echo "  $(cat "$f"): $(head -c 600 "${f%.what}.err" | tr '\n' ' ')" | tee -a "$LOGS/failures" >&2
    done
fi
if ((rms_failed > 0)); then
    fail "$rms_failed rms failed without being killed: $(cat "$FAIL"/rm-*.what | head -5 | tr '\n' ';')"
fi
if ((gcs_failed > 0)); then
    fail "$gcs_failed gcs failed: $(head -c 600 "$(ls "$FAIL"/gc-*.err | head -1)")"
fi
# A gc that refused because "referenced chunk(s) are missing": explained when the chunk it names
# is referenced only by versions whose manifest was written while that gc ran (local vault: the
# manifest's mtime; else: the put ran then)
# (gc lists the index before the manifests, so it cannot know packs a put committed in between),
# and by no version committed before the gc started and not yet removed (those chunks must have
# been indexed). Any other refusal is a failure. Needs the manifest copies the writers keep.
if ((gcs_refused > 0)); then
    python3 - "$LOGS" "$RUN" "${LOCAL_VAULT:-}" >"$LOGS/gc-refusals" <<'PYEOF'
import glob, json, os, re, sys
logs, run, vault = sys.argv[1:4]
gcs = {}
for line in open(f"{logs}/gcs"):
    k, rc, ms, t0, t1 = line.rstrip("\n").split("\t")
    gcs[k] = (int(t0), int(t1))
removed = {}  # name@version -> (rm start, rm end) of successful rms
for line in open(f"{logs}/rms"):
    f = line.rstrip("\n").split("\t")
    if f[1] == "0":
        removed[f[0]] = (int(f[4]), int(f[5]))
putspan = {}  # name@version -> (put start, put end)
for line in open(f"{logs}/puts"):
    f = line.rstrip("\n").split("\t")
    if f[2] == "0":
        putspan[f"{f[1]}@{f[5]}"] = (int(f[9]), int(f[10]))
refs = {}  # chunk -> [(name@version, earliest commit ms, latest commit ms)]
paths = glob.glob(f"{run}/manifests/*")
if vault:
    paths += glob.glob(f"{vault}/manifests/**/*", recursive=True)
seen = set()
for p in paths:
    if os.path.isdir(p) or ".ldv-tmp" in p:
        continue
    try:
        m = json.load(open(p))
    except Exception:
        continue
    key = f"{m['name']}@{m['version']}"
    if key in seen:
        continue
    seen.add(key)
    if vault:  # a local manifest's mtime is its commit time
        lo = hi = int(os.stat(p).st_mtime * 1000)
    elif key in putspan:  # else it committed while its put ran
        lo, hi = putspan[key]
    else:
        continue
    for c in m["chunks"]:
        refs.setdefault(c["id"], []).append((key, lo, hi))
for f in sorted(glob.glob(f"{run}/gc-refused-*.err")):
    k = re.search(r"gc-refused-(\d+)\.err", f)[1]
    chunk = re.search(r"e\.g\. ([0-9a-f]{64})", open(f).read())[1]
    s, e = gcs[k]
    during = [(v, lo - s) for v, lo, hi in refs.get(chunk, []) if lo <= e and hi >= s]
    before = [(v, hi - s) for v, lo, hi in refs.get(chunk, []) if hi < s and not (v in removed and removed[v][1] < s)]
    if during and not before:
        verdict = f"explained: {during[0][0]} committed {during[0][1]} ms after gc {k} started ({e - s} ms run)"
    elif not refs.get(chunk):
        verdict = "unexplained: no kept manifest references it"
    else:
        verdict = f"unexplained: committed during the gc: {during}; committed before it and not removed before it: {before}"
    print(f"gc {k} refused (chunk {chunk}): {verdict}")
PYEOF
    explained=$(grep -c ': explained' "$LOGS/gc-refusals")
    log "gc refusals: $gcs_refused, $explained explained by a version committed during that gc (see $LOGS/gc-refusals)"
    if ((${GC_REFUSAL_FATAL:-0} || explained < gcs_refused)); then
        fail "$((gcs_refused - explained)) unexplained gc refusals of $gcs_refused: $(grep unexplained "$LOGS/gc-refusals" | head -3)"
    fi
fi
prechecked=$(cat "$RUN"/prechecked.w* 2>/dev/null | awk '{s += $1} END {print s + 0}')
log "versions read back before their rm: $prechecked ($(find "$FAIL" -name 'precat-*.what' | wc -l) bad)"
for f in "$FAIL"/precat-*.what; do
    [[ -e $f ]] && fail "$(cat "$f"): $(head -c 400 "${f%.what}.err")"
done
if [[ -s $FAIL/receipt-mismatch ]]; then fail "receipt sha256 mismatches: $(head -3 "$FAIL/receipt-mismatch")"; fi

# ---- checks ----------------------------------------------------------------------------------
check_all() {
    local phase=$1 rc
    rc=0
    ldv verify --read-data --json >"$LOGS/verify-$phase.json" 2>"$LOGS/verify-$phase.err" || rc=$?
    log "$phase: verify --read-data exit $rc: $(jq -c 'del(.problems, .could_not_check, .stats)' "$LOGS/verify-$phase.json" 2>/dev/null | head -c 600)"
    if ((rc != 0)); then
        fail "$phase: verify --read-data exited $rc: $(jq -c '.problems[:5]' "$LOGS/verify-$phase.json" 2>/dev/null) $(head -c 600 "$LOGS/verify-$phase.err")"
    fi
    local n=0 bad=0 name version sha got crc
    while IFS=$'\t' read -r name version sha; do
        n=$((n + 1))
        crc=0
        got=$(ldv cat "$name@$version" 2>"$LOGS/cat.err" | sha256sum | cut -d' ' -f1)
        crc=${PIPESTATUS[0]}
        if ((crc != 0)) || [[ $got != "$sha" ]]; then
            bad=$((bad + 1))
            fail "$phase: $name@$version (sha256 $sha): cat exit $crc, got $got: $(head -c 400 "$LOGS/cat.err")"
        fi
    done <"$RUN/live"
    log "$phase: $n committed, not removed versions: $((n - bad)) read back identical, $bad bad"
    local un=0 ungone=0
    while IFS=$'\t' read -r name version sha; do
        un=$((un + 1))
        crc=0
        got=$(ldv cat "$name@$version" 2>"$LOGS/cat.err" | sha256sum | cut -d' ' -f1)
        crc=${PIPESTATUS[0]}
        if ((crc == 3)); then
            ungone=$((ungone + 1))
        elif ((crc != 0)) || [[ $got != "$sha" ]]; then
            fail "$phase: $name@$version (rm killed; sha256 $sha): cat exit $crc, got $got: $(head -c 400 "$LOGS/cat.err")"
        fi
    done <"$RUN/uncertain"
    log "$phase: $un versions whose rm was killed: $ungone gone, $((un - ungone)) still there"
    # Everything listed must be known.
    ldv ls -l --versions --json >"$LOGS/ls-$phase.json" 2>"$LOGS/ls-$phase.err" || fail "$phase: ls exited $?"
    jq -r '.[] | [.name, .version, .sha256] | @tsv' "$LOGS/ls-$phase.json" | sort >"$RUN/listed"
    sort "$RUN/live" "$RUN/uncertain" | cut -f1,2 >"$RUN/known"
    local extra=0 committed_by_killed=0
    while IFS=$'\t' read -r name version sha; do
        if grep -qxF "$name"$'\t'"$version" "$RUN/known"; then continue; fi
        # A killed put that committed before the kill: its content must be that put's file.
        if awk -F'\t' -v n="$name" -v s="$sha" '$2 == n && $4 == 1 && $8 == s {f=1} END {exit !f}' "$LOGS/puts"; then
            committed_by_killed=$((committed_by_killed + 1))
            got=$(ldv cat "$name@$version" 2>/dev/null | sha256sum | cut -d' ' -f1)
            [[ $got == "$sha" ]] || fail "$phase: $name@$version (from a killed put) reads back as $got, not $sha"
        else
            extra=$((extra + 1))
            fail "$phase: $name@$version (sha256 $sha) is listed but no put made it"
        fi
    done <"$RUN/listed"
    # Versions removed by a successful rm must be gone.
    local back=0
    while IFS=$'\t' read -r nv rc _; do
        ((rc == 0)) || continue
        if grep -q "^${nv%@*}"$'\t'"${nv#*@}"$'\t' "$RUN/listed"; then back=$((back + 1)); fi
    done <"$LOGS/rms"
    ((back == 0)) || fail "$phase: $back versions removed by a successful rm are listed again"
    log "$phase: listed $(wc -l <"$RUN/listed") versions: $committed_by_killed committed by puts killed before their receipt, $extra unknown"
    if [[ -n $LOCAL_VAULT ]]; then
        log "$phase: vault $(du -sb "$LOCAL_VAULT" | cut -f1) bytes; $(find "$LOCAL_VAULT/packs" -type f ! -name '.ldv-tmp.*' | wc -l) packs, $(find "$LOCAL_VAULT/index" -type f -name 'mark-*' | wc -l) marks, $(find "$LOCAL_VAULT/index" -type f ! -name 'mark-*' ! -name '.ldv-tmp.*' | wc -l) segments, $(find "$LOCAL_VAULT" -name '.ldv-tmp.*' | wc -l) temp files"
    fi
}

check_all after-run

# Quiescent: condemn what the run left, wait the grace, sweep, and check again.
for step in 1 2 3; do
    if ((step == 2)); then
        log "waiting the grace ($GRACE_S s + 5 s) before the sweeping gc"
        sleep $((GRACE_S + 5))
    fi
    rc=0
    ldv gc --yes --json >"$LOGS/gc-final-$step.json" 2>"$LOGS/gc-final-$step.err" || rc=$?
    ((rc == 0)) || fail "final gc $step exited $rc: $(head -c 600 "$LOGS/gc-final-$step.err")"
    log "final gc $step: $(jq -c '{dead: .plan.dead_bytes, condemn: (.plan.dead_packs + .plan.orphan_packs), repack: .plan.repack_packs, sweep: .plan.sweep_objects, rescued: .plan.rescued_packs, freed: .result.bytes_freed, repacked: .result.bytes_repacked}' "$LOGS/gc-final-$step.json" 2>/dev/null)"
done
check_all after-final-gc

if ((failures > 0)); then
    log "FAILED: $failures failures; work dir and vault kept at $WORK (see $LOGS/failures)"
    exit 1
fi
log "OK: no failures"
if [[ -z ${KEEP:-} ]]; then
    rm -rf "$WORK"
else
    log "kept $WORK"
fi
