#!/usr/bin/env bash
# What netlease adds to `podman run`, and how many containers a host starts per second. One host built in a network
# namespace of its own: a coordinator on its loopback, two agents (network `demo` with the default re-check of a
# pooled address, 300 ms of listening for an ARP answer; network `bare` with `--recheck-wait 0`), Debian's podman 4
# with its CNI backend and directories of its own; networks `demo` and `bare` are the conflists `netlease
# cni-config` prints (bridge + netlease-cni), `plain` the same `bridge` plugin with `host-local` IPAM. Then
#   - latency (default): `podman run -d` on the three networks, round by round (the order rotated every round),
#     each container removed again;
#   - RATE=N: containers started per second, N `podman run -d` per batch, one at a time and PARALLEL (4) at a time,
#     on each of the three networks, BATCHES (3) times interleaved; the containers are removed after each batch.
# POOL=N gives both agents `--pool-size N` (default 12, the agent's own default; 0: every address is probed in
# full when it is asked for). Prints the raw figures, the medians and the load average. A measurement, not a
# test: figures depend on the machine (compare only within one run).
#
#   swift build                          # or: swift build -c release --scratch-path .build-release
#   sudo scripts/podman-timing.sh        # ROUNDS=20 by default
#   sudo RATE=20 scripts/podman-timing.sh                # PARALLEL=4 BATCHES=3 by default
#   BIN=.build-release/release/netlease ROUNDS=50 scripts/podman-timing.sh   # netlease-cni from the same directory
#
# Needs root, iproute2, util-linux (nsenter), Debian's podman, runc, containernetworking-plugins and busybox-static.
# Everything it starts runs inside its own namespace and temporary directory and is removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-20}
RATE=${RATE:-0}
PARALLEL=${PARALLEL:-4}
BATCHES=${BATCHES:-3}
POOL=${POOL:-12}
NAME=podman-timing
# shellcheck source=scripts/timing-host.sh
. scripts/timing-host.sh
check_counts
prepare ip nsenter tar xargs /usr/bin/podman /usr/sbin/runc /usr/lib/cni/bridge /bin/busybox
PLUGIN=$(dirname "$BIN")/netlease-cni
[ -x "$PLUGIN" ] || { echo "podman-timing: no $PLUGIN beside $BIN" >&2; exit 1; }

NS=nl-ptime-$$
DIR=$(mktemp -d /tmp/netlease-podman-timing.XXXXXX)
PIDS=()
# podman's libcni keeps results under /var/lib/cni; removed again if this run made it (only while empty).
MADE_CNI_CACHE=0
[ -e /var/lib/cni ] || MADE_CNI_CACHE=1
# Only the network namespace is entered: podman needs the real /sys and cgroups. runc, cgroupfs and no default
# ulimits are what podman 4.3.1 needs here (see TOOLCHAIN.md); the CNI backend reads this run's directories only.
PODMAN=(env "CONTAINERS_CONF=$DIR/containers.conf" nsenter --net="/run/netns/$NS" /usr/bin/podman --root "$DIR/root"
    --runroot "$DIR/run" --tmpdir "$DIR/tmp" --storage-driver vfs --runtime /usr/sbin/runc --cgroup-manager cgroupfs)

cleanup() {
    set +e
    trap '' INT TERM  # a second signal (e.g. timeout's to the whole group) must not cut the cleanup short
    "${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1
    "${PODMAN[@]}" system reset --force >/dev/null 2>&1
    stop_daemons
    ip netns del "$NS" 2>/dev/null
    if [ "$MADE_CNI_CACHE" = 1 ]; then rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null; fi
    rm -rf "$DIR"
}
# A signal ends the run (and EXIT cleans up): a trap that only cleaned up would let the run go on without errexit.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "podman-timing: namespace $NS, files in $DIR, $BIN" >&2
loadavg "at the start"
start_coordinator
start_agent demo 172.30.0.0/16 h1 10.254.0.1 "$DIR/demo"
start_agent bare 172.31.0.0/16 h2 10.254.0.2 "$DIR/bare" --recheck-wait 0
wait_agent "$DIR/demo"
wait_agent "$DIR/bare"

# podman's CNI configuration: the conflist exactly as `netlease cni-config` prints it, and one on host-local.
mkdir -p "$DIR/cni-bin" "$DIR/net.d" "$DIR/tmp"
for plugin in /usr/lib/cni/*; do ln -s "$plugin" "$DIR/cni-bin/"; done
ln -s "$PLUGIN" "$DIR/cni-bin/netlease-cni"
in_ns "$BIN" cni-config demo --socket "$DIR/demo.sock" >"$DIR/net.d/50-demo.conflist"
in_ns "$BIN" cni-config bare --socket "$DIR/bare.sock" >"$DIR/net.d/55-bare.conflist"
cat >"$DIR/net.d/60-plain.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "plain", "plugins": [{"type": "bridge", "bridge": "plain0", "isGateway": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]], "dataDir": "$DIR/host-local",
 "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
cat >"$DIR/containers.conf" <<EOF
[containers]
default_ulimits = []

[network]
network_backend = "cni"
cni_plugin_dirs = ["$DIR/cni-bin"]
network_config_dir = "$DIR/net.d"

[engine]
events_logger = "file"
EOF

# An image without a registry: busybox and the applets a container needs here.
busybox_image "$DIR/rootfs.tar"
"${PODMAN[@]}" import "$DIR/rootfs.tar" netlease-timing:1 >/dev/null
echo "$("${PODMAN[@]}" version --format 'podman {{.Client.Version}}'), $(basename "$(dirname "$BIN")") build"

timed_run() {  # NETWORK NAME: prints the nanoseconds `podman run -d` took, then removes the container
    local started took
    started=$(now_ns)
    "${PODMAN[@]}" run -d --network "$1" --name "$2" netlease-timing:1 sleep 3600 >/dev/null
    took=$(($(now_ns) - started))
    "${PODMAN[@]}" rm --force --time 0 "$2" >/dev/null
    echo "$took"
}

start_batch() {  # NETWORK TAG PARALLELISM: RATE containers TAG-1…, at most PARALLELISM `podman run -d` at a time
    seq 1 "$RATE" | xargs -P "$3" -I '{}' "${PODMAN[@]}" run -d --network "$1" --name "$2-{}" \
        netlease-timing:1 sleep 3600 >/dev/null
}

remove_batch() {  # TAG: removes the containers start_batch started (CNI DEL releases their addresses)
    seq 1 "$RATE" | sed "s/^/$1-/" | xargs "${PODMAN[@]}" rm --force --time 0 >/dev/null
}

networks=(demo bare plain)
for warm in 1 2; do
    for network in "${networks[@]}"; do timed_run "$network" "warm-$network-$warm" >/dev/null; done
done

if [ "$RATE" -gt 0 ]; then
    rate_batches start_batch remove_batch "${networks[@]}"
    loadavg "at the end"
    exit 0
fi

for network in "${networks[@]}"; do : >"$DIR/run-$network.ns"; done
for round in $(seq 1 "$ROUNDS"); do
    for i in 0 1 2; do
        network=${networks[$(((i + round) % 3))]}
        timed_run "$network" "$network-$round" >>"$DIR/run-$network.ns"
    done
done

for network in "${networks[@]}"; do echo "podman run -d on $network, ms: $(raw_ms "$DIR/run-$network.ns")"; done
echo "podman run -d, median of $ROUNDS: netlease-cni $(median_ms <"$DIR/run-demo.ns"), netlease-cni without" \
    "the re-check window $(median_ms <"$DIR/run-bare.ns"), host-local $(median_ms <"$DIR/run-plain.ns")"
for network in demo bare; do
    echo "added by netlease on $network (median of the rounds' differences to host-local):" \
        "$(paste "$DIR/run-$network.ns" "$DIR/run-plain.ns" | awk '{ print $1 - $2 }' | median_ms)"
done
loadavg "at the end"
