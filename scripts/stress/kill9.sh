#!/usr/bin/env bash
# Crash stress: SIGKILL `put` of a ~256 MiB file at PUTS random moments and `gc --grace 0s --yes`
# at GCS random moments, in shuffled order, on one local vault.
#
# Put rounds: fresh random content each round (so every chunk is new); the put is killed after a
# random delay in [0, 1.1 x a calibrated full put]. Then: what was left (chunks written, a
# committed version, temp files, locks), and a re-put of the same file whose receipt must show it
# uploaded only the chunks the killed put had not stored (new_chunks = chunks - chunks written).
# Gc rounds: garbage is set up first (a 128 MiB file put with a small-chunk profile, ~2000
# chunks, then removed; big versions beyond the newest 3 removed; a small file kept forever),
# then gc is killed after a random delay in [0, 1.1 x a calibrated full gc].
# After every round `verify` (no read) must pass. At the end `verify --read-data` must pass and
# every version committed so far and not removed must be listed with its sha256 and read back
# identical with `get NAME@VERSION -`.
#
# Commands use --lock-wait 10s (LOCK_WAIT), so a lock that is not recognised as stale shows up
# quickly as exit 8; the script then runs `ldv unlock`, retries once, and reports it.
#
# usage: scripts/stress/kill9.sh BIN [PUTS] [GCS]   (defaults 50 and 30)
# env:   WORKDIR=dir (default: mktemp under /tmp; kept on failure or KEEP=1), LOCK_WAIT=dur,
#        SIZE_MIB=n (default 256), GARBAGE_MIB=n (default 128), KEEP_BIG=n (default 3)
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BIN [PUTS] [GCS]" >&2
    exit 2
fi
BIN=$(realpath "$1")
PUTS=${2:-50}
GCS=${3:-30}
SIZE_MIB=${SIZE_MIB:-256}
GARBAGE_MIB=${GARBAGE_MIB:-128}
KEEP_BIG=${KEEP_BIG:-3}
LOCK_WAIT=${LOCK_WAIT:-10s}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-kill9.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
VAULT=$WORK/vault
URL=file://$VAULT
DATA=$WORK/data
LOGS=$WORK/logs
mkdir -p "$DATA" "$LOGS"
CFG=$WORK/small.toml
cat >"$CFG" <<EOF
[profiles.small]
backend = { type = "local", path = "$VAULT" }
chunking = { mode = "cdc", min = "16KiB", avg = "64KiB", max = "256KiB" }
EOF
EXPECTED=$LOGS/expected # name \t version \t sha256 of every version that must survive

ldv() { "$BIN" --vault "$URL" --no-progress --lock-wait "$LOCK_WAIT" "$@"; }
ldv_small() { "$BIN" --config "$CFG" --profile small --no-progress --lock-wait "$LOCK_WAIT" "$@"; }

rand() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
chunk_files() { find "$VAULT/chunks" -type f ! -name '.ldv-tmp.*' 2>/dev/null | wc -l; }
manifest_files() { find "$VAULT/manifests" -type f ! -name '.ldv-tmp.*' 2>/dev/null | wc -l; }
tmp_files() { find "$VAULT" -name '.ldv-tmp.*' 2>/dev/null | wc -l; }
lock_files() { find "$VAULT/locks" -type f ! -name '.ldv-tmp.*' 2>/dev/null | wc -l; }

failures=0
fail() {
    failures=$((failures + 1))
    echo "FAILURE (round $round): $*" | tee -a "$LOGS/failures" >&2
}
note() { echo "round $round: $*" >>"$LOGS/notes"; }

# must NAME CMD...: runs an ldv command that must succeed; exit 8 means a lock was not judged
# stale, so run `ldv unlock`, say so, and retry once. Output in $LOGS/NAME.{out,err}.
unlocks=0
must() {
    local tag=$1 rc=0
    shift
    "$@" >"$LOGS/$tag.out" 2>"$LOGS/$tag.err" || rc=$?
    if ((rc == 8)); then
        unlocks=$((unlocks + 1))
        note "$tag: exit 8: $(cat "$LOGS/$tag.err"); running ldv unlock"
        ldv unlock >>"$LOGS/unlock.log" 2>&1 || true
        rc=0
        "$@" >"$LOGS/$tag.out" 2>"$LOGS/$tag.err" || rc=$?
    fi
    if ((rc != 0)); then
        fail "$* exited $rc: $(head -c 2000 "$LOGS/$tag.err")"
        return 1
    fi
}

# new_content FILE MIB: fresh random content of about MIB MiB; prints its sha256.
new_content() {
    local bytes=$(($2 * 1048576 - 524288 + $(rand 1048576)))
    head -c "$bytes" /dev/urandom | tee "$1" | sha256sum | cut -d' ' -f1
}

# versions_of NAME: the versions ls lists for NAME, one per line (none if it has none).
versions_of() {
    ldv ls -l --versions --json "$1" 2>/dev/null | jq -r --arg n "$1" '.[] | select(.name == $n) | [.version, .sha256] | @tsv' || true
}

quick_verify() {
    local rc=0
    ldv verify --json >"$LOGS/qv.out" 2>"$LOGS/qv.err" || rc=$?
    if ((rc != 0)); then
        fail "verify exited $rc: $(jq -c '.problems[:3], .could_not_check[:3]' "$LOGS/qv.out" 2>/dev/null) $(cat "$LOGS/qv.err")"
        cp "$LOGS/qv.out" "$LOGS/verify-failed-round-$round.json" || true
    fi
}

# Tallies.
put_killed_before_chunks=0 put_killed_mid_upload=0 put_killed_after_commit=0 put_missed=0
reput_exact=0 reput_more=0 reput_total_new=0 reput_total_existing=0 killed_chunks_total=0
gc_killed_before_delete=0 gc_killed_mid_delete=0 gc_killed_after_all=0 gc_missed=0
max_tmp=0 max_locks=0

# ---- put rounds --------------------------------------------------------------------------
T_put=0
put_round() {
    local k=$1 file=$DATA/big sha c0 m0 c1 m1 st=0 delay pid written committed
    sha=$(new_content "$file" "$SIZE_MIB")
    c0=$(chunk_files)
    m0=$(manifest_files)
    delay=$(rand $((T_put * 11 / 10 + 1)))
    "$BIN" --vault "$URL" --no-progress --lock-wait "$LOCK_WAIT" put --json "$file" "big/$k" \
        >"$LOGS/put.out" 2>"$LOGS/put.err" &
    pid=$!
    sleep_ms "$delay"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || st=$?
    c1=$(chunk_files)
    m1=$(manifest_files)
    written=$((c1 - c0))
    committed=$((m1 - m0))
    local t l
    t=$(tmp_files)
    l=$(lock_files)
    ((t > max_tmp)) && max_tmp=$t
    ((l > max_locks)) && max_locks=$l
    echo -e "put\t$k\t$delay\t$st\t$written\t$committed\t$t\t$l" >>"$LOGS/rounds"
    if ((st == 0)); then
        put_missed=$((put_missed + 1))
        if [[ $(jq -r .sha256 "$LOGS/put.out") != "$sha" ]]; then fail "put receipt sha256 differs from the file's"; fi
        jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/put.out" >>"$EXPECTED"
        return
    fi
    if ((st == 8)); then
        unlocks=$((unlocks + 1))
        note "put exit 8 before the kill: $(cat "$LOGS/put.err")"
        ldv unlock >>"$LOGS/unlock.log" 2>&1 || true
    elif ((st != 137)); then
        fail "put big/$k exited $st before the kill: $(cat "$LOGS/put.err")"
    fi
    if ((committed > 0)); then
        put_killed_after_commit=$((put_killed_after_commit + 1))
        local v
        v=$(versions_of "big/$k")
        if [[ $(wc -l <<<"$v") -ne 1 || $(cut -f2 <<<"$v") != "$sha" ]]; then
            fail "killed put left big/$k versions [$v], expected one with sha256 $sha"
        fi
        echo -e "big/$k\t$(cut -f1 <<<"$v")\t$sha" >>"$EXPECTED"
        return
    elif ((written > 0)); then
        put_killed_mid_upload=$((put_killed_mid_upload + 1))
    else
        put_killed_before_chunks=$((put_killed_before_chunks + 1))
    fi
    killed_chunks_total=$((killed_chunks_total + written))
    if [[ -n $(versions_of "big/$k") ]]; then fail "big/$k has a version although no manifest file appeared"; fi
    # Re-put: only the chunks the killed put did not store may be uploaded.
    must reput ldv put --json "$file" "big/$k" || return 0
    local chunks new existing
    read -r chunks new existing < <(jq -r '[.chunks, .new_chunks, .existing_chunks] | @tsv' "$LOGS/reput.out")
    reput_total_new=$((reput_total_new + new))
    reput_total_existing=$((reput_total_existing + existing))
    if ((new == chunks - written && existing == written)); then
        reput_exact=$((reput_exact + 1))
    else
        reput_more=$((reput_more + 1))
        note "re-put of big/$k: chunks $chunks, new $new, existing $existing, but the killed put had stored $written"
    fi
    if [[ $(jq -r .sha256 "$LOGS/reput.out") != "$sha" ]]; then fail "re-put receipt sha256 differs from the file's"; fi
    jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/reput.out" >>"$EXPECTED"
}

# ---- gc rounds ---------------------------------------------------------------------------
T_gc=0
gc_setup() {
    local k=$1 sha
    # Garbage with many small chunks.
    new_content "$DATA/garbage" "$GARBAGE_MIB" >/dev/null
    must gput ldv_small put --json "$DATA/garbage" "garbage/$k" || return 0
    must grm ldv rm --yes "garbage/$k" || true
    # Big versions beyond the newest KEEP_BIG become garbage too.
    local old
    old=$(grep -P '^big/' "$EXPECTED" | sort -t$'\t' -k2,2 | head -n -"$KEEP_BIG" || true)
    if [[ -n $old ]]; then
        while IFS=$'\t' read -r name version _; do
            must brm ldv rm --yes "$name@$version" || true
        done <<<"$old"
        grep -vxF -f <(echo "$old") "$EXPECTED" >"$EXPECTED.new" || true
        mv "$EXPECTED.new" "$EXPECTED"
    fi
    # A small version kept to the end: its chunks must survive every gc.
    sha=$(new_content "$DATA/keep" 2)
    must kput ldv put --json "$DATA/keep" "keep/$k" || return 0
    if [[ $(jq -r .sha256 "$LOGS/kput.out") != "$sha" ]]; then fail "put receipt sha256 differs from the file's"; fi
    jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/kput.out" >>"$EXPECTED"
}

gc_round() {
    local k=$1 c0 c1 d0 st=0 delay pid deleted
    gc_setup "$k"
    must dry ldv gc --dry-run --grace 0s --json || return 0
    d0=$(jq -r .plan.deletable_chunks "$LOGS/dry.out")
    c0=$(chunk_files)
    delay=$(rand $((T_gc * 11 / 10 + 1)))
    "$BIN" --vault "$URL" --no-progress --lock-wait "$LOCK_WAIT" gc --grace 0s --yes --json \
        >"$LOGS/gc.out" 2>"$LOGS/gc.err" &
    pid=$!
    sleep_ms "$delay"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || st=$?
    c1=$(chunk_files)
    deleted=$((c0 - c1))
    local t l
    t=$(tmp_files)
    l=$(lock_files)
    ((t > max_tmp)) && max_tmp=$t
    ((l > max_locks)) && max_locks=$l
    echo -e "gc\t$k\t$delay\t$st\t$deleted/$d0\t-\t$t\t$l" >>"$LOGS/rounds"
    case $st in
    0) gc_missed=$((gc_missed + 1)) ;;
    137)
        if ((deleted == 0)); then
            gc_killed_before_delete=$((gc_killed_before_delete + 1))
        elif ((deleted < d0)); then
            gc_killed_mid_delete=$((gc_killed_mid_delete + 1))
        else
            gc_killed_after_all=$((gc_killed_after_all + 1))
        fi
        ;;
    8)
        unlocks=$((unlocks + 1))
        note "gc exit 8 before the kill: $(cat "$LOGS/gc.err")"
        ldv unlock >>"$LOGS/unlock.log" 2>&1 || true
        ;;
    *) fail "gc exited $st before the kill: $(cat "$LOGS/gc.err")" ;;
    esac
}

# ---- run ---------------------------------------------------------------------------------
echo "ldv kill -9 stress: $BIN, $PUTS put kills, $GCS gc kills, vault $VAULT, work dir $WORK"
started=$(date +%s)
ldv init >/dev/null
: >"$EXPECTED"
round=calibrate
# Calibrate: one full put and one full gc.
sha=$(new_content "$DATA/big" "$SIZE_MIB")
t0=$(now_ms)
must cal ldv put --json "$DATA/big" big/0
T_put=$(($(now_ms) - t0))
jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/cal.out" >>"$EXPECTED"
gc_setup 0
t0=$(now_ms)
must calgc ldv gc --grace 0s --yes --json
T_gc=$(($(now_ms) - t0))
cal_gc_deleted=$(jq -r '.result.deleted_chunks // 0' "$LOGS/calgc.out")
echo "calibration: full put of big/0 $T_put ms; full gc $T_gc ms ($cal_gc_deleted chunks deleted)"

order=$( (for ((i = 0; i < PUTS; i++)); do echo p; done; for ((i = 0; i < GCS; i++)); do echo g; done) | shuf)
pi=0 gi=0
for what in $order; do
    if [[ $what == p ]]; then
        pi=$((pi + 1))
        round=put-$pi
        put_round "$pi"
    else
        gi=$((gi + 1))
        round=gc-$gi
        gc_round "$gi"
    fi
    quick_verify
done

# ---- afterwards --------------------------------------------------------------------------
round=final
locks_left=$(lock_files)
tmp_left=$(tmp_files)
find "$VAULT" -name '.ldv-tmp.*' -printf '%P %s\n' >"$LOGS/tmp_left" || true
rc=0
ldv verify --read-data --json >"$LOGS/verify.json" 2>"$LOGS/verify.err" || rc=$?
if ((rc != 0)); then fail "verify --read-data exited $rc: $(jq -c '.problems[:5]' "$LOGS/verify.json" 2>/dev/null) $(cat "$LOGS/verify.err")"; fi
vfig=$(jq -r '"versions \(.versions), chunks referenced \(.chunks_referenced), read \(.chunks_read) (\(.bytes_read) bytes), orphans \(.orphan_chunks), problems \(.problems | length), could not check \(.could_not_check | length), \(.elapsed_ms) ms"' "$LOGS/verify.json" 2>/dev/null || echo unparsable)

ldv ls -l --versions --json | jq -r '.[] | [.name, .version, .sha256] | @tsv' | sort >"$LOGS/listed"
sort -u "$EXPECTED" >"$LOGS/expected.sorted"
missing=$(comm -23 "$LOGS/expected.sorted" "$LOGS/listed" | wc -l)
unexpected=$(comm -13 "$LOGS/expected.sorted" "$LOGS/listed" | wc -l)
if ((missing > 0)); then fail "$missing expected version(s) missing or with another sha256: $(comm -23 "$LOGS/expected.sorted" "$LOGS/listed" | head -5)"; fi
if ((unexpected > 0)); then fail "$unexpected unexpected version(s) listed: $(comm -13 "$LOGS/expected.sorted" "$LOGS/listed" | head -5)"; fi
readback_ok=0 readback_bad=0
while IFS=$'\t' read -r name version sha; do
    set +e
    got=$(ldv get "$name@$version" - 2>"$LOGS/get.err" | sha256sum | cut -d' ' -f1)
    grc=${PIPESTATUS[0]}
    set -e
    if [[ $grc -ne 0 || $got != "$sha" ]]; then
        readback_bad=$((readback_bad + 1))
        fail "get $name@$version - exited $grc, sha256 $got, expected $sha: $(cat "$LOGS/get.err")"
    else
        readback_ok=$((readback_ok + 1))
    fi
done <"$LOGS/expected.sorted"
# What unlock would say about the locks the killed processes left (informational: every one
# should be stale because its process is gone).
ldv unlock --json >"$LOGS/final_unlock.json" 2>&1 || true
unlock_removed=$(jq -r '.removed | length' "$LOGS/final_unlock.json" 2>/dev/null || echo "?")
unlock_kept=$(jq -r '.remaining | length' "$LOGS/final_unlock.json" 2>/dev/null || echo "?")

echo
echo "== kill -9 stress summary ($(($(date +%s) - started))s) =="
echo "put kills: $PUTS: landed before any chunk was stored $put_killed_before_chunks, mid-upload $put_killed_mid_upload, after the commit $put_killed_after_commit, missed (put had finished) $put_missed"
echo "  chunks stored by killed puts: $killed_chunks_total; re-puts that uploaded exactly the missing chunks: $reput_exact, more or fewer: $reput_more (new $reput_total_new, existing $reput_total_existing)"
echo "gc kills: $GCS: before deleting $gc_killed_before_delete, mid-delete $gc_killed_mid_delete, after deleting all (before exit) $gc_killed_after_all, missed (gc had finished) $gc_missed"
echo "leftovers: temp files now $tmp_left (max seen after a kill $max_tmp), lock files now $locks_left (max $max_locks)"
echo "exit 8 seen / ldv unlock needed: $unlocks; final unlock: removed $unlock_removed stale, kept $unlock_kept live"
echo "verify --read-data: $vfig"
echo "expected versions $(wc -l <"$LOGS/expected.sorted"): read back ok $readback_ok, bad $readback_bad; missing $missing, unexpected $unexpected"
if [[ -s $LOGS/notes ]]; then
    echo "notes:"
    sed 's/^/  /' "$LOGS/notes" | head -20
fi
if ((failures > 0)); then
    echo "FAILED: $failures failure(s) (see $LOGS/failures); vault kept at $VAULT"
    exit 1
fi
echo "OK"
if [[ -z ${KEEP:-} && -z ${WORKDIR:-} ]]; then rm -rf "$WORK"; fi
