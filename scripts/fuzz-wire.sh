#!/usr/bin/env bash
# Fuzzes the line-protocol parsers (Sources/NetleaseWire on Sources/NetleaseCore) with libFuzzer + ASan.
#
#   scripts/fuzz-wire.sh [options] [libFuzzer flags...]
#
# Flags starting with '-' go to libFuzzer after the defaults, so they override them
# (defaults: -max_total_time=60 -max_len=9000 -timeout=5). Examples:
#   scripts/fuzz-wire.sh                                    # one minute
#   scripts/fuzz-wire.sh -runs=10000000 -max_total_time=0   # ten million executions, no time limit
# Options:
#   --allow LIST      let known findings through (NETLEASE_FUZZ_ALLOW, see Fuzz/WireParserFuzzer.swift):
#                     overlong-render, usable-underflow, free-underflow
#   --build-only      build the fuzzer and the seed corpus, do not fuzz
#   --no-build        reuse .build-fuzz/wire-fuzzer as it is (e.g. for --repro while sources change)
#   --fresh           start from the seeds only (drop the inputs earlier runs added to the corpus)
#   --repro FILE...   run the fuzzer once on each FILE (a crash input) and exit with its status
#   --minimize FILE   minimize a crashing FILE into .build-fuzz/minimized/ and print it in hex
# Environment: FUZZ_SANITIZERS=fuzzer builds without ASan (faster; Swift's traps still catch overflows and bounds).
#              FUZZ_OUT=DIR builds and fuzzes in DIR instead of .build-fuzz (two runs side by side).
#
# Exits non-zero when the fuzzer finds a crash, a timeout or an out-of-memory (or the build fails), after printing
# the crashing input in hex. Always prints the execution count and exec/s libFuzzer reported.
#
# The sources are snapshotted into .build-fuzz/src first, so edits made while building do not break the build.
# NetleaseCore is compiled as its own module; NetleaseWire and the fuzz target are compiled as ONE module
# (NetleaseFuzz), which keeps `import NetleaseCore` working and gives the target internal access
# (LineFormat.unescape).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="${FUZZ_OUT:-$ROOT/.build-fuzz}"
FUZZER="$OUT/wire-fuzzer"
CORPUS="$OUT/corpus"
ARTIFACTS="$OUT/artifacts"
DICT="$ROOT/Fuzz/wire.dict"

build_only=0
no_build=0
fresh=0
mode=fuzz
target_files=()
fuzzer_flags=()
while [ $# -gt 0 ]; do
    case "$1" in
        --allow) export NETLEASE_FUZZ_ALLOW="$2"; shift 2 ;;
        --allow=*) export NETLEASE_FUZZ_ALLOW="${1#--allow=}"; shift ;;
        --build-only) build_only=1; shift ;;
        --no-build) no_build=1; shift ;;
        --fresh) fresh=1; shift ;;
        --repro) mode=repro; shift
            while [ $# -gt 0 ] && [ "${1:0:1}" != "-" ]; do target_files+=("$(realpath "$1")"); shift; done ;;
        --minimize) mode=minimize; target_files+=("$(realpath "$2")"); shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) fuzzer_flags+=("$1"); shift ;;
        *) echo "fuzz-wire: unexpected argument '$1' (libFuzzer flags start with '-')" >&2; exit 2 ;;
    esac
done

# Swift's own crash handler otherwise trips a false ASan report.
export SWIFT_BACKTRACE=enable=no
# No allocation stack per malloc (it showed up as ~10% of a profile); a Swift target's findings are traps (bounds,
# overflow, preconditions), which keep their full stack. Options already in ASAN_OPTIONS come later and win.
export ASAN_OPTIONS="malloc_context_size=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

to_hex() { od -An -v -tx1 "$1" | tr -d ' \n'; echo; }

# ---- build -------------------------------------------------------------------------------------------------------
build() {
    local src="$OUT/src" obj="$OUT/obj"
    rm -rf "$src" "$obj"
    mkdir -p "$src/NetleaseCore" "$src/NetleaseWire" "$obj"
    cp "$ROOT"/Sources/NetleaseCore/*.swift "$src/NetleaseCore/"
    cp "$ROOT"/Sources/NetleaseWire/*.swift "$src/NetleaseWire/"
    cp "$ROOT/Fuzz/WireParserFuzzer.swift" "$src/"
    {
        echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
        echo "uncommitted changes in the fuzzed sources:"
        git -C "$ROOT" status --short -- Sources/NetleaseCore Sources/NetleaseWire Fuzz 2>/dev/null || true
        echo "sha256 of the snapshot:"
        (cd "$src" && sha256sum NetleaseCore/*.swift NetleaseWire/*.swift WireParserFuzzer.swift)
    } > "$OUT/build-info.txt"

    # ld.gold warns once per ASan helper symbol ("Cannot export local symbol"); that noise is dropped.
    # FUZZ_SANITIZERS=fuzzer drops ASan for long runs (about 10x the executions per second); Swift's own bounds and
    # overflow traps stay on either way.
    local common=(-sanitize="${FUZZ_SANITIZERS:-fuzzer,address}" -parse-as-library -O -g -swift-version 6 -wmo)
    echo "fuzz-wire: building NetleaseCore"
    swiftc "${common[@]}" -module-name NetleaseCore -emit-module -emit-module-path "$obj/NetleaseCore.swiftmodule" \
        -emit-library -static "$src"/NetleaseCore/*.swift -o "$obj/libNetleaseCore.a" \
        2> >(grep -v "Cannot export local symbol" >&2)
    echo "fuzz-wire: building the fuzzer (NetleaseWire + Fuzz/WireParserFuzzer.swift)"
    swiftc "${common[@]}" -module-name NetleaseFuzz -I "$obj" \
        "$src"/NetleaseWire/*.swift "$src/WireParserFuzzer.swift" "$obj/libNetleaseCore.a" -o "$FUZZER.tmp" \
        2> >(grep -v "Cannot export local symbol" >&2)
    mv "$FUZZER.tmp" "$FUZZER"
    echo "fuzz-wire: built $FUZZER ($(sed -n 2p "$OUT/build-info.txt"))"
}

# ---- seed corpus -------------------------------------------------------------------------------------------------
seed_corpus() {
    [ "$fresh" = 1 ] && rm -rf "$CORPUS"
    mkdir -p "$CORPUS"
    local doc="$ROOT/docs/PROTOCOL.md" n=0 line
    # One file per example line of the sessions in docs/PROTOCOL.md, then each side as one multi-line input.
    while IFS= read -r line; do
        n=$((n + 1))
        printf '%s\n' "${line#?: }" > "$CORPUS/seed-doc-$(printf %03d $n)"
    done < <(grep -E '^[CS]: ' "$doc")
    grep -E '^C: ' "$doc" | sed 's/^C: //' > "$CORPUS/seed-doc-client-session"
    grep -E '^S: ' "$doc" | sed 's/^S: //' > "$CORPUS/seed-doc-server-session"
    local seed
    for seed in "$ROOT"/Fuzz/seeds/*.txt; do
        cp "$seed" "$CORPUS/seed-$(basename "$seed" .txt)"
    done
    echo "fuzz-wire: corpus $CORPUS: $n lines from docs/PROTOCOL.md, $(ls "$ROOT"/Fuzz/seeds/*.txt | wc -l) seeds from Fuzz/seeds, $(ls "$CORPUS" | wc -l) files in all"
}

report_stats() {
    local log="$1" runs eps
    runs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{s += $2} END {print s + 0}')
    eps=$(grep -Eo 'stat::average_exec_per_sec: +[0-9]+' "$log" | awk '{print $2}' | paste -sd+ -)
    grep -E '^Done [0-9]+ runs in' "$log" || true
    echo "fuzz-wire: executions=${runs} exec/s=${eps:-?} (log: $log)"
}

if [ "$no_build" = 1 ] && [ -x "$FUZZER" ]; then
    echo "fuzz-wire: reusing $FUZZER ($(sed -n 2p "$OUT/build-info.txt" 2>/dev/null))"
else
    build
fi
[ "$build_only" = 1 ] && { seed_corpus; exit 0; }

mkdir -p "$ARTIFACTS" "$OUT/run"
case "$mode" in
repro)
    status=0
    for f in "${target_files[@]}"; do
        echo "fuzz-wire: reproducing $f ($(to_hex "$f"))"
        "$FUZZER" "${fuzzer_flags[@]}" "$f" || status=$?
    done
    exit $status
    ;;
minimize)
    f="${target_files[0]}"
    mkdir -p "$OUT/minimized"
    min="$OUT/minimized/$(basename "$f").min"
    cp "$f" "$min"
    # -minimize_crash keeps the smallest input that still crashes; it exits 0 when done.
    (cd "$OUT/run" && "$FUZZER" -minimize_crash=1 -max_total_time=120 -runs=500000 -exact_artifact_path="$min" \
        "${fuzzer_flags[@]}" "$f") > "$OUT/minimize.log" 2>&1 || true
    echo "fuzz-wire: minimized $(wc -c < "$f") -> $(wc -c < "$min") bytes: $min"
    echo "hex: $(to_hex "$min")"
    echo "--- crash of the minimized input:"
    (cd "$OUT/run" && "$FUZZER" "$min" 2>&1 | grep -v '^INFO:' | head -60) || true
    exit 0
    ;;
esac

seed_corpus
log="$OUT/fuzz-$(date -u +%Y%m%dT%H%M%SZ).log"
echo "fuzz-wire: NETLEASE_FUZZ_ALLOW=${NETLEASE_FUZZ_ALLOW:-<none>}; logging to $log"
# Run from $OUT/run so that -jobs/-workers logs (fuzz-N.log) land there.
rm -f "$OUT"/run/fuzz-*.log
set +e
(cd "$OUT/run" && "$FUZZER" -max_total_time=60 -max_len=9000 -timeout=5 -print_final_stats=1 \
    -dict="$DICT" -artifact_prefix="$ARTIFACTS/" "${fuzzer_flags[@]}" "$CORPUS") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
for joblog in "$OUT"/run/fuzz-*.log; do
    [ -e "$joblog" ] || continue
    echo "=== $joblog" >> "$log"
    cat "$joblog" >> "$log"
    grep -Eq 'ERROR: libFuzzer|Test unit written to|SUMMARY: AddressSanitizer' "$joblog" && status=1
done

echo
report_stats "$log"
if [ "$status" != 0 ] || grep -q 'Test unit written to' "$log"; then
    [ "$status" = 0 ] && status=1
    echo "fuzz-wire: FAILED (exit $status)"
    grep -E 'Fatal error|netlease-fuzz: |ERROR: (libFuzzer|AddressSanitizer)|SUMMARY' "$log" | head -10 || true
    grep -Eo 'Test unit written to .*' "$log" | sed 's/^Test unit written to //' | sort -u | while read -r unit; do
        [ -f "$unit" ] || continue
        echo "input: $unit ($(wc -c < "$unit") bytes)"
        echo "hex: $(to_hex "$unit" | cut -c1-400)"
        echo "minimize with: scripts/fuzz-wire.sh --minimize $unit"
    done
    exit "$status"
fi
echo "fuzz-wire: no crash"
