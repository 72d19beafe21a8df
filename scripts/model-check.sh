#!/usr/bin/env bash
# The protocol model check's long form (Tests/NetleaseCoordinatorTests/ProtocolModelTests.swift): random sequences
# of protocol operations against a real coordinator, every reply judged by the reference model, every invariant
# and listing checked after every step; a failing sequence is shrunk and printed as protocol lines with its seed.
#
#   scripts/model-check.sh [--no-build]
#
# Environment:
#   MODEL_OPS        operations in all (default 1000000); sequences = MODEL_OPS / MODEL_LENGTH
#   MODEL_LENGTH     operations per sequence (default 100)
#   MODEL_SEED       seed of the first sequence (default: random, printed); sequence i uses MODEL_SEED + i
#   MODEL_SEQUENCES  number of sequences instead of MODEL_OPS (MODEL_SEQUENCES=1 with a failure's seed reproduces it)
#   MODEL_SHRINK     replays allowed for shrinking a failure (default 400)
#   MODEL_TRACE=1    print every sequence as sent and answered
#   MODEL_DATA_DIR   where the coordinators keep their files (default /dev/shm when writable)
#
# Prints progress every 30 s and, at the end, operations/s and how often each verb got each answer. Exits non-zero
# on a failure (or a failed build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

build=1
case "${1:-}" in
    --no-build) build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    "") ;;
    *) echo "model-check: unexpected argument '$1'" >&2; exit 2 ;;
esac

export MODEL_LENGTH="${MODEL_LENGTH:-100}"
if [ -z "${MODEL_SEQUENCES:-}" ]; then export MODEL_OPS="${MODEL_OPS:-1000000}"; fi
export MODEL_SEED="${MODEL_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}"

if [ "$build" = 1 ]; then
    swift build --build-tests 2>&1 | grep -E 'error:|warning: unre|Compiling|Build complete' | tail -3
fi
log="${TMPDIR:-/tmp}/model-check-$MODEL_SEED.log"
size="${MODEL_SEQUENCES:+$MODEL_SEQUENCES sequences}${MODEL_OPS:+$MODEL_OPS operations}"
echo "model-check: seed $MODEL_SEED, $size, $MODEL_LENGTH per sequence; log $log"
set +e
swift test --skip-build --filter 'ProtocolModelTests/testRandomSequencesAgreeWithTheModel' 2>&1 \
    | tee "$log" \
    | grep --line-buffered -vE '^(Test |\s+Executed|◇|↳|✔|\[[0-9]+/[0-9]+\]|Build)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
    echo "model-check: FAILED (exit $status); reproduce with MODEL_SEQUENCES=1 and the failing sequence's seed"
    exit "$status"
fi
echo "model-check: passed"
