package debuginfo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"salvage/dump"
)

// sparseMemory is kernel virtual memory made of a few regions.
type sparseMemory map[uint64][]byte

func (m sparseMemory) ReadVirt(p []byte, addr uint64) (int, error) {
	for base, b := range m {
		if addr >= base && addr-base < uint64(len(b)) {
			n := copy(p, b[addr-base:])
			if n < len(p) {
				return n, fmt.Errorf("address %#x: not mapped", addr+uint64(n))
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("address %#x: not mapped", addr)
}

// kallsymsImage lays out kallsyms tables as scripts/kallsyms would, in
// one block of "rodata" at base, and gives the VMCOREINFO lines that
// locate them.
type kallsymsImage struct {
	mem        sparseMemory
	vmcoreinfo string
}

// addrMode says how addresses are stored.
type addrMode int

const (
	modeRelative       addrMode = iota // offsets + relative_base
	modeAbsolutePercpu                 // offsets + relative_base, CONFIG_KALLSYMS_ABSOLUTE_PERCPU
	modeAbsolute                       // kallsyms_addresses
)

// buildKallsyms encodes syms (in address order) with a token table of
// every single character used plus a few longer tokens, matched greedily.
func buildKallsyms(t testing.TB, syms []Symbol, mode addrMode) kallsymsImage {
	t.Helper()
	const base = 0xffffffff82000000
	le := binary.LittleEndian
	// Tokens: single characters first, then multi-character ones.
	chars := map[byte]bool{}
	for _, s := range syms {
		chars[s.Type] = true
		for i := 0; i < len(s.Name); i++ {
			chars[s.Name[i]] = true
		}
	}
	var tokens []string
	for c := range chars {
		tokens = append(tokens, string(c))
	}
	sort.Strings(tokens)
	for _, long := range []string{"Tsys_", "__", "init", "_task", "percpu", "kallsyms"} {
		if len(tokens) < 256 {
			tokens = append(tokens, long)
		}
	}
	if len(tokens) > 256 {
		t.Fatalf("%d tokens", len(tokens))
	}
	var table []byte
	var index [256]uint16
	for i := range 256 {
		tok := tokens[i%len(tokens)]
		index[i] = uint16(len(table))
		table = append(table, tok...)
		table = append(table, 0)
	}
	encode := func(s string) []byte {
		var out []byte
		for len(s) > 0 {
			best, bestLen := -1, 0
			for i, tok := range tokens {
				if len(tok) > bestLen && strings.HasPrefix(s, tok) {
					best, bestLen = i, len(tok)
				}
			}
			out = append(out, byte(best))
			s = s[bestLen:]
		}
		return out
	}
	var names []byte
	for _, s := range syms {
		enc := encode(string(s.Type) + s.Name)
		if len(enc) > 0x7f {
			names = append(names, byte(len(enc)&0x7f|0x80), byte(len(enc)>>7))
		} else {
			names = append(names, byte(len(enc)))
		}
		names = append(names, enc...)
	}
	// Layout as scripts/kallsyms emits it: offsets and relative_base (or
	// addresses), num_syms, names, token_table, token_index — each
	// 8-aligned.
	var img []byte
	place := func(b []byte) uint64 {
		for len(img)%8 != 0 {
			img = append(img, 0)
		}
		at := base + uint64(len(img))
		img = append(img, b...)
		return at
	}
	var vi strings.Builder
	sym := func(name string, at uint64) { fmt.Fprintf(&vi, "SYMBOL(%s)=%x\n", name, at) }
	relBase := syms[0].Addr
	if mode == modeAbsolutePercpu {
		relBase = 0
		for _, s := range syms {
			if s.Addr >= 1<<63 {
				relBase = s.Addr
				break
			}
		}
	}
	switch mode {
	case modeAbsolute:
		var b []byte
		for _, s := range syms {
			b = le.AppendUint64(b, s.Addr)
		}
		sym("kallsyms_addresses", place(b))
	default:
		var b []byte
		for _, s := range syms {
			var off int32
			switch {
			case mode == modeRelative:
				off = int32(uint32(s.Addr - relBase))
			case s.Addr < 1<<31: // per-CPU: absolute
				off = int32(s.Addr)
			default:
				off = int32(-int64(s.Addr-relBase) - 1)
			}
			b = le.AppendUint32(b, uint32(off))
		}
		sym("kallsyms_offsets", place(b))
		sym("kallsyms_relative_base", place(le.AppendUint64(nil, relBase)))
	}
	sym("kallsyms_num_syms", place(le.AppendUint32(nil, uint32(len(syms)))))
	sym("kallsyms_names", place(names))
	sym("kallsyms_token_table", place(table))
	var ib []byte
	for _, o := range index {
		ib = le.AppendUint16(ib, o)
	}
	sym("kallsyms_token_index", place(ib))
	return kallsymsImage{mem: sparseMemory{base: img}, vmcoreinfo: vi.String()}
}

func testSymbols() []Symbol {
	return []Symbol{
		{Name: "_stext", Addr: 0xffffffff96e00000, Type: 'T'},
		{Name: "_text", Addr: 0xffffffff96e00000, Type: 'T'},
		{Name: "sysrq_handle_crash", Addr: 0xffffffff974a89f0, Type: 't'},
		{Name: "__x64_sys_write", Addr: 0xffffffff974a8a20, Type: 'T'},
		{Name: "linux_banner", Addr: 0xffffffff97f1ffe0, Type: 'D'},
		{Name: "init_task", Addr: 0xffffffff9881aa40, Type: 'D'},
		{Name: "__bss_stop", Addr: 0xffffffff99000000, Type: 'B'},
		{Name: strings.Repeat("a_very_long_rust_symbol_", 12), Addr: 0xffffffff99000010, Type: 't'},
	}
}

func TestKallsymsDecode(t *testing.T) {
	percpu := []Symbol{
		{Name: "fixed_percpu_data", Addr: 0, Type: 'A'},
		{Name: "__per_cpu_start", Addr: 0, Type: 'A'},
		{Name: "cpu_tss_rw", Addr: 0x6000, Type: 'A'},
	}
	tests := []struct {
		name string
		syms []Symbol
		mode addrMode
	}{
		{"relative", testSymbols(), modeRelative},
		{"absolute percpu", append(slices.Clone(percpu), testSymbols()...), modeAbsolutePercpu},
		{"addresses", append(slices.Clone(percpu), testSymbols()...), modeAbsolute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := buildKallsyms(t, tt.syms, tt.mode)
			tab, err := LoadKallsyms(img.mem, mustVMCoreInfo(t, img.vmcoreinfo))
			if err != nil {
				t.Fatal(err)
			}
			var got []Symbol
			for s := range tab.All {
				got = append(got, s)
			}
			if len(got) != len(tt.syms) {
				t.Fatalf("%d symbols, want %d", len(got), len(tt.syms))
			}
			for i, want := range tt.syms {
				g := got[i]
				if g.Name != want.Name || g.Addr != want.Addr || g.Type != want.Type {
					t.Errorf("symbol %d: %q %#x %c; want %q %#x %c", i, g.Name, g.Addr, g.Type, want.Name, want.Addr, want.Type)
				}
			}
			// Sizes are distances to the next higher address.
			s, _ := tab.Lookup("sysrq_handle_crash")
			if s.Size != 0x30 {
				t.Errorf("sysrq_handle_crash size %#x, want 0x30", s.Size)
			}
			if s, off, ok := tab.ByAddr(0xffffffff974a8a06); !ok || s.Name != "sysrq_handle_crash" || off != 0x16 {
				t.Errorf("ByAddr: %s+%#x %v", s.Name, off, ok)
			}
		})
	}
}

func TestKallsymsErrors(t *testing.T) {
	img := buildKallsyms(t, testSymbols(), modeRelative)
	vi := mustVMCoreInfo(t, img.vmcoreinfo)

	if _, err := LoadKallsyms(img.mem, mustVMCoreInfo(t, "OSRELEASE=5.15.0\n")); err == nil || !strings.Contains(err.Error(), "predates kallsyms in VMCOREINFO") {
		t.Errorf("old kernel, nothing to scan from: %v", err)
	}
	if _, err := LoadKallsyms(img.mem, nil); !errors.Is(err, ErrNoKallsymsInfo) {
		t.Errorf("no VMCOREINFO: %v", err)
	}
	var noToken []string
	for _, l := range strings.Split(img.vmcoreinfo, "\n") {
		if !strings.HasPrefix(l, "SYMBOL(kallsyms_token_table)") {
			noToken = append(noToken, l)
		}
	}
	if _, err := LoadKallsyms(img.mem, mustVMCoreInfo(t, strings.Join(noToken, "\n"))); err == nil || !strings.Contains(err.Error(), "kallsyms_token_table") {
		t.Errorf("missing token table: %v", err)
	}

	// A table that decodes to another _stext than VMCOREINFO's.
	if _, err := LoadKallsyms(img.mem, mustVMCoreInfo(t, img.vmcoreinfo+"SYMBOL(_stext)=ffffffff81000000\n")); err == nil || !strings.Contains(err.Error(), "SYMBOL(_stext)=ffffffff81000000") {
		t.Errorf("_stext disagreeing with VMCOREINFO: %v", err)
	}
	if _, err := LoadKallsyms(img.mem, mustVMCoreInfo(t, img.vmcoreinfo+"SYMBOL(_stext)=ffffffff96e00000\n")); err != nil {
		t.Errorf("_stext agreeing with VMCOREINFO: %v", err)
	}

	// A hole in the names: the error names the table and the address.
	for base, b := range img.mem {
		namesAt, _ := vi.Symbol("kallsyms_names")
		tokensAt, _ := vi.Symbol("kallsyms_token_table")
		holed := sparseMemory{base: b[:namesAt-base+5], tokensAt: b[tokensAt-base:]}
		_, err := LoadKallsyms(holed, vi)
		var ke *KallsymsError
		if !errors.As(err, &ke) || ke.Table != "kallsyms_names" || ke.Addr != namesAt+5 {
			t.Errorf("hole in names: %v", err)
		}
	}
}

// TestKallsymsScan: without the kallsyms entries of VMCOREINFO (kernels
// before 6.0), the tables are found by their shape from _stext.
func TestKallsymsScan(t *testing.T) {
	percpu := []Symbol{{Name: "fixed_percpu_data", Type: 'A'}, {Name: "cpu_tss_rw", Addr: 0x6000, Type: 'A'}}
	for _, mode := range []addrMode{modeRelative, modeAbsolutePercpu, modeAbsolute} {
		syms := testSymbols()
		if mode != modeRelative {
			syms = append(slices.Clone(percpu), syms...)
		}
		img := buildKallsyms(t, syms, mode)
		// Some bytes before the tables, as the kernel's text would be.
		var base uint64
		for b := range img.mem {
			base = b
		}
		mem := sparseMemory{base - 0x1000: append(make([]byte, 0x1000), img.mem[base]...)}
		// The image starts at 0xffffffff81000000 + KERNELOFFSET.
		vi := mustVMCoreInfo(t, fmt.Sprintf("OSRELEASE=5.10.0\nKERNELOFFSET=%x\n", base-0x1000-0xffffffff81000000))
		tab, err := LoadKallsyms(mem, vi)
		if err != nil {
			t.Fatalf("mode %d: %v", mode, err)
		}
		if tab.Len() != len(syms) || !strings.Contains(tab.Source(), "scanning") {
			t.Fatalf("mode %d: %d symbols from %q", mode, tab.Len(), tab.Source())
		}
		for _, want := range syms {
			got, ok := tab.Lookup(want.Name)
			if !ok || got.Addr != want.Addr || got.Type != want.Type {
				t.Errorf("mode %d: %s: %+v %v; want %#x %c", mode, want.Name, got, ok, want.Addr, want.Type)
			}
		}
	}
}

// TestKernelImageReader: virtual addresses of the kernel image map to
// physical ones by phys_base; others are refused with the address.
func TestKernelImageReader(t *testing.T) {
	mem := &flatMemory{base: 0x6000000, data: make([]byte, 1<<20)}
	copy(mem.data[0x1234:], "hello")
	vi := mustVMCoreInfo(t, "NUMBER(phys_base)=100663296\nNUMBER(KERNEL_IMAGE_SIZE)=1073741824\n") // 0x6000000
	r := KernelImageReader(mem, vi)
	p := make([]byte, 5)
	if n, err := r.ReadVirt(p, 0xffffffff80001234); err != nil || string(p[:n]) != "hello" {
		t.Errorf("read %q, %v", p[:n], err)
	}
	for _, addr := range []uint64{0xffff888000000000, 0xffffffffc0000000, 0x1000} {
		_, err := r.ReadVirt(p, addr)
		var ke *KernelImageError
		if !errors.As(err, &ke) || ke.Addr != addr {
			t.Errorf("%#x: %v", addr, err)
		}
	}
	// A page outside the dump: the page error comes through.
	_, err := r.ReadVirt(p, 0xffffffff80000000+(1<<20)-2)
	var pe *dump.PageError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "0xffffffff80100000") {
		t.Errorf("read past the dump: %v", err)
	}
	if _, err := KernelImageReader(mem, mustVMCoreInfo(t, "OSRELEASE=6.1\n")).ReadVirt(p, 0xffffffff80001234); err == nil || !strings.Contains(err.Error(), "phys_base") {
		t.Errorf("no phys_base: %v", err)
	}
}

// flatMemory is physical memory [base, base+len(data)).
type flatMemory struct {
	base uint64
	data []byte
}

func (m *flatMemory) ReadPhys(p []byte, addr uint64) (int, error) {
	if addr < m.base || addr-m.base >= uint64(len(m.data)) {
		return 0, &dump.PageError{Addr: addr, State: dump.PageNotRAM}
	}
	n := copy(p, m.data[addr-m.base:])
	if n < len(p) {
		return n, &dump.PageError{Addr: addr + uint64(n), State: dump.PageNotRAM}
	}
	return n, nil
}
func (m *flatMemory) State(pfn uint64) dump.PageState { return dump.PagePresent }
func (m *flatMemory) PageSize() int                   { return 4096 }
func (m *flatMemory) Ranges() []dump.Range {
	return []dump.Range{{Start: m.base, End: m.base + uint64(len(m.data))}}
}
