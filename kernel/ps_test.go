package kernel

import "testing"

// TestStateCode checks crash's two-letter states (task_state_string in
// crash's task.c) for the kernel's state bits (include/linux/sched.h),
// including the combinations where crash's later tests win.
func TestStateCode(t *testing.T) {
	for _, c := range []struct {
		state uint64
		want  string
	}{
		{0, "RU"},
		{taskInterruptible, "IN"},
		{taskUninterruptible, "UN"},
		{taskUninterruptible | taskNoload, "ID"}, // TASK_IDLE
		{taskUninterruptible | taskWakekill, "UN"},
		{taskStopped, "ST"},
		{taskStopped | taskWakekill, "ST"}, // TASK_STOPPED
		{taskTraced, "TR"},
		{taskTraced | taskWakekill, "TR"},
		{exitZombie, "ZO"},
		{exitZombie | taskDead, "ZO"}, // a zombie's __state is TASK_DEAD
		{exitDead, "DE"},
		{exitDead | taskDead, "DE"},
		{taskDead, "DE"},
		{taskParked, "PA"},
		{taskWaking, "WA"},
		{taskNew, "NE"},
		{taskWakekill, "??"},
		{1 << 20, "??"},
	} {
		if got := StateCode(c.state); got != c.want {
			t.Errorf("StateCode(%#x) = %s, want %s", c.state, got, c.want)
		}
	}
}

// TestFieldDecode checks the little-endian, sign-aware decoding of
// task_struct fields, and that a field beyond the buffer or absent from
// the kernel reads as 0 instead of panicking.
func TestFieldDecode(t *testing.T) {
	b := []byte{0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x80}
	for _, c := range []struct {
		f    field
		u    uint64
		i    int64
		name string
	}{
		{field{0, 4, true}, 0xffffffff, -1, "int32 -1"},
		{field{4, 4, true}, 0x80000002, -2147483646, "int32 min+2"},
		{field{0, 8, true}, 0x80000002ffffffff, -9223372023969873921, "int64"},
		{field{6, 2, true}, 0x8000, -32768, "int16"},
		{field{7, 1, true}, 0x80, -128, "int8"},
		{field{6, 4, true}, 0, 0, "past the end"},
		{field{0, 3, true}, 0, 0, "odd size"},
		{field{0, 4, false}, 0, 0, "absent"},
	} {
		if u, i := c.f.uint(b), c.f.int(b); u != c.u || i != c.i {
			t.Errorf("%s: uint %#x int %d, want %#x %d", c.name, u, i, c.u, c.i)
		}
	}
}

// TestUptimeJiffiesWrap checks jiffies since boot from jiffies_64 before
// and after the 32-bit wrap that INITIAL_JIFFIES puts five minutes after
// boot.
func TestUptimeJiffiesWrap(t *testing.T) {
	// INITIAL_JIFFIES is -300*HZ as 32 bits: jiffies_64 starts just
	// below 2^32, so the first five minutes since boot read 0..300s.
	const hz = 250
	var initial uint64 = 1<<32 - 300*hz
	for _, c := range []struct{ j64, want uint64 }{
		{initial, 0},
		{initial + 23*hz, 23 * hz},
		{1 << 32, 300 * hz},             // the 32-bit wrap, five minutes in
		{1<<32 + 100*hz, 400 * hz},      // after it
		{1<<33 + 5, 1<<32 + 5 + 300*hz}, // a second wrap of the low word
	} {
		if got := uptimeFromJiffies64(c.j64, hz); got != c.want {
			t.Errorf("jiffies_64 %#x: %d jiffies since boot, want %d", c.j64, got, c.want)
		}
	}
}
