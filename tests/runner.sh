#!/bin/sh
# prove's exec hook: run one test binary with a time limit; exit 77 = skip.
# Sanitizer builds run the short form of each test (UMM_TEST_SHORT=1).
t=$1
case "$t" in
build-asan/*|build-tsan/*) export UMM_TEST_SHORT=1 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1 suppressions=$here/tsan.supp}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1 abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1 halt_on_error=1}"
timeout -k 10 "${UMM_TEST_TIMEOUT:-300}" "$t"
rc=$?
if [ $rc -eq 77 ]; then echo "1..0 # SKIP $t asked to be skipped"; exit 0; fi
if [ $rc -eq 124 ]; then echo "not ok - $t timed out"; fi
exit $rc
