# Sourced by docker-timing.sh and podman-timing.sh: one netlease host built in a network namespace of its own (an
# underlay veth pair, a coordinator on the namespace's loopback, agents that each serve a network of their own), and
# the measuring helpers both scripts share.
# The caller sets NAME (for messages), NS, DIR, BIN, POOL (and for rate_batches RATE, PARALLEL, BATCHES) and an empty
# PIDS array, and calls stop_daemons on exit.
AGENTS=()

in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds, or fails the run.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$NAME: $what did not happen within $seconds s" >&2
    return 1
}

# Newest first (a runtime daemon, then the agent, then the coordinator): SIGTERM, then SIGKILL after 20 s.
stop_daemons() {
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}

# start_coordinator: the namespace with its underlay and the coordinator on its loopback. Sets ADMIN.
start_coordinator() {
    ip netns add "$NS"
    in_ns ip link set lo up
    # The underlay: a veth pair inside the namespace, so each tunnel endpoint is an address of its own.
    in_ns ip link add ul0 type veth peer name ul1
    in_ns ip link set ul0 up
    in_ns ip link set ul1 up
    # Daemons are started with nsenter itself, not through in_ns: nsenter execs the command, so $! is the daemon.
    nsenter --net="/run/netns/$NS" "$BIN" coordinator --listen 127.0.0.1:0 --data "$DIR/data" --log-level warning \
        >"$DIR/coordinator.out" 2>"$DIR/coordinator.log" &
    PIDS+=($!)
    wait_for 60 "the coordinator listening" grep -q "listening on" "$DIR/coordinator.out" \
        || { cat "$DIR/coordinator.log" >&2; exit 1; }
    local address
    address=$(sed -n 's/^netlease coordinator listening on //p' "$DIR/coordinator.out")
    ADMIN=(--coordinator "$address" --secret-file "$DIR/data/cluster-secret")
}

# start_agent NETWORK SUBNET HOST UNDERLAY PREFIX [AGENT ARGUMENT...]: creates NETWORK and starts an agent for it
# alone as HOST on underlay address UNDERLAY (socket PREFIX.sock, state PREFIX-state, output PREFIX.out/.log).
# Several agents share the namespace: each serves a network of its own, so they build no tunnels to each other.
start_agent() {
    local network=$1 subnet=$2 host=$3 underlay=$4 prefix=$5
    shift 5
    in_ns ip addr add "$underlay/24" dev ul0
    in_ns "$BIN" network create "$network" --subnet "$subnet" "${ADMIN[@]}" >/dev/null
    nsenter --net="/run/netns/$NS" "$BIN" agent "${ADMIN[@]}" --host "$host" --underlay "$underlay" \
        --network "$network" --socket "$prefix.sock" --state-dir "$prefix-state" --pool-size "$POOL" \
        --log-level warning "$@" >"$prefix.out" 2>"$prefix.log" &
    PIDS+=($!)
    AGENTS+=("$prefix")
}

# wait_agent PREFIX: waits for the agent start_agent started with PREFIX to be ready (its pool filled once).
wait_agent() {
    wait_for 60 "the agent $1 ready" grep -q "ready on" "$1.out" || { cat "$1.log" >&2; exit 1; }
}

# pooled PREFIX COUNT: whether the agent started with PREFIX holds at least COUNT pooled (fully probed) addresses.
pooled() {
    [ "$(grep -c '"state" : "pooled"' "$1-state/leases.json" 2>/dev/null)" -ge "$2" ]
}

# wait_pools: until every agent's pool is full again (POOL addresses), at most 60 s.
wait_pools() {
    local agent
    for agent in "${AGENTS[@]}"; do wait_for 60 "the pool of $agent full" pooled "$agent" "$POOL" || exit 1; done
}

# rate_batches START REMOVE NETWORK...: containers started per second. BATCHES times, for parallelism 1 and
# PARALLEL and each NETWORK (the order rotated every time), `START NETWORK TAG PARALLELISM` starts RATE containers
# named TAG-1… at most PARALLELISM at a time and is timed; then `REMOVE TAG` removes them and every pool is let
# fill again, so each batch starts from the same state. Seconds per batch go to $DIR/rate-NETWORK-PARALLELISM.s.
rate_batches() {
    local start=$1 remove=$2 batch par i began took
    shift 2
    local networks=("$@")
    for batch in $(seq 1 "$BATCHES"); do
        for par in 1 "$PARALLEL"; do
            for i in "${!networks[@]}"; do
                local network=${networks[$(((i + batch + par) % ${#networks[@]}))]}
                local tag="r$batch-$par-$network"
                wait_pools
                began=$(now_ns)
                "$start" "$network" "$tag" "$par"
                took=$(($(now_ns) - began))
                "$remove" "$tag"
                echo "$took" | awk '{ printf "%.3f\n", $1 / 1e9 }' >>"$DIR/rate-$network-$par.s"
            done
        done
    done
    for network in "${networks[@]}"; do
        for par in 1 "$PARALLEL"; do
            echo "$RATE containers, at most $par at a time, on $network: seconds per batch" \
                "$(paste -sd ' ' "$DIR/rate-$network-$par.s"), median" \
                "$(sort -n "$DIR/rate-$network-$par.s" | awk -v n="$RATE" '{ v[NR] = $1 }
                    END { m = v[int(NR / 2) + 1]; printf "%.1f s = %.2f containers/s", m, n / m }')"
        done
    done
}

# check_counts: ROUNDS, RATE, PARALLEL, BATCHES and POOL within bounds (a measurement, not a load test).
check_counts() {
    local spec name value low high
    for spec in "ROUNDS 1 500" "RATE 0 200" "PARALLEL 1 32" "BATCHES 1 20" "POOL 0 256"; do
        read -r name low high <<<"$spec"
        value=${!name}
        [[ "$value" =~ ^[0-9]+$ ]] && [ "$value" -ge "$low" ] && [ "$value" -le "$high" ] \
            || { echo "$NAME: $name must be a number $low-$high, not '$value'" >&2; exit 64; }
    done
}

# loadavg WHEN: the machine's load average, for the report (the figures depend on what else runs).
loadavg() { echo "load average $1: $(cut -d ' ' -f 1-3 /proc/loadavg)"; }

# raw_ms FILE: the samples of FILE (nanoseconds) in milliseconds, in the order measured.
raw_ms() { awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1e6 } END { print "" }' "$1"; }

# busybox_image TAR: a root file system of busybox with sh and sleep, as a tar to import (no registry).
busybox_image() {
    mkdir -p "$DIR/rootfs/bin"
    cp /bin/busybox "$DIR/rootfs/bin/busybox"
    for applet in sh sleep; do ln -s busybox "$DIR/rootfs/bin/$applet"; done
    tar -C "$DIR/rootfs" -cf "$1" .
}

now_ns() { date +%s%N; }
median_ms() { sort -n | awk '{ v[NR] = $1 } END { printf "%.0f ms", v[int(NR / 2) + 1] / 1e6 }'; }

# prepare TOOL...: BIN (default the release build, else the debug one) made absolute, root, and every TOOL there.
prepare() {
    if [ -z "${BIN:-}" ]; then
        BIN=.build-release/release/netlease
        [ -x "$BIN" ] || BIN=.build/debug/netlease
    fi
    [ -x "$BIN" ] || { echo "$NAME: build first (swift build); no $BIN" >&2; exit 1; }
    BIN=$(realpath "$BIN")
    [ "$(id -u)" = 0 ] || { echo "$NAME: needs root (namespaces, the container runtime)" >&2; exit 1; }
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$NAME: $tool is missing" >&2; exit 1; }
    done
}
