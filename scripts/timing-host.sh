# Sourced by docker-timing.sh and podman-timing.sh: one netlease host built in a network namespace of its own (an
# underlay veth pair, a coordinator on the namespace's loopback, network `demo` 172.30.0.0/16, an agent).
# The caller sets NAME (for messages), NS, DIR, BIN and an empty PIDS array, and calls stop_daemons on exit.

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

# start_host [AGENT ARGUMENT...]: the namespace, the coordinator, network demo and the agent (socket
# $DIR/agent.sock, state $DIR/state), ready. Sets ADMIN, the admin options of the CLI.
start_host() {
    ip netns add "$NS"
    in_ns ip link set lo up
    # The underlay: a veth pair inside the namespace, so the tunnel endpoint is an address of its own.
    in_ns ip link add ul0 type veth peer name ul1
    in_ns ip addr add 10.254.0.1/24 dev ul0
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
    in_ns "$BIN" network create demo --subnet 172.30.0.0/16 "${ADMIN[@]}" >/dev/null
    nsenter --net="/run/netns/$NS" "$BIN" agent "${ADMIN[@]}" --host h1 --underlay 10.254.0.1 --network demo \
        --socket "$DIR/agent.sock" --state-dir "$DIR/state" --log-level warning "$@" \
        >"$DIR/agent.out" 2>"$DIR/agent.log" &
    PIDS+=($!)
    wait_for 60 "the agent ready" grep -q "ready on" "$DIR/agent.out" || { cat "$DIR/agent.log" >&2; exit 1; }
}

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
