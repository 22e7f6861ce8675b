#!/usr/bin/env bash
# The benchmark in one command: gcorn against gunicorn (sync, gthread, gevent, uvicorn's
# worker), uvicorn, uWSGI and a no-Python C responder, on 127.0.0.1, with the same number of
# worker processes.
#
#   contrib/bench/run.sh [--quick | --smoke] [--runs N] [--workers N] [--duration S]
#                        [--wrk-threads N] [--modes pinned,unpinned] [--kinds a,b]
#                        [--servers a,b] [--workloads a,b] [--threads N]
#                        [--worker-connections N] [--many-connections N] [--out FILE]
#
# --kinds picks the workloads by worker kind (default: all four):
#   sync     hello, close, upload, file, json, idle, mixed: gcorn (sync) against gunicorn
#            sync and gthread, uWSGI and the C responder
#   gthread  gthread-{hello,sleep}[-many] (64 and 500 connections, hello and a 10 ms
#            time.sleep): gcorn -k gthread against gunicorn -k gthread, same workers ×
#            threads; and mixed, where gcorn-gthread sits next to the sync rows
#   gevent   gevent-{hello,sleep}[-many]: gcorn -k gevent against gunicorn -k gevent, same
#            workers and --worker-connections
#   asgi     asgi-hello (raw ASGI), fastapi-hello, fastapi-echo (4 KiB JSON POST),
#            fastapi-stream (64 × 1 KiB): gcorn -k asgi against uvicorn (httptools, uvloop)
#            and gunicorn -k uvicorn.workers.UvicornWorker
# gcorn's gevent and asgi rows run when the gcorn binary accepts `-k gevent` / `-k asgi`
# (asked with --check-config); otherwise the report says "not run" and why.
# --quick: 1 run of 2 s after 1 s of warm-up, pinned and unpinned (`--quick --kinds
# gthread,gevent,asgi`: the issue 12 and 13 tables in about 5 minutes). --smoke: 1 s, one
# run, unpinned, gcorn hello plus one workload of gthread and gevent and three of asgi
# (with their peers when installed); exit 1 on any error.
#   contrib/bench/run.sh --slowclients [--slow-duration S] [--slow-rate R] [--slow-attacks a,b]
#
# A full run (no --quick, --smoke, --servers or --workloads) ends with the slow-client
# attacks (slowclients.py, about 9 minutes; --no-slowclients leaves them out);
# --slowclients runs only those: gcorn and gunicorn sync under 1,000 connections dribbling
# heads, 1,000 dribbling 1 MB bodies and 200 slow readers of a 50 MB answer, with normal
# requests alongside.
#
# Environment: BENCH_BUILD_DIR (default build-bench) is where gcorn is built with
# buildtype=release; GCORN_BIN uses an existing binary instead (no build).
# The report goes to stdout (and --out FILE); the raw runs to $BENCH_BUILD_DIR/bench-runs.json
# (bench-slowclients.json with --slowclients).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
py=/usr/bin/python3
smoke=0
for a in "$@"; do
        [ "$a" = "--smoke" ] && smoke=1
done

if [ $smoke -eq 1 ]; then
        pkgs=(wrk)
else
        pkgs=(gunicorn uwsgi uwsgi-plugin-python3 wrk python3-flask python3-gevent python3-uvicorn
              python3-httptools python3-uvloop python3-fastapi)
fi
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "run.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
                exit 1
        fi
        echo "run.sh: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi

. "$here/lib.sh"
bench_find_gcorn
responder=$build/bench-responder
if [ ! -x "$responder" ] || [ "$here/responder.c" -nt "$responder" ]; then
        gcc -O2 -Wall -Wextra -o "$responder" "$here/responder.c"
fi

tmp=$(mktemp -d /tmp/gcorn-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
head -c 1048576 /dev/urandom > "$tmp/file.bin"
export BENCH_FILE=$tmp/file.bin

# 1,000 connections per server plus wrk's: raise the descriptor limit for everything started.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

# --slowclients alone keeps its raw runs apart from a full run's
json=$build/bench-runs.json
for a in "$@"; do
        [ "$a" = "--slowclients" ] && json=$build/bench-slowclients.json
done
"$py" "$here/bench.py" --gcorn "$gcorn" --responder "$responder" --tmp "$tmp" \
        --json "$json" --command-line "contrib/bench/run.sh $*" "$@"
