#!/usr/bin/env bash
# Reproduces the figures of docs/PERFORMANCE.md: every scenario RUNS times, each against a fresh coordinator
# (new data directory, 127.0.0.1, port picked by the kernel), JSON reports collected in $OUT.
#
#   swift build -c release --scratch-path .build-release
#   scripts/bench.sh                  # all scenarios, 3 runs each
#   scripts/bench.sh closed32x1 open10k   # only these
#   RUNS=5 OUT=/tmp/results scripts/bench.sh
#
# Scenarios: closed32x1 closed32x16 open10k open5k open2k (group commit), the same with -nogc (--max-batch 1),
# metrics (32x1 and 32x16 with the coordinator's --metrics off and on, scraped every second, alternating),
# std32x1 std32x16 (the library client), fill0 fill50 fill90 fill99 (acquire+release on a /16 at that fill level),
# agents (1,000 joined hosts with 65 leases each, 1,000 watchers; coordinator RSS), agentstart1/10/50 (an agent's
# start with that many peers, recording host network), and as root demo2/demo11 (real agents in namespaces:
# `netlease demo --hosts 2|11`; the last host has 1 or 10 peers; attach times).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build-release/release/netlease}
RUNS=${RUNS:-3}
OUT=${OUT:-/tmp/netlease-bench-results}
mkdir -p "$OUT"
[ -x "$BIN" ] || { echo "build first: swift build -c release --scratch-path .build-release" >&2; exit 1; }

CPID=""
DATA=""
SCRAPE=""
cleanup() {
    if [ -n "$CPID" ]; then kill "$CPID" 2>/dev/null || true; wait "$CPID" 2>/dev/null || true; fi
    if [ -n "$DATA" ]; then rm -rf "$DATA" "$DATA.out" "$DATA.err"; fi
    CPID=""; DATA=""
}
trap cleanup EXIT INT TERM

start_coordinator() {
    DATA=$(mktemp -d /tmp/netlease-bench-data.XXXXXX)
    "$BIN" coordinator --listen 127.0.0.1:0 --data "$DATA/d" --log-level warning "$@" >"$DATA.out" 2>"$DATA.err" &
    CPID=$!
    for _ in $(seq 1 200); do
        grep -q "listening on" "$DATA.out" 2>/dev/null && break
        sleep 0.05
    done
    ADDR=$(sed -n 's/^netlease coordinator listening on //p' "$DATA.out")
    [ -n "$ADDR" ] || { cat "$DATA.err" >&2; exit 1; }
}

# run_once NAME I "coordinator args" bench args...: run I of scenario NAME against a fresh coordinator.
run_once() {
    local name=$1 i=$2 coordargs=$3 scraper=""
    shift 3
    # shellcheck disable=SC2086
    start_coordinator $coordargs
    echo "== $name run $i ($ADDR, coordinator pid $CPID)" >&2
    if [ -n "$SCRAPE" ]; then
        # A scraper as Prometheus would be, only more eager: GET /metrics every second while the bench runs.
        (while kill -0 "$CPID" 2>/dev/null; do curl -s -o /dev/null "http://$SCRAPE/metrics" || true; sleep 1; done) &
        scraper=$!
    fi
    "$BIN" bench --coordinator "$ADDR" --secret-file "$DATA/d/cluster-secret" --coordinator-pid "$CPID" \
        --keep --json "$@" >"$OUT/$name.$i.json" 2>"$OUT/$name.$i.log" || echo "   (bench exited $?)" >&2
    if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
    grep -h '"acquiresPerSecond"\|"p99"\|"ok"\|rssSteadyKiB\|medianMilliseconds' "$OUT/$name.$i.json" \
        | tr -s ' ' | tr '\n' ' ' >&2 || true
    echo >&2
    cleanup
}

# run NAME "coordinator args" bench args...: RUNS runs of one scenario.
run() {
    local name=$1 coordargs=$2
    shift 2
    for i in $(seq 1 "$RUNS"); do run_once "$name" "$i" "$coordargs" "$@"; done
}

# The cost of --metrics on the hot paths: 32x1 and 32x16 with the coordinator's metrics off and on (scraped every
# second), alternating run by run so that drift in the machine's load falls on both alike.
metrics_ab() {
    local i shape port
    for i in $(seq 1 "$RUNS"); do
        for shape in 1 16; do
            SCRAPE="" run_once "closed32x$shape-metrics-off" "$i" "" --connections 32 --pipeline "$shape" \
                --duration 10 $BIG
            port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
            SCRAPE="127.0.0.1:$port" run_once "closed32x$shape-metrics-on" "$i" "--metrics 127.0.0.1:$port" \
                --connections 32 --pipeline "$shape" --duration 10 $BIG
        done
    done
}

BIG="--subnet 10.0.0.0/12"   # 1M addresses: a 10 s acquire-only run at 40k/s never runs out
scenario() {
    case $1 in
    closed32x1) run "$1" "" --connections 32 --pipeline 1 --duration 10 $BIG ;;
    metrics) metrics_ab ;;
    closed32x16) run "$1" "" --connections 32 --pipeline 16 --duration 10 $BIG ;;
    open10k) run "$1" "" --connections 32 --rate 10000 --duration 10 $BIG ;;
    open5k) run "$1" "" --connections 32 --rate 5000 --duration 10 $BIG ;;
    open2k) run "$1" "" --connections 32 --rate 2000 --duration 10 $BIG ;;
    closed32x1-nogc) run "$1" "--max-batch 1" --connections 32 --pipeline 1 --duration 10 $BIG ;;
    closed32x16-nogc) run "$1" "--max-batch 1" --connections 32 --pipeline 16 --duration 10 $BIG ;;
    open10k-nogc) run "$1" "--max-batch 1" --connections 32 --rate 10000 --duration 10 $BIG ;;
    std32x1) run "$1" "" --client-kind standard --connections 32 --pipeline 1 --duration 10 $BIG ;;
    std32x16) run "$1" "" --client-kind standard --connections 32 --pipeline 16 --duration 10 $BIG ;;
    fill0 | fill50 | fill90 | fill99)
        run "$1" "" --connections 32 --pipeline 1 --duration 10 --release --prefill "${1#fill}" ;;
    agents) run "$1" "" --agents 1000 --agent-leases 65 --heartbeat 5 --duration 30 --subnet 10.0.0.0/15 ;;
    agentstart1 | agentstart10 | agentstart50)
        run "$1" "" --agent-start-peers "${1#agentstart}" --runs 5 ;;
    demo2 | demo11)
        # Real agents in network namespaces (root): the last host has N-1 peers. Timings are the demo's own lines.
        for i in $(seq 1 "$RUNS"); do
            echo "== $1 run $i" >&2
            "$BIN" demo --hosts "${1#demo}" --containers 2 >"$OUT/$1.$i.txt" 2>&1 || echo "   (demo exited $?)" >&2
            grep -h "ready\|attach:" "$OUT/$1.$i.txt" | tail -3 >&2 || true
        done ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
    esac
}

# scripts/bench.sh summary: median [min-max] of each scenario's runs in $OUT.
summary() {
    python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
runs = {}
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(f).rsplit(".", 2)[0]
    try:
        report = json.load(open(f))
    except Exception as e:
        print(f"{f}: unreadable or still running ({e})")
        continue
    runs.setdefault(name, []).append(report)
def fmt(vals, spec):
    vals = [v for v in vals if v is not None]
    if not vals: return "-"
    return f"{statistics.median(vals):{spec}} [{min(vals):{spec}}-{max(vals):{spec}}]"
for name, rs in runs.items():
    if "peers" in rs[0]:
        print(f"{name:18} n={len(rs)} agent start -> ready ms (median of each run's {len(rs[0]['milliseconds'])}) "
              f"{fmt([r['medianMilliseconds'] for r in rs], '.1f')}  with {rs[0]['peers']} peer(s), recording host network")
        continue
    if "agents" in rs[0]:
        mib = lambda k: [r.get(k) / 1024 if r.get(k) else None for r in rs]
        print(f"{name:18} n={len(rs)} RSS steady MiB {fmt(mib('rssSteadyKiB'), '.1f')}  max {fmt(mib('rssMaxKiB'), '.1f')}  "
              f"HWM {fmt(mib('hwmKiB'), '.1f')}  join p99 ms {fmt([r['join']['p99'] for r in rs], '.1f')}  "
              f"heartbeat p99 ms {fmt([r['heartbeat']['p99'] for r in rs], '.2f')}  bring-up s {fmt([r['bringUpSeconds'] for r in rs], '.2f')}  "
              f"errors {[r['errors'] for r in rs if r['errors']]}")
        continue
    line = (f"{name:18} n={len(rs)} acq/s {fmt([r['acquiresPerSecond'] for r in rs], '.0f')}")
    if rs[0].get("releaseLatencyMs"):
        line += f"  rel/s {fmt([r['releasesPerSecond'] for r in rs], '.0f')}"
    for q in ("p50", "p99", "p99_9", "max"):
        line += f"  {q} {fmt([r['acquireLatencyMs'][q] for r in rs], '.2f')}"
    line += f"  ops/commit {fmt([r['storeOperations'] / r['storeCommits'] if r['storeCommits'] else None for r in rs], '.1f')}"
    line += f"  coord us/op {fmt([r.get('coordinatorCPUMicrosPerOperation') for r in rs], '.0f')}"
    line += f"  bench us/op {fmt([r.get('clientCPUMicrosPerOperation') for r in rs], '.0f')}"
    if rs[0].get("sendLagMs"):
        line += f"  client-lag p99 {fmt([r['sendLagMs']['p99'] for r in rs], '.2f')}"
    bad = [r["verification"]["problems"] for r in rs if not r["verification"]["ok"]]
    errs = [r["errors"] for r in rs if r["errors"]]
    line += "  verified" if not bad else f"  VERIFY FAILED {bad}"
    if errs: line += f"  errors {errs}"
    print(line)
import re
demos = {}
for f in sorted(glob.glob(os.path.join(out, "demo*.txt"))):
    name = os.path.basename(f).rsplit(".", 2)[0]
    text = open(f).read()
    ready = [int(m) for m in re.findall(r"agent started, ready .* in (\d+) ms", text)]
    attach = [int(m) for m in re.findall(r"attach: (\d+) ms", text)]
    if ready:
        d = demos.setdefault(name, {"last": [], "first": [], "attach": []})
        d["last"].append(ready[-1]); d["first"].append(ready[0]); d["attach"] += attach
for name, d in demos.items():
    print(f"{name:18} n={len(d['last'])} real agent start -> ready ms: first host {fmt(d['first'], '.0f')}  "
          f"last host ({name[4:]} hosts, {int(name[4:]) - 1} peers) {fmt(d['last'], '.0f')}  attach {fmt(d['attach'], '.0f')}")
PY
}
if [ "${1:-}" = summary ]; then summary; exit 0; fi

ALL="closed32x1 closed32x16 open10k open5k open2k closed32x1-nogc closed32x16-nogc open10k-nogc std32x1 std32x16 fill0 fill50 fill90 fill99 agents agentstart1 agentstart10 agentstart50"
[ "$(id -u)" = 0 ] && ALL="$ALL demo2 demo11"
for s in ${*:-$ALL}; do scenario "$s"; done
echo "results in $OUT" >&2
