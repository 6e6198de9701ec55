#!/usr/bin/env bash
# Tree versions on a real source tree, side by side with rclone (issue 13, Done-when 2 and 4).
#
#   bench/trees.sh TREE [ROUNDS=3]
#
# TREE is a directory of at least 50,000 files (e.g. an unpacked kernel source package:
# `apt-get download linux-source-6.12`, `dpkg-deb -x`, `tar xf`). Each round, alternating which
# goes first: `ldv put TREE t` into a fresh local vault and `rclone copy TREE DEST` into a fresh
# directory (same page cache state: the tree is read once before the first round). Then, on
# the last round's vault: the unchanged re-put, a put after changing 2% of the files (one byte
# appended to every 50th file, in a copy of the tree), `ls` of one directory, `verify` and
# `gc --dry-run` with their peak RSS and request counts (`--json` stats). Prints a table.
#
# env: LDV=path to ldv (default target/release/ldv), WORK=dir (default mktemp under /tmp),
#      PARALLEL (ldv --parallel; default ldv's), RCLONE_FLAGS (default none: rclone's defaults)
set -euo pipefail

TREE=$(realpath "${1:?usage: bench/trees.sh TREE [ROUNDS]}")
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LDV=$(realpath "${LDV:-$ROOT/target/release/ldv}")
WORK=${WORK:-$(mktemp -d /tmp/ldv-bench-trees.XXXXXX)}
mkdir -p "$WORK"
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_DATA_HOME=$WORK/home/.local/share
export LDV_CACHE_DIR=$WORK/cache
unset LDV_CONFIG LDV_PROFILE LDV_VAULT RUST_LOG LDV_VAULT_FORMAT
mkdir -p "$HOME"
par=()
[[ -n ${PARALLEL:-} ]] && par=(--parallel "$PARALLEL")
ldv() { "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" "$@"; }
# timed OUT CMD...: runs CMD, stdout to OUT, prints "seconds peak_rss_kib".
timed() {
    local out=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$out" 2>"$WORK/stderr" || {
        local rc=$?
        # 9: committed, incomplete (a tree with sockets or FIFOs); anything else fails the run.
        if ((rc != 9)); then
            echo "failed ($rc): $* $(head -c 500 "$WORK/stderr")" >&2
            exit 1
        fi
    }
    cat "$WORK/time"
}

files=$(find "$TREE" -type f | wc -l)
bytes=$(du -sb "$TREE" | cut -f1)
echo "tree: $TREE, $files files, $((bytes >> 20)) MiB; ldv $("$LDV" --version); $(rclone version | head -1)"
cat "$(find "$TREE" -type f | head -1)" >/dev/null
find "$TREE" -type f -print0 | xargs -0 cat >/dev/null # warm the page cache for both tools

ldv_put=() rclone_put=()
for ((r = 1; r <= ROUNDS; r++)); do
    for tool in $( ((r % 2)) && echo "ldv rclone" || echo "rclone ldv"); do
        if [[ $tool == ldv ]]; then
            rm -rf "$WORK/vault"
            ldv init >/dev/null
            read -r s rss < <(timed "$WORK/put.json" "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" --json put "$TREE" t)
            ldv_put+=("$s")
            echo "round $r: ldv put $s s (peak RSS $((rss >> 10)) MiB), objects: $(find "$WORK/vault" -type f | wc -l)"
        else
            rm -rf "$WORK/rclone"
            read -r s _ < <(timed /dev/null rclone copy ${RCLONE_FLAGS:-} "$TREE" "$WORK/rclone")
            rclone_put+=("$s")
            echo "round $r: rclone copy $s s"
        fi
    done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
lp=$(median "${ldv_put[@]}")
rp=$(median "${rclone_put[@]}")
echo "first put: ldv median $lp s, rclone copy median $rp s, ratio $(echo "scale=2; $lp / $rp" | bc)"

read -r s rss < <(timed "$WORK/reput.json" "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" --json put "$TREE" t)
echo "unchanged re-put: $s s ($(echo "scale=1; 100 * $s / $lp" | bc)% of the first put), peak RSS $((rss >> 10)) MiB, $(jq -c '{files_read, bytes_read, files_reused, new_chunks, bytes_uploaded}' "$WORK/reput.json")"

# 2% of the files changed, in a copy (hard links would share inodes: a real copy).
rm -rf "$WORK/copy"
cp -a "$TREE" "$WORK/copy"
read -r s _ < <(timed "$WORK/copy-put.json" "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" --json put "$WORK/copy" c)
changed=0
while IFS= read -r -d '' f; do
    changed=$((changed + 1))
    ((changed % 50 == 0)) && printf 'x' >>"$f"
done < <(find "$WORK/copy" -type f -print0 | sort -z)
read -r s rss < <(timed "$WORK/change.json" "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" --json put "$WORK/copy" c)
echo "after changing $((changed / 50)) of $changed files: put $s s, $(jq -c '{files_read, bytes_read, files_reused, new_chunks}' "$WORK/change.json")"

dir=$(cd "$TREE" && find . -mindepth 2 -maxdepth 2 -type d | sort | head -1 | cut -c3-)
read -r s rss < <(timed "$WORK/ls.out" "$LDV" --vault "file://$WORK/vault" --no-progress ls -l "t/$dir/")
echo "ls -l t/$dir/: $s s, $(wc -l <"$WORK/ls.out") lines, peak RSS $((rss >> 10)) MiB"
versions=$(ldv ls --versions | wc -l)
read -r s rss < <(timed "$WORK/verify.json" "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" --json verify)
echo "verify ($versions versions): $s s, peak RSS $((rss >> 10)) MiB, $(jq -c '{versions, chunks_referenced, problems: (.problems | length), requests: .stats.backend.total_requests}' "$WORK/verify.json")"
read -r s rss < <(timed "$WORK/gc.out" "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" --stats gc --dry-run)
echo "gc --dry-run: $s s, peak RSS $((rss >> 10)) MiB, $(grep -o '[0-9]* manifests' "$WORK/gc.out"), $(grep -o 'backend: [0-9]* requests' "$WORK/stderr")"
rm -rf "$WORK/back"
read -r s rss < <(timed /dev/null "$LDV" --vault "file://$WORK/vault" --no-progress "${par[@]}" get t "$WORK/back")
echo "get t: $s s, peak RSS $((rss >> 10)) MiB; diff -r: $(diff -r --no-dereference "$TREE" "$WORK/back" >/dev/null && echo clean || echo DIFFERS)"
[[ -n ${KEEP:-} ]] || rm -rf "$WORK"
