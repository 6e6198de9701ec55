#!/usr/bin/env bash
# Put and get throughput of every compression × encryption combination, side by side in one run,
# on a local vault: one random file (incompressible, like weights or parquet) and one text-like
# file (word salad with JSON-ish records). Prints a Markdown table with MB/s, the ratio to
# none+none measured in the same round, and the bytes stored.
#
#   bench/codecs.sh [SIZE_MIB] [ROUNDS]     defaults: 1024 MiB, 3 rounds (medians are reported)
#
# Needs a release build (`cargo build --release`) and python3; data and vaults go under
# $LDV_BENCH_DIR (default: a temp directory), removed at exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LDV=${LDV_BIN:-$ROOT/target/release/ldv}
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
WORK=$(mktemp -d "${LDV_BENCH_DIR:-${TMPDIR:-/tmp}}/ldv-codecs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[[ -x $LDV ]] || { echo "build first: cargo build --release" >&2; exit 1; }

head -c $((SIZE_MIB << 20)) /dev/urandom >"$WORK/random"
python3 - "$WORK/text" $((SIZE_MIB << 20)) <<'EOF'
import random, sys
path, size = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
words = ("the of and to a in is that for it as was with be by on not this are or from at which "
         "model data token training weights dataset layer attention gradient vault chunk loss "
         "epoch batch learning rate eval accuracy prompt response user assistant").split()
with open(path, "wb") as f:
    written = 0
    while written < size:
        lines = []
        for _ in range(2000):
            text = " ".join(rng.choices(words, k=rng.randint(8, 40)))
            lines.append('{"id": %d, "score": %.4f, "text": "%s"}\n' % (rng.randrange(10**9), rng.random(), text))
        block = "".join(lines).encode()
        f.write(block[: size - written])
        written += len(block)
EOF

COMBOS=()
for comp in none lz4 zstd gzip; do
    for enc in none aes-256-gcm chacha20-poly1305; do COMBOS+=("$comp+$enc"); done
done

{
    for combo in "${COMBOS[@]}"; do
        comp=${combo%+*} enc=${combo#*+}
        echo "[profiles.\"$combo\"]"
        echo "backend = { type = \"local\", path = \"$WORK/vault-$combo\", sync = false }"
        [[ $comp != none ]] && echo "compression = { algorithm = \"$comp\" }"
        [[ $enc != none ]] && echo "encryption = { algorithm = \"$enc\", key = { env = \"LDV_BENCH_KEY\", raw = true } }"
        echo
    done
} >"$WORK/config.toml"
export LDV_CONFIG=$WORK/config.toml
LDV_BENCH_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export LDV_BENCH_KEY

now() { date +%s.%N; }
declare -A PUT GET STORED
for round in $(seq 1 "$ROUNDS"); do
    for combo in "${COMBOS[@]}"; do
        for data in random text; do
            vault=$WORK/vault-$combo
            rm -rf "$vault"
            "$LDV" -q --profile "$combo" init
            t0=$(now)
            "$LDV" -q --no-progress --profile "$combo" put "$WORK/$data" "$data"
            t1=$(now)
            "$LDV" -q --no-progress --profile "$combo" get "$data" "$WORK/out"
            t2=$(now)
            cmp -s "$WORK/$data" "$WORK/out" || { echo "MISMATCH $combo $data" >&2; exit 1; }
            rm -f "$WORK/out"
            PUT[$combo/$data]+="$(echo "$t1 - $t0" | bc) "
            GET[$combo/$data]+="$(echo "$t2 - $t1" | bc) "
            STORED[$combo/$data]=$(du -sb "$vault/chunks" | cut -f1)
        done
    done
    echo "round $round done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbps() { echo "scale=0; $SIZE_MIB * 1048576 / $1 / 1000000" | bc; }
ratio() { echo "scale=2; $2 / $1" | bc; }

echo
echo "$SIZE_MIB MiB per file, medians of $ROUNDS rounds; ratio = this combination's time ÷ none+none's."
echo
echo "| compression+cipher | data | put MB/s | put ratio | get MB/s | get ratio | stored / input |"
echo "|---|---|---|---|---|---|---|"
for data in random text; do
    base_put=$(echo "${PUT[none+none/$data]}" | median)
    base_get=$(echo "${GET[none+none/$data]}" | median)
    for combo in "${COMBOS[@]}"; do
        p=$(echo "${PUT[$combo/$data]}" | median)
        g=$(echo "${GET[$combo/$data]}" | median)
        stored=$(echo "scale=4; ${STORED[$combo/$data]} / ($SIZE_MIB * 1048576)" | bc)
        echo "| $combo | $data | $(mbps "$p") | $(ratio "$base_put" "$p") | $(mbps "$g") | $(ratio "$base_get" "$g") | $stored |"
    done
done
