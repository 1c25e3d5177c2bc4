#!/usr/bin/env bash
# package.sh -- build the Debian package dist/bluegreen_<version>_<arch>.deb (DESIGN §7) with
# CMake's CPack DEB generator (configured at the end of CMakeLists.txt): bg-agent,
# bg-controller, bg-router and bgctl in /usr/bin, the manual pages, the bash completion, the systemd units,
# the example configurations, and maintainer scripts from debian/ (postinst creates the
# bluegreen system user). Depends: from dpkg-shlibdeps. Built with Debian's hardening flags
# (dpkg-buildflags), stripped, without the test tools (BG_TESTS=OFF).
#
# Usage: scripts/package.sh [-B BUILD_DIR] [--lintian]
#   -B DIR      build directory, relative to the repository (default build/package)
#   --lintian   run lintian on the package; fail on any error or warning (see debian/README.md
#               for the tags that remain and why)
# Needs: cmake, gcc, dpkg-dev, scdoc, file (scripts/deps.sh --test installs them); lintian for
# --lintian. Prints the package's path, size and Depends.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build/package
lint=0
while [ $# -gt 0 ]; do
    case $1 in
    -B) build=$2; shift 2 ;;
    --lintian) lint=1; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done

missing=()
for tool in cmake cpack dpkg-shlibdeps dpkg-buildflags scdoc file gzip; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ "$lint" = 0 ] || command -v lintian >/dev/null || missing+=(lintian)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "package.sh: missing ${missing[*]} (scripts/deps.sh --test installs them)" >&2
    exit 1
fi

# The manual pages' dates: the last commit's, not today's (scdoc reads SOURCE_DATE_EPOCH).
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || true)
    [ -n "$SOURCE_DATE_EPOCH" ] && export SOURCE_DATE_EPOCH || unset SOURCE_DATE_EPOCH
fi

# Debian's hardening flags (stack protector, _FORTIFY_SOURCE, relro, bindnow, PIE). CMake
# reads no CPPFLAGS, so they go into CFLAGS.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)

# CPack strips the binaries with CMAKE_STRIP; strip as dh_strip does (also the .comment and
# .note sections the C runtime's objects bring in).
mkdir -p "$build"
cat >"$build/deb-strip" <<'STRIP'
#!/bin/sh
exec strip --remove-section=.comment --remove-section=.note "$@"
STRIP
chmod +x "$build/deb-strip"

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
    -DCMAKE_STRIP="$(cd "$build" && pwd)/deb-strip" >/dev/null
cmake --build "$build" -j "$(nproc)"
rm -f "$build"/bluegreen_*.deb
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || {
    cat "$build/cpack.log" >&2
    echo "package.sh: cpack failed" >&2
    exit 1
}
deb=$(ls "$build"/bluegreen_*.deb)
mkdir -p dist
cp "$deb" dist/
deb=dist/$(basename "$deb")
echo "package.sh: $deb ($(stat -c %s "$deb") bytes)"
dpkg-deb --field "$deb" Package Version Architecture Installed-Size Depends | sed 's/^/  /'

if [ "$lint" = 1 ]; then
    echo "== lintian $deb"
    # --fail-on error,warning: only info/pedantic tags (listed, not failing) may remain.
    lintian --display-info --fail-on error,warning "$deb"
    echo "lintian: no errors or warnings"
fi
