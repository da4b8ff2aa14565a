#!/usr/bin/env bash
# Pull benchmark (not a test): one image, every way of reaching it, printed as one table with
# ratios against the goals of issue 11.
#
#   bench/pull.sh [WORKDIR]    (default /var/tmp/ostree-container-bench; run as root)
#   SIZE=small bench/pull.sh   (the test suite's minbase rootfs, ~5,800 entries: a quick check)
#   RUNS=N                     (default 3; the median of N runs is shown)
#
# Rows:
# - import from `oci:` (the reference), and the write floor: the same flattened tree written by
#   `tar -x` into a new directory, then `sync -f` (syncfs, as libostree does at commit);
# - full pull from a loopback registry (Debian's docker-registry on 127.0.0.1, plain HTTP);
# - re-pull of v2 (v1 already in the repository), with the bytes the registry sent counted from
#   its own access log, against the new top layer + manifest + config;
# - import from containers-storage (the vfs store the image was built in);
# - peak memory (/usr/bin/time %M) importing a one-layer image with a small layer and with a
#   large one (the whole flattened tree);
# - ostree-rs-ext 0.15 (tests/interop, `ostree-ext-cli`'s library, release build) where it can
#   pull the image: it refuses images that are not ostree-encapsulated, which the table shows;
#   on an encapsulated copy of v1 (its own `encapsulate` of our import) both pull over the
#   registry.
#
# Every measurement writes into a directory of its own and nothing is deleted until the end:
# on ext4 without a journal (this VM's disk), allocating inodes right after deleting many
# skips every inode freed in the last 30 s one by one (`recently_deleted`), which made an
# import that follows `rm -rf` of the previous repository several times slower (see
# docs/exporter.md). One row shows that case on purpose.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(realpath -m "${1:-/var/tmp/ostree-container-bench}")
runs=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$top/target}

cargo build --quiet --release --manifest-path "$top/Cargo.toml"
bin=$CARGO_TARGET_DIR/release/ostree-container
ext_target=$CARGO_TARGET_DIR/tmp/interop-target
CARGO_TARGET_DIR=$ext_target cargo build --quiet --release --locked \
    --manifest-path "$top/tests/interop/Cargo.toml"
ext=$ext_target/release/ostree-container-interop
"$top/bench/exporter-mkimage.sh" "$work"
cd "$work"
cat oci/blobs/sha256/* flat.tar >/dev/null # everything starts in the page cache

# Outputs of an earlier run: deleted, then 31 s for ext4 to stop skipping their inodes.
if [ -d out ]; then rm -rf out && sleep 31; fi
mkdir -p out
newdir() { mktemp -d "$work/out/$1.XXXXXX"; } # (called in $(…): a counter would not count)
newrepo() { local r; r=$(newdir "$1"); ostree --repo="$r" init --mode=bare-user; echo "$r"; }
# "seconds peak-KB" of a command; its output is discarded, a failure ends the benchmark.
# Whatever the previous row left dirty is written out first (not timed): otherwise the next
# row's final sync (libostree's syncfs, the floor's sync -f) pays for it.
measure() {
    local o
    sync
    o=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null) || { echo "failed: $*" >&2; echo "$o" >&2; exit 1; }
    echo "$o" | tail -1
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# The loopback registry, with its access log (combined format: bytes sent per request).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
rm -rf registry && mkdir -p registry/home/.config/containers
cat >registry/config.yml <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: $host
EOF
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$host" >registry/home/.config/containers/registries.conf
docker-registry serve registry/config.yml >registry/access.log 2>registry/error.log &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$host/v2/" >/dev/null && break; sleep 0.1; done
export HOME=$work/registry/home # skopeo 1.9 reads registries.conf only from $HOME/.config
for v in v1 v2; do skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:$v" "docker://$host/bench:$v"; done
sent() { awk '$6 == "\"GET" && $9 ~ /^2/ {s += $10} END {print s + 0}' registry/access.log; }

# One-layer images for the memory rows: a small layer (v2's top layer) and a large one (all).
one_layer() { # LAYOUT TAR: an OCI layout holding TAR, gzip-compressed, as its only layer
    local d=$1 blob diffid cfg man
    mkdir -p "$d/blobs/sha256"
    diffid=$(sha256sum <"$2" | cut -d' ' -f1)
    gzip -1 -c "$2" >"$d/layer.tmp"
    blob=$(sha256sum <"$d/layer.tmp" | cut -d' ' -f1) && mv "$d/layer.tmp" "$d/blobs/sha256/$blob"
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"config":{}}' \
        "$diffid" >"$d/cfg.tmp"
    cfg=$(sha256sum <"$d/cfg.tmp" | cut -d' ' -f1) && mv "$d/cfg.tmp" "$d/blobs/sha256/$cfg"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
        "$cfg" "$(stat -c %s "$d/blobs/sha256/$cfg")" "$blob" "$(stat -c %s "$d/blobs/sha256/$blob")" >"$d/man.tmp"
    man=$(sha256sum <"$d/man.tmp" | cut -d' ' -f1) && mv "$d/man.tmp" "$d/blobs/sha256/$man"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"t"}}]}' \
        "$man" "$(stat -c %s "$d/blobs/sha256/$man")" >"$d/index.json"
}
manifest_of() { jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json" | cut -d: -f2; }
if [ ! -d single-large ]; then
    top_layer=$(jq -r '.layers[-1].digest' "oci/blobs/sha256/$(manifest_of oci v2)" | cut -d: -f2)
    gzip -dc "oci/blobs/sha256/$top_layer" >small.tar
    one_layer single-small small.tar && one_layer single-large flat.tar && rm small.tar
fi

# The encapsulated copy of v1 (ostree-rs-ext's format), for the rows both importers can pull.
r=$(newrepo encap-src)
commit=$("$bin" image pull --quiet "$r" "ostree-unverified-image:oci:$work/oci:v1")
"$ext" encapsulate "$r" "$commit" "docker://$host/encap:v1" >/dev/null

v1="ostree-unverified-image:oci:$work/oci:v1"
cs="ostree-unverified-image:containers-storage:[vfs@$work/storage+$work/run]localhost/bench-v1"
reg="ostree-unverified-registry:$host/bench"
# The "deleted and re-created" row deletes a full repository before each of its runs.
"$bin" image pull --quiet "$(mkdir -p out/recreated && ostree --repo=out/recreated init --mode=bare-user && echo out/recreated)" "$v1" >/dev/null
declare -A t
for i in $(seq "$runs"); do
    d=$(newdir floor)
    t[floor]+="$(measure sh -c "tar -C '$d' --numeric-owner --xattrs --xattrs-include='*' -xf flat.tar && sync -f '$d'" | cut -d' ' -f1) "
    t[oci]+="$(measure "$bin" image pull --quiet "$(newrepo oci)" "$v1" | cut -d' ' -f1) "
    r=$(newrepo reg)
    t[reg]+="$(measure "$bin" image pull --quiet "$r" "$reg:v1" | cut -d' ' -f1) "
    before=$(sent)
    t[repull]+="$(measure "$bin" image pull --quiet "$r" "$reg:v2" | cut -d' ' -f1) "
    repull_bytes=$(($(sent) - before))
    t[cs]+="$(measure "$bin" image pull --quiet "$(newrepo cs)" "$cs" | cut -d' ' -f1) "
    t[encap_ours]+="$(measure "$bin" image pull --quiet "$(newrepo encap-ours)" "ostree-unverified-registry:$host/encap:v1" | cut -d' ' -f1) "
    t[encap_ext]+="$(measure "$ext" unencapsulate "$(newrepo encap-ext)" "ostree-unverified-registry:$host/encap:v1" | cut -d' ' -f1) "
    # The issue's original method: the repository deleted and re-created just before.
    r=$work/out/recreated && rm -rf "$r" && ostree --repo="$r" init --mode=bare-user
    t[recreated]+="$(measure "$bin" image pull --quiet "$r" "$v1" | cut -d' ' -f1) "
done
declare -A m
for k in "${!t[@]}"; do m[$k]=$(echo "${t[$k]}" | median); done
mem_small=$(measure "$bin" image pull --quiet "$(newrepo mem-small)" "ostree-unverified-image:oci:$work/single-small:t" | cut -d' ' -f2)
mem_large=$(measure "$bin" image pull --quiet "$(newrepo mem-large)" "ostree-unverified-image:oci:$work/single-large:t" | cut -d' ' -f2)
if ext_plain=$("$ext" unencapsulate "$(newrepo ext-plain)" "$reg:v1" 2>&1 >/dev/null); then
    ext_plain="(it pulled it: add a timed row)"
fi
# The root cause: the last line of anyhow's "Caused by" list (a backtrace, if any, cut off).
ext_plain=$(echo "$ext_plain" | sed '/[Bb]acktrace/,$d' | grep . | tail -1 | sed 's/^ *[0-9]*: *//' | cut -c1-80)

v2man=$(manifest_of oci v2)
v2top=$(jq -r '.layers[-1].size' "oci/blobs/sha256/$v2man")
v2cfg=$(jq -r '.config.size' "oci/blobs/sha256/$v2man")
v2want=$((v2top + v2cfg + $(stat -c %s "oci/blobs/sha256/$v2man")))
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
files=$(tar -tf flat.tar | wc -l)
tarmb=$(($(stat -c %s flat.tar) / 1000000))
blobmb=$(($(du -sb oci/blobs | cut -f1) / 1000000))
largemb=$(($(stat -c %s flat.tar) / 1000000))
smallmb=$(awk -v b="$(jq -r '.layers[0].size' "single-small/blobs/sha256/$(manifest_of single-small t)")" 'BEGIN {printf "%.1f", b / 1e6}')

echo
echo "image: $files entries, $tarmb MB flattened, 3 gzip layers ($blobmb MB of blobs with v2's top layer); $(nproc) cores; median of $runs; $(date -u '+%Y-%m-%d %H:%M UTC')"
row() { printf '| %-62s | %9s | %-44s |\n' "$@"; }
row "measurement" "result" "ratio (goal)"
row "---" "---" "---"
row "import from oci: (fresh bare-user repository)" "${m[oci]} s" ""
row "write floor: tar -x of the flattened tree + sync -f" "${m[floor]} s" "oci:/floor = $(ratio "${m[oci]}" "${m[floor]}") (goal <= 1.3)"
row "full pull from the loopback registry" "${m[reg]} s" "registry/oci: = $(ratio "${m[reg]}" "${m[oci]}") (goal <= 1.2)"
row "re-pull of v2 from the registry (v1 stored)" "${m[repull]} s" ""
row "  bytes the registry sent for it (access log)" "$(mb "$repull_bytes")" "sent/needed = $(ratio "$repull_bytes" "$v2want") (goal 1.00; needed $(mb "$v2want"))"
row "import from containers-storage (vfs)" "${m[cs]} s" "c-s/oci: = $(ratio "${m[cs]}" "${m[oci]}") (goal <= 1.3)"
row "import from oci: into a repository deleted and re-created" "${m[recreated]} s" "this/oci: = $(ratio "${m[recreated]}" "${m[oci]}") (ext4 recently_deleted)"
row "peak memory, one small layer ($smallmb MB gzip)" "$((mem_small / 1024)) MB" ""
row "peak memory, one large layer ($largemb MB tar)" "$((mem_large / 1024)) MB" "large/small = $(ratio "$mem_large" "$mem_small") (goal: flat, ~1)"
row "ostree-rs-ext 0.15: pull of this (plain) image" "n/a" "refused: ${ext_plain:-?}"
row "encapsulated v1 from the registry: ours" "${m[encap_ours]} s" ""
row "encapsulated v1 from the registry: ostree-rs-ext 0.15" "${m[encap_ext]} s" "ours/ostree-rs-ext = $(ratio "${m[encap_ours]}" "${m[encap_ext]}")"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (figures are only comparable on an idle machine)"
rm -rf out
