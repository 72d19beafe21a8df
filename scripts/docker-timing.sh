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
NAME=docker-timing
# shellcheck source=scripts/timing-host.sh
. scripts/timing-host.sh
prepare ip nsenter unshare curl tar /usr/sbin/dockerd /usr/bin/docker /bin/busybox

NS=nl-dtime-$$
DIR=$(mktemp -d /tmp/netlease-docker-timing.XXXXXX)
DOCKER=(/usr/bin/docker -H "unix://$DIR/docker/docker.sock")
PIDS=()
MADE_RUN_DOCKER=0
[ -e /run/docker ] || MADE_RUN_DOCKER=1

cleanup() {
    set +e
    if [ -S "$DIR/docker/docker.sock" ]; then
        ids=$("${DOCKER[@]}" ps -aq 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$ids" ] && "${DOCKER[@]}" rm -f $ids >/dev/null 2>&1
        "${DOCKER[@]}" network rm demo plain >/dev/null 2>&1
    fi
    stop_daemons
    ip netns del "$NS" 2>/dev/null
    if [ "$MADE_RUN_DOCKER" = 1 ]; then rmdir /run/docker/plugins /run/docker 2>/dev/null; fi
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

echo "docker-timing: namespace $NS, files in $DIR, $BIN" >&2
start_host --docker-plugin "$DIR/plugin.sock"

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
busybox_image "$DIR/rootfs.tar"
"${DOCKER[@]}" import "$DIR/rootfs.tar" netlease-timing:1 >/dev/null

# The network exactly as `netlease docker-network` prints it, and one on Docker's own IPAM.
read -r -a create <<<"$(in_ns "$BIN" docker-network demo --socket "$DIR/agent.sock")"
"${DOCKER[@]}" "${create[@]:1}" >/dev/null
"${DOCKER[@]}" network create --driver bridge --subnet 10.77.0.0/24 plain >/dev/null

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
