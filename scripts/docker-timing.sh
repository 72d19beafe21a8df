#!/usr/bin/env bash
# What the netlease IPAM driver adds to `docker run`: one host built in a network namespace of its own (a
# coordinator on its loopback, an agent serving Docker's plugin API, Debian's dockerd), then
#   - `docker run -d` on a netlease network against Docker's built-in IPAM on the same daemon, alternately, and
#   - the plugin's RequestAddress over its socket (curl): a new endpoint (leased and ARP-probed) and the same one
#     again (answered from the agent's record, no probe).
# Prints the medians. A measurement, not a test: figures depend on the machine (compare only within one run).
#
#   swift build                         # or: swift build -c release --scratch-path .build-release
#   sudo scripts/docker-timing.sh       # ROUNDS=20 by default
#   BIN=.build-release/release/netlease ROUNDS=50 scripts/docker-timing.sh
#
# Needs root, iproute2, util-linux (nsenter, unshare), curl, Debian's docker.io and busybox-static. Everything it
# starts runs inside its own namespace and temporary directory and is removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-20}
if [ -z "${BIN:-}" ]; then
    BIN=.build-release/release/netlease
    [ -x "$BIN" ] || BIN=.build/debug/netlease
fi
[ -x "$BIN" ] || { echo "docker-timing: build first (swift build); no $BIN" >&2; exit 1; }
BIN=$(realpath "$BIN")
[ "$(id -u)" = 0 ] || { echo "docker-timing: needs root (namespaces, dockerd)" >&2; exit 1; }
for tool in ip nsenter unshare curl tar /usr/sbin/dockerd /usr/bin/docker /bin/busybox; do
    command -v "$tool" >/dev/null 2>&1 || { echo "docker-timing: $tool is missing" >&2; exit 1; }
done

NS=nl-dtime-$$
DIR=$(mktemp -d /tmp/netlease-docker-timing.XXXXXX)
DOCKER=(/usr/bin/docker -H "unix://$DIR/docker/docker.sock")
PIDS=()
MADE_RUN_DOCKER=0
[ -e /run/docker ] || MADE_RUN_DOCKER=1

in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

cleanup() {
    set +e
    if [ -S "$DIR/docker/docker.sock" ]; then
        ids=$("${DOCKER[@]}" ps -aq 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$ids" ] && "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
        "${DOCKER[@]}" network rm demo plain >/dev/null 2>&1
    fi
    # Newest first: dockerd, then the agent, then the coordinator. SIGTERM, then SIGKILL after 20 s.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    ip netns del "$NS" 2>/dev/null
    if [ "$MADE_RUN_DOCKER" = 1 ]; then rmdir /run/docker/plugins /run/docker 2>/dev/null; fi
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it succeeds, or fails the run.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "docker-timing: $what did not happen within $seconds s" >&2
    return 1
}

echo "docker-timing: namespace $NS, files in $DIR, $BIN" >&2
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
ADDR=$(sed -n 's/^netlease coordinator listening on //p' "$DIR/coordinator.out")
ADMIN=(--coordinator "$ADDR" --secret-file "$DIR/data/cluster-secret")
in_ns "$BIN" network create demo --subnet 172.30.0.0/16 "${ADMIN[@]}" >/dev/null

nsenter --net="/run/netns/$NS" "$BIN" agent "${ADMIN[@]}" --host h1 --underlay 10.254.0.1 --network demo \
    --socket "$DIR/agent.sock" --state-dir "$DIR/state" --docker-plugin "$DIR/plugin.sock" --log-level warning \
    >"$DIR/agent.out" 2>"$DIR/agent.log" &
PIDS+=($!)
wait_for 60 "the agent ready" grep -q "ready on" "$DIR/agent.out" || { cat "$DIR/agent.log" >&2; exit 1; }

# dockerd in the namespace, with a private /etc/docker whose plugin spec names this agent's socket (only the
# network namespace is entered: `ip netns exec` remounts /sys and dockerd then finds no devices cgroup).
mkdir -p "$DIR/etc/plugins" "$DIR/docker"
echo "unix://$DIR/plugin.sock" >"$DIR/etc/plugins/netlease.spec"
nsenter --net="/run/netns/$NS" unshare --mount --propagation private sh -c \
    'mount --bind "$1" /etc/docker && exec /usr/sbin/dockerd --storage-driver=vfs --iptables=false \
        --ip-masq=false --bridge=none --data-root "$2/data" --exec-root "$2/exec" -H "unix://$2/docker.sock" \
        --pidfile "$2/dockerd.pid"' sh "$DIR/etc" "$DIR/docker" >"$DIR/dockerd.log" 2>&1 &
PIDS+=($!)
wait_for 60 "dockerd answering" "${DOCKER[@]}" version || { tail -20 "$DIR/dockerd.log" >&2; exit 1; }

# An image without a registry: busybox and the applets a container needs here.
mkdir -p "$DIR/rootfs/bin"
cp /bin/busybox "$DIR/rootfs/bin/busybox"
for applet in sh sleep; do ln -s busybox "$DIR/rootfs/bin/$applet"; done
tar -C "$DIR/rootfs" -cf "$DIR/rootfs.tar" .
"${DOCKER[@]}" import "$DIR/rootfs.tar" netlease-timing:1 >/dev/null

# The network exactly as `netlease docker-network` prints it, and one on Docker's own IPAM.
read -r -a create <<<"$(in_ns "$BIN" docker-network demo "${ADMIN[@]}")"
"${DOCKER[@]}" "${create[@]:1}" >/dev/null
"${DOCKER[@]}" network create --driver bridge --subnet 10.77.0.0/24 plain >/dev/null

now_ns() { date +%s%N; }
median_ms() { sort -n | awk '{ v[NR] = $1 } END { printf "%.0f ms", v[int(NR / 2) + 1] / 1e6 }'; }

timed_run() {  # NETWORK NAME: prints the nanoseconds `docker run -d` took
    local started
    started=$(now_ns)
    "${DOCKER[@]}" run -d --network "$1" --name "$2" netlease-timing:1 sleep 3600 >/dev/null
    echo $(($(now_ns) - started))
}

timed_request() {  # MAC: prints the nanoseconds RequestAddress took
    local started reply took
    local body='{"PoolID":"netlease/demo","Address":"","Options":{"com.docker.network.endpoint.macaddress":"'"$1"'"}}'
    started=$(now_ns)
    reply=$(curl -sS --unix-socket "$DIR/plugin.sock" -d "$body" http://plugin/IpamDriver.RequestAddress)
    took=$(($(now_ns) - started))
    case "$reply" in
        *'"Address":"172.30.'*) echo "$took" ;;
        *) echo "docker-timing: RequestAddress answered $reply" >&2; exit 1 ;;
    esac
}

timed_run demo warm-n >/dev/null
timed_run plain warm-p >/dev/null
: >"$DIR/driver.ns"
: >"$DIR/builtin.ns"
for round in $(seq 1 "$ROUNDS"); do
    timed_run demo "n$round" >>"$DIR/driver.ns"
    timed_run plain "p$round" >>"$DIR/builtin.ns"
done
: >"$DIR/probed.ns"
: >"$DIR/repeated.ns"
for round in $(seq 1 "$ROUNDS"); do
    mac=$(printf '02:42:ee:00:%02x:%02x' $((round / 256)) $((round % 256)))
    timed_request "$mac" >>"$DIR/probed.ns"
    timed_request "$mac" >>"$DIR/repeated.ns"
done

driver=$(median_ms <"$DIR/driver.ns")
builtin=$(median_ms <"$DIR/builtin.ns")
added=$(paste "$DIR/driver.ns" "$DIR/builtin.ns" | awk '{ print $1 - $2 }' | median_ms)
echo "docker run -d, median of $ROUNDS: netlease driver $driver, built-in IPAM $builtin," \
    "added (median of the pairs' differences) $added"
echo "plugin RequestAddress over its socket (curl), median of $ROUNDS: new endpoint (ARP probe)" \
    "$(median_ms <"$DIR/probed.ns"), same endpoint again (no probe) $(median_ms <"$DIR/repeated.ns")"
