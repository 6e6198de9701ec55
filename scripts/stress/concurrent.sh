#!/usr/bin/env bash
# Concurrency stress: three worker loops doing `put` (random files of 0-8 MiB, with exact and
# partial re-puts of earlier content for dedup) and `rm` (random versions or whole names), plus
# one loop running `gc --grace 0s --yes`, all at once on one local vault for SECONDS.
#
# Every successful put receipt (name, version, sha256) and every successful rm is recorded.
# Exit 8 (vault locked) is tolerated everywhere and counted; exit 3 (not found) is tolerated
# for rm only (another rm may have won the race). Afterwards:
#   - `verify --read-data` must exit 0 with no problems;
#   - every version `ls --versions` lists must come from a put receipt, with the same sha256,
#     and must read back with `get NAME@VERSION -` to that sha256;
#   - every committed version not removed must still be listed;
#   - a final quiet `gc --grace 0s` must leave no orphan chunks, and `verify` must still pass.
#
# usage: scripts/stress/concurrent.sh BIN [SECONDS]   (default 300)
# env:   WORKDIR=dir   use this work dir (default: mktemp under /tmp), kept on failure or KEEP=1
#        LOCK_WAIT=dur pass --lock-wait dur to every command (default: ldv's own, 1m)
#        NAMES=n       how many object names the workers share (default 6)
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BIN [SECONDS]" >&2
    exit 2
fi
BIN=$(realpath "$1")
DURATION=${2:-300}
NAMES=${NAMES:-6}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-concurrent.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
VAULT=$WORK/vault
URL=file://$VAULT
LOGS=$WORK/logs
POOL=$WORK/pool
FAIL=$WORK/failures
mkdir -p "$LOGS" "$POOL" "$FAIL"
EXTRA=()
if [[ -n ${LOCK_WAIT:-} ]]; then EXTRA=(--lock-wait "$LOCK_WAIT"); fi

ldv() { "$BIN" --vault "$URL" --no-progress "${EXTRA[@]}" "$@"; }

# rand N: a random integer in [0, N) (30 bits of randomness).
rand() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }

# event LOOP WHAT: count one event of loop LOOP.
event() { echo "$2" >>"$LOGS/events.$1"; }

# failure LOOP MESSAGE FILES...: record an unexpected outcome with its evidence.
failure() {
    local loop=$1 msg=$2
    shift 2
    local dir
    dir=$FAIL/$(date +%s%N)-$loop
    mkdir -p "$dir"
    echo "$msg" >"$dir/what"
    local f
    for f in "$@"; do [[ -e $f ]] && cp "$f" "$dir/"; done
    echo "[$loop] FAILURE: $msg (evidence in $dir)" >&2
    event "$loop" failure
}

# A size for a fresh file: 10% empty, 20% under 64 KiB, 70% up to 8 MiB.
pick_size() {
    local c=$((RANDOM % 100))
    if ((c < 10)); then
        echo 0
    elif ((c < 30)); then
        rand 65536
    else
        rand $((8 * 1024 * 1024 + 1))
    fi
}

# make_source LOOP DIR N: writes the file to put to DIR/src.N and prints how it was made
# (fresh, reput, mutated). Fresh and mutated content joins the shared pool.
make_source() {
    local loop=$1 dir=$2 n=$3 src=$2/src.$3 mode=$((RANDOM % 100)) pick
    if ((mode >= 60)); then
        pick=$(find "$POOL" -maxdepth 1 -type f -name 'w*' 2>/dev/null | shuf -n 1 || true)
        # A hard link keeps the content even if its owner prunes it from the pool meanwhile.
        if [[ -n $pick ]] && ln "$pick" "$dir/base.$n" 2>/dev/null; then
            if ((mode < 85)); then
                mv "$dir/base.$n" "$src"
                echo reput
                return
            fi
            {
                head -c "$(rand 1048576)" /dev/urandom
                cat "$dir/base.$n"
                head -c "$(rand 1048576)" /dev/urandom
            } >"$src"
            rm -f "$dir/base.$n"
            ln "$src" "$POOL/w$loop-$n"
            echo mutated
            return
        fi
    fi
    head -c "$(pick_size)" /dev/urandom >"$src"
    ln "$src" "$POOL/w$loop-$n"
    echo fresh
}

prune_pool() {
    local loop=$1
    # Keep each worker's 8 newest pool files.
    find "$POOL" -maxdepth 1 -type f -name "w$loop-*" -printf '%T@ %p\n' | sort -n |
        head -n -8 | cut -d' ' -f2- | xargs -r rm -f
}

do_put() {
    local loop=$1 dir=$2 n=$3 how name rc=0 want got
    how=$(make_source "$loop" "$dir" "$n")
    name=stress/n$((RANDOM % NAMES))
    ldv put --json "$dir/src.$n" "$name" >"$dir/out" 2>"$dir/err" || rc=$?
    case $rc in
    0)
        want=$(sha256sum "$dir/src.$n" | cut -d' ' -f1)
        got=$(jq -r .sha256 "$dir/out")
        if [[ $want != "$got" ]]; then
            failure "w$loop" "put receipt sha256 $got differs from the source's $want" "$dir/out" "$dir/err"
        fi
        jq -r '[.name, .version, .sha256, .size, .chunks, .new_chunks, .bytes_uploaded, .bytes_deduplicated] | @tsv' \
            "$dir/out" >>"$LOGS/puts.$loop"
        event "w$loop" put_ok
        event "w$loop" "put_$how"
        ;;
    8)
        event "w$loop" put_locked
        cat "$dir/err" >>"$LOGS/locked.w$loop"
        ;;
    *)
        cp "$dir/src.$n" "$FAIL/src.w$loop.$n" 2>/dev/null || true
        failure "w$loop" "put $dir/src.$n $name exited $rc" "$dir/out" "$dir/err"
        ;;
    esac
    rm -f "$dir/src.$n"
}

do_rm() {
    local loop=$1 dir=$2 target line rc=0
    if ((RANDOM % 100 < 80)); then
        # A version that exists now (as a user would pick one); another worker may remove it first.
        target=$(ldv ls --versions --json stress/ 2>/dev/null | jq -r '.[] | "\(.name)@\(.version)"' | shuf -n 1 || true)
        if [[ -z $target ]]; then return; fi
    else
        target=stress/n$((RANDOM % NAMES))
    fi
    ldv rm --yes --json "$target" >"$dir/out" 2>"$dir/err" || rc=$?
    case $rc in
    0)
        jq -r '.removed[] | [.name, .version] | @tsv' "$dir/out" >>"$LOGS/rms.$loop"
        event "w$loop" rm_ok
        ;;
    3)
        # Already gone, or a racing rm removed part of what this one planned: it may have
        # removed some versions before failing, so remember what it aimed at.
        echo "$target" >>"$LOGS/rm_failed.$loop"
        echo "$target: $(cat "$dir/err")" >>"$LOGS/rm_not_found.w$loop"
        event "w$loop" rm_not_found
        ;;
    8)
        echo "$target" >>"$LOGS/rm_failed.$loop"
        event "w$loop" rm_locked
        cat "$dir/err" >>"$LOGS/locked.w$loop"
        ;;
    *)
        echo "$target" >>"$LOGS/rm_failed.$loop"
        failure "w$loop" "rm $target exited $rc" "$dir/out" "$dir/err"
        ;;
    esac
}

worker() {
    local loop=$1 end=$2 n=0 dir=$WORK/w$1
    mkdir -p "$dir"
    while (($(date +%s) < end)); do
        n=$((n + 1))
        if ((RANDOM % 100 < 65)); then
            do_put "$loop" "$dir" "$n"
            prune_pool "$loop"
        else
            do_rm "$loop" "$dir"
        fi
    done
}

gc_loop() {
    local end=$1 dir=$WORK/gc rc=0
    mkdir -p "$dir"
    while (($(date +%s) < end)); do
        rc=0
        ldv gc --grace 0s --yes --json >"$dir/out" 2>"$dir/err" || rc=$?
        case $rc in
        0)
            jq -r '[.executed, (.result.deleted_chunks // 0), (.result.kept_now_referenced // 0), (.result.bytes_freed // 0), .plan.chunks_total, .plan.referenced_chunks] | @tsv' \
                "$dir/out" >>"$LOGS/gc_runs"
            event gc gc_ok
            ;;
        8)
            event gc gc_locked
            cat "$dir/err" >>"$LOGS/locked.gc"
            ;;
        *)
            failure gc "gc exited $rc" "$dir/out" "$dir/err"
            ;;
        esac
        sleep "0.$((RANDOM % 10))"
    done
}

count() { # count LOOP EVENT
    local f=$LOGS/events.$1
    if [[ -f $f ]]; then grep -cx "$2" "$f" || true; else echo 0; fi
}

echo "ldv concurrent stress: $BIN, ${DURATION}s, vault $VAULT, work dir $WORK"
ldv init >/dev/null
started=$(date +%s)
end=$((started + DURATION))
pids=()
for w in 1 2 3; do
    worker "$w" "$end" &
    pids+=($!)
done
gc_loop "$end" &
pids+=($!)
loop_failures=0
for p in "${pids[@]}"; do
    if ! wait "$p"; then loop_failures=$((loop_failures + 1)); fi
done
ran=$(($(date +%s) - started))
if ((loop_failures > 0)); then
    echo "FAILURE: $loop_failures loop(s) stopped on a script error" >&2
    event main failure
fi

# ---- afterwards --------------------------------------------------------------------------
locks_left=$(find "$VAULT/locks" -type f 2>/dev/null | wc -l)
tmp_left=$(find "$VAULT" -name '.ldv-tmp.*' | wc -l)
if ((locks_left > 0)); then
    failure main "$locks_left lock(s) left after every process exited"
    ls -l "$VAULT/locks" >&2
fi

rc=0
ldv verify --read-data --json >"$LOGS/verify.json" 2>"$LOGS/verify.err" || rc=$?
if ((rc != 0)); then
    failure main "verify --read-data exited $rc" "$LOGS/verify.json" "$LOGS/verify.err"
fi
vfig=$(jq -r '"versions \(.versions), chunks referenced \(.chunks_referenced), read \(.chunks_read) (\(.bytes_read) bytes), orphans \(.orphan_chunks), problems \(.problems | length), could not check \(.could_not_check | length), \(.elapsed_ms) ms, \(.chunks_per_sec | floor) chunks/s"' "$LOGS/verify.json" 2>/dev/null || echo "unparsable")

ldv ls -l --versions --json >"$LOGS/ls.json"
jq -r '.[] | [.name, .version, .sha256] | @tsv' "$LOGS/ls.json" | sort >"$LOGS/surviving"
cat "$LOGS"/puts.* 2>/dev/null | cut -f1-3 | sort -u >"$LOGS/committed"
cat "$LOGS"/rms.* 2>/dev/null | sort -u >"$LOGS/removed"
cat "$LOGS"/rm_failed.* 2>/dev/null | sort -u >"$LOGS/rm_attempted" || true

# Surviving versions: known, same hash, and read back intact.
unknown=0 hash_mismatch=0 readback_ok=0 readback_bad=0 resurrected=0
while IFS=$'\t' read -r name version sha; do
    want=$(awk -F'\t' -v n="$name" -v v="$version" '$1 == n && $2 == v { print $3 }' "$LOGS/committed")
    if [[ -z $want ]]; then
        unknown=$((unknown + 1))
        failure main "$name@$version is listed but no put reported it"
        continue
    fi
    if [[ $want != "$sha" ]]; then
        hash_mismatch=$((hash_mismatch + 1))
        failure main "$name@$version: ls says sha256 $sha, its put reported $want"
    fi
    if grep -qxF "$name"$'\t'"$version" "$LOGS/removed"; then
        resurrected=$((resurrected + 1))
        failure main "$name@$version: rm reported it removed, but it is still listed"
    fi
    set +e
    got=$(ldv get "$name@$version" - 2>"$LOGS/get.err" | sha256sum | cut -d' ' -f1)
    grc=${PIPESTATUS[0]}
    set -e
    if [[ $grc -ne 0 || $got != "$want" ]]; then
        readback_bad=$((readback_bad + 1))
        failure main "get $name@$version - exited $grc with sha256 $got, expected $want" "$LOGS/get.err"
    else
        readback_ok=$((readback_ok + 1))
    fi
done <"$LOGS/surviving"

# Committed versions not removed must still be there.
lost=0 gone_after_failed_rm=0
while IFS=$'\t' read -r name version sha; do
    if grep -qP "^\Q$name\E\t\Q$version\E\t" "$LOGS/surviving"; then continue; fi
    if grep -qxF "$name"$'\t'"$version" "$LOGS/removed"; then continue; fi
    if grep -qxF -e "$name@$version" -e "$name" "$LOGS/rm_attempted"; then
        # An rm that failed (not found: a racing rm) may have removed it before failing.
        gone_after_failed_rm=$((gone_after_failed_rm + 1))
        continue
    fi
    lost=$((lost + 1))
    failure main "$name@$version (sha256 $sha) was committed, never removed, and is gone"
done <"$LOGS/committed"

# A final gc with nothing running must leave no orphans, and the vault must still verify.
rc=0
ldv gc --grace 0s --yes --json >"$LOGS/final_gc.json" 2>"$LOGS/final_gc.err" || rc=$?
if ((rc != 0)); then failure main "final gc exited $rc" "$LOGS/final_gc.json" "$LOGS/final_gc.err"; fi
final_deleted=$(jq -r '.result.deleted_chunks // 0' "$LOGS/final_gc.json" 2>/dev/null || echo "?")
rc=0
ldv verify --json >"$LOGS/verify2.json" 2>"$LOGS/verify2.err" || rc=$?
orphans2=$(jq -r .orphan_chunks "$LOGS/verify2.json" 2>/dev/null || echo "?")
if ((rc != 0)); then failure main "verify after the final gc exited $rc" "$LOGS/verify2.json" "$LOGS/verify2.err"; fi
if [[ $orphans2 != 0 ]]; then failure main "$orphans2 orphan chunk(s) left after a quiet gc --grace 0s" "$LOGS/verify2.json"; fi

# ---- summary -----------------------------------------------------------------------------
sum_col() { # sum_col FILE COLUMN
    if [[ -s $1 ]]; then awk -F'\t' -v c="$2" '{ s += $c } END { printf "%.0f", s }' "$1"; else echo 0; fi
}
cat "$LOGS"/puts.* 2>/dev/null >"$LOGS/all_puts" || true
failures=$(cat "$LOGS"/events.* 2>/dev/null | grep -cx failure || true)
echo
echo "== concurrent stress summary (${ran}s, 3 workers + gc loop) =="
for w in 1 2 3; do
    printf 'worker %s: puts %s (fresh %s, re-put %s, mutated %s), put exit 8: %s; rms %s, rm not found: %s, rm exit 8: %s\n' \
        "$w" "$(count "w$w" put_ok)" "$(count "w$w" put_fresh)" "$(count "w$w" put_reput)" "$(count "w$w" put_mutated)" \
        "$(count "w$w" put_locked)" "$(count "w$w" rm_ok)" "$(count "w$w" rm_not_found)" "$(count "w$w" rm_locked)"
done
printf 'totals: puts %s, versions removed by rm %s, put bytes %s (uploaded %s, deduplicated %s)\n' \
    "$(wc -l <"$LOGS/all_puts")" "$(wc -l <"$LOGS/removed")" "$(sum_col "$LOGS/all_puts" 4)" \
    "$(sum_col "$LOGS/all_puts" 7)" "$(sum_col "$LOGS/all_puts" 8)"
printf 'gc: runs %s (that deleted something %s), exit 8: %s, chunks deleted %s, bytes freed %s, kept because newly referenced %s\n' \
    "$(count gc gc_ok)" "$(awk -F'\t' '$2 > 0' "$LOGS/gc_runs" 2>/dev/null | wc -l)" "$(count gc gc_locked)" \
    "$(sum_col "$LOGS/gc_runs" 2)" "$(sum_col "$LOGS/gc_runs" 4)" "$(sum_col "$LOGS/gc_runs" 3)"
echo "after: locks left $locks_left, temp files left $tmp_left"
echo "verify --read-data: $vfig"
echo "surviving versions $(wc -l <"$LOGS/surviving"): read back ok $readback_ok, bad $readback_bad; unknown $unknown, hash mismatch $hash_mismatch, listed after rm $resurrected"
echo "committed and not removed but gone: $lost (plus $gone_after_failed_rm gone after an rm that failed with not found/locked)"
if [[ -n $(cat "$LOGS"/rm_not_found.* 2>/dev/null | grep -v '^[^:]*@' || true) ]]; then
    echo "rm NAME that failed with not found (first 3):"
    cat "$LOGS"/rm_not_found.* | grep -v '^[^:]*@' | head -3 | sed 's/^/  /'
fi
echo "final quiet gc deleted $final_deleted chunks; orphans after it: $orphans2"
if ((failures > 0)); then
    echo "FAILED: $failures failure(s); evidence in $FAIL, vault kept at $VAULT"
    exit 1
fi
echo "OK"
if [[ -z ${KEEP:-} && -z ${WORKDIR:-} ]]; then rm -rf "$WORK"; fi
