#!/usr/bin/env bash
# Throughput of verify and gc on a vault with many small chunks.
#
# Builds a local vault through a profile with small CDC chunks (16/64/256 KiB), puts MIB MiB of
# random data (default 800, ~10,400 chunks: the profile averages ~80 KiB a chunk) as 100 MiB files, then RUNS times (default 2):
#   put the data (timed), verify (no read), verify --read-data, gc --dry-run with nothing to
#   delete, rm every version, gc --grace 0s --yes (deleting every chunk).
# Every command is timed with /usr/bin/time -f '%e s %M KB'. Fails if any command fails, if
# verify finds problems, or if gc does not delete every chunk.
#
# usage: scripts/stress/throughput.sh BIN [MIB] [RUNS]
# env:   WORKDIR=dir (default: mktemp under /tmp; kept with KEEP=1)
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BIN [MIB] [RUNS]" >&2
    exit 2
fi
BIN=$(realpath "$1")
MIB=${2:-800}
RUNS=${3:-2}
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-stress-throughput.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
VAULT=$WORK/vault
DATA=$WORK/data
LOGS=$WORK/logs
mkdir -p "$DATA" "$LOGS"
CFG=$WORK/config.toml
cat >"$CFG" <<EOF
[profiles.t]
backend = { type = "local", path = "$VAULT" }
chunking = { mode = "cdc", min = "16KiB", avg = "64KiB", max = "256KiB" }
EOF

LDV=("$BIN" --config "$CFG" --profile t --no-progress)

fail() {
    echo "FAILURE: $*" >&2
    echo "work dir kept: $WORK" >&2
    exit 1
}

# timed TAG CMD...: runs CMD under /usr/bin/time; stdout to $LOGS/TAG.out; sets WALL and RSS.
timed() {
    local tag=$1 rc=0
    shift
    /usr/bin/time -f '%e s %M KB' -o "$LOGS/$tag.time" "$@" >"$LOGS/$tag.out" 2>"$LOGS/$tag.err" || rc=$?
    if ((rc != 0)); then fail "$* exited $rc: $(tail -c 2000 "$LOGS/$tag.err")"; fi
    read -r WALL _ RSS _ < <(tail -n 1 "$LOGS/$tag.time")
}

chunk_files() { find "$VAULT/chunks" -type f ! -name '.ldv-tmp.*' | wc -l; }

echo "ldv throughput: $BIN, ${MIB} MiB, $RUNS run(s), work dir $WORK ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
"$BIN" --vault "file://$VAULT" init >/dev/null
files=$(((MIB + 99) / 100))
for ((i = 1; i <= files; i++)); do
    size=$((MIB - (i - 1) * 100))
    ((size > 100)) && size=100
    head -c $((size * 1048576)) /dev/urandom >"$DATA/part$i"
done
total_bytes=$(cat "$DATA"/part* | wc -c)

results=$LOGS/results
: >"$results"
for ((r = 1; r <= RUNS; r++)); do
    # put
    t0=$(date +%s.%N)
    for ((i = 1; i <= files; i++)); do
        timed "put$r-$i" "${LDV[@]}" put --json "$DATA/part$i" "tp/part$i"
    done
    put_wall=$(echo "$(date +%s.%N) - $t0" | bc)
    chunks=$(chunk_files)
    if ((chunks < 10000)); then echo "warning: only $chunks chunks (wanted >= 10000)" >&2; fi
    printf 'run %d put: %d files, %d bytes, %d chunks, %.1f s, %.1f MB/s\n' "$r" "$files" "$total_bytes" "$chunks" \
        "$put_wall" "$(echo "$total_bytes / $put_wall / 1000000" | bc -l)" | tee -a "$results"

    # verify, no read
    timed "verify$r" "${LDV[@]}" verify --json
    jq -e '.problems == [] and .could_not_check == []' "$LOGS/verify$r.out" >/dev/null || fail "verify found problems"
    refs=$(jq -r .chunks_referenced "$LOGS/verify$r.out")
    printf 'run %d verify: %s s wall, %s KB max RSS, %s chunks checked (%.0f chunks/s)\n' "$r" "$WALL" "$RSS" "$refs" \
        "$(echo "$refs / $WALL" | bc -l)" | tee -a "$results"

    # verify --read-data
    timed "verifyrd$r" "${LDV[@]}" verify --read-data --json
    jq -e '.problems == [] and .could_not_check == []' "$LOGS/verifyrd$r.out" >/dev/null || fail "verify --read-data found problems"
    read -r cread bread ems cps < <(jq -r '[.chunks_read, .bytes_read, .elapsed_ms, .chunks_per_sec] | @tsv' "$LOGS/verifyrd$r.out")
    printf 'run %d verify --read-data: %s s wall, %s KB max RSS, %s chunks, %s bytes; ldv says %s ms, %.0f chunks/s; %.1f MB/s (%.0f chunks/s by wall time)\n' \
        "$r" "$WALL" "$RSS" "$cread" "$bread" "$ems" "$cps" "$(echo "$bread / $WALL / 1000000" | bc -l)" \
        "$(echo "$cread / $WALL" | bc -l)" | tee -a "$results"

    # gc --dry-run with nothing to delete
    timed "gcdry$r" "${LDV[@]}" gc --dry-run --grace 0s --json
    printf 'run %d gc --dry-run (nothing to delete, %s chunks, %s manifests): %s s wall, %s KB max RSS\n' "$r" \
        "$(jq -r .plan.chunks_total "$LOGS/gcdry$r.out")" "$(jq -r .plan.manifests "$LOGS/gcdry$r.out")" "$WALL" "$RSS" | tee -a "$results"

    # rm everything, then gc deletes every chunk
    timed "rm$r" "${LDV[@]}" rm --yes -r tp
    timed "gc$r" "${LDV[@]}" gc --grace 0s --yes --json
    deleted=$(jq -r '.result.deleted_chunks // 0' "$LOGS/gc$r.out")
    gc_ms=$(jq -r '.result.elapsed_ms // 0' "$LOGS/gc$r.out")
    left=$(chunk_files)
    if ((left != 0)); then fail "$left chunk(s) left after rm of everything and gc --grace 0s"; fi
    printf 'run %d gc (delete): %s chunks deleted, %s s wall, %s KB max RSS, delete phase %s ms; %.1f s per 10,000 chunks (wall)\n' \
        "$r" "$deleted" "$WALL" "$RSS" "$gc_ms" "$(echo "$WALL * 10000 / $deleted" | bc -l)" | tee -a "$results"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "OK"
if [[ -z ${KEEP:-} && -z ${WORKDIR:-} ]]; then rm -rf "$WORK"; fi
