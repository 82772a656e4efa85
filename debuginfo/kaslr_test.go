package debuginfo

import (
	"strings"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

func mustVMCoreInfo(t testing.TB, text string) *dump.VMCoreInfo {
	t.Helper()
	vi, err := dump.ParseVMCoreInfo([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return vi
}

func TestKASLROffset(t *testing.T) {
	link := NewTable("test vmlinux", []Symbol{{Name: "_stext", Addr: 0xffffffff81000000, Type: 'T'}})
	tests := []struct {
		name    string
		vi      string
		vmlinux Symbols
		want    KASLR
		wantErr string
	}{
		{"kerneloffset", "KERNELOFFSET=15e00000\nSYMBOL(_stext)=ffffffff96e00000\n", link, KASLR{0x15e00000, KASLRFromKernelOffset}, ""},
		{"kerneloffset without vmlinux", "KERNELOFFSET=15e00000\n", nil, KASLR{0x15e00000, KASLRFromKernelOffset}, ""},
		{"no kaslr", "KERNELOFFSET=0\n", nil, KASLR{0, KASLRFromKernelOffset}, ""},
		{"stext", "SYMBOL(_stext)=ffffffff96e00000\n", link, KASLR{0x15e00000, KASLRFromStext}, ""},
		{"stext without vmlinux", "SYMBOL(_stext)=ffffffff96e00000\n", nil, KASLR{}, "without a vmlinux"},
		{"stext not in vmlinux", "SYMBOL(_stext)=ffffffff96e00000\n", NewTable("empty", nil), KASLR{}, "has no _stext"},
		{"neither", "OSRELEASE=6.1.0\n", link, KASLR{}, "neither KERNELOFFSET nor SYMBOL(_stext)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KASLROffset(mustVMCoreInfo(t, tt.vi), tt.vmlinux)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := KASLROffset(nil, link); err == nil {
		t.Error("no error for a dump without VMCOREINFO")
	}
}

// TestKASLROffsetCorpus: on every crash, the offset computed from _stext
// (VMCOREINFO without its KERNELOFFSET line) equals KERNELOFFSET.
func TestKASLROffsetCorpus(t *testing.T) {
	m := corpus.Require(t)
	// The lab boots with KASLR on, but the kernel may draw the unmoved
	// slot (one boot here did): some crash, not each, must have moved.
	moved := 0
	defer func() {
		if moved == 0 {
			t.Errorf("no crash of the corpus has a KASLR offset: the lab boots with KASLR on")
		}
	}()
	for _, d := range onePerCrash(m) {
		t.Run(d.Crash, func(t *testing.T) {
			f := openCorpusDump(t, m, d)
			k := m.Kernel(d.Release)
			if k == nil {
				t.Fatalf("no kernel %s in the manifest", d.Release)
			}
			link, err := LoadELFSymbols(m.Path(k.DebugVmlinux), 0)
			if err != nil {
				t.Fatal(err)
			}
			want, err := KASLROffset(f.VMCoreInfo, link)
			if err != nil || want.Source != KASLRFromKernelOffset {
				t.Fatalf("%+v, %v: want KERNELOFFSET from the dump's VMCOREINFO", want, err)
			}
			var lines []string
			for _, l := range strings.Split(f.VMCoreInfo.Raw, "\n") {
				if !strings.HasPrefix(l, "KERNELOFFSET=") {
					lines = append(lines, l)
				}
			}
			got, err := KASLROffset(mustVMCoreInfo(t, strings.Join(lines, "\n")), link)
			if err != nil || got.Offset != want.Offset || got.Source != KASLRFromStext {
				t.Fatalf("without KERNELOFFSET: %+v, %v; want %#x computed from _stext", got, err, want.Offset)
			}
			if want.Offset != 0 {
				moved++
			}
			t.Logf("KASLR offset %#x", want.Offset)
		})
	}
}
