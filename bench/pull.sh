#!/usr/bin/env bash
# Pull benchmark (issue 11; not a test): the same image imported from every place it can come
# from, printed as a table. Speed figures only mean something on an idle machine.
#
#   bench/pull.sh [WORKDIR]    (default /var/tmp/ostree-container-bench; run as root)
#
# The image is bench/exporter-mkimage.sh's (Debian 12, three gzip layers; v2 differs from v1
# only in its top layer). ROOTFS=/path/to/rootfs.tar reuses a root filesystem tarball instead
# of running mmdebstrap (e.g. one the tests cached in ~/.cache/ostree-container).
#
# Rows:
#   oci:                 image pull from the OCI layout (fresh bare-user repository)
#   registry             image pull from a loopback docker-registry (through the image proxy)
#   registry re-pull v2  v1 stored, then v2: bytes of blobs the registry served (its access log)
#                        against the new layer + config
#   containers-storage:  image pull from buildah's storage (copied with uncompressed layers)
#   floor                `tar -x` of the flattened image + `sync`
# ostree-rs-ext 0.15 is not a column: its `container image pull` is not in the interop helper
# (tests/interop), which only encapsulates and unencapsulates.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/var/tmp/ostree-container-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$top/target}

cargo build --quiet --release --manifest-path "$top/Cargo.toml"
bin=$CARGO_TARGET_DIR/release/ostree-container
mkdir -p "$work"
if [ -n "${ROOTFS:-}" ] && [ ! -s "$work/rootfs.tar" ]; then cp "$ROOTFS" "$work/rootfs.tar"; fi
"$top/bench/exporter-mkimage.sh" "$work"
cd "$work"

# A registry on loopback, its access log in reg/log.
rm -rf reg && mkdir -p reg/home/.config/containers
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host=127.0.0.1:$port
cat > reg/config.yml <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $work/reg/data
http:
  addr: $host
EOF
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$host" > reg/home/.config/containers/registries.conf
docker-registry serve reg/config.yml > reg/log 2>&1 &
regpid=$!
trap 'kill $regpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export HOME=$work/reg/home
for v in v1 v2; do
    skopeo copy --quiet --insecure-policy "oci:$work/oci:$v" "docker://$host/bench:$v"
done

fresh() { rm -rf "$1"; ostree --repo="$1" init --mode=bare-user; }
# "seconds peak-KiB" of a command.
run() { /usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1; }
blob_size() { stat -c %s "$work/oci/blobs/sha256/${1#sha256:}"; }
# Bytes of the blobs the registry served since line $1 of its log.
served_since() {
    tail -n +"$1" reg/log | grep -o '"GET /v2/bench/blobs/sha256:[0-9a-f]*' | sed 's/.*blobs\///' |
        while read -r d; do blob_size "$d"; done | awk '{s += $1} END {print s + 0}'
}
cat oci/blobs/sha256/* flat.tar > /dev/null   # everything starts in the page cache

fresh repo-oci
read -r t_oci m_oci < <(run "$bin" image pull --quiet repo-oci "oci:$work/oci:v1")
fresh repo-reg
read -r t_reg m_reg < <(run "$bin" image pull --quiet repo-reg "docker://$host/bench:v1")
mark=$(($(wc -l < reg/log) + 1))
read -r t_re m_re < <(run "$bin" image pull --quiet repo-reg "docker://$host/bench:v2")
fetched=$(served_since "$mark")
manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][1]["digest"])' oci/index.json)
expected=$(python3 - "$work/oci" "$manifest" <<'EOF'
import json, os, sys
oci, md = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(oci, "blobs/sha256", d.split(":")[1])
m = json.load(open(blob(md)))
print(m["layers"][-1]["size"] + m["config"]["size"])
EOF
)
fresh repo-cs
read -r t_cs m_cs < <(run "$bin" image pull --quiet repo-cs \
    "containers-storage:[vfs@$work/storage+$work/run]localhost/bench-v1")
rm -rf floor-x
read -r t_floor m_floor < <(run sh -c "mkdir floor-x && tar -C floor-x --xattrs --xattrs-include='*' --numeric-owner -xf flat.tar && sync")
rm -rf floor-x

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "image: $(( $(stat -c %s flat.tar) / 1000000 )) MB flattened, 3 gzip layers; $(nproc) cores; one run each"
printf '%-44s %8s %10s  %s\n' "measurement" "seconds" "peak MB" "ratio"
printf '%-44s %8s %10s  %s\n' "image pull from oci:" "$t_oci" "$((m_oci / 1024))" ""
printf '%-44s %8s %10s  %s\n' "image pull from the loopback registry" "$t_reg" "$((m_reg / 1024))" "registry/oci = $(ratio "$t_reg" "$t_oci") (goal <= 1.2)"
printf '%-44s %8s %10s  %s\n' "re-pull v2 from the registry" "$t_re" "$((m_re / 1024))" "blobs fetched $fetched B, new layer + config $expected B"
printf '%-44s %8s %10s  %s\n' "image pull from containers-storage:" "$t_cs" "$((m_cs / 1024))" "storage/oci = $(ratio "$t_cs" "$t_oci") (goal <= 1.3)"
printf '%-44s %8s %10s  %s\n' "floor: tar -x of the flattened image + sync" "$t_floor" "$((m_floor / 1024))" "oci/floor = $(ratio "$t_oci" "$t_floor") (goal <= 1.3)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
