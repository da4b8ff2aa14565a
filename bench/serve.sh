#!/usr/bin/env bash
# Benchmark (not a test): `ostree pull` throughput from `ostree-container serve` against the same
# commit served as static files by `python3 -m http.server` from an archive-mode copy.
#
#   bench/serve.sh [TREE] [BINARY]     TREE default /usr/share/doc, BINARY default a release build
#
# Prints MB/s (of pulled content, as `du` counts the archive repository) for:
#   static    python3 http.server over the archive copy
#   cold      serve from a bare-user repository, empty .filez cache (compression on the fly)
#   warm      the same server again (objects from the cache)
#   archive   serve from the archive copy itself (no translation)
# and each as a ratio to static. Everything listens on 127.0.0.1 only and is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=${1:-/usr/share/doc}
bin=${2:-}
if [ -z "$bin" ]; then
    cargo build --release --bin ostree-container >&2
    bin=${CARGO_TARGET_DIR:-target}/release/ostree-container
fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

ostree --repo="$work/src" init --mode=bare-user
ostree --repo="$work/src" commit -b main --tree=dir="$tree" --subject=bench >/dev/null
ostree --repo="$work/static" init --mode=archive
ostree --repo="$work/static" pull-local "$work/src" main >/dev/null
ostree --repo="$work/static" summary -u
mb=$(du -sm "$work/static/objects" | cut -f1)
echo "tree $tree: $(find "$tree" -type f | wc -l) files, ${mb} MB as archive objects" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Pull into a fresh archive repository; prints seconds.
pull() {
    local url=$1 dst=$work/client-$RANDOM
    ostree --repo="$dst" init --mode=archive
    ostree --repo="$dst" remote add --no-gpg-verify origin "$url"
    local t0 t1
    t0=$(date +%s.%N)
    ostree --repo="$dst" pull origin main >/dev/null
    t1=$(date +%s.%N)
    rm -rf "$dst"
    python3 -c "print($t1 - $t0)"
}

start_serve() { # REPO; sets $url (not in a subshell, so that the pid is kept for cleanup)
    local out=$work/serve-$RANDOM.out
    "$bin" serve --repo "$1" --listen 127.0.0.1:0 --cache-dir "$work/cache-$RANDOM" >"$out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q '^listening on ' "$out" 2>/dev/null && break
        sleep 0.05
    done
    url=$(sed -n 's/^listening on //p' "$out")
}

port=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/static" "$port" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
t_static=$(pull "http://127.0.0.1:$port")

start_serve "$work/src"
t_cold=$(pull "$url")
t_warm=$(pull "$url")
start_serve "$work/static"
t_arch=$(pull "$url")

report() { # NAME SECONDS
    python3 -c "print('%-8s %6.2f s  %8.1f MB/s  ratio to static %.2f' % ('$1', $2, $mb / $2, $t_static / $2))"
}
report static "$t_static"
report cold "$t_cold"
report warm "$t_warm"
report archive "$t_arch"
