#!/usr/bin/env bash
# Bench: encapsulate two versions of a package-based tree that differ in one package and print
# how many bytes a client holding the first downloads for the second; also times encapsulate
# and unencapsulate (with $OC, or a release build). Usage: bench/encapsulate.sh [PACKAGES (default 300)] [MAX_LAYERS (default 64)]
set -euo pipefail
cd "$(dirname "$0")/.."
npkg=${1:-300}
maxl=${2:-64}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${OC:-}" ]; then
    cargo build --release --quiet --bin ostree-container
    OC=$CARGO_TARGET_DIR/release/ostree-container
fi
oc=$OC
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bench-encapsulate.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/tree
mkpkg() { # name version
    local name=$1 ver=$2 list=$tree/usr/lib/sysimage/dpkg/info/$1.list
    mkdir -p "$tree/usr/lib/$name" "$tree/usr/share/doc/$name" "$tree/usr/bin" "$(dirname "$list")"
    # ~100-400 KiB of incompressible content per package, fixed per (name, version).
    local kib=$(( (16#$(printf '%s' "$name" | sha256sum | cut -c1-4) % 300) + 100 ))
    { openssl enc -aes-128-ctr -pass "pass:$name-$ver" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null \
        || true; } | head -c $((kib * 1024)) > "$tree/usr/lib/$name/lib$name.so"
    printf '%s %s\n' "$name" "$ver" > "$tree/usr/share/doc/$name/copyright"
    printf '#!/bin/sh\necho %s %s\n' "$name" "$ver" > "$tree/usr/bin/$name"
    printf '/.\n/usr/lib/%s/lib%s.so\n/usr/share/doc/%s/copyright\n/usr/bin/%s\n' \
        "$name" "$name" "$name" "$name" > "$list"
}
mkdir -p "$tree/usr/lib/modules/6.1.0-bench"
{ head -c $((12 * 1024 * 1024)) /dev/urandom || true; } > "$tree/usr/lib/modules/6.1.0-bench/vmlinuz"
for i in $(seq 1 "$npkg"); do mkpkg "pkg$i" 1.0; done
ostree init --repo="$work/repo" --mode=bare
ostree --repo="$work/repo" config set core.fsync false
ostree --repo="$work/repo" commit -b os --tree=dir="$tree" --timestamp=2024-01-01T00:00:00Z -s v1 >/dev/null
mkpkg "pkg$((npkg / 2))" 2.0
ostree --repo="$work/repo" commit -b os --tree=dir="$tree" --timestamp=2024-02-01T00:00:00Z -s v2 >/dev/null
echo "tree: $npkg packages, $(du -sh "$tree" | cut -f1); --max-layers $maxl"
t0=$(date +%s.%N)
"$oc" encapsulate --repo "$work/repo" --max-layers "$maxl" os^ "oci:$work/oci:v1" >/dev/null 2>&1
t1=$(date +%s.%N)
"$oc" encapsulate --repo "$work/repo" --max-layers "$maxl" --previous "oci:$work/oci:v1" os "oci:$work/oci:v2" 2>&1 >/dev/null \
    | sed 's/^/encapsulate v2: /'
echo "encapsulate v1: $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s"
echo "one package changed, chunked:   $("$oc" download-size "oci:$work/oci:v1" "oci:$work/oci:v2")"
"$oc" encapsulate --repo "$work/repo" --max-layers 1 os^ "oci:$work/single:v1" >/dev/null 2>&1
"$oc" encapsulate --repo "$work/repo" --max-layers 1 os "oci:$work/single:v2" >/dev/null 2>&1
echo "one package changed, 1 layer:   $("$oc" download-size "oci:$work/single:v1" "oci:$work/single:v2")"
ostree init --repo="$work/dst" --mode=bare
t0=$(date +%s.%N)
"$oc" unencapsulate --repo "$work/dst" -q "ostree-unverified-image:oci:$work/oci:v2" >/dev/null
t1=$(date +%s.%N)
echo "unencapsulate v2: $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s"
