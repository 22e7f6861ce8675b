#!/usr/bin/env bash
# The README's two commands: `contrib/dev.sh demo` and `contrib/dev.sh test`.
# Each installs what is missing (Debian 12, as root), builds, then serves or tests.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Build and test dependencies, all from Debian.
BUILD_PKGS=(meson ninja-build pkg-config gcc libsystemd-dev python3-dev libwslay-dev)
# The worker kinds that need more than CPython: gevent (-k gevent), uvloop for the ASGI worker.
RUN_PKGS=(python3-gevent python3-uvloop)
TEST_PKGS=(check curl wrk nginx-light libnginx-mod-stream python3-requests python3-flask python3-django gunicorn strace groff-base systemd iproute2 util-linux python3-prometheus-client clang libclang-rt-14-dev
           python3-websockets python3-uvicorn python3-httptools python3-fastapi python3-starlette python3-multipart
           uwsgi uwsgi-plugin-python3)

install_missing() {
        local missing=()
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        if [ "$(id -u)" -ne 0 ]; then
                echo "dev.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
                exit 1
        fi
        echo "dev.sh: installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

setup() {
        local dir=$1; shift
        if [ -f "$dir/build.ninja" ]; then
                meson setup --reconfigure "$dir" "$@" >/dev/null
        else
                meson setup "$dir" "$@" >/dev/null
        fi
        # ninja reports a failed compile on stdout: show it, or the script ends without a word.
        if ! ninja -C "$dir" > "$dir/ninja.log"; then
                tail -n 40 "$dir/ninja.log" >&2
                return 1
        fi
}

# Runs the suite of one build dir; prints meson's summary and adds to the totals.
passed=0 failed=0 skipped=0
run_suite() {
        local dir=$1; shift
        local rc=0
        meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || rc=$?
        local counts
        counts=$(/usr/bin/python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
        read -r p f s <<<"$counts"
        passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
        return $rc
}

# Builds gcorn against CPython $1 (python-$1-embed) in build-py$1 and has it answer the demo
# app once. Returns 0, 1 when either fails, 2 when the machine has no such CPython.
newer_python() {
        local v=$1 py="" c pc libdir dir=build-py$1 port pid body
        for c in "$(command -v "python$v" || true)" /usr/bin/python"$v" /usr/local/bin/python"$v" \
                 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v"; do
                # a pyenv shim is on PATH for versions it does not select: it must run
                if [ -x "$c" ] && "$c" -c '' 2>/dev/null; then
                        py=$c
                        break
                fi
        done
        if [ -z "$py" ]; then
                echo "dev.sh: python$v: SKIP (no CPython $v here)"
                return 2
        fi
        read -r pc libdir < <("$py" -c 'import sysconfig as s; print(s.get_config_var("LIBPC"), s.get_config_var("LIBDIR"))')
        if [ ! -f "$pc/python-$v-embed.pc" ]; then
                echo "dev.sh: python$v: SKIP ($py has no python-$v-embed.pc)"
                return 2
        fi
        if ! PKG_CONFIG_PATH=$pc setup "$dir" -Dtests=false -Dwerror=true -Dwarning_level=2 -Dpython_link=shared; then
                echo "dev.sh: python$v: FAIL (the build against $py; $dir/ninja.log)"
                return 1
        fi
        port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        LD_LIBRARY_PATH=$libdir "$dir/src/gcorn" -b "127.0.0.1:$port" -w 1 --no-control-socket \
                --chdir contrib/apps hello:app \
                > "$dir/serve.log" 2>&1 &
        pid=$!
        body=""
        for _ in $(seq 100); do
                body=$(curl -s -m 2 "http://127.0.0.1:$port/" || true)
                [ -n "$body" ] && break
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        if [ "$body" != "Hello, World!" ]; then
                tail -n 20 "$dir/serve.log" >&2
                echo "dev.sh: python$v: FAIL (gcorn built against $py did not answer; $dir/serve.log)"
                return 1
        fi
        echo "dev.sh: python$v: OK (built against $py with -Werror, answered the demo app)"
}

case "${1:-}" in
demo)
        install_missing "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}"
        setup build -Dtests=false
        echo "dev.sh: serving contrib/apps/hello.py on http://127.0.0.1:8000 (Ctrl-C stops)"
        exec build/src/gcorn -b 127.0.0.1:8000 -w 2 --access-logfile - --chdir contrib/apps hello:app
        ;;
test)
        install_missing "${BUILD_PKGS[@]}" "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"
        rc=0
        setup build-test -Dwerror=true -Dwarning_level=2
        run_suite build-test || rc=1
        # The whole suite again under ASan+UBSan. PYTHONMALLOC=malloc lets ASan see every
        # allocation; the suppressions hide the interpreter's own never-freed memory.
        setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0 \
        PYTHONMALLOC=malloc \
                run_suite build-asan || rc=1
        # The fuzz targets (contrib/fuzz), once per run: 30 s each, one pass per target. A
        # fixed seed makes the run repeatable, so a red run is a finding that can be rerun;
        # the long runs of contrib/fuzz/README.md explore with random seeds.
        fuzz_targets=(http proxyproto environ response settings)
        if CC=clang setup build-fuzz -Dfuzz=true -Dtests=false -Dwerror=true \
                -Db_sanitize=address,undefined -Db_lundef=false; then
                for t in "${fuzz_targets[@]}"; do
                        if contrib/fuzz/run.sh build-fuzz "$t" -max_total_time=30 -seed=1 > "build-fuzz/fuzz-$t.log" 2>&1; then
                                echo "dev.sh: fuzz_$t: OK ($(grep -o 'Done [0-9]* runs' "build-fuzz/fuzz-$t.log"))"
                                passed=$((passed + 1))
                        else
                                tail -n 60 "build-fuzz/fuzz-$t.log" >&2
                                echo "dev.sh: fuzz_$t: FAIL (build-fuzz/fuzz-$t.log)"
                                failed=$((failed + 1)); rc=1
                        fi
                done
        else
                echo "dev.sh: the fuzz build failed"
                failed=$((failed + ${#fuzz_targets[@]})); rc=1
        fi
        # gcorn builds (warnings as errors) and serves against the newer CPythons it must keep
        # building on, where the machine has them with their embedding pkg-config file:
        # Debian 12 has only 3.11, so a fresh machine skips these.
        for v in 3.12 3.13; do
                if newer_python "$v"; then
                        passed=$((passed + 1))
                elif [ $? -eq 2 ]; then
                        skipped=$((skipped + 1))
                else
                        failed=$((failed + 1)); rc=1
                fi
        done
        echo "$passed passed, $failed failed, $skipped skipped"
        exit $rc
        ;;
*)
        echo "usage: contrib/dev.sh demo|test" >&2
        exit 2
        ;;
esac
