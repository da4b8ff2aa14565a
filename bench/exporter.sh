#!/usr/bin/env bash
# Exporter benchmark (not a test): import a realistic image and compare with
# `ostree commit --tree=tar=` on the same content and with the floor (decompress + SHA-256).
#
#   bench/exporter.sh [WORKDIR]    (default /var/tmp/ostree-container-bench; run as root)
#
# The image (bench/exporter-mkimage.sh): Debian 12 with kernel, systemd, python3, perl, vim;
# ~20,000 files, ~800 MB uncompressed, three gzip layers from buildah. Tag v2 differs from v1
# only in the top layer. Each measurement runs RUNS times (default 3); the median is shown.
# Repositories are bare-user, on the same filesystem as WORKDIR, each in a new directory, all
# deleted at the end (see bench/pull.sh: ext4 without a journal slows inode allocation right
# after a large delete). SIZE=small (see bench/exporter-mkimage.sh) for a quick check.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/ostree-container-bench}
runs=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$top/target}

cargo build --quiet --release --manifest-path "$top/Cargo.toml"
cargo build --quiet --release --manifest-path "$top/bench/floor/Cargo.toml"
bin=$CARGO_TARGET_DIR/release/ostree-container
floor=$CARGO_TARGET_DIR/release/ostree-container-bench-floor
"$top/bench/exporter-mkimage.sh" "$work"
cd "$work"
img="ostree-unverified-image:oci:$work/oci"
cat oci/blobs/sha256/* flat.tar > /dev/null   # everything starts in the page cache

if [ -d out ]; then rm -rf out && sleep 31; fi
mkdir -p out
fresh() { ostree --repo="out/$1" init --mode=bare-user; }
secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A t
for i in $(seq "$runs"); do
    fresh ours-$i; t[ours]+="$(secs "$bin" image pull --quiet out/ours-$i "$img:v1") "
    t[repull]+="$(secs "$bin" image pull --quiet out/ours-$i "$img:v2") "
    fresh ostree-$i; t[ostree]+="$(secs ostree --repo=out/ostree-$i commit -b flat --tree=tar=flat.tar --tar-autocreate-parents) "
    t[floor]+="$("$floor" oci v1 | cut -d' ' -f1) "
done
declare -A m
for k in ours repull ostree floor; do m[$k]=$(echo ${t[$k]} | tr ' ' '\n' | median); done

files=$(tar -tf flat.tar | wc -l)
tarmb=$(( $(stat -c %s flat.tar) / 1000000 ))
blobmb=$(( $(du -sb oci/blobs | cut -f1) / 1000000 ))
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "image: $files entries, $tarmb MB flattened tar, 3 gzip layers ($blobmb MB of blobs incl. v2's top layer); $(nproc) cores; median of $runs"
printf '%-58s %8s  %s\n' "measurement" "seconds" "ratio"
printf '%-58s %8s  %s\n' "ostree-container image pull (fresh bare-user repo)" "${m[ours]}" ""
printf '%-58s %8s  %s\n' "ostree commit --tree=tar= on the flattened tar" "${m[ostree]}" "ours/this = $(ratio "${m[ours]}" "${m[ostree]}") (target <= 0.6)"
printf '%-58s %8s  %s\n' "floor: gunzip + SHA-256 of blobs and tars, one thread" "${m[floor]}" "ours/this = $(ratio "${m[ours]}" "${m[floor]}") (target <= 1.5)"
printf '%-58s %8s  %s\n' "re-pull after changing only the top layer (v1 -> v2)" "${m[repull]}" "this/ours = $(ratio "${m[repull]}" "${m[ours]}") (target <= 0.10)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (the figures are only meaningful on an idle machine)"
rm -rf out
