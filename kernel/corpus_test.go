package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"salvage/arch/amd64"
	"salvage/debuginfo"
	"salvage/dump"
	"salvage/lab/corpus"
)

// vmlinuxSyms caches each release's ELF symbols at link-time addresses.
var vmlinuxSyms sync.Map // path → *debuginfo.Table

// openKernel opens a corpus dump with the debug vmlinux's symbols (and no
// types: the typed tests load them separately).
func openKernel(t testing.TB, m *corpus.Manifest, d corpus.Dump) *Kernel {
	t.Helper()
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	t.Cleanup(func() { f.Close() })
	kern := m.Kernel(d.Release)
	if kern == nil {
		t.Fatalf("corpus has no kernel %s", d.Release)
	}
	path := m.Path(kern.DebugVmlinux)
	kaslr, err := debuginfo.KASLROffset(f.VMCoreInfo, nil)
	if err != nil {
		t.Fatal(err)
	}
	syms, err := debuginfo.LoadELFSymbols(path, kaslr.Offset)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := amd64.NewFromFile(f, func(n string) (uint64, bool) {
		s, ok := syms.Lookup(n)
		return s.Addr, ok
	})
	if err != nil {
		t.Fatalf("%s: %v", d.ID, err)
	}
	k, err := New(f, syms, nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func truthFile(t testing.TB, m *corpus.Manifest, d corpus.Dump, name string) string {
	t.Helper()
	if d.Truth == "" {
		t.Fatalf("%s: the corpus has no guest truth", d.ID)
	}
	b, err := os.ReadFile(filepath.Join(m.Path(d.Truth), name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestUTSNameMatchesGuest reads init_uts_ns from every dump and compares
// it with `uname -a` run in the guest before the crash, and with crash's
// sys.
func TestUTSNameMatchesGuest(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			k := openKernel(t, m, d)
			u, err := k.UTSName()
			if err != nil {
				t.Fatal(err)
			}
			// "Linux salvage-lab 6.1.0-56-cloud-amd64 #1 SMP … x86_64 GNU/Linux"
			uname := strings.TrimSuffix(truthFile(t, m, d, "uname"), " GNU/Linux")
			want := u.Sysname + " " + u.Nodename + " " + u.Release + " " + u.Version + " " + u.Machine
			if uname != want {
				t.Errorf("init_uts_ns: %q\nguest uname: %q", want, uname)
			}
			if u.Release != d.Release {
				t.Errorf("release %q, corpus says %q", u.Release, d.Release)
			}
			sys, ok, err := m.Ref(d, "sys")
			if !ok && err == nil {
				// crash 8.0.6 cannot read some QEMU dumps; 8.0.2 can.
				sys, ok, err = m.Ref(d, "crash-8.0.2:sys")
			}
			if err != nil || !ok {
				t.Fatalf("no sys reference from crash: %v %v", err, d.RefErrors["sys"])
			}
			for _, kv := range [][2]string{{"RELEASE", u.Release}, {"NODENAME", u.Nodename}, {"VERSION", u.Version}, {"MACHINE", u.Machine}} {
				if !strings.Contains(sys, kv[0]+": "+kv[1]) {
					t.Errorf("crash sys lacks %s: %s", kv[0], kv[1])
				}
			}
		})
	}
}

// TestPerCPU checks per-CPU addressing with variables whose value is
// known: x86's cpu_number holds the CPU's number and this_cpu_off its
// per-CPU offset.
func TestPerCPU(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			k := openTypedKernel(t, m, d) // types for pcpu_hot, when it holds cpu_number
			n, err := k.NrCPUIDs()
			if err != nil || n < 1 {
				t.Fatalf("nr_cpu_ids %d: %v", n, err)
			}
			if n != k.Dump.CPUs {
				t.Logf("nr_cpu_ids %d, dump has %d CPUs", n, k.Dump.CPUs)
			}
			for cpu := 0; cpu < n; cpu++ {
				a, err := k.PerCPUAddr("cpu_number", cpu)
				if err != nil {
					// 6.2+ keeps it in struct pcpu_hot (arch/x86/include/asm/current.h).
					v, herr := k.PerCPU("pcpu_hot", cpu)
					if herr != nil {
						t.Fatalf("%v; %v", err, herr)
					}
					cn, merr := v.Member("cpu_number")
					if merr != nil {
						t.Fatal(merr)
					}
					a = cn.Address()
				}
				got, err := k.ReadUint(a, 4)
				if err != nil || got != uint64(cpu) {
					t.Errorf("cpu_number of CPU %d at %#x = %d, %v", cpu, a, got, err)
				}
				off, _ := k.PerCPUOffset(cpu)
				a, _ = k.PerCPUAddr("this_cpu_off", cpu)
				got, err = k.ReadPointer(a)
				if err != nil || got != off {
					t.Errorf("this_cpu_off of CPU %d = %#x, %v; __per_cpu_offset says %#x", cpu, got, err, off)
				}
			}
			if _, err := k.PerCPUOffset(n); err == nil {
				t.Errorf("CPU %d (= nr_cpu_ids) has an offset", n)
			}
		})
	}
}

// TestCheckMatch compares the corpus vmlinux with every dump (a match),
// then with altered identities: another build ID, another build of the
// same release, another release (a 5.10 banner, as Debian 11's
// cloud kernel prints it).
func TestCheckMatch(t *testing.T) {
	m := corpus.Require(t)
	ids := map[string]Identity{}
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			id, ok := ids[d.Release]
			if !ok {
				var err error
				id, err = VmlinuxIdentity(m.Path(m.Kernel(d.Release).DebugVmlinux))
				if err != nil {
					t.Fatal(err)
				}
				ids[d.Release] = id
			}
			if id.BuildID != m.Kernel(d.Release).BuildID {
				t.Errorf("build ID %s, manifest says %s", id.BuildID, m.Kernel(d.Release).BuildID)
			}
			k := openKernel(t, m, d)
			// The banner address from the dump's own kallsyms.
			ks, err := debuginfo.LoadKallsyms(k.Arch, k.Dump.VMCoreInfo)
			if err != nil {
				t.Fatal(err)
			}
			sym, ok := ks.Lookup("linux_banner")
			if !ok {
				t.Fatal("kallsyms has no linux_banner")
			}
			if err := CheckMatch(id.BuildID, id.Banner, k.Dump, k.Arch, sym.Addr); err != nil {
				t.Fatalf("the corpus vmlinux does not match: %v", err)
			}
			// The banner crash printed for `sym linux_banner` lives where
			// kallsyms says.
			if ref, ok, _ := m.Ref(d, "sym"); ok && !strings.Contains(ref, strings.TrimLeft(strings.ToLower(hex64(sym.Addr)), "0")) {
				t.Errorf("crash's sym linux_banner %q lacks %#x", ref, sym.Addr)
			}

			otherID := flipHex(id.BuildID)
			err = CheckMatch(otherID, id.Banner, k.Dump, k.Arch, sym.Addr)
			var me *MismatchError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), "build ID "+otherID) || len(me.Differences) != 1 {
				t.Errorf("other build ID: %v", err)
			}

			rebuilt := strings.Replace(id.Banner, "#1 SMP", "#2 SMP", 1)
			err = CheckMatch(otherID, rebuilt, k.Dump, k.Arch, sym.Addr)
			if err == nil || !strings.Contains(err.Error(), `build "#2 SMP`) || !strings.Contains(err.Error(), "linux-image-"+d.Release+"-dbg") {
				t.Errorf("other build: %v", err)
			}

			// Debian 11's cloud kernel: another release and another
			// compiler than both lab kernels (6.12's gcc-12 banner is 6.1's).
			const other = "Linux version 5.10.0-35-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2) #1 SMP Debian 5.10.237-1 (2025-05-19)"
			err = CheckMatch(otherID, other, k.Dump, k.Arch, sym.Addr)
			for _, want := range []string{"release 5.10.0-35-cloud-amd64 (vmlinux) vs " + d.Release + " (dump)", "compiler", "linux-image-" + d.Release + "-dbg"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("other release: %v lacks %q", err, want)
				}
			}
			t.Log(err)
			// Without the banner address, VMCOREINFO's OSRELEASE serves.
			err = CheckMatch("", other, k.Dump, nil, 0)
			if err == nil || !strings.Contains(err.Error(), "release 5.10.0-35-cloud-amd64 (vmlinux) vs "+d.Release) {
				t.Errorf("other release, no banner: %v", err)
			}
		})
	}
}

func hex64(a uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[a&15]
		a >>= 4
	}
	return string(b[:])
}

func flipHex(s string) string {
	if s == "" {
		return "00"
	}
	c := s[len(s)-1]
	if c == '0' {
		c = '1'
	} else {
		c = '0'
	}
	return s[:len(s)-1] + string(c)
}

// TestOpen opens every dump with the debug vmlinux and with nothing but
// the dump (kallsyms and BTF from its memory), and reads a typed global
// both ways.
func TestOpen(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		t.Run(d.ID, func(t *testing.T) {
			f, err := dump.Open(m.Paths(d)...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var pids []int64
			vmlinux := m.Path(m.Kernel(d.Release).DebugVmlinux)
			dw := openTypedKernel(t, m, d).Types // loaded once per vmlinux
			if d.ID == m.Dumps[0].ID {
				dw = nil // Open loads the DWARF itself
			}
			for _, opt := range []Options{{Vmlinux: vmlinux, Types: dw}, {}} {
				k, err := Open(f, opt)
				if err != nil {
					t.Fatalf("%+v: %v", opt, err)
				}
				u, err := k.UTSName()
				if err != nil || u.Release != d.Release {
					t.Errorf("%+v: release %q, %v", opt, u.Release, err)
				}
				init, err := k.Global("init_task")
				if err != nil {
					t.Fatalf("%+v: %v (%s)", opt, err, k.Types.Source())
				}
				tasks, _ := init.Member("tasks")
				n := int64(0)
				for v, err := range k.ListEntries(tasks.Address(), "struct task_struct", "tasks") {
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						p, _ := v.Member("pid")
						first, _ := p.Int()
						pids = append(pids, first)
					}
					n++
				}
				pids = append(pids, n)
			}
			if len(pids) != 4 || pids[0] != pids[2] || pids[1] != pids[3] || pids[0] != 1 {
				t.Errorf("vmlinux and dump-only views differ: first pid, count = %v", pids)
			}
		})
	}
}

// overlay is a file with some bytes replaced: a vmlinux whose build-id
// note says otherwise, without copying hundreds of megabytes.
type overlay struct {
	r   io.ReaderAt
	off int64
	b   []byte
}

func (o overlay) ReadAt(p []byte, off int64) (int, error) {
	n, err := o.r.ReadAt(p, off)
	for i := 0; i < n; i++ {
		if j := off + int64(i) - o.off; j >= 0 && j < int64(len(o.b)) {
			p[i] = o.b[j]
		}
	}
	return n, err
}

// TestCheckMatchAlteredVmlinux reads the identity of the corpus vmlinux
// with one byte of its GNU build-id note changed, and checks that every
// dump then reports the mismatch of build IDs (and nothing else: the
// banner is the same).
func TestCheckMatchAlteredVmlinux(t *testing.T) {
	m := corpus.Require(t)
	for _, kern := range m.Kernels {
		if kern.Role != "" {
			continue // fetched only as the wrong vmlinux of mismatch tests
		}
		path := m.Path(kern.DebugVmlinux)
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		want, err := hex.DecodeString(kern.BuildID)
		if err != nil || len(want) == 0 {
			t.Fatalf("manifest build ID %q", kern.BuildID)
		}
		// Find the build ID's bytes in the note sections.
		ef, err := elf.NewFile(fh)
		if err != nil {
			t.Fatal(err)
		}
		var at int64 = -1
		for _, s := range ef.Sections {
			if s.Type != elf.SHT_NOTE {
				continue
			}
			data, _ := s.Data()
			if i := bytes.Index(data, want); i >= 0 {
				at = int64(s.Offset) + int64(i)
			}
		}
		if at < 0 {
			t.Fatalf("%s: build ID %s not in its notes", path, kern.BuildID)
		}
		changed := append([]byte(nil), want...)
		changed[0] ^= 0xff
		id, err := ReadVmlinuxIdentity(overlay{fh, at, changed}, path+" (altered)")
		if err != nil {
			t.Fatal(err)
		}
		if id.BuildID != hex.EncodeToString(changed) {
			t.Fatalf("altered build ID read as %s", id.BuildID)
		}
		for _, d := range m.Select(func(d corpus.Dump) bool { return d.Release == kern.Release }) {
			k := openKernel(t, m, d)
			banner, _ := k.SymbolAddr("linux_banner")
			err := CheckMatch(id.BuildID, id.Banner, k.Dump, k.Arch, banner)
			var me *MismatchError
			if !errors.As(err, &me) || len(me.Differences) != 1 || !strings.HasPrefix(me.Differences[0], "build ID "+id.BuildID) {
				t.Errorf("%s: %v", d.ID, err)
			}
		}
	}
}

// TestOpenMismatchIsError: Open with a vmlinux whose identity
// differs fails with a *MismatchError before trusting its symbols.
func TestOpenMismatchIsError(t *testing.T) {
	m := corpus.Require(t)
	d := m.Dumps[0]
	f, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The dump's own VMCOREINFO altered to claim another build.
	vi, err := dump.ParseVMCoreInfo([]byte(strings.Replace(f.VMCoreInfo.Raw, "BUILD-ID="+f.VMCoreInfo.BuildID(), "BUILD-ID=00"+f.VMCoreInfo.BuildID()[2:], 1)))
	if err != nil {
		t.Fatal(err)
	}
	f.VMCoreInfo = vi
	_, err = Open(f, Options{Vmlinux: m.Path(m.Kernel(d.Release).DebugVmlinux)})
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("Open of a mismatched vmlinux: %v", err)
	}
	if _, err := Open(f, Options{Vmlinux: m.Path(m.Kernel(d.Release).DebugVmlinux), NoMatchCheck: true, Types: openTypedKernel(t, m, d).Types}); err != nil {
		t.Errorf("NoMatchCheck: %v", err)
	}
}
