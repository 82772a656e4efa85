#!/bin/sh
# gen.sh VMLINUX DUMP [COMMAND…]: regenerates this directory's reference files with
# crash (Debian's crash 8.0.2, whose rd is memory.c's cmd_rd/display_memory
# unchanged through 8.0.6), never with salvage:
#   banner.bin      rd -p -r: 8 KiB of physical memory from 0x3d91f000
#   NAME.golden     "# COMMAND", then crash's output of COMMAND, verbatim
# The commands are in commands.txt; given COMMANDs, only theirs are redone. DUMP is QEMU's ELF dump of Debian's
# 6.1.0-56-cloud-amd64 (linux_banner at physical 0x3d91ffe0); VMLINUX its
# debug vmlinux. crash starts once per command (its output is buffered, so
# one session's outputs cannot be split reliably).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 VMLINUX DUMP [COMMAND...]" >&2; exit 2; }
vmlinux=$1 dump=$2
shift 2
dir=$(cd "$(dirname "$0")" && pwd)
CRASH=${CRASH:-crash}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

runcrash() { # runcrash OUT COMMAND
	printf '%s\nq\n' "$2" > "$tmp/in.$$"
	"$CRASH" -s "$vmlinux" "$dump" -i "$tmp/in.$$" > "$1" 2> "$tmp/err.$$" < /dev/null
	# crash's startup warnings (about the task table, not rd) and the
	# blank line after them are not the command's output.
	sed -i -e '/^WARNING: active task .* not found in PID hash$/{N;d;}' "$1"
}

if [ $# -eq 0 ]; then
	runcrash "$tmp/r.out" "rd -p -r $tmp/banner.bin 3d91f000 8192"
	cp "$tmp/banner.bin" "$dir/banner.bin"
	grep -v '^#' "$dir/commands.txt" | grep -v '^$' > "$tmp/commands"
else
	printf '%s\n' "$@" > "$tmp/commands"
fi

while IFS= read -r cmd; do
	name=$(printf '%s' "$cmd" | tr -c 'a-zA-Z0-9\n-' '_')
	runcrash "$tmp/out" "$cmd"
	{ printf '# %s\n' "$cmd"; cat "$tmp/out"; } > "$dir/$name.golden"
done < "$tmp/commands"
