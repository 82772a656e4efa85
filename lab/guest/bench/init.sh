#!/bin/sh
# /init of the lab's bench guest (lab/bench.go): the production guest's
# image with this file as its /init. It fills most of a big machine's
# memory with anonymous data and page cache, then crashes through sysrq;
# the capture kernel is the ordinary lab guest's (guest/init.sh with
# lab.capture=1), which saves /proc/vmcore with cp. The fill sizes come
# from the kernel command line: lab.anon_mb= and lab.cache_mb=.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /mnt/disk
mount -t devpts devpts /dev/pts

arg() {
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1="*) echo "${w#*=}" ;; esac
	done
}
say() { echo "LAB: $*" > /dev/console; }
die() { say "FAIL: $*"; sync; poweroff -f; }
ANON=$(arg lab.anon_mb)
CACHE=$(arg lab.cache_mb)

for m in $(cat /lib/modules/load-order); do
	insmod /lib/modules/$m.ko || say "insmod $m failed"
done

mount -t ext4 /dev/vda /mnt/disk || die "mount disk"
ip link set lo up
hostname salvage-bench
sysctl -q -w kernel.kptr_restrict=0
kexec -p /boot/vmlinuz --initrd=/boot/capture.img \
	--append="console=ttyS0 reset_devices nr_cpus=1 maxcpus=1 irqpoll lab.capture=1 lab.scenario=bench" \
	|| die "kexec -p"
say "kexec_crash_loaded=$(cat /sys/kernel/kexec_crash_loaded)"

# Page cache: a file of non-zero data written to the disk (its pages stay
# cached after writeback). An 8 MiB random block repeated is as cheap to
# write as zeros and, unlike zeros, is not a zero page to makedumpfile.
say "fill: cache ${CACHE} MiB"
dd if=/dev/urandom of=/tmp/block bs=1M count=8 2>/dev/null || die "urandom"
i=0
while [ $i -lt $((CACHE / 8)) ]; do cat /tmp/block; i=$((i+1)); done > /mnt/disk/cache.dat || die "cache file"
rm /tmp/block
sync
# Anonymous memory: the lab's workload (threads, files, sockets) holding
# ANON MiB, every page of it written.
say "fill: anon ${ANON} MiB"
/bin/workload -dir /mnt/disk/work -ready /tmp/workload.ready -anon-mb $ANON -cache-mb 16 &
WPID=$!
n=0
while [ ! -f /tmp/workload.ready ]; do
	sleep 1; n=$((n+1)); [ $n -gt 1200 ] && die "workload not ready"
	kill -0 $WPID 2>/dev/null || die "workload exited"
done
say "fill: done"

T=/mnt/disk/truth
mkdir -p $T
uname -a > $T/uname
uname -r > $T/release
echo $WPID > $T/workload.pid
ps -o pid,ppid,stat,comm > $T/ps
cat /proc/meminfo > $T/meminfo
cat /proc/cmdline > $T/cmdline
date +%s > $T/date
sync
say "meminfo: $(grep -E '^(MemTotal|MemFree|Cached|AnonPages):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"

say "ready scenario=bench"
sh -c 'echo c > /proc/sysrq-trigger'
die "sysrq did not crash"
