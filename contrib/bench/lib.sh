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
        if [ -f "$build/build.ninja" ]; then
                meson configure "$build" -Dbuildtype=release >/dev/null
        else
                meson setup "$build" "$top" -Dbuildtype=release >/dev/null
        fi
        ninja -C "$build" src/gcorn >/dev/null
        gcorn=$build/src/gcorn
}
