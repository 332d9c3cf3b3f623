#!/bin/sh
# A longer fuzzing campaign: every harness of build/fuzz for SECONDS each
# (default 600), two at a time, niced; prints executions and crashes per
# harness. Crash inputs land in build/fuzz/crashes/. Run `make fuzz-build`
# first.
set -u
cd "$(dirname "$0")/../.."
seconds=${1:-600}
out=build/fuzz/campaign
mkdir -p "$out" build/fuzz/crashes
run() {
    f=$1
    mkdir -p build/fuzz/corpus/$f
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=tests/fuzz/ubsan.supp \
        nice -n 19 build/fuzz/$f -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix=build/fuzz/crashes/$f- \
        build/fuzz/corpus/$f tests/fuzz/corpus/$f >"$out/$f.log" 2>&1
    echo "$?" >"$out/$f.rc"
}
set -- $(cd build/fuzz && ls fuzz_* | grep -v '\.log$')
while [ $# -gt 0 ]; do
    run "$1" &
    if [ $# -gt 1 ]; then run "$2" & shift; fi
    shift
    wait
done
printf '%-20s %14s %10s %8s\n' harness executions exec/s crashes
for log in "$out"/*.log; do
    f=$(basename "$log" .log)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    crashes=$(ls build/fuzz/crashes 2>/dev/null | grep -c "^$f-")
    printf '%-20s %14s %10s %8s\n' "$f" "${execs:-?}" "${rate:-?}" "$crashes"
done
