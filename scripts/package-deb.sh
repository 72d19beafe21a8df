#!/usr/bin/env bash
# Builds netlease_VERSION_amd64.deb: static release binaries (the Swift runtime linked in, so the machine needs no
# Swift), the systemd units, example configuration, bash/zsh/fish completions and man pages generated from the
# command tree by swift-argument-parser, a `netlease` system user, and the Debian documentation. lintian must report
# no errors.
#
#   scripts/package-deb.sh                          # release build in .build, package in ./dist, lintian
#   scripts/package-deb.sh --scratch-path .build-release --out /tmp/dist
#   scripts/package-deb.sh --bin-dir .build/debug --allow-dynamic --stage-only /tmp/tree
#                                                   # the package's tree from existing binaries, without dpkg-deb
#
# Options:
#   --scratch-path DIR  SwiftPM build directory for the release build (default .build)
#   --bin-dir DIR       use netlease and netlease-cni already built in DIR (no build)
#   --allow-dynamic     accept binaries that link the Swift runtime dynamically (a debug build; never for release)
#   --manual-tool PATH  swift-argument-parser's generate-manual executable (default: built from the checkout)
#   --no-manual         leave the man pages out (with --stage-only only: a package always has them)
#   --stage-only DIR    write the package's tree into DIR (must not exist) and stop
#   --out DIR           where the .deb goes (default dist)
#   --no-lintian        skip lintian
# Needs: dpkg-dev (dpkg-deb, dpkg-shlibdeps), binutils (strip), gzip, lintian.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scratch=.build
bin_dir=""
allow_dynamic=0
manual_tool=""
manual=1
stage_only=""
out=dist
run_lintian=1
usage() { sed -n '2,/^# Needs/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "package-deb.sh: $1 needs a value" >&2; exit 64; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --scratch-path) need_value "$@"; scratch=$2; shift 2 ;;
        --bin-dir) need_value "$@"; bin_dir=$2; shift 2 ;;
        --allow-dynamic) allow_dynamic=1; shift ;;
        --manual-tool) need_value "$@"; manual_tool=$2; shift 2 ;;
        --no-manual) manual=0; shift ;;
        --stage-only) need_value "$@"; stage_only=$2; shift 2 ;;
        --out) need_value "$@"; out=$2; shift 2 ;;
        --no-lintian) run_lintian=0; shift ;;
        -h | --help) usage ;;
        *) echo "package-deb.sh: unknown option $1" >&2; usage ;;
    esac
done
if [ "$manual" = 0 ] && [ -z "$stage_only" ]; then
    echo "package-deb.sh: --no-manual only with --stage-only (a package always has its man pages)" >&2
    exit 64
fi
if [ -n "$stage_only" ] && [ -e "$stage_only" ]; then
    echo "package-deb.sh: --stage-only $stage_only exists; give a new directory" >&2
    exit 64
fi
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool is missing (apt-get install dpkg-dev binutils gzip)" >&2; exit 69; }
done
say() { echo "package-deb: $*" >&2; }

# 1. Binaries.
if [ -z "$bin_dir" ]; then
    say "release build with the Swift runtime linked statically ($scratch)"
    for product in netlease netlease-cni; do
        swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product"
    done
    bin_dir=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)
fi
netlease=$bin_dir/netlease
cni=$bin_dir/netlease-cni
for binary in "$netlease" "$cni"; do
    [ -x "$binary" ] || { echo "package-deb.sh: $binary is missing; build it first" >&2; exit 66; }
done

# 2. A release must need no Swift library at run time: only the system's (libc, libstdc++, SQLite …).
for binary in "$netlease" "$cni"; do
    swift_libraries=$(ldd "$binary" | grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|/opt/swift|not found' || true)
    if [ -n "$swift_libraries" ]; then
        if [ "$allow_dynamic" = 1 ]; then
            say "$(basename "$binary") links the Swift runtime dynamically (allowed: --allow-dynamic)"
        else
            echo "package-deb.sh: $binary needs libraries a Swift-free machine lacks:" >&2
            echo "$swift_libraries" >&2
            exit 1
        fi
    fi
done

version=$("$netlease" --version)
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || { echo "package-deb.sh: odd version '$version' from $netlease --version" >&2; exit 1; }
# Dates from the last commit, so the same tree makes the same package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
say "netlease $version"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=${stage_only:-$work/stage}
mkdir -p "$stage"
stage=$(cd "$stage" && pwd)

# 3. The tree.
install -d -m 0755 "$stage/usr/bin" "$stage/usr/lib/cni" "$stage/lib/systemd/system" "$stage/etc/netlease" \
    "$stage/usr/share/doc/netlease/examples" "$stage/usr/share/bash-completion/completions" \
    "$stage/usr/share/zsh/vendor-completions" "$stage/usr/share/fish/vendor_completions.d" "$stage/DEBIAN"
install -m 0755 "$netlease" "$stage/usr/bin/netlease"
install -m 0755 "$cni" "$stage/usr/lib/cni/netlease-cni"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/netlease" \
    "$stage/usr/lib/cni/netlease-cni"

# The units in deploy/ start /usr/local/bin/netlease (a binary copied by hand); the package's is /usr/bin/netlease.
for unit in deploy/netlease-coordinator.service deploy/netlease-agent.service; do
    sed 's|/usr/local/bin/netlease|/usr/bin/netlease|g' "$unit" > "$stage/lib/systemd/system/$(basename "$unit")"
    chmod 0644 "$stage/lib/systemd/system/$(basename "$unit")"
done
install -m 0644 deploy/coordinator.env.example deploy/agent.env.example "$stage/etc/netlease/"
install -m 0644 deploy/cni/netlease.conflist.example "$stage/usr/share/doc/netlease/examples/"

# bash-completion sources the file: no "#!" line.
"$netlease" --generate-completion-script bash | sed '1{/^#!/d}' > "$stage/usr/share/bash-completion/completions/netlease"
"$netlease" --generate-completion-script zsh > "$stage/usr/share/zsh/vendor-completions/_netlease"
"$netlease" --generate-completion-script fish > "$stage/usr/share/fish/vendor_completions.d/netlease.fish"
chmod 0644 "$stage/usr/share/bash-completion/completions/netlease" "$stage/usr/share/zsh/vendor-completions/_netlease" \
    "$stage/usr/share/fish/vendor_completions.d/netlease.fish"

# Man pages: swift-argument-parser's generate-manual (the tool behind its GenerateManual plugin) reads the command
# tree from the binary itself (`--experimental-dump-help`), one page per command. The plugin would first make its
# own release build of every product; the tool alone reuses the binary being packaged.
if [ "$manual" = 1 ]; then
    if [ -z "$manual_tool" ]; then
        parser=$(find "$scratch/checkouts" -maxdepth 1 -name 'swift-argument-parser*' -type d | head -1)
        [ -n "$parser" ] || { echo "package-deb.sh: no swift-argument-parser checkout in $scratch/checkouts" >&2; exit 1; }
        say "building swift-argument-parser's generate-manual"
        swift build --package-path "$parser" --scratch-path "$scratch/generate-manual" --product generate-manual >&2
        manual_tool=$(swift build --package-path "$parser" --scratch-path "$scratch/generate-manual" --show-bin-path)/generate-manual
    fi
    install -d -m 0755 "$stage/usr/share/man/man1"
    "$manual_tool" "$netlease" --multi-page --section 1 --date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" \
        --authors 'netlease maintainers' --output-directory "$stage/usr/share/man/man1" >&2
    [ -f "$stage/usr/share/man/man1/netlease.1" ] || { echo "package-deb.sh: generate-manual wrote no netlease.1" >&2; exit 1; }
    # A blank line in a discussion is a paragraph break in mdoc: .Pp (groff warns of empty input lines).
    find "$stage/usr/share/man/man1" -type f -name '*.1' -exec sed -i 's/^$/.Pp/' {} + -exec chmod 0644 {} + \
        -exec gzip -9n {} +
fi

# Documentation: README.Debian, copyright, changelog (a native package: changelog.gz), the operator's guide.
install -m 0644 packaging/debian/README.Debian "$stage/usr/share/doc/netlease/README.Debian"
install -m 0644 packaging/debian/copyright "$stage/usr/share/doc/netlease/copyright"
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
sed -e "s|@VERSION@|$version|g" -e "s|@DATE@|$changelog_date|g" packaging/debian/changelog \
    | gzip -9n > "$stage/usr/share/doc/netlease/changelog.gz"
gzip -9n < docs/OPERATIONS.md > "$stage/usr/share/doc/netlease/OPERATIONS.md.gz"
chmod 0644 "$stage/usr/share/doc/netlease/changelog.gz" "$stage/usr/share/doc/netlease/OPERATIONS.md.gz"

# 4. Control files. Depends come from the libraries the binaries actually link (dpkg-shlibdeps).
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
mkdir -p "$work/shlibs/debian"
printf 'Source: netlease\n\nPackage: netlease\nArchitecture: amd64\n' > "$work/shlibs/debian/control"
shlib_flags=()
[ "$allow_dynamic" = 1 ] && shlib_flags+=(--ignore-missing-info)
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "${shlib_flags[@]}" "$stage/usr/bin/netlease" \
    "$stage/usr/lib/cni/netlease-cni" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "package-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@DEPENDS@|adduser, iproute2, $shlibs|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" packaging/debian/control > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's|  \./|  |') \
    > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums" "$stage/DEBIAN/control"

if [ -n "$stage_only" ]; then
    say "tree in $stage_only"
    exit 0
fi

# 5. The package.
mkdir -p "$out"
deb=$out/netlease_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
if [ "$run_lintian" = 1 ]; then
    command -v lintian >/dev/null || { echo "package-deb.sh: lintian is missing (apt-get install lintian)" >&2; exit 69; }
    say "lintian"
    lintian --fail-on error --tag-display-limit 0 "$deb" >&2
fi
realpath "$deb"
