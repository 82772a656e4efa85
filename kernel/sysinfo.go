package kernel

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"salvage/debuginfo"
)

// HZ is the kernel's timer frequency (CONFIG_HZ). It is a macro, in no
// type information; tick_nsec (kernel/time/ntp.c) is NSEC_PER_SEC/HZ,
// give or take NTP's adjustment, so HZ is the standard value nearest
// 1e9/tick_nsec. Without tick_nsec it is 1000, crash's x86_64 default.
func (k *Kernel) HZ() int {
	a, err := k.SymbolAddr("tick_nsec")
	if err != nil {
		return 1000
	}
	ns, err := k.ReadUint(a, 8)
	if err != nil || ns == 0 {
		return 1000
	}
	hz := 1e9 / float64(ns)
	best, diff := 1000, math.Inf(1)
	for _, c := range []int{24, 32, 48, 64, 100, 128, 200, 250, 256, 300, 500, 1000, 1024, 1200} {
		if d := math.Abs(hz - float64(c)); d < diff {
			best, diff = c, d
		}
	}
	return best
}

// UptimeJiffies is the number of jiffies since boot: jiffies_64 less
// INITIAL_JIFFIES, which starts the 32-bit jiffies five minutes before
// wrapping (include/linux/jiffies.h). This is crash's get_uptime.
func (k *Kernel) UptimeJiffies(hz int) (uint64, error) {
	a, err := k.SymbolAddr("jiffies_64")
	if err != nil {
		return 0, err
	}
	j, err := k.ReadUint(a, 8)
	if err != nil {
		return 0, fmt.Errorf("jiffies_64: %w", err)
	}
	return uptimeFromJiffies64(j, hz), nil
}

// uptimeFromJiffies64 undoes INITIAL_JIFFIES (-300*HZ as 32 bits) the way
// crash's get_uptime does: once the low word has wrapped, the high word
// counts one wrap too many and the five minutes come back.
func uptimeFromJiffies64(j uint64, hz int) uint64 {
	if wrapped := j & 0xffffffff00000000; wrapped != 0 {
		return ((wrapped - 0x100000000) | (j & 0xffffffff)) + uint64(300*hz)
	}
	return j - uint64(uint32(int32(-300*hz)))
}

// Date is the wall-clock time of the dump in seconds since the epoch:
// the timekeeper's xtime_sec (tk_core.timekeeper, kernel/time/timekeeping.c;
// timekeeper_data[] since 6.13, whose first element has the same layout).
func (k *Kernel) Date() (int64, error) {
	base, err := k.SymbolAddr("tk_core")
	if err != nil {
		var err2 error
		if base, err2 = k.SymbolAddr("timekeeper_data"); err2 != nil {
			return 0, err
		}
	}
	ts, err := k.types()
	if err != nil {
		return 0, err
	}
	tk, err := ts.Struct("timekeeper")
	if err != nil {
		return 0, err
	}
	xs, err := lookupMember(tk, "xtime_sec")
	if err != nil {
		return 0, err
	}
	// tk_core is a static anonymous struct { seqcount_raw_spinlock_t seq;
	// struct timekeeper timekeeper; }: with DWARF its type says where
	// timekeeper is; BTF does not describe it, so place timekeeper after
	// seq at timekeeper's alignment (8: it holds u64s).
	var tkOff int64 = -1
	if t, err := ts.Var("tk_core"); err == nil {
		if mp, err := lookupMember(t, "timekeeper"); err == nil {
			tkOff = mp.Offset
		}
	}
	if tkOff < 0 {
		seq, err := ts.Named("seqcount_raw_spinlock_t")
		if err != nil {
			return 0, fmt.Errorf("tk_core: %w", err)
		}
		tkOff = (sizeOf(seq) + 7) &^ 7
	}
	v, err := k.ReadUint(base+uint64(tkOff+xs.Offset), 8)
	if err != nil {
		return 0, fmt.Errorf("tk_core.timekeeper.xtime_sec: %w", err)
	}
	return int64(v), nil
}

// LoadAverage is avenrun[3] (kernel/sched/loadavg.c): fixed-point with
// FSHIFT 11 fractional bits.
func (k *Kernel) LoadAverage() ([3]uint64, error) {
	var out [3]uint64
	a, err := k.SymbolAddr("avenrun")
	if err != nil {
		return out, err
	}
	for i := range out {
		if out[i], err = k.ReadUint(a+uint64(8*i), 8); err != nil {
			return out, fmt.Errorf("avenrun[%d]: %w", i, err)
		}
	}
	return out, nil
}

// CPUKHz is cpu_khz (arch/x86/kernel/tsc.c), the measured CPU clock; 0
// when the kernel has none.
func (k *Kernel) CPUKHz() (uint64, error) {
	a, err := k.SymbolAddr("cpu_khz")
	if err != nil {
		return 0, err
	}
	return k.ReadUint(a, 4)
}

// MemoryBytes is the sum of every node's present pages
// (pglist_data.node_present_pages of node_data[0..nr_node_ids)), as
// crash's total_node_memory sums its node table. On a kernel built
// without NUMA (no node_data), it is contig_page_data's.
func (k *Kernel) MemoryBytes() (uint64, error) {
	ts, err := k.types()
	if err != nil {
		return 0, err
	}
	pg, err := ts.Struct("pglist_data")
	if err != nil {
		return 0, err
	}
	present, err := lookupMember(pg, "node_present_pages")
	if err != nil {
		return 0, err
	}
	var nodes []uint64
	if nd, err := k.SymbolAddr("node_data"); err == nil {
		n := 1
		if a, err := k.SymbolAddr("nr_node_ids"); err == nil {
			if v, err := k.ReadUint(a, 4); err == nil && v > 0 && v <= 1<<10 {
				n = int(v)
			}
		}
		for i := 0; i < n; i++ {
			p, err := k.ReadPointer(nd + uint64(8*i))
			if err != nil {
				return 0, fmt.Errorf("node_data[%d]: %w", i, err)
			}
			if p != 0 {
				nodes = append(nodes, p)
			}
		}
	} else if a, err := k.SymbolAddr("contig_page_data"); err == nil {
		nodes = append(nodes, a)
	} else {
		return 0, errors.New("neither node_data nor contig_page_data is in the symbols")
	}
	var total uint64
	for _, n := range nodes {
		v, err := k.ReadUint(n+uint64(present.Offset), 8)
		if err != nil {
			return 0, fmt.Errorf("pglist_data at %#x: node_present_pages: %w", n, err)
		}
		total += v << 12
	}
	return total, nil
}

// TaintedMask is tainted_mask (kernel/panic.c).
func (k *Kernel) TaintedMask() (uint64, error) {
	a, err := k.SymbolAddr("tainted_mask")
	if err != nil {
		return 0, err
	}
	return k.ReadUint(a, 8)
}

// TaintFlags spells a taint mask as the kernel's taint_flags[] table
// does (struct taint_flag { char c_true, c_false; bool module; },
// kernel/panic.c; one entry per bit): the c_true letter of each set bit,
// and the c_false letter of each clear one unless it is ' ', '-' or 'G'
// (crash's show_kernel_taints). The table's length comes from its
// DWARF type or, with BTF, its symbol's size, checked entry by entry.
func (k *Kernel) TaintFlags(mask uint64) (string, error) {
	if k.Symbols == nil {
		return "", errors.New("no symbol table to find taint_flags in")
	}
	sym, ok := k.Symbols.Lookup("taint_flags")
	if !ok {
		return "", errors.New("taint_flags is not in the symbols")
	}
	// struct taint_flag is { char c_true, c_false; bool module; } (3
	// bytes) in 6.1; 6.12 adds const char *desc (16 bytes). Its size
	// comes from the types when they have it (BTF often lacks it), else
	// from the table itself.
	entry, n := 0, 0
	if ts, err := k.types(); err == nil {
		if t, err := ts.Var("taint_flags"); err == nil {
			if r := t.Resolve(); r != nil && r.Len > 0 && r.Elem != nil && sizeOf(r.Elem) > 0 {
				n, entry = int(r.Len), int(sizeOf(r.Elem))
			}
		}
	}
	checked := false
	if entry == 0 {
		var err error
		if entry, err = k.taintFlagStride(sym.Addr); err != nil {
			return "", err
		}
		n = int(sym.Size) / entry
		checked = true
	}
	if n <= 0 || n > 64 {
		n = 64
		checked = true
	}
	b := make([]byte, n*entry)
	if err := k.Read(b, sym.Addr); err != nil {
		return "", fmt.Errorf("taint_flags: %w", err)
	}
	var out []byte
	for i := 0; i < n; i++ {
		t, f := b[i*entry], b[i*entry+1]
		if checked && (t < 'A' || t > 'Z') {
			break
		}
		if mask&(1<<uint(i)) != 0 {
			out = append(out, t)
		} else if f != ' ' && f != '-' && f != 'G' {
			out = append(out, f)
		}
	}
	return string(out), nil
}

// taintFlagStride finds the size of a taint_flags entry from the table's
// first flags, which every kernel since 2.6 spells P, F, S
// (TAINT_PROPRIETARY_MODULE, TAINT_FORCED_MODULE, TAINT_CPU_OUT_OF_SPEC).
func (k *Kernel) taintFlagStride(addr uint64) (int, error) {
	const maxStride = 32
	b := make([]byte, 2*maxStride+1)
	if err := k.Read(b, addr); err != nil {
		return 0, fmt.Errorf("taint_flags: %w", err)
	}
	if b[0] != 'P' {
		return 0, fmt.Errorf("taint_flags at %#x does not start with the P flag (%q)", addr, b[0])
	}
	for s := 3; s <= maxStride; s++ {
		if b[s] == 'F' && b[2*s] == 'S' {
			return s, nil
		}
	}
	return 0, fmt.Errorf("taint_flags at %#x: no entry size of 3–%d bytes reads P, F, S", addr, maxStride)
}

// CPUsPresent counts __cpu_present_mask; CPUsOnline __cpu_online_mask.
func (k *Kernel) CPUsPresent() (int, error) { return k.cpumaskWeight("__cpu_present_mask") }

// CPUsOnline counts the CPUs in __cpu_online_mask.
func (k *Kernel) CPUsOnline() (int, error) { return k.cpumaskWeight("__cpu_online_mask") }

func (k *Kernel) cpumaskWeight(name string) (int, error) {
	a, err := k.SymbolAddr(name)
	if err != nil {
		return 0, err
	}
	n, err := k.NrCPUIDs()
	if err != nil {
		return 0, err
	}
	w := 0
	for i := 0; i < (n+63)/64; i++ {
		v, err := k.ReadUint(a+uint64(8*i), 8)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if rem := n - 64*i; rem < 64 {
			v &= 1<<uint(rem) - 1
		}
		w += bits.OnesCount64(v)
	}
	return w, nil
}

// PanicCPU is the CPU that panicked: panic_cpu (kernel/panic.c, -1 when
// none did) or, failing that, crashing_cpu (the kdump path of
// arch/x86/kernel/reboot.c). ok is false when neither names a CPU, as
// in a dump of a live system.
func (k *Kernel) PanicCPU() (cpu int, ok bool) {
	for _, name := range []string{"panic_cpu", "crashing_cpu"} {
		a, err := k.SymbolAddr(name)
		if err != nil {
			continue
		}
		v, err := k.ReadUint(a, 4)
		if err != nil {
			continue
		}
		if c := int(int32(v)); c >= 0 {
			if n, err := k.NrCPUIDs(); err == nil && c < n {
				return c, true
			}
		}
	}
	return -1, false
}

// PanickedTask is the address of the task that panicked: the running
// task (runqueues.curr) of PanicCPU; 0 when no CPU panicked.
func (k *Kernel) PanickedTask() uint64 {
	active := k.runningTasks()
	if cpu, ok := k.PanicCPU(); ok && cpu < len(active) && active[cpu] != 0 {
		return active[cpu]
	}
	return 0
}

// DMIField is one string of the firmware's DMI table the kernel kept
// (drivers/firmware/dmi_scan.c: dmi_ident[], indexed by enum dmi_field).
type DMIField struct {
	Name  string // the enumerator: "DMI_BIOS_VENDOR"
	Value string
	Set   bool // dmi_ident[i] is not NULL
}

// DMI reads dmi_ident[] with the names of enum dmi_field, in the enum's
// order, up to the array's length (its DWARF type, or DMI_STRING_MAX
// with BTF, which does not describe the variable).
func (k *Kernel) DMI() ([]DMIField, error) {
	a, err := k.SymbolAddr("dmi_ident")
	if err != nil {
		return nil, fmt.Errorf("dmi_ident does not exist in this kernel: %w", err)
	}
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	enum, err := ts.Enum("dmi_field")
	if err != nil {
		return nil, err
	}
	n := int64(-1)
	if t, err := ts.Var("dmi_ident"); err == nil {
		if r := t.Resolve(); r != nil && r.Kind == debuginfo.KindArray && r.Len > 0 {
			n = r.Len
		}
	}
	if n < 0 {
		for _, e := range enum.Enums {
			if e.Name == "DMI_STRING_MAX" {
				n = e.Value
			}
		}
	}
	if n <= 0 || n > 256 {
		return nil, errors.New("dmi_ident: cannot tell its length (no DWARF type, no DMI_STRING_MAX)")
	}
	var out []DMIField
	for _, e := range enum.Enums {
		if e.Value < 0 || e.Value >= n {
			break // crash stops at the first name past the array
		}
		f := DMIField{Name: e.Name}
		p, err := k.ReadPointer(a + uint64(8*e.Value))
		if err != nil {
			return nil, fmt.Errorf("dmi_ident[%d]: %w", e.Value, err)
		}
		if p != 0 {
			f.Set = true
			if f.Value, err = k.ReadCString(p, 1024); err != nil {
				return nil, fmt.Errorf("dmi_ident[%d] (%s): %w", e.Value, e.Name, err)
			}
		}
		out = append(out, f)
	}
	return out, nil
}
