#!/usr/bin/env bash
# Peak memory of the commands that read every manifest of a vault: verify, verify --read-data,
# gc --dry-run and ls -l, each under GNU /usr/bin/time -f '%e s %M KB', on two local vaults:
#   many: VERSIONS (default 100,000) versions of real files, put directory by directory from
#         SOURCES (one version per file); when the sources hold fewer files, they are put again
#         under further names until there are enough;
#   big:  one version of CHUNKS (default 2,000,000) chunks, put through a profile with fixed
#         64 B chunks over a file that repeats 1 MiB of random bytes (16,384 distinct chunks).
# The vaults are built with the first BIN and kept in WORKDIR, which a later run reuses (delete
# it to rebuild). Every BIN given is then measured on both vaults, the binaries taking turns
# command by command, so a before/after comparison runs on the same machine, data and load. Fails if a verify finds a problem,
# or if the last BIN exceeds LIMIT_KB (default 262144, 256 MiB) on any command.
#
# usage: scripts/stress/memory.sh BIN [BIN...]
# env:   WORKDIR=dir (default /tmp/ldv-stress-memory), SOURCES="dir dir ..." (default: the cargo
#        registry's sources, plus /tmp/ldv-linux-src when present; see README.md for getting a
#        kernel tree), VERSIONS, CHUNKS, LIMIT_KB
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BIN [BIN...]" >&2
    exit 2
fi
BINS=()
for b in "$@"; do BINS+=("$(realpath "$b")"); done
VERSIONS=${VERSIONS:-100000}
CHUNKS=${CHUNKS:-2000000}
LIMIT_KB=${LIMIT_KB:-262144}
DEFAULT_SOURCES="$HOME/.cargo/registry/src"
[[ -d /tmp/ldv-linux-src ]] && DEFAULT_SOURCES+=" /tmp/ldv-linux-src"
SOURCES=${SOURCES:-$DEFAULT_SOURCES}
WORK=${WORKDIR:-/tmp/ldv-stress-memory}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME"
MANY=$WORK/vault-many
BIG=$WORK/vault-big
LOGS=$WORK/logs
mkdir -p "$LOGS"
CFG=$WORK/config.toml
cat >"$CFG" <<EOF
[profiles.many]
backend = { type = "local", path = "$MANY" }
[profiles.big]
backend = { type = "local", path = "$BIG" }
chunking = { mode = "fixed", size = "64B", min_chunk_threshold = "0B" }
EOF

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

BUILDER=${BINS[0]}
echo "ldv memory: ${#BINS[@]} binary(ies), work dir $WORK ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"

if [[ ! -f $MANY/.built ]]; then
    rm -rf "$MANY"
    "$BUILDER" --config "$CFG" --profile many init >/dev/null
    have=0 round=0
    while ((have < VERSIONS)); do
        for src in $SOURCES; do
            ((have >= VERSIONS)) && break
            [[ -d $src ]] || fail "source $src is not a directory"
            n=$(find "$src" -type f | wc -l)
            ((n > 0)) || fail "source $src holds no files"
            name="r$round/$(basename "$src")"
            echo "putting $src ($n files) as $name"
            timed "put-many-$round-$(basename "$src")" "$BUILDER" --config "$CFG" --profile many --no-progress \
                put "$src" "$name"
            echo "  $WALL s, $RSS KB"
            have=$((have + n))
        done
        round=$((round + 1))
    done
    touch "$MANY/.built"
fi

if [[ ! -f $BIG/.built ]]; then
    rm -rf "$BIG"
    "$BUILDER" --config "$CFG" --profile big init >/dev/null
    head -c 1048576 /dev/urandom >"$WORK/period"
    bytes=$((CHUNKS * 64))
    for ((k = 0; k < (bytes + 1048575) / 1048576; k++)); do cat "$WORK/period"; done 2>/dev/null |
        head -c "$bytes" >"$WORK/periodic" || true
    [[ $(stat -c %s "$WORK/periodic") == "$bytes" ]] || fail "could not write $bytes bytes of periodic data"
    timed put-big "$BUILDER" --config "$CFG" --profile big --no-progress put "$WORK/periodic" big/periodic
    echo "put big/periodic ($bytes bytes): $WALL s, $RSS KB"
    rm -f "$WORK/periodic"
    touch "$BIG/.built"
fi

# Vault sizes, from a verify of each with the builder.
for v in many big; do
    timed "size-$v" "$BUILDER" --config "$CFG" --profile "$v" --no-progress verify --json
    dir=$WORK/vault-$v
    printf 'vault %-4s: %s names, %s versions, %s chunks referenced, %s chunk files, %s bytes on disk (%s manifest bytes)\n' \
        "$v" "$(jq -r .names "$LOGS/size-$v.out")" "$(jq -r .versions "$LOGS/size-$v.out")" \
        "$(jq -r .chunks_referenced "$LOGS/size-$v.out")" "$(find "$dir/chunks" -type f | wc -l)" \
        "$(du -sb "$dir" | cut -f1)" "$(du -sb "$dir/manifests" | cut -f1)"
done

results=$LOGS/results
: >"$results"
over=()
last=$((${#BINS[@]} - 1))
# Binaries alternate command by command, so a comparison is not skewed by the load of the moment.
for v in many big; do
    for cmd in "verify" "verify --read-data" "gc --dry-run" "ls -l"; do
        for i in "${!BINS[@]}"; do
            bin=${BINS[$i]}
            tag="b$i-$v-${cmd// /_}"
            # verify reports in JSON to be checked; ls -l prints its listing as a user sees it.
            json=()
            [[ $cmd == ls* ]] || json=(--json)
            # shellcheck disable=SC2086 # $cmd is words
            timed "$tag" "$bin" --config "$CFG" --profile "$v" --no-progress "${json[@]}" $cmd
            if [[ $cmd == verify* ]]; then
                jq -e '.problems == [] and .could_not_check == []' "$LOGS/$tag.out" >/dev/null ||
                    fail "$bin $cmd on $v found problems"
            fi
            printf '%-40s %-5s %-20s %8s s %9s KB (%d MiB)\n' "$bin" "$v" "$cmd" "$WALL" "$RSS" $((RSS / 1024)) |
                tee -a "$results"
            if ((i == last && RSS > LIMIT_KB)); then over+=("$cmd on $v: $RSS KB"); fi
        done
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
if ((${#over[@]} > 0)); then fail "over $LIMIT_KB KB: ${over[*]}"; fi
echo "OK"
