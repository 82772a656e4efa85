#!/bin/sh
# build-deb.sh BIN DIR: build DIR/salvage_<version>_amd64.deb from the
# static salvage binary BIN, with the systemd unit, the default
# /etc/salvage/kdump.conf (a conffile) and the maintainer scripts.
# The version is BIN's own (`salvage version`), made a Debian version
# ("0~git<hash>" for an untagged build); $DEB_VERSION overrides it.
# Needs dpkg-deb only: no fakeroot (--root-owner-group), no debhelper.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BIN DIR" >&2
	exit 2
fi
bin=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$bin" ] || { echo "build-deb.sh: $bin is not an executable" >&2; exit 1; }
if ! raw=$("$bin" version | sed -n 's/^salvage //p' | head -n 1) || [ -z "$raw" ]; then
	echo "build-deb.sh: $bin version printed no version: is it salvage?" >&2
	exit 1
fi
raw=${raw#v}
version=${DEB_VERSION:-}
if [ -z "$version" ]; then
	case "$raw" in
	[0-9]*.*) version=$(printf '%s' "$raw" | sed 's/^v//; s/-/+/g; s/[^A-Za-z0-9.+~]/./g') ;;
	dev) version=0~dev ;;
	*) version=0~git$(printf '%s' "${raw#dev-}" | sed 's/-/~/g; s/[^A-Za-z0-9.+~]/./g') ;;
	esac
fi
case "$version" in
[0-9]*) ;;
*) echo "build-deb.sh: version $version does not start with a digit" >&2; exit 1 ;;
esac

stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
umask 022
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
	"$stage/etc/salvage" "$stage/usr/share/doc/salvage"
install -m 0755 "$bin" "$stage/usr/bin/salvage"
install -m 0644 "$here/salvage-kdump.service" "$stage/lib/systemd/system/salvage-kdump.service"
install -m 0644 "$here/kdump.conf" "$stage/etc/salvage/kdump.conf"
if [ -f "$here/../README.md" ]; then
	install -m 0644 "$here/../README.md" "$stage/usr/share/doc/salvage/README.md"
fi

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: salvage
Version: $version
Architecture: amd64
Maintainer: salvage maintainers <salvage@localhost>
Installed-Size: $size
Section: admin
Priority: optional
Description: kernel crash dumps with one static binary
 salvage arms the machine for kdump (crashkernel= sizing, the capture
 initramfs, kexec_file_load), saves the dump from the capture kernel to a
 local path, a raw device, ssh or nfs, and analyzes dumps with the crash
 utility's commands, with or without a debug vmlinux. It replaces
 kdump-tools, kexec-tools and makedumpfile; do not arm both.
CONTROL
echo /etc/salvage/kdump.conf >"$stage/DEBIAN/conffiles"

cat >"$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
# Enable the unit only on a machine running systemd (not in a chroot or
# an image build); it starts at the next boot, or with
# `systemctl start salvage-kdump` once crashkernel= is reserved.
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl enable salvage-kdump.service >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
# Unload the capture kernel (it would outlive the binary) and disable the
# unit before its file goes.
if [ -d /run/systemd/system ]; then
	case "$1" in
	remove|deconfigure)
		systemctl stop salvage-kdump.service >/dev/null 2>&1 || true
		systemctl disable salvage-kdump.service >/dev/null 2>&1 || true
		;;
	esac
fi
exit 0
SCRIPT
cat >"$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
# The built capture initramfs is salvage's cache; dumps are the user's.
if [ "$1" = purge ]; then
	rm -rf /var/lib/salvage
fi
exit 0
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"

mkdir -p "$out"
deb="$out/salvage_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
