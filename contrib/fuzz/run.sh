#!/usr/bin/env bash
# Runs one libFuzzer target of a -Dfuzz=true build dir over its seeds:
#   contrib/fuzz/run.sh BUILD_DIR TARGET [libFuzzer flags...]
# e.g. contrib/fuzz/run.sh build-fuzz http -max_total_time=30 (CI), or -runs=10000000 (the
# long run). What the fuzzer finds goes to BUILD_DIR/fuzz/TARGET/corpus, a crashing input to
# BUILD_DIR/fuzz/TARGET/; the seeds in contrib/fuzz/corpus/TARGET are only read. Exits
# non-zero on a crash, a leak, a timeout or an out-of-memory.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
target=$2
shift 2

bin=$build/contrib/fuzz/fuzz_$target
[ -x "$bin" ] || { echo "fuzz/run.sh: no $bin (meson setup with -Dfuzz=true, CC=clang)" >&2; exit 2; }
work=$build/fuzz/$target
mkdir -p "$work/corpus"

# As the sanitizer pass of the suite: leaks count, the interpreter's own never-freed memory
# is suppressed, PYTHONMALLOC=malloc lets ASan see every Python allocation.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0}
export PYTHONMALLOC=malloc

# -close_fd_mask=3: the settings target's refused values print their line on stderr, by
# design; libFuzzer keeps its own report. -timeout: one input over 10 s is a hang.
exec "$bin" -close_fd_mask=3 -timeout=10 -print_final_stats=1 -artifact_prefix="$work/" "$@" \
        "$work/corpus" "$top/contrib/fuzz/corpus/$target"
