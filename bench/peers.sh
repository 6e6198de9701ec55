#!/usr/bin/env bash
# ldv side by side with peer tools on the same data and the same loopback S3 server (issue 6):
# installs what it needs, builds ldv, starts s3s-fs, runs bench/peers.py, writes BENCHMARKS.md.
#
#   bench/peers.sh                                   the full run: 1 GiB, 2 GiB, 10,000 files, 3 runs
#   bench/peers.sh --size-mib 64 --files 500 --runs 1    a quick check of the harness
#   bench/peers.sh --rev HEAD                        ldv built from a commit, not the work tree
#   bench/peers.sh --help                            every option (bench/peers.py)
#
# Installs (once; kept between runs): Debian `rclone`, `restic`, `hyperfine`, `time` with apt-get
# (as root, or through sudo), PyPI `awscli` into a venv under .cache/, s3s-fs through
# scripts/s3-servers (built from crates.io into .cache/ the first time: ~5 min). LDV_BIN=/path/ldv
# skips the release build; --rev REV builds commit REV from a clean export (with its own target
# directory under .cache/, so a work tree others are editing is neither measured nor rebuilt).
# Progress goes to stderr. Data and stores go under --tmp (default $TMPDIR or /tmp; --data DIR
# puts the source data elsewhere, e.g. /dev/shm) and are removed at exit. Disk at default sizes:
# up to ~8 GiB (the 2 GiB file, its second version and rclone's two copies of it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=$ROOT/.cache
AWSCLI_VERSION=1.45.11
AWS_VENV=$CACHE/bench-awscli-$AWSCLI_VERSION
PYTHON=${PYTHON:-python3}

log() { echo "peers: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for arg in "$@"; do
    if [[ $arg == -h || $arg == --help ]]; then exec "$PYTHON" "$ROOT/bench/peers.py" --help; fi
done

# --rev REV (ours): build ldv from commit REV, exported clean into .cache/, instead of the work
# tree. The tmp directory is also s3s-fs's, so that every store is on the same filesystem.
TMP=${TMPDIR:-/tmp}
REV=
args=("$@")
pass=()
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
    --rev)
        REV=${args[i + 1]:?--rev needs a commit}
        i=$((i + 1))
        continue
        ;;
    --rev=*)
        REV=${args[i]#--rev=}
        continue
        ;;
    --tmp) TMP=${args[i + 1]:-$TMP} ;;
    --tmp=*) TMP=${args[i]#--tmp=} ;;
    esac
    pass+=("${args[i]}")
done
mkdir -p "$TMP"
TMP=$(cd "$TMP" && pwd)

install_debian() {
    local missing=() pkg bin
    for pkg in rclone restic hyperfine time; do
        bin=$pkg
        [[ $pkg == time ]] && bin=/usr/bin/time
        command -v "$bin" >/dev/null || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root or sudo to apt-get install ${missing[*]}"
        sudo=(sudo)
    fi
    log "installing ${missing[*]} (apt-get)"
    "${sudo[@]}" apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
}

install_awscli() {
    if [[ -f $AWS_VENV/.installed ]] && "$AWS_VENV/bin/aws" --version >/dev/null 2>&1; then return 0; fi
    log "installing awscli==$AWSCLI_VERSION into ${AWS_VENV#"$ROOT"/}"
    mkdir -p "$CACHE/logs"
    rm -rf "$AWS_VENV"
    "$PYTHON" -m venv "$AWS_VENV" >"$CACHE/logs/install-awscli.log" 2>&1 ||
        die "python3 -m venv failed (on Debian's python3: apt-get install python3-venv)"
    "$AWS_VENV/bin/python" -m pip install --disable-pip-version-check "awscli==$AWSCLI_VERSION" \
        >>"$CACHE/logs/install-awscli.log" 2>&1 || die "pip install awscli failed; see .cache/logs/install-awscli.log"
    touch "$AWS_VENV/.installed"
}

install_debian
install_awscli
export AWS_BIN=$AWS_VENV/bin/aws

if [[ -n ${LDV_BIN:-} ]]; then
    GIT="LDV_BIN=$LDV_BIN"
elif [[ -n $REV ]]; then
    commit=$(cd "$ROOT" && git rev-parse --verify "$REV^{commit}") || die "no commit $REV"
    GIT=$(cd "$ROOT" && git describe --always "$commit")
    build=$CACHE/bench-build
    log "cargo build --release of $GIT (clean export in ${build#"$ROOT"/}/src)"
    rm -rf "$build/src"
    mkdir -p "$build/src"
    (cd "$ROOT" && git archive "$commit") | tar -x -C "$build/src"
    (cd "$build/src" && CARGO_TARGET_DIR=$build/target cargo build --release --quiet) >&2 ||
        die "cargo build --release of $GIT failed"
    export LDV_BIN=$build/target/release/ldv
else
    GIT=$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) >&2 || die "cargo build --release failed"
    export LDV_BIN=$ROOT/target/release/ldv
fi
[[ -x $LDV_BIN ]] || die "no ldv binary at $LDV_BIN"

# One s3s-fs (and a moto we do not use) for this run; stopped at exit, with its data directory.
S3_EXPORTS=$(S3SFS_RUST_LOG=${S3SFS_RUST_LOG:-warn} TMPDIR=$TMP "$ROOT/scripts/s3-servers" start) ||
    die "scripts/s3-servers start failed"
eval "$S3_EXPORTS"
trap 'TMPDIR=$TMP "$ROOT/scripts/s3-servers" stop "$LDV_TEST_S3_STATE"' EXIT
LDV_BENCH_S3SFS_VERSION=$("$CACHE/s3s-fs/bin/s3s-fs" --version 2>/dev/null | awk '{print $2}') || true
export LDV_BENCH_S3SFS_VERSION

# The command to rerun, with --rev as the commit it resolved to.
shown=(${REV:+--rev "$GIT"} ${pass[@]+"${pass[@]}"})
COMMAND=bench/peers.sh
for arg in ${shown[@]+"${shown[@]}"}; do
    if [[ $arg =~ ^[A-Za-z0-9_./,=:+@-]+$ ]]; then COMMAND+=" $arg"; else COMMAND+=" $(printf '%q' "$arg")"; fi
done
"$PYTHON" "$ROOT/bench/peers.py" --command "$COMMAND" --git "$GIT" ${pass[@]+"${pass[@]}"}
