#!/usr/bin/env bash
# Format-2 gc efficiency: how much of the dead data two gcs free, and how much live data they
# copy to do it.
#
# A fresh format-2 vault gets VERSIONS (20) versions of `data`, each MIB (32) MiB of fresh random
# bytes with SHARED_MIB (8) MiB of shared random data in the middle (stored once, by the first
# put, so those frames sit in the first version's packs). Every other version is removed
# (0, 2, 4, ...: the first one too, so its packs hold live shared frames and must be repacked).
# Then `gc --yes --grace 0s --json` twice (the first condemns and repacks, the second sweeps).
#
# Reported: the first plan's dead_bytes; bytes freed = vault size (du -sb) before the first gc
# minus after the second; bytes repacked (result.bytes_repacked of both runs). Checks: freed >=
# 85% of dead, repacked <= 2 x dead, and `verify --read-data` clean with every remaining version
# reading back identical.
#
# usage: scripts/stress/gc-efficiency.sh
# env:   BIN=path to ldv (default target/release/ldv), WORKDIR=dir (kept on failure or KEEP=1),
#        VERSIONS=20, MIB=32, SHARED_MIB=8, PACK_SIZE (init --pack-size; default: ldv's)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${BIN:-$ROOT/target/release/ldv}")
[[ -x $BIN ]] || {
    echo "no ldv binary at $BIN (set BIN=)" >&2
    exit 2
}
VERSIONS=${VERSIONS:-20}
MIB=${MIB:-32}
SHARED_MIB=${SHARED_MIB:-8}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-gceff.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
VAULT=$WORK/vault
LOGS=$WORK/logs
DATA=$WORK/data
mkdir -p "$LOGS" "$DATA"
ldv() { "$BIN" --vault "file://$VAULT" --no-progress "$@"; }
log() { echo "$*" | tee -a "$LOGS/summary" >&2; }
failures=0
fail() {
    failures=$((failures + 1))
    log "FAILURE: $*"
}
vault_bytes() { du -sb "$VAULT" | cut -f1; }
packs() { find "$VAULT/packs" -type f ! -name '.ldv-tmp.*' | wc -l; }

init_args=()
[[ -n ${PACK_SIZE:-} ]] && init_args=(--pack-size "$PACK_SIZE")
ldv init "${init_args[@]}" >"$LOGS/init.out" 2>&1 || {
    cat "$LOGS/init.out"
    exit 1
}
log "binary $BIN; vault $VAULT; $(jq -c .packs "$VAULT/ldv-vault.json")"
head -c $((SHARED_MIB << 20)) /dev/urandom >"$DATA/shared"
half=$((MIB << 19))
: >"$LOGS/expected"
for ((k = 0; k < VERSIONS; k++)); do
    f=$DATA/v$k
    { head -c "$half" /dev/urandom; cat "$DATA/shared"; head -c "$half" /dev/urandom; } >"$f"
    ldv put --json "$f" data >"$LOGS/put-$k.json" 2>"$LOGS/put-$k.err" || {
        fail "put $k exited $?: $(cat "$LOGS/put-$k.err")"
        exit 1
    }
    printf '%s\t%s\t%s\n' "$k" "$(jq -r .version "$LOGS/put-$k.json")" "$(jq -r .sha256 "$LOGS/put-$k.json")" >>"$LOGS/expected"
    rm -f "$f"
done
log "put $VERSIONS versions of $((MIB + SHARED_MIB)) MiB ($MIB MiB fresh + $SHARED_MIB MiB shared): vault $(vault_bytes) bytes, $(packs) packs"
while IFS=$'\t' read -r k version _; do
    if ((k % 2 == 0)); then
        ldv rm --yes "data@$version" >>"$LOGS/rm.out" 2>&1 || fail "rm data@$version exited $?"
    fi
done <"$LOGS/expected"
awk -F'\t' '$1 % 2 == 1' "$LOGS/expected" >"$LOGS/kept"
before=$(vault_bytes)
packs_before=$(packs)
log "removed $((VERSIONS / 2 + VERSIONS % 2)) versions; vault $before bytes, $packs_before packs"

for run in 1 2; do
    t0=$(date +%s%N)
    ldv gc --yes --grace 0s --json >"$LOGS/gc-$run.json" 2>"$LOGS/gc-$run.err" || fail "gc $run exited $?: $(cat "$LOGS/gc-$run.err")"
    ms=$((($(date +%s%N) - t0) / 1000000))
    log "gc $run ($ms ms): plan $(jq -c '.plan | {packs_total, pack_bytes, dead_bytes, dead_packs, repack_packs, repack_bytes, orphan_packs, marks_to_sweep, sweep_objects, sweep_bytes}' "$LOGS/gc-$run.json")"
    log "gc $run: result $(jq -c .result "$LOGS/gc-$run.json"); vault now $(vault_bytes) bytes, $(packs) packs"
done
after=$(vault_bytes)
dead=$(jq .plan.dead_bytes "$LOGS/gc-1.json")
repacked=$(jq -s '[.[].result.bytes_repacked] | add' "$LOGS"/gc-1.json "$LOGS"/gc-2.json)
freed=$((before - after))
reported_freed=$(jq -s '[.[].result.bytes_freed] | add' "$LOGS"/gc-1.json "$LOGS"/gc-2.json)
log "dead bytes (first plan): $dead"
log "freed (du before first gc - after second): $freed ($(python3 -c "print(f'{$freed/$dead*100:.1f}')")% of dead); gc's own bytes_freed: $reported_freed"
log "repacked: $repacked ($(python3 -c "print(f'{$repacked/$dead:.3f}')") x dead)"
((freed * 100 >= dead * 85)) || fail "freed $freed < 85% of dead $dead"
((repacked <= 2 * dead)) || fail "repacked $repacked > 2 x dead $dead"

rc=0
ldv verify --read-data --json >"$LOGS/verify.json" 2>"$LOGS/verify.err" || rc=$?
((rc == 0)) || fail "verify --read-data exited $rc: $(jq -c '.problems[:5]' "$LOGS/verify.json") $(cat "$LOGS/verify.err")"
while IFS=$'\t' read -r k version sha; do
    got=$(ldv cat "data@$version" 2>>"$LOGS/cat.err" | sha256sum | cut -d' ' -f1)
    [[ $got == "$sha" ]] || fail "data@$version (v$k) reads back as $got, not $sha"
done <"$LOGS/kept"
log "verify --read-data exit $rc; $(wc -l <"$LOGS/kept") kept versions checked"
if ((failures > 0)); then
    log "FAILED: $failures failures; kept $WORK"
    exit 1
fi
log "OK"
[[ -n ${KEEP:-} ]] || rm -rf "$WORK"
