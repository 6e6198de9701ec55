#!/usr/bin/env bash
# Format 1 against format 2, whole commands, side by side (bench/format2.py has the details):
# a 1 GiB file (put, get, objects, requests; zstd against compression none), a second version of
# a 2 GiB file (bytes uploaded), 10,000 files of 16 KiB (files/s, packs) and the load of an index
# of ~1,000,000 chunks (time, peak RSS); on a local vault and on a loopback s3s-fs.
#
#   bench/format2.sh /path/to/ldv                         everything (20 min on 2 quiet cores, 50 busy)
#   bench/format2.sh /path/to/ldv --only big --kinds local --rounds 5
#   bench/format2.sh /path/to/ldv --big-mib 64 --edit-mib 128 --files 500 --index-chunks 20000 --out /tmp/f2.md
#
# Takes a built binary (it builds nothing). Writes its section of BENCHMARKS.md between the
# markers `BEGIN/END bench/format2.sh` (--out FILE writes elsewhere). Needs python3, openssl,
# strace (request counts of local vaults), /usr/bin/time; S3 rows need s3s-fs in
# .cache/s3s-fs/bin/ (scripts/s3-servers install), else they are skipped. Starts two s3s-fs on
# 127.0.0.1 (one quiet for timings, one logging each request for the counts) and stops them at
# exit. Data goes to /dev/shm (--data), vaults under $TMPDIR or /tmp (--tmp): ~4 GiB of each at
# the default sizes.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
[[ $# -ge 1 && $1 != -* ]] || {
    echo "usage: bench/format2.sh /path/to/ldv [options]  (--help: bench/format2.py's options)" >&2
    [[ ${1:-} == -h || ${1:-} == --help ]] && exec "$PYTHON" "$ROOT/bench/format2.py" --help
    exit 2
}
LDV=$(realpath "$1")
shift
[[ -x $LDV ]] || {
    echo "format2: no binary at $LDV" >&2
    exit 2
}
TMP=${TMPDIR:-/tmp}
S3SFS=$ROOT/.cache/s3s-fs/bin/s3s-fs
KEY=ldvbench
SECRET=ldvbench-secret-key

pids=()
dirs=()
cleanup() {
    local pid d
    for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" 2>/dev/null || true; done
    for d in ${dirs[@]+"${dirs[@]}"}; do rm -rf "$d"; done
}
trap cleanup EXIT

free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_s3sfs RUST_LOG: starts one s3s-fs on a free port over a new directory; sets PORT, DIR, LOG.
start_s3sfs() {
    DIR=$(mktemp -d "$TMP/ldv-format2-s3.XXXXXX")
    dirs+=("$DIR")
    LOG=$DIR.log
    dirs+=("$LOG")
    PORT=$(free_port)
    RUST_LOG=$1 "$S3SFS" --host 127.0.0.1 --port "$PORT" --access-key "$KEY" --secret-key "$SECRET" "$DIR" \
        </dev/null >"$LOG" 2>&1 &
    pids+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        if "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "format2: s3s-fs did not start; see $LOG" >&2
    exit 1
}

want_s3=1
prev=
for arg in "$@"; do
    if [[ $arg == --kinds=local || ($prev == --kinds && $arg == local) ]]; then want_s3=0; fi
    prev=$arg
done
if ((want_s3)) && [[ -x $S3SFS ]]; then
    start_s3sfs warn
    export F2_S3_ENDPOINT=http://127.0.0.1:$PORT F2_S3_ROOT=$DIR
    start_s3sfs s3s::service=debug
    export F2_S3COUNT_ENDPOINT=http://127.0.0.1:$PORT F2_S3COUNT_ROOT=$DIR F2_S3COUNT_LOG=$LOG
    export F2_S3_KEY=$KEY F2_S3_SECRET=$SECRET
    echo "format2: s3s-fs on $F2_S3_ENDPOINT (timings) and $F2_S3COUNT_ENDPOINT (request log)" >&2
elif ((want_s3)); then
    echo "format2: no s3s-fs at ${S3SFS#"$ROOT"/} (scripts/s3-servers install): S3 rows skipped" >&2
fi

shown="bench/format2.sh /path/to/ldv"
for arg in "$@"; do shown+=" $(printf '%q' "$arg")"; done
"$PYTHON" "$ROOT/bench/format2.py" --ldv "$LDV" --command "$shown" --git "${LDV_GIT:-$("$LDV" --version 2>/dev/null)}" "$@"
