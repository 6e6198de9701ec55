#!/usr/bin/env bash
# The load drill: the CLI test suite (tests/cli) for ROUNDS rounds while the machine is loaded on
# CPU (stress-ng, one busy worker per core) and on disk (a dd writer filling the page cache with
# dirty data in a loop, so every fsync waits behind writeback). Every `ldv` the tests run goes
# through scripts/stress/timed-ldv, which logs its wall time and how long it took to exit after
# its last output. A command is over its limit when it ran longer than the tests' own per-command
# limit (LIMIT_S, 60 s as in tests/cli/common.rs) or took more than EXIT_S (2 s) to exit after
# its last output. Not part of ./scripts/test.
#
# usage: scripts/stress/load.sh [ROUNDS=20] [TEST_FILTER...]
# env:   WORKDIR=dir   logs go here (default: a new dir under /tmp), kept
#        CPU=0         no CPU load;  DISK=0  no disk writer
#        LIMIT_S=60    per-command wall limit;  EXIT_S=2  exit-after-output limit
#        THREADS=n     test threads (default: the test harness's own, one per core)
#        LOAD_NICE=n   run the loaders at this nice level (default 0); 19 makes them soak only
#                      the CPU other work leaves idle, e.g. beside a real cargo build
# Needs stress-ng (Debian package), python3 and jq. Cloud tests skip themselves unless their
# servers are configured (see scripts/test); the local-vault tests are the bulk of the suite.
# Exits 1 if any round failed a test or any command was over its limit.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-20}
shift || true
FILTER=("$@")
WORK=${WORKDIR:-$(mktemp -d /tmp/ldv-load.XXXXXX)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
LIMIT_S=${LIMIT_S:-60}
EXIT_S=${EXIT_S:-2}
for tool in stress-ng jq python3; do
    command -v "$tool" >/dev/null || { echo "load.sh: needs $tool" >&2; exit 2; }
done
unset LDV_CONFIG LDV_PROFILE LDV_VAULT LDV_TEST_REQUIRE_ALL

# Build first, unloaded: the drill measures ldv, not the compiler.
bin=$(cargo test --locked --test cli --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.executable != null and .target.name == "cli") | .executable' | tail -1)
[[ -x "$bin" ]] || { echo "load.sh: could not build the CLI tests" >&2; exit 1; }

loaders=()
cleanup() {
    for pid in "${loaders[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    rm -f "$WORK/fill"
}
trap cleanup EXIT
if [[ ${CPU:-1} != 0 ]]; then
    setsid nice -n "${LOAD_NICE:-0}" stress-ng --cpu "$(nproc)" --quiet >/dev/null 2>&1 &
    loaders+=($!)
fi
if [[ ${DISK:-1} != 0 ]]; then
    setsid nice -n "${LOAD_NICE:-0}" bash -c "while :; do dd if=/dev/zero of='$WORK/fill' bs=1M count=8192 conv=fdatasync status=none; rm -f '$WORK/fill'; done" &
    loaders+=($!)
fi
sleep 3

threads=()
[[ -n ${THREADS:-} ]] && threads=(--test-threads "$THREADS")
failed_rounds=0
over_total=0
commands_total=0
for round in $(seq 1 "$ROUNDS"); do
    log="$WORK/round-$round.jsonl"
    : >"$log"
    started=$(date +%s)
    if LDV_TEST_WRAPPER="$PWD/scripts/stress/timed-ldv" TIMED_LDV_LOG="$log" \
        "$bin" "${threads[@]}" "${FILTER[@]}" >"$WORK/round-$round.out" 2>&1; then
        result=ok
    else
        result=FAILED
        failed_rounds=$((failed_rounds + 1))
    fi
    commands=$(wc -l <"$log")
    over=$(jq -c --argjson limit "$LIMIT_S" --argjson exit "$EXIT_S" \
        'select(.wall_s > $limit or (.exit_after_output_s // 0) > $exit)' "$log")
    n_over=$(grep -c . <<<"$over" || true)
    commands_total=$((commands_total + commands))
    over_total=$((over_total + n_over))
    slowest=$(jq -s 'map(.exit_after_output_s // 0) | max // 0' "$log")
    echo "round $round: tests $result in $(($(date +%s) - started)) s; $commands commands, $n_over over the limit; slowest exit after output ${slowest} s"
    [[ $n_over -gt 0 ]] && sed 's/^/    /' <<<"$over"
    if [[ $result == FAILED ]]; then
        grep -E '^(test .* FAILED|failures:|    [a-z_:]+$)' "$WORK/round-$round.out" | sed 's/^/    /' | head -20
    fi
done
echo "load drill: $ROUNDS rounds, $failed_rounds with failing tests, $commands_total commands, $over_total over the limit (wall > ${LIMIT_S} s or exit > ${EXIT_S} s after output); logs in $WORK"
[[ $failed_rounds -eq 0 && $over_total -eq 0 ]]
