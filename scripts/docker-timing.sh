#!/usr/bin/env bash
# What the netlease IPAM driver adds to `docker run`, and how many containers a host starts per second. One host
# built in a network namespace of its own: a coordinator on its loopback, two agents serving Docker's plugin API
# (network `demo` with the default re-check of a pooled address, 300 ms of listening for an ARP answer, as driver
# `netlease`; network `bare` with `--recheck-wait 0`, as driver `netlease-bare`), Debian's dockerd, then
#   - latency (default): `docker run -d` on both netlease networks and on Docker's built-in IPAM (`plain`) on the
#     same daemon, round by round (the order rotated every round), and the plugin's RequestAddress over its socket
#     (curl): a new endpoint (from the pool: re-checked, handed over; the run waits for a pooled address first) and
#     the same one again (the agent's record), and 8 new endpoints at once;
#   - RATE=N: containers started per second, N `docker run -d` per batch, one at a time and PARALLEL (4) at a time,
#     on each of the three networks, BATCHES (3) times interleaved; the containers are removed after each batch.
# POOL=N gives both agents `--pool-size N` (default 12, the agent's own default; 0: every address is probed in
# full when it is asked for). Prints the raw figures, the medians and the load average. A measurement, not a
# test: figures depend on the machine (compare only within one run).
#
#   swift build                         # or: swift build -c release --scratch-path .build-release
#   sudo scripts/docker-timing.sh       # ROUNDS=20 by default
#   sudo RATE=20 scripts/docker-timing.sh                # PARALLEL=4 BATCHES=3 by default
#   BIN=.build-release/release/netlease ROUNDS=50 scripts/docker-timing.sh
#
# Needs root, iproute2, util-linux (nsenter, unshare), curl, Debian's docker.io and busybox-static. Everything it
# starts runs inside its own namespace and temporary directory and is removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-20}
RATE=${RATE:-0}
PARALLEL=${PARALLEL:-4}
BATCHES=${BATCHES:-3}
POOL=${POOL:-12}
NAME=docker-timing
# shellcheck source=scripts/timing-host.sh
. scripts/timing-host.sh
check_counts
prepare ip nsenter unshare curl tar xargs /usr/sbin/dockerd /usr/bin/docker /bin/busybox

NS=nl-dtime-$$
DIR=$(mktemp -d /tmp/netlease-docker-timing.XXXXXX)
DOCKER=(/usr/bin/docker -H "unix://$DIR/docker/docker.sock")
PIDS=()
MADE_RUN_DOCKER=0
[ -e /run/docker ] || MADE_RUN_DOCKER=1

cleanup() {
    set +e
    trap '' INT TERM  # a second signal (e.g. timeout's to the whole group) must not cut the cleanup short
    if [ -S "$DIR/docker/docker.sock" ]; then
        ids=$("${DOCKER[@]}" ps -aq 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$ids" ] && "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
        "${DOCKER[@]}" network rm demo bare plain >/dev/null 2>&1
    fi
    stop_daemons
    ip netns del "$NS" 2>/dev/null
    if [ "$MADE_RUN_DOCKER" = 1 ]; then rmdir /run/docker/plugins /run/docker 2>/dev/null; fi
    rm -rf "$DIR"
}
# A signal ends the run (and EXIT cleans up): a trap that only cleaned up would let the run go on without errexit.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "docker-timing: namespace $NS, files in $DIR, $BIN" >&2
loadavg "at the start"
start_coordinator
start_agent demo 172.30.0.0/16 h1 10.254.0.1 "$DIR/demo" --docker-plugin "$DIR/demo-plugin.sock"
start_agent bare 172.31.0.0/16 h2 10.254.0.2 "$DIR/bare" --docker-plugin "$DIR/bare-plugin.sock" --recheck-wait 0
wait_agent "$DIR/demo"
wait_agent "$DIR/bare"

# dockerd in the namespace, with a private /etc/docker whose plugin specs name the agents' sockets (the file's
# name is the driver's). Only the network namespace is entered: `ip netns exec` remounts /sys and dockerd then
# finds no devices cgroup.
mkdir -p "$DIR/etc/plugins" "$DIR/docker"
echo "unix://$DIR/demo-plugin.sock" >"$DIR/etc/plugins/netlease.spec"
echo "unix://$DIR/bare-plugin.sock" >"$DIR/etc/plugins/netlease-bare.spec"
nsenter --net="/run/netns/$NS" unshare --mount --propagation private sh -c \
    'mount --bind "$1" /etc/docker && exec /usr/sbin/dockerd --storage-driver=vfs --iptables=false \
        --ip-masq=false --bridge=none --data-root "$2/data" --exec-root "$2/exec" -H "unix://$2/docker.sock" \
        --pidfile "$2/dockerd.pid"' sh "$DIR/etc" "$DIR/docker" >"$DIR/dockerd.log" 2>&1 &
PIDS+=($!)
wait_for 60 "dockerd answering" "${DOCKER[@]}" version || { tail -20 "$DIR/dockerd.log" >&2; exit 1; }
echo "$("${DOCKER[@]}" version --format 'dockerd {{.Server.Version}}'), $(basename "$(dirname "$BIN")") build"

# An image without a registry: busybox and the applets a container needs here.
busybox_image "$DIR/rootfs.tar"
"${DOCKER[@]}" import "$DIR/rootfs.tar" netlease-timing:1 >/dev/null

# The networks exactly as `netlease docker-network` prints them (`bare` through its own driver's name), and one on
# Docker's own IPAM.
read -r -a create <<<"$(in_ns "$BIN" docker-network demo --socket "$DIR/demo.sock")"
"${DOCKER[@]}" "${create[@]:1}" >/dev/null
read -r -a create <<<"$(in_ns "$BIN" docker-network bare --socket "$DIR/bare.sock")"
for i in "${!create[@]}"; do [ "${create[i]}" = netlease ] && create[i]=netlease-bare; done
"${DOCKER[@]}" "${create[@]:1}" >/dev/null
"${DOCKER[@]}" network create --driver bridge --subnet 10.77.0.0/24 plain >/dev/null

timed_run() {  # NETWORK NAME: prints the nanoseconds `docker run -d` took
    local started
    started=$(now_ns)
    "${DOCKER[@]}" run -d --network "$1" --name "$2" netlease-timing:1 sleep 3600 >/dev/null
    echo $(($(now_ns) - started))
}

start_batch() {  # NETWORK TAG PARALLELISM: RATE containers TAG-1…, at most PARALLELISM `docker run -d` at a time
    seq 1 "$RATE" | xargs -P "$3" -I '{}' "${DOCKER[@]}" run -d --network "$1" --name "$2-{}" \
        netlease-timing:1 sleep 3600 >/dev/null
}

remove_batch() {  # TAG: removes the containers start_batch started (Docker releases their addresses)
    seq 1 "$RATE" | sed "s/^/$1-/" | xargs "${DOCKER[@]}" rm -f >/dev/null
}

if [ "$RATE" -gt 0 ]; then
    timed_run demo warm-n >/dev/null
    timed_run bare warm-b >/dev/null
    timed_run plain warm-p >/dev/null
    "${DOCKER[@]}" rm -f warm-n warm-b warm-p >/dev/null
    rate_batches start_batch remove_batch demo bare plain
    loadavg "at the end"
    exit 0
fi

timed_request() {  # PLUGIN-SOCKET POOL MAC: prints the nanoseconds RequestAddress took
    local started reply took
    local body='{"PoolID":"'"$2"'","Address":"","Options":{"com.docker.network.endpoint.macaddress":"'"$3"'"}}'
    started=$(now_ns)
    reply=$(curl -sS --unix-socket "$1" -d "$body" http://plugin/IpamDriver.RequestAddress)
    took=$(($(now_ns) - started))
    case "$reply" in
        *'"Address":"172.3'*) echo "$took" ;;
        *) echo "docker-timing: RequestAddress answered $reply" >&2; exit 1 ;;
    esac
}

networks=(demo bare plain)
for network in "${networks[@]}"; do
    timed_run "$network" "warm-$network" >/dev/null
    : >"$DIR/run-$network.ns"
done
for round in $(seq 1 "$ROUNDS"); do
    for i in 0 1 2; do
        network=${networks[$(((i + round) % 3))]}
        timed_run "$network" "$network-$round" >>"$DIR/run-$network.ns"
    done
done
for network in demo bare; do
    : >"$DIR/new-$network.ns"
    : >"$DIR/again-$network.ns"
done
for round in $(seq 1 "$ROUNDS"); do
    for network in demo bare; do
        mac=$(printf '02:42:ee:%02x:%02x:%02x' "$([ "$network" = demo ] && echo 1 || echo 2)" $((round / 256)) \
            $((round % 256)))
        # From the pool, as a container gets it (an empty pool costs a full probe: see PERFORMANCE.md).
        [ "$POOL" = 0 ] || wait_for 60 "a pooled address of $network" pooled "$DIR/$network" 1 || exit 1
        timed_request "$DIR/$network-plugin.sock" "netlease/$network" "$mac" >>"$DIR/new-$network.ns"
        timed_request "$DIR/$network-plugin.sock" "netlease/$network" "$mac" >>"$DIR/again-$network.ns"
    done
done

# Requests at once: 8 new endpoints of demo together (from a full pool), 5 times; the agent serves them in parallel.
: >"$DIR/burst.ns"
for round in $(seq 1 5); do
    wait_for 60 "a full pool of demo" pooled "$DIR/demo" $((POOL < 8 ? POOL : 8)) || exit 1
    started=$(now_ns)
    requests=()
    for i in $(seq 1 8); do
        timed_request "$DIR/demo-plugin.sock" netlease/demo "$(printf '02:42:ee:03:%02x:%02x' "$round" "$i")" \
            >/dev/null &
        requests+=($!)
    done
    for request in "${requests[@]}"; do wait "$request"; done
    echo $(($(now_ns) - started)) >>"$DIR/burst.ns"
done

for network in demo bare plain; do echo "docker run -d on $network, ms: $(raw_ms "$DIR/run-$network.ns")"; done
for network in demo bare; do
    echo "RequestAddress on $network, new endpoint, ms: $(raw_ms "$DIR/new-$network.ns")"
    echo "RequestAddress on $network, same endpoint again, ms: $(raw_ms "$DIR/again-$network.ns")"
done
echo "RequestAddress on demo, 8 new endpoints at once, ms until the last answered: $(raw_ms "$DIR/burst.ns")"
echo "docker run -d, median of $ROUNDS: netlease $(median_ms <"$DIR/run-demo.ns")," \
    "netlease without the re-check window $(median_ms <"$DIR/run-bare.ns"), built-in IPAM" \
    "$(median_ms <"$DIR/run-plain.ns")"
for network in demo bare; do
    echo "added by the driver on $network (median of the rounds' differences to built-in IPAM):" \
        "$(paste "$DIR/run-$network.ns" "$DIR/run-plain.ns" | awk '{ print $1 - $2 }' | median_ms)"
done
for network in demo bare; do
    echo "plugin RequestAddress over its socket (curl) on $network, median of $ROUNDS: new endpoint" \
        "$(median_ms <"$DIR/new-$network.ns"), same endpoint again $(median_ms <"$DIR/again-$network.ns")"
done
echo "plugin RequestAddress on demo, 8 new endpoints at once, median of 5: $(median_ms <"$DIR/burst.ns")"
loadavg "at the end"
