#!/usr/bin/env bash
# Instructions per request: gcorn with one worker under callgrind, a warm-up, then a fixed
# number of keep-alive requests over one connection, counted between a zero and a dump of
# the worker's counters, split into gcorn's own code, CPython, libc and the rest.
#
#   contrib/bench/callgrind.sh [--asgi | --uvicorn] [REQUESTS [PATH]]      (default 2000 /)
#
# --asgi counts gcorn -k asgi on the raw ASGI hello (asgi_app.py), --uvicorn counts Debian's
# uvicorn (httptools, uvloop, one process, no access log) on the same app, for comparison;
# BENCH_ASGI_APP picks another app for both (e.g. fastapi_app:app).
#
# BENCH_BUILD_DIR / GCORN_BIN as for run.sh; BENCH_GCORN_ARGS: more gcorn flags, split on
# blanks (e.g. "--no-control-socket", or "--metrics-bind 127.0.0.1:0" to count what the
# metrics endpoint costs a request). Output: markdown on stdout; the callgrind files and
# the full annotation stay in $BENCH_BUILD_DIR/callgrind/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
mode=wsgi
asgi_app=${BENCH_ASGI_APP:-asgi_app:app}
case ${1:-} in
--asgi) mode=asgi; shift ;;
--uvicorn) mode=uvicorn; shift ;;
esac
requests=${1:-2000}
path=${2:-/}
warmup=200

. "$here/lib.sh"
bench_find_gcorn
gcorn=$(readlink -f "$gcorn")
out=$build/callgrind
rm -rf "$out"
mkdir -p "$out"
tmp=$(mktemp -d /tmp/gcorn-cg.XXXXXX)
head -c 1048576 /dev/urandom > "$tmp/file.bin"
export BENCH_FILE=$tmp/file.bin

read -r -a gcorn_args <<< "${BENCH_GCORN_ARGS:-}"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cg=(valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out/callgrind.out.%p")
case $mode in
wsgi)
        what="gcorn 1 worker${BENCH_GCORN_ARGS:+ $BENCH_GCORN_ARGS}, app:app"
        bench_start_one callgrind.sh "$out/server.log" 120 "$path" "${cg[@]}" \
                "$gcorn" -b "127.0.0.1:$port" -w 1 -t 0 --keep-alive 600 --chdir "$here" "${gcorn_args[@]}" app:app ;;
asgi)
        what="gcorn -k asgi 1 worker${BENCH_GCORN_ARGS:+ $BENCH_GCORN_ARGS}, $asgi_app"
        bench_start_one callgrind.sh "$out/server.log" 120 "$path" "${cg[@]}" \
                "$gcorn" -k asgi -b "127.0.0.1:$port" -w 1 -t 0 --keep-alive 600 --chdir "$here" \
                "${gcorn_args[@]}" "$asgi_app" ;;
uvicorn)
        # one process: the server is its own worker
        what="uvicorn (httptools, uvloop) 1 process, $asgi_app"
        gcorn=-
        BENCH_ONE_PROCESS=1 bench_start_one callgrind.sh "$out/server.log" 120 "$path" "${cg[@]}" \
                "$py" -m uvicorn --host 127.0.0.1 --port "$port" --loop uvloop --http httptools \
                --no-access-log --log-level warning --timeout-keep-alive 600 --app-dir "$here" "$asgi_app" ;;
esac

timeout 300 "$py" "$here/client.py" 127.0.0.1 "$port" "$warmup" "$path" 60
timeout 60 callgrind_control -z "$worker" >/dev/null
timeout 600 "$py" "$here/client.py" 127.0.0.1 "$port" "$requests" "$path" 60
timeout 60 callgrind_control -d "$worker" >/dev/null
dump=$(ls "$out"/callgrind.out."$worker".* 2>/dev/null | head -n1)
[ -n "$dump" ] || { echo "callgrind.sh: no dump for worker $worker" >&2; exit 1; }

callgrind_annotate --inclusive=no --threshold=100 "$dump" > "$out/annotate.txt"
echo "$what $path, $requests keep-alive requests on one connection after $warmup warm-up"
echo "(callgrind dump: $dump)"
echo
"$py" "$here/cg_split.py" "$out/annotate.txt" "$requests" "$gcorn"
