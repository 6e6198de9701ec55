#!/usr/bin/env bash
# chunk-size-study.sh — how much a second version deduplicates against the first, for several
# CDC average chunk sizes, measured with the real `ldv` binary (results in chunk-size-study.md).
#
#   bench/chunk-size-study.sh /path/to/ldv        # ~15 min on 2 busy vCPUs, ~7 GiB free in $STUDY_DIR
#
# For each data set (v1, v2) and each average A in $AVGS (KiB; min = A/4, max = 4A, compression
# off, local vault):
#   1. `ldv init` an empty vault per A; `ldv chunk v1 --json` against it $ROUNDS times, the rounds
#      interleaved across the sizes (v1 is read once before, so it comes from the page cache):
#      chunking throughput = v1 bytes / wall time, median of the rounds (chunk + SHA-256 of every
#      chunk and of the whole file + one existence check per chunk, as `ldv chunk` does);
#   2. `ldv put v1`, then `ldv chunk v2 --json`: the chunk plan of v2 and what a put would upload,
#      without uploading. new bytes = v2 size − existing_bytes (raw bytes of the chunks the vault
#      lacks, each distinct chunk once); new chunks = new_chunks.
#   3. The vault is deleted.
# Format-1 objects for v2 = new chunks (one object per chunk); format-2 packs = ceil(new bytes /
# 16 MiB); chunk metadata = v2 chunks × 100 B (manifest entry + index entry, order of magnitude).
#
# Data sets (all generated under $STUDY_DIR, default /tmp/study, deterministic except `vendor` and
# `crates`, which depend on the crates in the local cargo registry; the lists used are saved):
#   random  2 GiB of AES-256-CTR keystream (fixed key); v2 = 100 overwrites of 4 KiB at random
#           offsets (seeded) + one byte inserted in the middle.
#   vendor  uncompressed GNU tar of a cargo-vendor-like tree: every crate in ~/.cargo/registry/src
#           once (directory named without its version); for each crate present in ≥ 2 versions,
#           A holds the second-newest and B the newest version. v1 = A.tar, v2 = B.tar.
#   crates  the same, but only the crates present in ≥ 2 versions (every crate in it changed).
#   jsonl   ~200 MB of synthetic JSON lines (~1 KiB records: ids, timestamps, tags, a text of
#           pseudo-words; seeded); v2 = 1% of records edited (a word of the text replaced, a field
#           updated; scattered uniformly) + 1000 new records inserted in the middle.
#
# Environment: STUDY_DIR (/tmp/study), DATASETS ("random vendor crates jsonl"),
# AVGS ("64 128 256 512 1024 4096"), ROUNDS (3), NICE ("nice -n 10"), KEEP_DATA (0: delete the
# generated files at the end), CARGO_REGISTRY (first dir of ~/.cargo/registry/src/*/).
# Output: $STUDY_DIR/results.tsv (one row per data set × size) and a Markdown table on stdout.
set -euo pipefail

LDV=${1:?usage: $0 /path/to/ldv}
LDV=$(cd "$(dirname "$LDV")" && pwd)/$(basename "$LDV")
STUDY_DIR=${STUDY_DIR:-/tmp/study}
DATASETS=${DATASETS:-random vendor crates jsonl}
AVGS=${AVGS:-64 128 256 512 1024 4096}
ROUNDS=${ROUNDS:-3}
NICE=${NICE:-nice -n 10}
KEEP_DATA=${KEEP_DATA:-0}
mkdir -p "$STUDY_DIR"
STUDY_DIR=$(cd "$STUDY_DIR" && pwd)
DATA=$STUDY_DIR/data
CFG=$STUDY_DIR/cfg
VAULTS=$STUDY_DIR/vaults
RESULTS=$STUDY_DIR/results.tsv
mkdir -p "$DATA" "$CFG" "$VAULTS"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { date +%s.%N; }

# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------

gen_random() {
    local v1=$DATA/random.v1 v2=$DATA/random.v2
    [[ -s $v1 && -s $v2 ]] && return
    log "random: generating 2 GiB"
    head -c $((2 << 30)) /dev/zero |
        openssl enc -aes-256-ctr -nosalt \
            -K 6c64762d6368756e6b2d73697a652d73747564792d72616e646f6d2d30303031 \
            -iv 00000000000000000000000000000000 >"$v1"
    $NICE python3 - "$v1" "$v2" <<'EOF'
import os, random, sys
src, dst = sys.argv[1], sys.argv[2]
rng = random.Random(20261207)
size = os.path.getsize(src)
edits = sorted(rng.randrange(0, size - 4096) for _ in range(100))
mid = size // 2
with open(src, "rb") as f, open(dst, "wb") as out:
    pos = 0
    def copy_to(end):
        global pos
        while pos < end:
            n = min(end - pos, 8 << 20)
            out.write(f.read(n)); pos += n
    # One pass: copy, overwrite 4 KiB at each edit offset (in v1 coordinates), insert one byte at mid.
    points = sorted([(o, "edit") for o in edits] + [(mid, "insert")])
    for off, kind in points:
        if off < pos:  # an edit overlapping the previous one: overwrite what is left of it
            off = pos
        copy_to(off)
        if kind == "edit":
            out.write(rng.randbytes(4096)); f.seek(4096, 1); pos += 4096
        else:
            out.write(b"\x5a")
    copy_to(size)
EOF
}

crate_trees() {  # $1 = registry dir, $2 = 1: also crates present once, $3 = output prefix (.A.lst, .B.lst)
    local reg=$1 singles=$2 out=$3
    (
        cd "$reg"
        : >"$out.A.lst"; : >"$out.B.lst"
        ls | sed -E 's/-[0-9]+\.[0-9]+\.[0-9]+[^/]*$//' | sort | uniq -c | while read -r n c; do
            vs=$(ls -d "$c"-[0-9]* | grep -E "^$c-[0-9]+\.[0-9]+\.[0-9]+[^-]*(-.*)?$" | sort -V)
            if ((n >= 2)); then
                echo "$vs" | tail -2 | head -1 >>"$out.A.lst"
                echo "$vs" | tail -1 >>"$out.B.lst"
            elif ((singles)); then
                echo "$vs" | tail -1 | tee -a "$out.A.lst" >>"$out.B.lst"
            fi
        done
    )
}

gen_tar() {  # $1 = vendor|crates
    local ds=$1 singles=0 reg
    [[ $ds == vendor ]] && singles=1
    [[ -s $DATA/$ds.v1 && -s $DATA/$ds.v2 ]] && return
    reg=${CARGO_REGISTRY:-$(ls -d ~/.cargo/registry/src/*/ | head -1)}
    log "$ds: tarballs from $reg"
    crate_trees "$reg" "$singles" "$DATA/$ds"
    local t
    for t in A B; do
        (cd "$reg" && tar --format=gnu --sort=name --owner=0 --group=0 --numeric-owner \
            --transform='s,^\([A-Za-z0-9_-]*\)-[0-9][^/]*,\1,' \
            -cf "$DATA/$ds.$t.tar" -T "$DATA/$ds.$t.lst")
    done
    mv "$DATA/$ds.A.tar" "$DATA/$ds.v1"
    mv "$DATA/$ds.B.tar" "$DATA/$ds.v2"
}

gen_jsonl() {
    local v1=$DATA/jsonl.v1 v2=$DATA/jsonl.v2
    [[ -s $v1 && -s $v2 ]] && return
    log "jsonl: generating ~200 MB"
    $NICE python3 - "$v1" "$v2" <<'EOF'
import json, random, sys
v1, v2 = sys.argv[1], sys.argv[2]
rng = random.Random(42)
syl = ["ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "de", "an", "or", "el", "is", "um", "pe",
       "qu", "th", "st", "ch", "ge"]
vocab = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(8000)]
cum, acc = [], 0.0
for i in range(len(vocab)):  # Zipf-like word frequencies
    acc += 1.0 / (i + 1); cum.append(acc)
tags = ["news", "forum", "code", "wiki", "paper", "chat", "review", "legal", "qa", "book"]

def words(n):
    return " ".join(rng.choices(vocab, cum_weights=cum, k=n))

def record(i):
    return {
        "id": f"doc-{i:08d}",
        "source": rng.choice(tags),
        "created": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                   f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        "lang": rng.choice(["en", "de", "fr", "es"]),
        "tags": rng.sample(tags, rng.randint(1, 3)),
        "score": round(rng.random(), 4),
        "title": words(rng.randint(3, 10)),
        "text": words(rng.randint(40, 260)),
    }

target = 200 * 10**6
recs, size = [], 0
while size < target:
    line = json.dumps(record(len(recs)), separators=(",", ":")) + "\n"
    recs.append(line); size += len(line)
with open(v1, "w") as f:
    f.writelines(recs)

n = len(recs)
for i in rng.sample(range(n), n // 100):  # 1% of records edited, scattered
    r = json.loads(recs[i])
    t = r["text"].split(" ")
    t[rng.randrange(len(t))] = rng.choice(vocab)
    r["text"] = " ".join(t)
    r["score"] = round(rng.random(), 4)
    r["updated"] = "2027-01-15T00:00:00Z"
    recs[i] = json.dumps(r, separators=(",", ":")) + "\n"
new = [json.dumps(record(n + k), separators=(",", ":")) + "\n" for k in range(1000)]
recs[n // 2:n // 2] = new  # 1000 records inserted in the middle
with open(v2, "w") as f:
    f.writelines(recs)
print(f"jsonl: {n} records in v1, {n // 100} edited, 1000 inserted", file=sys.stderr)
EOF
}

# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------

write_config() {  # $1 = avg KiB
    local a=$1 min=$(($1 / 4)) max=$(($1 * 4))
    cat >"$CFG/avg$a.toml" <<EOF
default_profile = "avg$a"
[profiles.avg$a]
backend = { type = "local", path = "$VAULTS/avg$a" }
chunking = { mode = "cdc", min = "${min}KiB", avg = "${a}KiB", max = "${max}KiB" }
compression = { algorithm = "none" }
EOF
}

ldv() {  # $1 = avg KiB, rest = ldv arguments
    local a=$1; shift
    $NICE "$LDV" --config "$CFG/avg$a.toml" --profile "avg$a" --no-progress "$@"
}

measure() {  # $1 = data set
    local ds=$1 v1=$DATA/$1.v1 v2=$DATA/$1.v2 a r t0 t1
    local size1 size2
    size1=$(stat -c %s "$v1"); size2=$(stat -c %s "$v2")
    cat "$v1" "$v2" >/dev/null  # into the page cache
    for a in $AVGS; do
        rm -rf "$VAULTS/avg$a"
        ldv "$a" init --json >/dev/null
        : >"$STUDY_DIR/$ds.avg$a.secs"
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        for a in $AVGS; do
            t0=$(now)
            ldv "$a" chunk "$v1" --json >"$STUDY_DIR/$ds.avg$a.v1plan.json"
            t1=$(now)
            echo "$t0 $t1" | awk '{print $2 - $1}' >>"$STUDY_DIR/$ds.avg$a.secs"
            log "$ds avg ${a}KiB round $r: $(tail -1 "$STUDY_DIR/$ds.avg$a.secs") s"
        done
    done
    for a in $AVGS; do
        ldv "$a" put "$v1" "$ds" --json >"$STUDY_DIR/$ds.avg$a.put.json"
        ldv "$a" chunk "$v2" --json >"$STUDY_DIR/$ds.avg$a.v2plan.json"
        rm -rf "$VAULTS/avg$a"
        python3 - "$ds" "$a" "$size1" "$STUDY_DIR" >>"$RESULTS" <<'EOF'
import json, math, statistics, sys
ds, a, size1, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pre = f"{d}/{ds}.avg{a}"
put = json.load(open(pre + ".put.json"))
plan = json.load(open(pre + ".v2plan.json"))
secs = [float(x) for x in open(pre + ".secs").read().split()]
assert put["chunks"] == json.load(open(pre + ".v1plan.json"))["chunks"], "v1 plan != put"
new_bytes = plan["size"] - plan["existing_bytes"]
row = [ds, a, size1, put["chunks"], plan["size"], plan["chunks"], plan["new_chunks"], new_bytes,
       plan["bytes_to_upload"], math.ceil(new_bytes / (16 << 20)),
       round(size1 / 1e6 / statistics.median(secs), 1), " ".join(f"{s:.2f}" for s in secs)]
print("\t".join(str(x) for x in row))
EOF
        log "$ds avg ${a}KiB: $(tail -1 "$RESULTS")"
    done
}

table() {
    python3 - "$RESULTS" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
def kib(a):
    a = int(a)
    return f"{a // 1024} MiB" if a >= 1024 else f"{a} KiB"
print("| data set | avg (min/max = ÷4/×4) | v2 size | v2 chunks | new chunks = format-1 objects "
      "| new bytes | new % | format-2 packs | chunk metadata (v2, 100 B/chunk) | chunk MB/s (v1) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for ds, a, s1, c1, s2, c2, nc, nb, up, packs, mbs, secs in rows:
    s2, c2, nc, nb = int(s2), int(c2), int(nc), int(nb)
    print(f"| {ds} | {kib(a)} | {s2 / 2**20:,.1f} MiB | {c2:,} | {nc:,} | {nb / 2**20:,.2f} MiB "
          f"| {100 * nb / s2:.2f}% | {packs} | {c2 * 100 / 1e6:.2f} MB | {mbs} |")
EOF
}

[[ -s $RESULTS ]] || printf '#dataset\tavg_kib\tv1_size\tv1_chunks\tv2_size\tv2_chunks\tnew_chunks\tnew_bytes\tbytes_to_upload\tpacks16MiB\tchunk_MBps_median\tchunk_secs\n' >"$RESULTS"
for a in $AVGS; do write_config "$a"; done
log "ldv: $("$LDV" --version 2>/dev/null || echo "$LDV"); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ds in $DATASETS; do
    case $ds in
        random) gen_random ;;
        vendor | crates) gen_tar "$ds" ;;
        jsonl) gen_jsonl ;;
        *) echo "unknown data set $ds" >&2; exit 2 ;;
    esac
    log "$ds: v1 $(stat -c %s "$DATA/$ds.v1") B, v2 $(stat -c %s "$DATA/$ds.v2") B; load $(cut -d' ' -f1-3 /proc/loadavg)"
    measure "$ds"
    if [[ $KEEP_DATA == 0 ]]; then rm -f "$DATA/$ds.v1" "$DATA/$ds.v2"; fi
done
log "done; load: $(cut -d' ' -f1-3 /proc/loadavg)"
table
