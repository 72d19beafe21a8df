#!/usr/bin/env bash
# What netlease adds to `podman run`: one host built in a network namespace of its own (a coordinator on its
# loopback, an agent), Debian's podman 4 with its CNI backend and directories of its own, then `podman run -d` on
# the conflist `netlease cni-config` prints (bridge + netlease-cni) against the same `bridge` plugin with
# `host-local` IPAM, alternately. Prints the medians. A measurement, not a test: figures depend on the machine
# (compare only within one run).
#
#   swift build                          # or: swift build -c release --scratch-path .build-release
#   sudo scripts/podman-timing.sh        # ROUNDS=20 by default
#   BIN=.build-release/release/netlease ROUNDS=50 scripts/podman-timing.sh   # netlease-cni from the same directory
#
# Needs root, iproute2, util-linux (nsenter), Debian's podman, runc, containernetworking-plugins and busybox-static.
# Everything it starts runs inside its own namespace and temporary directory and is removed on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-20}
NAME=podman-timing
# shellcheck source=scripts/timing-host.sh
. scripts/timing-host.sh
prepare ip nsenter tar /usr/bin/podman /usr/sbin/runc /usr/lib/cni/bridge /bin/busybox
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
    "${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1
    "${PODMAN[@]}" system reset --force >/dev/null 2>&1
    stop_daemons
    ip netns del "$NS" 2>/dev/null
    if [ "$MADE_CNI_CACHE" = 1 ]; then rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null; fi
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

echo "podman-timing: namespace $NS, files in $DIR, $BIN" >&2
start_host

# podman's CNI configuration: the conflist exactly as `netlease cni-config` prints it, and one on host-local.
mkdir -p "$DIR/cni-bin" "$DIR/net.d" "$DIR/tmp"
for plugin in /usr/lib/cni/*; do ln -s "$plugin" "$DIR/cni-bin/"; done
ln -s "$PLUGIN" "$DIR/cni-bin/netlease-cni"
in_ns "$BIN" cni-config demo --socket "$DIR/agent.sock" >"$DIR/net.d/50-demo.conflist"
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

timed_run() {  # NETWORK NAME: prints the nanoseconds `podman run -d` took, then removes the container
    local started took
    started=$(now_ns)
    "${PODMAN[@]}" run -d --network "$1" --name "$2" netlease-timing:1 sleep 3600 >/dev/null
    took=$(($(now_ns) - started))
    "${PODMAN[@]}" rm --force --time 0 "$2" >/dev/null
    echo "$took"
}

for warm in 1 2; do
    timed_run demo "warm-n$warm" >/dev/null
    timed_run plain "warm-p$warm" >/dev/null
done
: >"$DIR/netlease.ns"
: >"$DIR/hostlocal.ns"
for round in $(seq 1 "$ROUNDS"); do
    timed_run demo "n$round" >>"$DIR/netlease.ns"
    timed_run plain "p$round" >>"$DIR/hostlocal.ns"
done

netlease=$(median_ms <"$DIR/netlease.ns")
hostlocal=$(median_ms <"$DIR/hostlocal.ns")
added=$(paste "$DIR/netlease.ns" "$DIR/hostlocal.ns" | awk '{ print $1 - $2 }' | median_ms)
echo "podman run -d, median of $ROUNDS: netlease-cni $netlease, host-local $hostlocal," \
    "added (median of the pairs' differences) $added"
