package analyze

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"salvage/kernel"
)

// crashHZ is a known difference of crash 8.0.6 on the lab's 6.12 dumps:
// there it takes HZ to be 1000 (its help -m says "hz: 1000"), where the
// kernel's is 250 (CONFIG_HZ, and tick_nsec in the dump, which salvage
// reads). Every time crash derives from jiffies is then off: UPTIME, and
// log -T's dates, which count from a boot time of the dump's date less
// that uptime. The difference is not loosened: crashHZ computes what
// crash prints with HZ 1000 from the dump's jiffies_64, and the tests
// accept exactly that.
type crashHZ struct {
	trueSecs, crashSecs uint64 // uptime: the kernel's, and crash's with HZ 1000
	crashJiffies        uint64 // crash's jiffies since boot, with HZ 1000
}

// crashHZOf reads the session kernel's uptime both ways; ok is false when
// they agree (the kernel's HZ is 1000, or crash got it right).
func crashHZOf(t testing.TB, k *kernel.Kernel) (crashHZ, bool) {
	t.Helper()
	hz := k.HZ()
	up, err := k.UptimeJiffies(hz)
	if err != nil {
		t.Fatal(err)
	}
	// jiffies_64 started at INITIAL_JIFFIES, (u32)(-300*HZ); the lab's
	// guests crash long before it wraps 32 bits, where crash's
	// get_uptime() then simply subtracts its own INITIAL_JIFFIES.
	raw := up + uint64(uint32(-300*int32(hz)))
	if raw>>32 != 0 {
		t.Fatalf("jiffies_64 %#x has wrapped 32 bits: crashHZ does not model that", raw)
	}
	const initialJiffies1000 = 1<<32 - 300*1000 // (u32)(-300*1000)
	c := crashHZ{trueSecs: up / uint64(hz), crashSecs: (raw - initialJiffies1000) / 1000, crashJiffies: raw - initialJiffies1000}
	return c, hz != 1000 && c.crashSecs != c.trueSecs
}

// crashUptimeString formats seconds as crash's sys does below a day.
func crashUptimeString(secs uint64) string {
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

// sysText is want (crash's sys) with its UPTIME as the kernel's: the rest
// must then be identical.
func (c crashHZ) sysText(want string) string {
	return strings.Replace(want, "      UPTIME: "+crashUptimeString(c.crashSecs)+"\n", "      UPTIME: "+crashUptimeString(c.trueSecs)+"\n", 1)
}

// logT shifts the dates of crash's log -T (and -Tm…) lines by the error
// in crash's uptime: the lines salvage prints.
func (c crashHZ) logT(t testing.TB, want string) string {
	t.Helper()
	shift := time.Duration(int64(c.crashSecs)-int64(c.trueSecs)) * time.Second
	lines := strings.SplitAfter(want, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "[") {
			continue
		}
		end := strings.IndexByte(l, ']')
		if end < 0 {
			continue
		}
		ts, err := time.Parse(time.UnixDate, l[1:end])
		if err != nil {
			continue // a continuation line, or no date
		}
		lines[i] = "[" + ts.Add(shift).Format(time.UnixDate) + l[end:]
	}
	return strings.Join(lines, "")
}

// psT rewrites the RUN TIME lines of salvage's ps -t as crash computes
// them with HZ 1000: its jiffies since boot less the task's START TIME
// in whole seconds times 1000 (runTime with crash's numbers).
func (c crashHZ) psT(got string) string {
	lines := strings.SplitAfter(got, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "    RUN TIME: ") {
			continue
		}
		var start uint64
		if _, err := fmt.Sscanf(lines[i+1], "  START TIME: %d", &start); err != nil {
			continue
		}
		lines[i] = "    RUN TIME: " + runTime(start, c.crashJiffies, 1000) + "\n"
	}
	return strings.Join(lines, "")
}
