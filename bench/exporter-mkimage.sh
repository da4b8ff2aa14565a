#!/usr/bin/env bash
# Build the exporter benchmark image: a Debian 12 system (kernel, systemd, python3, perl, vim)
# split into three buildah layers, pushed to an OCI layout. Prints nothing; see bench/exporter.sh.
#
#   bench/exporter-mkimage.sh WORKDIR
#
# WORKDIR/rootfs.tar  the full root filesystem (mmdebstrap; cached: delete to rebuild)
#                     With SIZE=small: the test suite's cached minbase rootfs instead (~150 MB,
#                     ~5,800 entries; ~/.cache/ostree-container, built by `cargo test`), for a
#                     quick check that a benchmark runs.
# WORKDIR/oci         OCI layout: tag v1 (3 layers), tag v2 (same two lower layers, new top)
# WORKDIR/flat.tar    v1 flattened into one tar (what `ostree commit --tree=tar=` gets)
set -euo pipefail
work=$(realpath "$1")
mkdir -p "$work"
cd "$work"
# containers/image's big temporary files stay in the work directory: skopeo 1.9 leaves a copy
# of every blob it reads from containers-storage in /var/tmp otherwise.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
B=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)

small=$(ls ~/.cache/ostree-container/debian-bookworm-minbase-amd64-*.tar 2>/dev/null | head -1 || true)
if [ ! -s rootfs.tar ] && [ "${SIZE:-}" = small ]; then
    [ -n "$small" ] || { echo "SIZE=small needs the test suite's cached rootfs: run cargo test --test it exporter:: first" >&2; exit 1; }
    cp "$small" rootfs.tar
fi
if [ ! -s rootfs.tar ]; then
    mmdebstrap --variant=minbase --mode=root --format=tar --skip=output/dev \
        --aptopt='APT::Install-Recommends "false"' \
        --include=systemd,linux-image-amd64,python3,perl,vim-runtime,iproute2,ostree,ca-certificates \
        bookworm rootfs.tar.tmp http://deb.debian.org/debian >/dev/null 2>mmdebstrap.log
    mv rootfs.tar.tmp rootfs.tar
fi

if [ ! -d oci ]; then
    rm -rf storage run split && mkdir -p split
    # Layer 1: everything but /usr/share and /usr/lib/python3*; layer 2: those.
    ctr=$("${B[@]}" from scratch)
    mnt=$("${B[@]}" mount "$ctr")
    tar -C "$mnt" --xattrs --xattrs-include='*' --numeric-owner -xf rootfs.tar \
        --exclude='./usr/share/*' --exclude='./usr/lib/python3*'
    "${B[@]}" commit -q "$ctr" bench-l1 >/dev/null && "${B[@]}" rm "$ctr" >/dev/null
    ctr=$("${B[@]}" from --pull-never bench-l1)
    mnt=$("${B[@]}" mount "$ctr")
    # (A root filesystem without python3, e.g. one given with ROOTFS, has only /usr/share.)
    layer2=('./usr/share/*')
    if tar -tf rootfs.tar | grep -q '^\./usr/lib/python3'; then layer2+=('./usr/lib/python3*'); fi
    tar -C "$mnt" --xattrs --xattrs-include='*' --numeric-owner -xf rootfs.tar \
        --wildcards "${layer2[@]}"
    "${B[@]}" commit -q "$ctr" bench-l2 >/dev/null && "${B[@]}" rm "$ctr" >/dev/null
    # Layer 3 (v1 and v2 differ only here): configuration and an application.
    for v in v1 v2; do
        ctr=$("${B[@]}" from --pull-never bench-l2)
        mnt=$("${B[@]}" mount "$ctr")
        mkdir -p "$mnt/usr/lib/app"
        head -c 8000000 /dev/urandom > "$mnt/usr/lib/app/app.bin"
        for i in $(seq 1 200); do echo "config $v $i" > "$mnt/usr/lib/app/conf-$i"; done
        echo "bench-$v" > "$mnt/etc/hostname"
        rm -f "$mnt/etc/motd"
        "${B[@]}" config --label org.opencontainers.image.version="$v" "$ctr"
        "${B[@]}" commit -q "$ctr" "bench-$v" >/dev/null && "${B[@]}" rm "$ctr" >/dev/null
        skopeo --tmpdir "$work/tmp" copy --quiet "containers-storage:[vfs@$work/storage+$work/run]localhost/bench-$v" "oci:$work/oci:$v"
    done
    ctr=$("${B[@]}" from --pull-never bench-v1)
    mnt=$("${B[@]}" mount "$ctr")
    tar -C "$mnt" --xattrs --xattrs-include='*' --numeric-owner -cf flat.tar .
    "${B[@]}" rm "$ctr" >/dev/null
fi
