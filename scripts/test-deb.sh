#!/usr/bin/env bash
# Installs the .deb into a clean Debian root that has no Swift toolchain and runs netlease there: --version, a
# coordinator, `network create`, `lease acquire`, `leases`, the CNI plugin, the completions, `tls init`, and the
# package's removal. Root only (chroot, namespaces). The root is made with debootstrap (variant minbase, Debian's
# mirror); apt-get installs the package with the dependencies it declares, nothing else.
#
#   scripts/test-deb.sh                         # builds the package first (scripts/package-deb.sh)
#   scripts/test-deb.sh --deb dist/netlease_0.1.0_amd64.deb
#   scripts/test-deb.sh --root-tarball /var/tmp/bookworm-minbase.tar   # reuse a debootstrap (made when missing)
#
# The daemons run in a private network namespace (loopback only) and a private PID namespace, so nothing is left
# running and no port of this machine is used. Every mount and the root are removed on exit.
# Other options are passed to scripts/package-deb.sh (e.g. --scratch-path .build-release).
set -euo pipefail
cd "$(dirname "$0")/.."

deb=""
tarball=""
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
package_options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --deb) deb=$2; shift 2 ;;
        --root-tarball) tarball=$2; shift 2 ;;
        *) package_options+=("$1"); shift ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: run as root (debootstrap, chroot, namespaces)" >&2; exit 77; }
command -v debootstrap >/dev/null || { echo "test-deb.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 69; }
say() { echo "test-deb: $*" >&2; }

if [ -z "$deb" ]; then
    deb=$(scripts/package-deb.sh "${package_options[@]}")
fi
[ -f "$deb" ] || { echo "test-deb.sh: no package $deb" >&2; exit 66; }
deb=$(realpath "$deb")

work=$(mktemp -d /var/tmp/netlease-test-deb.XXXXXX)
root=$work/root
cleanup() {
    local status=$?
    set +e
    # Only mounts under this run's root; they are also in a private mount namespace, this is for a killed run.
    grep -o " $root/[^ ]*" /proc/mounts | sort -r | while read -r mount; do umount -l "$mount"; done
    rm -rf --one-file-system "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

if [ -n "$tarball" ] && [ -f "$tarball" ]; then
    say "clean root from $tarball"
    mkdir -p "$root"
    tar -xf "$tarball" -C "$root"
else
    say "debootstrap --variant=minbase $suite ($mirror)"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    if [ -n "$tarball" ]; then tar -cf "$tarball" -C "$root" .; fi
fi

# What "Swift-free" means here: no toolchain and no Swift runtime library anywhere in the root.
if chroot "$root" sh -c 'command -v swift || command -v swiftc' >/dev/null; then
    echo "test-deb.sh: the root has a Swift toolchain" >&2; exit 1
fi
if find "$root" -xdev -name 'libswiftCore*' | grep -q .; then
    echo "test-deb.sh: the root has a Swift runtime library" >&2; exit 1
fi

cp "$deb" "$root/tmp/netlease.deb"
cp /etc/resolv.conf "$root/etc/resolv.conf"
say "apt-get install ./netlease.deb (with its declared dependencies only)"
unshare --mount --propagation private sh -c '
    mount -t proc proc "$0/proc" && mount --bind /dev "$0/dev"
    chroot "$0" sh -c "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /tmp/netlease.deb"
' "$root" >&2

say "run in the root (private network and PID namespaces)"
cat > "$root/tmp/run.sh" <<'EOF'
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "\$ $*"; "$@"; }

command -v swift >/dev/null 2>&1 && fail "a Swift toolchain is on the PATH"
step netlease --version
step /usr/lib/cni/netlease-cni --version
step /opt/cni/bin/netlease-cni --version
getent passwd netlease >/dev/null || fail "no netlease user"
echo "ldd /usr/bin/netlease:"; ldd /usr/bin/netlease

# The coordinator as the unit runs it: user netlease, data in /var/lib/netlease (the unit's StateDirectory=).
install -d -m 0700 -o netlease -g netlease /var/lib/netlease
# setpriv execs the coordinator itself (runuser would stay between), so SIGTERM reaches it and its status is its own.
setpriv --reuid=netlease --regid=netlease --init-groups netlease coordinator --listen 127.0.0.1:7420 --data /var/lib/netlease \
    > /tmp/coordinator.log 2>&1 &
coordinator=$!
tries=0
until grep -q "listening on" /tmp/coordinator.log; do
    kill -0 "$coordinator" 2>/dev/null || { cat /tmp/coordinator.log; fail "the coordinator exited"; }
    tries=$((tries + 1)); [ "$tries" -le 300 ] || fail "the coordinator did not listen within 30 s"
    sleep 0.1
done
cat /tmp/coordinator.log
export NETLEASE_COORDINATOR=127.0.0.1:7420 NETLEASE_SECRET_FILE=/var/lib/netlease/cluster-secret
step netlease network create prod --subnet 172.30.0.0/16
address=$(netlease lease acquire --network prod --owner c1)
echo "\$ netlease lease acquire --network prod --owner c1"; echo "$address"
case "$address" in 172.30.*/16) ;; *) fail "lease acquire printed '$address'" ;; esac
again=$(netlease lease acquire --network prod --owner c1)
[ "$again" = "$address" ] || fail "the same owner got $again, then $address"
step netlease leases --network prod
netlease leases --network prod --json | grep -q "\"owner\" : \"c1\"" || fail "leases --json lacks owner c1"
step netlease stats
kill -TERM "$coordinator"; wait "$coordinator" || fail "the coordinator did not stop cleanly on SIGTERM"

step bash -c 'source /usr/share/bash-completion/completions/netlease && complete -p netlease'
head -1 /usr/share/zsh/vendor-completions/_netlease | grep -q "#compdef netlease" || fail "zsh completion"
grep -q "complete -c 'netlease'" /usr/share/fish/vendor_completions.d/netlease.fish || fail "fish completion"
zcat /usr/share/man/man1/netlease.1.gz | grep -q "^.Nm netlease" || fail "man page netlease(1)"
echo "man pages: $(ls /usr/share/man/man1 | grep -c '^netlease')"

step netlease tls init --out /root/tls --coordinator-address 127.0.0.1 --host host1
[ "$(stat -c %a /root/tls/ca.key)" = 600 ] || fail "ca.key is not 0600"
echo "OK"
EOF
unshare --mount --net --pid --fork --propagation private sh -c '
    ip link set lo up
    mount -t proc proc "$0/proc" && mount --bind /dev "$0/dev"
    exec chroot "$0" /bin/sh /tmp/run.sh
' "$root" || { echo "test-deb.sh: FAILED: $(basename "$deb") does not work in the Swift-free $suite root" >&2; exit 1; }

say "dpkg --remove netlease"
unshare --mount --propagation private sh -c '
    mount -t proc proc "$0/proc"
    chroot "$0" sh -c "dpkg --remove netlease >/dev/null && test ! -e /opt/cni/bin/netlease-cni && test ! -e /usr/bin/netlease"
' "$root" || { echo "test-deb.sh: removal left files behind" >&2; exit 1; }
say "passed: $(basename "$deb") installs and runs in a Swift-free $suite root"
