#!/usr/bin/env bash
# Where a gcorn worker's time goes: perf record of one worker (of --workers, default 1)
# while wrk drives a workload, then the flat profile (self time by object and symbol).
#
#   contrib/bench/perf.sh [PATH [SECONDS [WORKERS]]]        (default / 10 1)
#
# BENCH_BUILD_DIR / GCORN_BIN as for run.sh. The perf data stays in $BENCH_BUILD_DIR/perf/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
path=${1:-/}
secs=${2:-10}
workers=${3:-1}

. "$here/lib.sh"
bench_find_gcorn
out=$build/perf
mkdir -p "$out"
tmp=$(mktemp -d /tmp/gcorn-perf.XXXXXX)
head -c 1048576 /dev/urandom > "$tmp/file.bin"
export BENCH_FILE=$tmp/file.bin
extra=()
[ "$path" = "/upload" ] && extra=(-s "$here/post.lua")
app=app:app
[ "$path" = "/json" ] && app=flask_app:app

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bench_start_one perf.sh "$out/server.log" 20 "$path" \
        "$gcorn" -b "127.0.0.1:$port" -w "$workers" --chdir "$here" "$app"

wrk -t2 -c64 -d2s "${extra[@]}" "http://127.0.0.1:$port$path" >/dev/null
timeout $((secs + 30)) perf record -q -g -o "$out/perf.data" -p "$worker" -- sleep "$secs" 2>/dev/null &
rec=$!
wrk -t2 -c64 -d"${secs}s" --latency "${extra[@]}" "http://127.0.0.1:$port$path" > "$out/wrk.txt"
wait "$rec" || true
grep -E "Requests/sec|requests in" "$out/wrk.txt"
echo
echo "== self time by object"
perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
echo
echo "== self time by symbol"
perf report -i "$out/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -60
