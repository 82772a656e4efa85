#!/usr/bin/env bash
# Installs what salvage's lab and tests need on a Debian 12 machine:
# Debian's packages (apt-get), then the Go modules. Run as root; safe to rerun.
set -euo pipefail
pkgs=(qemu-system-x86 busybox-static makedumpfile kexec-tools python3-drgn
      e2fsprogs cpio crash gcc make bc dpkg-dev ca-certificates
      openssh-server openssh-client kmod xz-utils)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	# kexec-tools would otherwise make this machine's own reboots kexec.
	echo 'kexec-tools kexec-tools/load_kexec boolean false' | debconf-set-selections
	apt-get update -q
	# openssh-server is for the ssh target's tests, which run their own
	# sshd on loopback: keep the package from starting the system's one.
	pol=/usr/sbin/policy-rc.d
	[ -e $pol ] || { printf '#!/bin/sh\nexit 101\n' > $pol; chmod 755 $pol; trap 'rm -f $pol' EXIT; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
if [ -f /etc/default/kexec ]; then
	sed -i 's/^LOAD_KEXEC=true/LOAD_KEXEC=false/' /etc/default/kexec
fi
go mod download
