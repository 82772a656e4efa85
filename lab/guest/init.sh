#!/bin/sh
# /init of the lab guest, for both the production kernel and the capture
# kernel (which kexec starts with lab.capture=1). The scenario comes from
# the kernel command line: lab.scenario=live|sysrq|oops|hung|many.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /mnt/disk /mnt/tmpfs
mount -t devpts devpts /dev/pts

arg() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}" ;; esac
	done
}
say() { echo "LAB: $*" > /dev/console; }
die() { say "FAIL: $*"; sync; poweroff -f; }
SCENARIO=$(arg lab.scenario)

for m in $(cat /lib/modules/load-order); do
	insmod /lib/modules/$m.ko || say "insmod $m failed"
done

if grep -q 'lab.capture=1' /proc/cmdline; then
	# The capture kernel: save /proc/vmcore with the reference tools.
	mount -t ext4 /dev/vda /mnt/disk || die "mount dump disk"
	D=/mnt/disk/dumps
	mkdir -p $D
	say "capture: $(ls -la /proc/vmcore)"
	run() { say "capture: $*"; "$@" || say "capture failed: $*"; }
	run makedumpfile --dump-dmesg /proc/vmcore $D/dmesg.txt
	run makedumpfile -l --message-level 1 -d 31 /proc/vmcore $D/lzo-d31.kdump
	if [ "$SCENARIO" = sysrq ]; then
		run makedumpfile -c --message-level 1 -d 31 /proc/vmcore $D/zlib-d31.kdump
		run makedumpfile -E --message-level 1 -d 31 /proc/vmcore $D/elf-d31.elf
		say "capture: makedumpfile -F -l -d 31"
		makedumpfile -F -l --message-level 1 -d 31 /proc/vmcore > $D/flat-lzo-d31.flat || say "capture failed: flattened"
		run makedumpfile --split -l --message-level 1 -d 31 /proc/vmcore $D/split-lzo-d31.1 $D/split-lzo-d31.2
	fi
	run cp /proc/vmcore $D/vmcore.elf
	sync
	umount /mnt/disk
	say "capture: done"
	poweroff -f
fi

# The production kernel: arm kdump, load a workload, record the ground
# truth, then crash as the scenario says.
mount -t ext4 /dev/vda /mnt/disk || die "mount disk"
mount -t tmpfs -o size=64m tmpfs /mnt/tmpfs
ip link set lo up
hostname salvage-lab
sysctl -q -w kernel.kptr_restrict=0
if [ "$SCENARIO" != live ]; then
	kexec -p /boot/vmlinuz --initrd=/boot/capture.img \
		--append="console=ttyS0 reset_devices nr_cpus=1 maxcpus=1 irqpoll lab.capture=1 lab.scenario=$SCENARIO" \
		|| die "kexec -p"
	say "kexec_crash_loaded=$(cat /sys/kernel/kexec_crash_loaded)"
fi

# Hundreds of sleeping processes, a threaded workload holding memory,
# files, pipes and sockets.
i=0
while [ $i -lt 300 ]; do sleep 100000 & i=$((i+1)); done
# many: thousands of tasks (threads of the workload), for the analyzer's
# scaling benchmarks; less memory held, so the 1 GiB guest keeps room.
WFLAGS=""
[ "$SCENARIO" = many ] && WFLAGS="-parked 3000 -anon-mb 48 -cache-mb 32"
/bin/workload -dir /mnt/disk/work -tmpfs /mnt/tmpfs -ready /tmp/workload.ready $WFLAGS &
WPID=$!
n=0
while [ ! -f /tmp/workload.ready ]; do
	sleep 1; n=$((n+1)); [ $n -gt 300 ] && die "workload not ready"
	kill -0 $WPID 2>/dev/null || die "workload exited"
done

T=/mnt/disk/truth
mkdir -p $T
uname -a > $T/uname
uname -r > $T/release
echo $WPID > $T/workload.pid
grep -wE 'linux_banner|init_task|jiffies|_stext|_text|startup_64|panic|sysrq_handle_crash|init_uts_ns|salvage_lab_oops|salvage_lab_hang' /proc/kallsyms > $T/kallsyms
ps -o pid,ppid,stat,comm > $T/ps
ls /proc | grep -E '^[0-9]+$' | sort -n > $T/pids
cat /proc/modules > $T/modules
cat /proc/mounts > $T/mounts
cat /proc/meminfo > $T/meminfo
cat /proc/cmdline > $T/cmdline
date +%s > $T/date
sync

say "ready scenario=$SCENARIO"
case "$SCENARIO" in
live)
	# The host dumps this running machine with dump-guest-memory.
	while :; do sleep 1000; done ;;
sysrq|many)
	# From a child process, as a user's crash would be, not from PID 1.
	sh -c 'echo c > /proc/sysrq-trigger' ;;
oops)
	sysctl -q -w kernel.panic_on_oops=1
	sh -c 'echo oops > /proc/salvage_lab' ;;
hung)
	sysctl -q -w kernel.hung_task_panic=1
	sysctl -q -w kernel.hung_task_timeout_secs=5
	sysctl -q -w kernel.hung_task_check_interval_secs=2 2>/dev/null
	echo hang > /proc/salvage_lab &
	while :; do sleep 1000; done ;;
esac
die "scenario $SCENARIO did not crash"
