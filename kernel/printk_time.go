package kernel

import (
	"errors"
	"fmt"
)

// LogBootTime is the boot time, in seconds since the epoch, that crash's
// log -T adds each message's timestamp to: crash's kt->boot_date (task.c,
// task_init), the timekeeper's xtime_sec at the crash (get_xtime in
// kernel.c: the variable timekeeper, else shadow_timekeeper, which the
// kernel copies tk_core.timekeeper from) less the uptime in whole seconds
// that jiffies_64 gives (get_uptime, which removes INITIAL_JIFFIES).
// records serve to tell the kernel's HZ, which the dump does not record
// (crash reads it from the vmlinux's DWARF or the in-kernel config).
func (k *Kernel) LogBootTime(records []LogRecord) (int64, error) {
	xtime, err := k.logXtimeSec()
	if err != nil {
		return 0, fmt.Errorf("wall-clock time of the crash: %w", err)
	}
	ja, err := k.SymbolAddr("jiffies_64")
	if err != nil {
		return 0, err
	}
	j, err := k.ReadUint(ja, 8)
	if err != nil {
		return 0, fmt.Errorf("jiffies_64: %w", err)
	}
	var lastNS uint64
	for _, r := range records {
		if r.TimeNS > lastNS {
			lastNS = r.TimeNS
		}
	}
	hz := logGuessHZ(j, lastNS)
	return int64(xtime) - int64(logUptimeJiffies(j, hz)/hz), nil
}

// logXtimeSec reads timekeeper.xtime_sec as crash's get_xtime does.
func (k *Kernel) logXtimeSec() (uint64, error) {
	ts, err := k.types()
	if err != nil {
		return 0, err
	}
	t, err := ts.Struct("timekeeper")
	if err != nil {
		return 0, err
	}
	mp, err := lookupMember(t, "xtime_sec")
	if err != nil {
		return 0, err
	}
	for _, name := range []string{"timekeeper", "shadow_timekeeper"} {
		if a, err := k.SymbolAddr(name); err == nil {
			return k.ReadUint(a+uint64(mp.Offset), 8)
		}
	}
	return 0, errors.New("neither timekeeper nor shadow_timekeeper is a known symbol")
}

// logUptimeJiffies is jiffies_64 less INITIAL_JIFFIES (include/linux/
// jiffies.h: (unsigned long)(unsigned int)(-300*HZ), which makes the
// 32-bit jiffies wrap five minutes after boot), computed as crash's
// get_uptime does.
func logUptimeJiffies(j uint64, hz uint64) uint64 {
	if wrapped := j & 0xffffffff00000000; wrapped != 0 {
		wrapped -= 0x100000000
		return ((j & 0xffffffff) | wrapped) + 300*hz
	}
	return j - uint64(uint32(-int64(300*hz)))
}

// logGuessHZ picks the HZ among the kernel's choices (CONFIG_HZ_100,
// 250, 300, 1000) whose uptime from jiffies is nearest the newest
// message's timestamp (local_clock, which starts near boot too).
func logGuessHZ(j, lastNS uint64) uint64 {
	best, bestDiff := uint64(250), float64(-1)
	for _, hz := range []uint64{100, 250, 300, 1000} {
		up := float64(logUptimeJiffies(j, hz)) / float64(hz)
		d := up - float64(lastNS)/1e9
		if d < 0 {
			d = -d
		}
		if bestDiff < 0 || d < bestDiff {
			best, bestDiff = hz, d
		}
	}
	return best
}
