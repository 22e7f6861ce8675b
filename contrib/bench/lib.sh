# Shared by run.sh, callgrind.sh and perf.sh (sourced; $top is the source tree).
# Sets $build (absolute) and $gcorn: GCORN_BIN when given, else gcorn built with
# buildtype=release in BENCH_BUILD_DIR (default build-bench).
bench_find_gcorn() {
        build=${BENCH_BUILD_DIR:-build-bench}
        case $build in /*) ;; *) build=$top/$build ;; esac
        if [ -n "${GCORN_BIN:-}" ]; then
                gcorn=$GCORN_BIN
                mkdir -p "$build"
                return
        fi
        # No test suite: the benchmark needs only the server (and not the Check library).
        if [ -f "$build/build.ninja" ]; then
                meson configure "$build" -Dbuildtype=release -Dtests=false >/dev/null
        else
                meson setup "$build" "$top" -Dbuildtype=release -Dtests=false >/dev/null
        fi
        ninja -C "$build" src/gcorn >/dev/null
        gcorn=$build/src/gcorn
}

# bench_start_one NAME LOG SECONDS PATH COMMAND...: starts gcorn (COMMAND, which may wrap it,
# e.g. in valgrind) on $port in the background, stops it by PID and removes $tmp on exit, and
# waits up to SECONDS for an answer on PATH. Sets $master and $worker (its first worker, or
# the server itself with BENCH_ONE_PROCESS set).
bench_start_one() {
        local name=$1 log=$2 secs=$3 path=$4
        shift 4
        "$@" > "$log" 2>&1 &
        master=$!
        trap bench_stop_one EXIT
        worker=
        for _ in $(seq 1 $((secs * 5))); do
                if "$py" "$here/client.py" 127.0.0.1 "$port" 1 "$path" 5 2>/dev/null; then
                        if [ -n "${BENCH_ONE_PROCESS:-}" ]; then
                                worker=$master
                        else
                                worker=$(ps -o pid= --ppid "$master" | head -n1 | tr -d ' ')
                        fi
                        [ -n "$worker" ] && return 0
                fi
                kill -0 "$master" 2>/dev/null || { echo "$name: gcorn exited" >&2; cat "$log" >&2; exit 1; }
                sleep 0.2
        done
        echo "$name: gcorn did not answer" >&2
        exit 1
}

bench_stop_one() {
        if kill -0 "$master" 2>/dev/null; then
                kill -TERM "$master" 2>/dev/null || true
                for _ in $(seq 1 100); do
                        kill -0 "$master" 2>/dev/null || break
                        sleep 0.2
                done
                kill -KILL "$master" 2>/dev/null || true
        fi
        rm -rf "$tmp"
}
