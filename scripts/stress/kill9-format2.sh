#!/usr/bin/env bash
# Crash drill for format 2: SIGKILL puts, gcs and migrations at random moments.
#
# Part A, one local format-2 vault:
# - A base file of SIZE_MIB (200) MiB of random bytes is put once. Every later put stores the
#   base with EDITS (24-64) regions of 256 KiB - 2 MiB overwritten with fresh random bytes (so
#   it writes ~50 MiB of new packs on average, 3-4 packs, and dedups the rest).
# - N put rounds (put killed after a random delay in [0, 1.1 x a calibrated full put]) and N gc
#   rounds (`gc --yes --grace 0s` killed after a random delay in [0, 1.1 x the median full gc so
#   far]), shuffled. Before each round, with probability 1/2, a finished put (recorded;
#   then the oldest versions beyond the newest KEEP (4) are removed, which leaves dead and
#   partly dead packs for gc). Every 5th round also runs a full gc. Nothing runs concurrently,
#   so --grace 0s is safe here.
# - After every round `verify` (no read) must pass. A killed put that still committed must have
#   the source's sha256. At the end `verify --read-data` must pass and every committed version
#   not removed must read back identical; then two full gcs, and the same again.
#
# Part B, migrations: a format-1 vault (LDV_VAULT_FORMAT=1) with a few thousand chunks (MIG_MIB
# (48) MiB put through a profile with cdc 4/16/64 KiB chunking, plus a removed version, so some
# chunk objects are unreferenced). MIGRATIONS (N) times: a copy of it, `ldv migrate` killed after
# a random delay in [0, 1.2 x a calibrated migrate]; then the copy (format 1 or 2, whichever it
# ended as) must `verify --read-data` clean and read back identical; then `migrate` again,
# `gc --yes --grace 0s` twice, and again verify clean, read back identical, and no format-1 chunk
# object left.
#
# usage: scripts/stress/kill9-format2.sh [N=50]
# env:   BIN=path to ldv (default target/release/ldv), WORKDIR=dir (kept on failure or KEEP=1),
#        SIZE_MIB=200, EDITS=24-64 (regions edited per put), KEEP_VERSIONS=4, MIGRATIONS=N, MIG_MIB=48, PART=A|B (default both)
set -uo pipefail

N=${1:-50}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${BIN:-$ROOT/target/release/ldv}")
[[ -x $BIN ]] || {
    echo "no ldv binary at $BIN (set BIN=)" >&2
    exit 2
}
SIZE_MIB=${SIZE_MIB:-200}
EDITS=${EDITS:-24-64}
KEEP_VERSIONS=${KEEP_VERSIONS:-4}
MIGRATIONS=${MIGRATIONS:-$N}
MIG_MIB=${MIG_MIB:-48}
PART=${PART:-AB}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-kill9f2.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
export LDV_CACHE_DIR=$WORK/cache
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG LDV_VAULT_FORMAT
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$LDV_CACHE_DIR"
LOGS=$WORK/logs
DATA=$WORK/data
mkdir -p "$LOGS" "$DATA"

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

# ==== Part A ===================================================================================
part_a() {
    local VAULT=$WORK/vault URL=file://$WORK/vault
    local EXPECTED=$LOGS/expected # name \t version \t sha256, oldest first
    ldv() { "$BIN" --vault "$URL" --no-progress "$@"; }
    : >"$EXPECTED"
    ldv init >"$LOGS/init.out" 2>&1 || {
        fail "init: $(cat "$LOGS/init.out")"
        return
    }
    log "A: vault $VAULT $(jq -c .packs "$VAULT/ldv-vault.json")"
    head -c $((SIZE_MIB << 20)) /dev/urandom >"$DATA/base"

    # variant OUT: the base with random regions overwritten; prints the sha256.
    variant() {
        cp "$DATA/base" "$1"
        python3 - "$1" "$EDITS" <<'EOF'
import os, random, sys
EDITS_MIN, EDITS_MAX = map(int, sys.argv[2].split("-"))
size = os.path.getsize(sys.argv[1])
with open(sys.argv[1], "r+b") as f:
    for _ in range(random.randint(EDITS_MIN, EDITS_MAX)):
        ln = random.randint(256 << 10, 2 << 20)
        f.seek(random.randint(0, size - ln))
        f.write(os.urandom(ln))
EOF
        sha256sum "$1" | cut -d' ' -f1
    }
    # versions_of NAME: "version \t sha256" lines.
    versions_of() {
        ldv ls -l --versions --json "$1" 2>/dev/null | jq -r --arg n "$1" '.[] | select(.name == $n) | [.version, .sha256] | @tsv'
    }
    quick_verify() {
        local rc=0
        ldv verify --json >"$LOGS/qv.json" 2>"$LOGS/qv.err" || rc=$?
        if ((rc != 0)); then
            fail "verify exited $rc: $(jq -c '.problems[:5]' "$LOGS/qv.json" 2>/dev/null) $(head -c 800 "$LOGS/qv.err")"
            cp "$LOGS/qv.json" "$LOGS/verify-failed-$round.json"
        fi
    }
    # full_put NAME: a finished put of a new variant, recorded.
    full_put() {
        local sha rc=0 t0
        sha=$(variant "$DATA/cur")
        t0=$(now_ms)
        ldv put --json "$DATA/cur" "$1" >"$LOGS/put.json" 2>"$LOGS/put.err" || rc=$?
        LAST_PUT_MS=$(($(now_ms) - t0))
        if ((rc != 0)); then
            fail "put $1 exited $rc: $(cat "$LOGS/put.err")"
            return 1
        fi
        [[ $(jq -r .sha256 "$LOGS/put.json") == "$sha" ]] || fail "put $1: receipt sha256 differs from the file's"
        jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/put.json" >>"$EXPECTED"
        full_puts=$((full_puts + 1))
        # Keep only the newest KEEP_VERSIONS versions.
        while (($(wc -l <"$EXPECTED") > KEEP_VERSIONS)); do
            local name version
            IFS=$'\t' read -r name version _ < <(head -1 "$EXPECTED")
            ldv rm --yes "$name@$version" >>"$LOGS/rm.out" 2>&1 || fail "rm $name@$version exited $?"
            sed -i 1d "$EXPECTED"
            removed=$((removed + 1))
        done
    }
    # full_gc: a finished gc --grace 0s; T_gc is the median of their times.
    full_gc() {
        local rc=0 t0 ms
        t0=$(now_ms)
        ldv gc --yes --grace 0s --json >"$LOGS/gc.json" 2>"$LOGS/gc.err" || rc=$?
        ms=$(($(now_ms) - t0))
        ((rc == 0)) || fail "gc exited $rc: $(head -c 800 "$LOGS/gc.err")"
        # Kill windows follow the median full gc (the slowest are load spikes).
        echo "$ms" >>"$LOGS/gc-ms"
        T_gc=$(sort -n "$LOGS/gc-ms" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
        full_gcs=$((full_gcs + 1))
        echo "$ms $(jq -c '{dead: .plan.dead_bytes, sweep: .plan.sweep_objects, repack: .plan.repack_packs, rescued: .plan.rescued_packs, result}' "$LOGS/gc.json" 2>/dev/null)" >>"$LOGS/full-gcs"
    }

    local full_puts=0 full_gcs=0 removed=0 T_gc=0 LAST_PUT_MS=0
    round=calibrate
    full_put big/base || return
    log "A: first put (all $SIZE_MIB MiB new): $LAST_PUT_MS ms"
    full_put big/cal || return
    local T_put=$LAST_PUT_MS
    log "A: calibration put (a variant): $T_put ms; $(jq -c '{chunks, new_chunks, existing_chunks, bytes_uploaded}' "$LOGS/put.json" 2>/dev/null)"
    full_gc
    log "A: calibration gc: $T_gc ms"

    local rounds k=0 kind
    rounds=$( (
        for ((i = 0; i < N; i++)); do echo put; done
        for ((i = 0; i < N; i++)); do echo gc; done
    ) | shuf)
    local put_missed=0 put_killed_committed=0 put_killed_packs=0 put_killed_nothing=0 put_killed_segment=0
    local gc_missed=0 gc_killed=0 gc_changed=0 max_tmp=0
    for kind in $rounds; do
        k=$((k + 1))
        round=$k
        if (($(rand 2) == 0)); then full_put "big/f$k" || true; fi
        if ((k % 5 == 0)); then full_gc; fi
        if [[ $kind == put ]]; then
            local sha st=0 delay p0 s0 p1 s1 v tp
            sha=$(variant "$DATA/cur")
            p0=$(count "$VAULT/packs")
            s0=$(count "$VAULT/index" ! -name 'mark-*')
            delay=$(rand $((T_put * 11 / 10 + 1)))
            "$BIN" --vault "$URL" --no-progress put --json "$DATA/cur" "big/k$k" >"$LOGS/kput.json" 2>"$LOGS/kput.err" &
            local pid=$!
            sleep_ms "$delay"
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" || st=$?
            p1=$(count "$VAULT/packs")
            s1=$(count "$VAULT/index" ! -name 'mark-*')
            tp=$(tmp_files "$VAULT")
            v=$(versions_of "big/k$k")
            echo -e "put\t$k\t$delay\t$st\tpacks+$((p1 - p0))\tsegments+$((s1 - s0))\ttmp $tp\t$( [[ -n $v ]] && echo committed || echo -)" >>"$LOGS/rounds"
            if ((st == 0)); then
                put_missed=$((put_missed + 1))
                [[ $(jq -r .sha256 "$LOGS/kput.json") == "$sha" ]] || fail "put receipt sha256 differs"
                jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/kput.json" >>"$EXPECTED"
            elif ((st != 137)); then
                fail "put big/k$k exited $st before the kill: $(cat "$LOGS/kput.err")"
            elif [[ -n $v ]]; then
                put_killed_committed=$((put_killed_committed + 1))
                [[ $(cut -f2 <<<"$v") == "$sha" ]] || fail "killed put big/k$k committed [$v], not sha256 $sha"
                echo -e "big/k$k\t$(cut -f1 <<<"$v")\t$sha" >>"$EXPECTED"
            elif ((s1 > s0)); then
                put_killed_segment=$((put_killed_segment + 1))
            elif ((p1 > p0)); then
                put_killed_packs=$((put_killed_packs + 1))
            else
                put_killed_nothing=$((put_killed_nothing + 1))
            fi
        else
            local st=0 delay before after
            before=$(find "$VAULT/packs" "$VAULT/index" "$VAULT/chunks" -type f ! -name '.ldv-tmp.*' 2>/dev/null | sort | md5sum)
            delay=$(rand $((T_gc * 11 / 10 + 1)))
            "$BIN" --vault "$URL" --no-progress gc --yes --grace 0s --json >"$LOGS/kgc.json" 2>"$LOGS/kgc.err" &
            local pid=$!
            sleep_ms "$delay"
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" || st=$?
            after=$(find "$VAULT/packs" "$VAULT/index" "$VAULT/chunks" -type f ! -name '.ldv-tmp.*' 2>/dev/null | sort | md5sum)
            echo -e "gc\t$k\t$delay\t$st\t$([[ $before == "$after" ]] && echo unchanged || echo changed)" >>"$LOGS/rounds"
            if ((st == 0)); then
                gc_missed=$((gc_missed + 1))
                echo "missed $(jq -c '{dead: .plan.dead_bytes, sweep: .plan.sweep_objects, result}' "$LOGS/kgc.json")" >>"$LOGS/full-gcs"
            elif ((st != 137)); then
                fail "gc exited $st before the kill: $(cat "$LOGS/kgc.err")"
            else
                gc_killed=$((gc_killed + 1))
                [[ $before == "$after" ]] || gc_changed=$((gc_changed + 1))
            fi
        fi
        local t
        t=$(tmp_files "$VAULT")
        ((t > max_tmp)) && max_tmp=$t
        quick_verify
    done
    round=end
    log "A: $k rounds; finished puts $full_puts, versions removed $removed, full gcs $full_gcs (median $T_gc ms, slowest $(sort -n "$LOGS/gc-ms" | tail -1) ms)"
    log "A: put kills: $put_killed_nothing before any pack, $put_killed_packs after packs (no segment), $put_killed_segment after the segment (no manifest), $put_killed_committed committed anyway, $put_missed missed (finished)"
    log "A: gc kills: $gc_killed killed ($gc_changed of them after changing packs/index/chunks), $gc_missed missed (finished)"
    log "A: temp files (.ldv-tmp.*): at most $max_tmp after a round, $(tmp_files "$VAULT") now"
    log "A: vault $(du -sb "$VAULT" | cut -f1) bytes, $(count "$VAULT/packs") packs, $(count "$VAULT/index" -name 'mark-*') marks, $(count "$VAULT/index" ! -name 'mark-*') segments"
    a_check() {
        local phase=$1 rc=0 n=0 name version sha got
        ldv verify --read-data --json >"$LOGS/verify-$phase.json" 2>"$LOGS/verify-$phase.err" || rc=$?
        ((rc == 0)) || fail "$phase: verify --read-data exited $rc: $(jq -c '.problems[:5]' "$LOGS/verify-$phase.json" 2>/dev/null) $(head -c 800 "$LOGS/verify-$phase.err")"
        while IFS=$'\t' read -r name version sha; do
            n=$((n + 1))
            got=$(ldv cat "$name@$version" 2>>"$LOGS/cat.err" | sha256sum | cut -d' ' -f1)
            [[ $got == "$sha" ]] || fail "$phase: $name@$version reads back as $got, not $sha"
        done <"$EXPECTED"
        local listed
        listed=$(ldv ls --versions --json | jq length)
        ((listed == n)) || fail "$phase: $listed versions listed, $n expected"
        log "A $phase: verify --read-data exit $rc ($(jq -c 'del(.problems, .could_not_check, .stats)' "$LOGS/verify-$phase.json" 2>/dev/null | head -c 400)); $n versions read back"
    }
    a_check final
    full_gc
    full_gc
    log "A: after two more gcs: vault $(du -sb "$VAULT" | cut -f1) bytes, $(count "$VAULT/packs") packs, $(count "$VAULT/index" -name 'mark-*') marks, $(count "$VAULT/index" ! -name 'mark-*') segments, $(tmp_files "$VAULT") temp files; live data $(ldv ls -l --versions --json | jq '[.[].size] | add') bytes in $(wc -l <"$EXPECTED") versions"
    a_check after-gc
}

# ==== Part B ===================================================================================
part_b() {
    local F1=$WORK/f1 CFG=$WORK/f1.toml EXP=$LOGS/mig-expected
    cat >"$CFG" <<EOF
[profiles.f1]
backend = { type = "local", path = "$F1" }
chunking = { mode = "cdc", min = "4KiB", avg = "16KiB", max = "64KiB" }
EOF
    f1() { "$BIN" --config "$CFG" --profile f1 --no-progress "$@"; }
    v() { "$BIN" --vault "file://$1" --no-progress "${@:2}"; }
    round=mig-setup
    LDV_VAULT_FORMAT=1 f1 init >"$LOGS/f1-init.out" 2>&1 || {
        fail "format-1 init: $(cat "$LOGS/f1-init.out")"
        return
    }
    : >"$EXP"
    local i per=$((MIG_MIB / 3))
    for i in 0 1 2; do
        head -c $((per << 20)) /dev/urandom >"$DATA/m$i"
        f1 put --json "$DATA/m$i" "m/$i" >"$LOGS/mput.json" 2>&1 || fail "format-1 put: $(cat "$LOGS/mput.json")"
        jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/mput.json" >>"$EXP"
    done
    # An edited second version of m/0 (shares most chunks), and a removed version (garbage).
    python3 -c "
import os, sys
with open(sys.argv[1], 'r+b') as f:
    for off in (1 << 20, 5 << 20, 9 << 20):
        f.seek(off); f.write(os.urandom(50000))" "$DATA/m0"
    f1 put --json "$DATA/m0" "m/0" >"$LOGS/mput.json" 2>&1 || fail "format-1 put: $(cat "$LOGS/mput.json")"
    jq -r '[.name, .version, .sha256] | @tsv' "$LOGS/mput.json" >>"$EXP"
    head -c $((4 << 20)) /dev/urandom >"$DATA/g"
    f1 put "$DATA/g" garbage >/dev/null 2>&1 && f1 rm --yes garbage >/dev/null 2>&1 || fail "garbage put/rm"
    rm -f "$DATA"/m? "$DATA/g"
    local chunks
    chunks=$(count "$F1/chunks")
    log "B: format-1 vault $F1: $(jq -c '{format, chunker}' "$F1/ldv-vault.json"), $chunks chunk objects, $(wc -l <"$EXP") versions, $(du -sb "$F1" | cut -f1) bytes"

    # Calibrate.
    local T t0 c=$WORK/mcal times=()
    for i in 1 2 3; do
        rm -rf "$c"
        cp -a "$F1" "$c"
        t0=$(now_ms)
        v "$c" migrate >"$LOGS/mcal.out" 2>&1 || fail "calibration migrate: $(cat "$LOGS/mcal.out")"
        times+=($(($(now_ms) - t0)))
    done
    T=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    log "B: calibration migrate (median of 3: ${times[*]} ms): $T ms: $(cat "$LOGS/mcal.out")"
    rm -rf "$c"

    mcheck() { # mcheck DIR PHASE
        local d=$1 phase=$2 rc=0 name version sha got n=0
        v "$d" verify --read-data --json >"$LOGS/mv.json" 2>"$LOGS/mv.err" || rc=$?
        if ((rc != 0)); then
            fail "$phase: verify --read-data of $d exited $rc: $(jq -c '.problems[:5]' "$LOGS/mv.json" 2>/dev/null) $(head -c 800 "$LOGS/mv.err")"
            cp "$LOGS/mv.json" "$LOGS/mv-failed-$round-$phase.json"
        fi
        while IFS=$'\t' read -r name version sha; do
            got=$(v "$d" cat "$name@$version" 2>>"$LOGS/mcat.err" | sha256sum | cut -d' ' -f1)
            [[ $got == "$sha" ]] || fail "$phase: $d $name@$version reads back as $got, not $sha"
            n=$((n + 1))
        done <"$EXP"
    }
    local j fmt1=0 fmt2=0 ext1=0 leftover=0 mig_rc_other=0 d st delay f
    for ((j = 1; j <= MIGRATIONS; j++)); do
        round=mig$j
        d=$WORK/mig$j
        cp -a "$F1" "$d"
        delay=$(rand $((T * 12 / 10 + 1)))
        st=0
        "$BIN" --vault "file://$d" --no-progress migrate >"$LOGS/mig.out" 2>"$LOGS/mig.err" &
        local pid=$!
        sleep_ms "$delay"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" || st=$?
        f=$(jq .format "$d/ldv-vault.json" 2>/dev/null || echo broken)
        local segs
        segs=$(count "$d/index")
        echo -e "migrate\t$j\t$delay\t$st\tformat $f\tindex objects $segs\tlocks $(count "$d/locks")\ttmp $(tmp_files "$d")" >>"$LOGS/rounds"
        if ((st != 137 && st != 0)); then
            mig_rc_other=$((mig_rc_other + 1))
            fail "migrate exited $st before the kill: $(cat "$LOGS/mig.err")"
        fi
        case $f in
        1)
            fmt1=$((fmt1 + 1))
            ((segs > 0)) && ext1=$((ext1 + 1))
            ;;
        2) fmt2=$((fmt2 + 1)) ;;
        *) fail "descriptor after a killed migrate: $(head -c 300 "$d/ldv-vault.json")" ;;
        esac
        mcheck "$d" "after-kill(format $f)"
        v "$d" migrate >"$LOGS/mig2.out" 2>&1 || fail "re-run migrate exited $?: $(cat "$LOGS/mig2.out")"
        [[ $(jq .format "$d/ldv-vault.json") == 2 ]] || fail "still format $(jq .format "$d/ldv-vault.json") after migrate"
        local g
        for g in 1 2; do
            v "$d" gc --yes --grace 0s --json >"$LOGS/mgc$g.json" 2>"$LOGS/mgc$g.err" || fail "gc $g of $d exited $?: $(head -c 800 "$LOGS/mgc$g.err")"
        done
        mcheck "$d" after-migrate-gc-gc
        local left
        left=$(count "$d/chunks")
        ((left == 0)) || leftover=$((leftover + 1))
        echo -e "migrate\t$j\tafter\tchunk objects left $left\tpacks $(count "$d/packs")\tlegacy $(jq .packs.legacy_chunks "$d/ldv-vault.json")\tgc1 $(jq -c '.result' "$LOGS/mgc1.json")\tgc2 $(jq -c '.result' "$LOGS/mgc2.json")" >>"$LOGS/rounds"
        if ((failures == 0)); then rm -rf "$d"; fi
    done
    round=end
    log "B: $MIGRATIONS killed migrations: $fmt1 left format 1 ($ext1 of them with an index object written), $fmt2 left format 2; $leftover copies still had format-1 chunk objects after migrate + 2 gcs"
    log "B: last copy's gcs: $(jq -c '.plan | {legacy_to_pack, legacy_dead, sweep_objects}' "$LOGS/mgc1.json") then $(jq -c '.plan | {legacy_to_pack, legacy_dead, sweep_objects}' "$LOGS/mgc2.json")"
}

log "binary $BIN ($("$BIN" --version 2>&1)); work dir $WORK; N=$N"
[[ $PART == *A* ]] && part_a
[[ $PART == *B* ]] && part_b
if ((failures > 0)); then
    log "FAILED: $failures failures; work dir kept at $WORK (logs: $LOGS)"
    exit 1
fi
log "OK"
[[ -n ${KEEP:-} ]] || rm -rf "$WORK"
