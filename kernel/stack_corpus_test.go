package kernel

import (
	"bufio"
	"debug/elf"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"salvage/arch/amd64"
	"salvage/debuginfo"
	"salvage/dump"
	"salvage/lab/corpus"
)

// stackModes opens a corpus dump's kernel with the debug vmlinux (ELF
// symbols, DWARF types) or without it (kallsyms and BTF from the dump).
var stackModes = []struct {
	name string
	open func(t testing.TB, m *corpus.Manifest, d corpus.Dump) *Kernel
}{
	{"vmlinux", openTypedKernel},
	{"btf", openBTFKernel},
}

func openBTFKernel(t testing.TB, m *corpus.Manifest, d corpus.Dump) *Kernel {
	t.Helper()
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	t.Cleanup(func() { f.Close() })
	k, err := Open(f, Options{})
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	return k
}

// oneDumpPerCrash is the unfiltered dump of each crash: the ones whose
// every page is there.
func oneDumpPerCrash(m *corpus.Manifest) []corpus.Dump {
	return m.Select(func(d corpus.Dump) bool { return d.Variant == "vmcore-elf" || d.Variant == "qemu-elf" })
}

// TestORCTableMatchesVmlinux checks the ORC table the unwinder reads from
// the dump's memory against the debug vmlinux's .orc_unwind_ip and
// .orc_unwind sections, relocated by the dump's KASLR offset: every
// address and every decoded entry, in both modes.
func TestORCTableMatchesVmlinux(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range oneDumpPerCrash(m) {
		for _, mode := range stackModes {
			t.Run(mode.name+"/"+d.ID, func(t *testing.T) {
				k := mode.open(t, m, d)
				st, err := k.stacks()
				if err != nil {
					t.Fatal(err)
				}
				mem := st.unw.(*amd64.Unwinder).Tables[0]
				file := vmlinuxORCSections(t, m.Path(m.Kernel(d.Release).DebugVmlinux), vmlinuxORCLayout(t, m, d))
				kaslr, err := debuginfo.KASLROffset(k.Dump.VMCoreInfo, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(mem.IPs) != len(file.IPs) {
					t.Fatalf("memory's table has %d entries, the vmlinux's %d", len(mem.IPs), len(file.IPs))
				}
				bad := 0
				for i := range mem.IPs {
					if mem.IPs[i] != file.IPs[i]+kaslr.Offset || mem.Entries[i] != file.Entries[i] {
						if bad++; bad < 5 {
							t.Errorf("entry %d: memory %#x %+v, vmlinux %#x %+v", i, mem.IPs[i], mem.Entries[i], file.IPs[i]+kaslr.Offset, file.Entries[i])
						}
					}
				}
				if bad > 0 {
					t.Errorf("%d of %d entries differ", bad, len(mem.IPs))
				}
				t.Logf("%d ORC entries identical to the vmlinux's; %d module tables", len(mem.IPs), len(st.unw.(*amd64.Unwinder).Tables)-1)
			})
		}
	}
}

// vmlinuxORCLayout is struct orc_entry as the dump's debug vmlinux
// declares it.
func vmlinuxORCLayout(t *testing.T, m *corpus.Manifest, d corpus.Dump) amd64.ORCLayout {
	t.Helper()
	typ, err := openTypedKernel(t, m, d).Types.Struct("orc_entry")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ORCLayoutOf(typ)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func vmlinuxORCSections(t *testing.T, path string, l amd64.ORCLayout) *amd64.ORCTable {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ipSec, orcSec := f.Section(".orc_unwind_ip"), f.Section(".orc_unwind")
	if ipSec == nil || orcSec == nil {
		t.Fatalf("%s has no ORC sections", path)
	}
	ip, err := ipSec.Data()
	if err != nil {
		t.Fatal(err)
	}
	orc, err := orcSec.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := amd64.ParseORC("vmlinux", ip, ipSec.Addr, orc, l)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// labORCLayouts are struct orc_entry of the lab's kernels, by the lab's
// name of each: 6.1's (type:2, end:1) and 6.12's (type:3 with the 6.4+
// numbering, signal:1), as arch/x86/include/asm/orc_types.h declares them.
var labORCLayouts = map[string]amd64.ORCLayout{
	"6.1": amd64.DefaultORCLayout,
	"6.12": {
		Size: 6, SPOffset: 0, BPOffset: 2,
		SPReg: amd64.ORCBitfield{Offset: 4, Bit: 0, Size: 4}, BPReg: amd64.ORCBitfield{Offset: 4, Bit: 4, Size: 4},
		Type: amd64.ORCBitfield{Offset: 4, Bit: 8, Size: 3}, Signal: amd64.ORCBitfield{Offset: 4, Bit: 11, Size: 1},
		UndefinedEndOfStack: true,
	},
}

// TestORCLayoutFromTypes reads struct orc_entry from DWARF and from BTF
// on a dump of each lab kernel: both must give that kernel's layout.
func TestORCLayoutFromTypes(t *testing.T) {
	m := corpus.Require(t)
	seen := map[string]bool{}
	for _, d := range oneDumpPerCrash(m) {
		if seen[d.Release] {
			continue
		}
		seen[d.Release] = true
		name := m.Kernel(d.Release).Name
		if name == "" {
			name = "6.1" // a manifest from before kernels had names
		}
		want, ok := labORCLayouts[name]
		if !ok {
			t.Errorf("%s: no known ORC layout for lab kernel %q", d.ID, name)
			continue
		}
		for _, mode := range stackModes {
			k := mode.open(t, m, d)
			l, err := k.orcLayout()
			if err != nil {
				t.Fatalf("%s %s: %v", d.ID, mode.name, err)
			}
			if l != want {
				t.Errorf("%s %s: layout %+v, want %s's %+v", d.ID, mode.name, l, name, want)
			}
		}
	}
}

// outermost are the functions a complete walk of a 6.1 or 6.12 x86_64 kernel
// stack ends in: a kernel thread's ret_from_fork, a user task's system
// call entry, an idle task's boot entry; and the interrupt or exception
// entries that stopped a user task in user mode.
var outermost = map[string]bool{
	"ret_from_fork":                  true,
	"entry_SYSCALL_64_after_hwframe": true,
	"secondary_startup_64_no_verify": true,
	// 6.12's names: ret_from_fork's assembly entry (6.7+) and the idle
	// tasks' common startup path (arch/x86/kernel/head_64.S, 6.9+).
	"ret_from_fork_asm":               true,
	"common_startup_64":               true,
	"asm_sysvec_apic_timer_interrupt": true,
	"asm_exc_page_fault":              true,
	"asm_common_interrupt":            true,
	"asm_sysvec_reschedule_ipi":       true,
}

// TestBacktraceEveryTask unwinds every task of every dump in both modes:
// each walk must reach the outermost frame without error; the running
// tasks are one per CPU and exactly one panicked (none in a dump of a
// live machine); and every task the guest's own ps saw sleeping (S, D, I)
// starts in __schedule.
func TestBacktraceEveryTask(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		for _, mode := range stackModes {
			t.Run(mode.name+"/"+d.ID, func(t *testing.T) {
				k := mode.open(t, m, d)
				sleeping := guestSleepers(t, m, d)
				n, active, panics, checked := 0, 0, 0, 0
				for task, err := range k.Tasks() {
					if err != nil {
						t.Fatal(err)
					}
					n++
					bt, err := k.Backtrace(task)
					if err != nil {
						t.Errorf("task %#x: %v", task.Address(), err)
						continue
					}
					if bt.Err != nil {
						t.Errorf("PID %d (%s): %v", bt.PID, bt.Comm, bt.Err)
					}
					if len(bt.Frames) == 0 {
						t.Errorf("PID %d: no frames", bt.PID)
						continue
					}
					last := bt.Frames[len(bt.Frames)-1]
					if !outermost[last.Symbol] && !(last.Exception != nil && last.Exception.User) {
						t.Errorf("PID %d (%s): the walk ends in %s at %#x", bt.PID, bt.Comm, last.Symbol, last.PC)
					}
					if bt.Active {
						active++
					}
					if bt.Panic {
						panics++
					}
					if sleeping[bt.PID] && !bt.Active {
						checked++
						if bt.Frames[0].Symbol != "__schedule" {
							t.Errorf("PID %d (%s) slept in the guest but its walk starts in %s", bt.PID, bt.Comm, bt.Frames[0].Symbol)
						}
					}
				}
				ncpu, err := k.NrCPUIDs()
				if err != nil {
					t.Fatal(err)
				}
				if active != ncpu {
					t.Errorf("%d running tasks on %d CPUs", active, ncpu)
				}
				wantPanics := 1
				if d.Scenario == "live" {
					wantPanics = 0
				}
				if panics != wantPanics {
					t.Errorf("%d panic tasks, want %d", panics, wantPanics)
				}
				if checked == 0 {
					t.Errorf("no task was checked against the guest's ps")
				}
				t.Logf("%d tasks unwound to the end; %d checked sleeping against the guest's ps", n, checked)
			})
		}
	}
}

// guestSleepers reads the guest's ps (PID PPID STAT COMMAND) from the
// truth directory: the PIDs whose state was S, D or I.
func guestSleepers(t *testing.T, m *corpus.Manifest, d corpus.Dump) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	sc := bufio.NewScanner(strings.NewReader(truthFile(t, m, d, "ps")))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		pid, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		// The ps that wrote the file, and the shell around it, were
		// running; the others sleep unless ps says R.
		if strings.ContainsAny(fs[2][:1], "SDI") && !strings.Contains(sc.Text(), " ps") {
			out[pid] = true
		}
	}
	return out
}

// TestBacktraceOfWorkload checks bt of the guest's workload process (its
// PID from the guest's truth) in the kernel API: the task found by PID,
// blocked in a system call.
func TestBacktraceOfWorkload(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range oneDumpPerCrash(m) {
		for _, mode := range stackModes {
			t.Run(mode.name+"/"+d.ID, func(t *testing.T) {
				k := mode.open(t, m, d)
				pid, err := strconv.ParseInt(strings.TrimSpace(truthFile(t, m, d, "workload.pid")), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				var found bool
				for task, err := range k.Tasks() {
					if err != nil {
						t.Fatal(err)
					}
					v, _ := task.Member("pid")
					if p, _ := v.Int(); p != pid {
						continue
					}
					found = true
					bt, err := k.Backtrace(task)
					if err != nil || bt.Err != nil {
						t.Fatalf("workload %d: %v %v", pid, err, bt.Err)
					}
					var names []string
					for _, f := range bt.Frames {
						names = append(names, f.Symbol)
					}
					s := strings.Join(names, " ")
					if !strings.HasPrefix(s, "__schedule schedule") || !strings.Contains(s, "do_syscall_64 entry_SYSCALL_64_after_hwframe") {
						t.Errorf("workload %d: %s", pid, s)
					}
					last := bt.Frames[len(bt.Frames)-1].Exception
					if last == nil || !last.User || last.Regs[amd64.RegCS] != 0x33 {
						t.Errorf("workload %d: the walk does not end in the user registers: %+v", pid, last)
					}
				}
				if !found {
					t.Errorf("no task has the workload's PID %d", pid)
				}
			})
		}
	}
}

// BenchmarkBacktraceAllTasks unwinds every task of the sysrq crash's
// unfiltered dump, with the stack state already read.
func BenchmarkBacktraceAllTasks(b *testing.B) {
	m := corpus.Require(b)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "sysrq" && d.Variant == "vmcore-elf" })
	if len(ds) == 0 {
		b.Fatal("no sysrq vmcore-elf dump")
	}
	k := openBTFKernel(b, m, ds[0])
	var tasks []Value
	for t, err := range k.Tasks() {
		if err != nil {
			b.Fatal(err)
		}
		tasks = append(tasks, t)
	}
	if _, err := k.stacks(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, t := range tasks {
			if _, err := k.Backtrace(t); err != nil {
				b.Fatal(fmt.Sprint(err))
			}
		}
	}
}

// TestORCLayout612 reads struct orc_entry from the DWARF of Debian's
// 6.12 kernel (the lab fetches its debug vmlinux), whose type field grew
// to 3 bits with a new numbering, and decodes that vmlinux's ORC table
// with it: every entry must be one of the five types, functions must
// start with a call frame (CFA sp+8), and the outermost frames must be
// there — the checks a wrong numbering fails.
func TestORCLayout612(t *testing.T) {
	m := corpus.Require(t)
	var path string
	for _, k := range m.Kernels {
		if strings.HasPrefix(k.Release, "6.12.") {
			path = m.Path(k.DebugVmlinux)
		}
	}
	if path == "" {
		t.Fatal("the corpus has no 6.12 kernel's debug vmlinux")
	}
	ts, err := debuginfo.LoadDWARF(path)
	if err != nil {
		t.Fatal(err)
	}
	typ, err := ts.Struct("orc_entry")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ORCLayoutOf(typ)
	if err != nil {
		t.Fatal(err)
	}
	if !l.UndefinedEndOfStack || l.Type.Size != 3 || l.Signal.Size != 1 || l.End.Size != 0 {
		t.Fatalf("6.12 layout %+v: want a 3-bit type and a signal bit", l)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ipSec, orcSec := f.Section(".orc_unwind_ip"), f.Section(".orc_unwind")
	ip, err := ipSec.Data()
	if err != nil {
		t.Fatal(err)
	}
	orc, err := orcSec.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := amd64.ParseORC("vmlinux-6.12", ip, ipSec.Addr, orc, l)
	if err != nil {
		t.Fatal(err)
	}
	count := map[amd64.ORCType]int{}
	for _, e := range tab.Entries {
		count[e.Type]++
	}
	if count[amd64.ORCCall] < len(tab.Entries)/2 || count[amd64.ORCEndOfStack] == 0 || count[amd64.ORCRegs] == 0 || count[amd64.ORCUndefined] == 0 {
		t.Errorf("entry types %v of %d: not what a kernel's table holds", count, len(tab.Entries))
	}
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	checked, bad := 0, 0
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Size == 0 || s.Name != "vfs_write" && s.Name != "ksys_write" && s.Name != "panic" && s.Name != "schedule" && s.Name != "do_idle" {
			continue
		}
		checked++
		// At a function's first instruction the return address is at
		// the stack pointer: CFA = sp+8, a call frame.
		e, ok := tab.Lookup(s.Value)
		if !ok || e.Type != amd64.ORCCall || e.SPOffset != 8 {
			bad++
			t.Errorf("%s at %#x: entry %+v %v, want a call frame with sp+8", s.Name, s.Value, e, ok)
		}
	}
	if checked < 5 {
		t.Errorf("checked %d functions' entries, want 5", checked)
	}
	t.Logf("6.12: %d entries %v; %d function entries checked", len(tab.Entries), count, checked)
}
