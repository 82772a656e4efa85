package dump

import (
	"strings"
	"testing"
	"time"
)

// sampleVMCoreInfo is shaped like an x86_64 6.1 kernel's VMCOREINFO (the
// formats of kernel/crash_core.c), with made-up values, plus arm64-style
// hex NUMBERs.
const sampleVMCoreInfo = "OSRELEASE=6.1.0-56-cloud-amd64\n" +
	"BUILD-ID=0123456789abcdef0123456789abcdef01234567\n" +
	"PAGESIZE=4096\n" +
	"SYMBOL(init_uts_ns)=ffffffff9c413a00\n" +
	"SYMBOL(mem_section)=ffff8f36fffd2000\n" +
	"LENGTH(mem_section)=2048\n" +
	"SIZE(mem_section)=16\n" +
	"OFFSET(mem_section.section_mem_map)=0\n" +
	"SIZE(page)=64\n" +
	"OFFSET(page.flags)=0\n" +
	"OFFSET(list_head.next)=0\n" +
	"NUMBER(PG_lru)=4\n" +
	"NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\n" +
	"NUMBER(phys_base)=585105408\n" +
	"NUMBER(kimage_voffset)=0xffffc00008000000\n" +
	"NUMBER(VA_BITS)=48\n" +
	"CONFIG_X86_64=y\n" +
	"KERNELOFFSET=1a400000\n" +
	"SYMBOL(init_uts_ns)=ffffffff9c413a40\n" +
	"CRASHTIME=1732287360\n"

func TestVMCoreInfoLookups(t *testing.T) {
	v, err := ParseVMCoreInfo([]byte(sampleVMCoreInfo + "\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	u := func(n uint64, ok bool) any {
		if !ok {
			return "absent"
		}
		return n
	}
	i := func(n int64, ok bool) any {
		if !ok {
			return "absent"
		}
		return n
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"OSRelease", v.OSRelease(), "6.1.0-56-cloud-amd64"},
		{"BuildID", v.BuildID(), "0123456789abcdef0123456789abcdef01234567"},
		{"PageSize", i(func() (int64, bool) { n, ok := v.PageSize(); return int64(n), ok }()), int64(4096)},
		{"Symbol, last value wins", u(v.Symbol("init_uts_ns")), uint64(0xffffffff9c413a40)},
		{"Symbol mem_section", u(v.Symbol("mem_section")), uint64(0xffff8f36fffd2000)},
		{"Symbol absent", u(v.Symbol("nope")), "absent"},
		{"Length", u(v.Length("mem_section")), uint64(2048)},
		{"Size", u(v.Size("page")), uint64(64)},
		{"Offset", u(v.Offset("mem_section", "section_mem_map")), uint64(0)},
		{"Offset absent", u(v.Offset("page", "lru")), "absent"},
		{"Number", i(v.Number("PG_lru")), int64(4)},
		{"Number negative", i(v.Number("PAGE_BUDDY_MAPCOUNT_VALUE")), int64(-129)},
		{"Number hex beyond int64", i(v.Number("kimage_voffset")), int64(-0x3ffff8000000)},
		{"KernelOffset", u(v.KernelOffset()), uint64(0x1a400000)},
		{"Config", v.Config("X86_64"), true},
		{"Config absent", v.Config("ARM64"), false},
		{"Get", func() string { s, _ := v.Get("NUMBER(VA_BITS)"); return s }(), "48"},
		{"CrashTime", func() any { t, ok := v.CrashTime(); return t.Equal(time.Unix(1732287360, 0)) && ok }(), true},
		{"Keys", strings.Join(v.Keys()[:3], ","), "OSRELEASE,BUILD-ID,PAGESIZE"},
		{"Keys unique", len(v.Keys()), 19},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v (%T), want %v (%T)", tc.name, tc.got, tc.got, tc.want, tc.want)
		}
	}
}

func TestVMCoreInfoMalformed(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		nilInfo bool
		err     string
		keys    int
	}{
		{"empty", "", true, "empty", 0},
		{"NULs only", "\x00\x00", true, "empty", 0},
		{"no KEY=VALUE", "hello\nworld\n", true, "line 1", 0},
		{"one bad line", "A=1\nbad line\nB=2\n", false, "line 2", 2},
		{"empty key", "=3\nA=1\n", false, "line 1", 1},
		{"no trailing newline", "A=1\nB=2", false, "", 2},
		{"value with =", "A=b=c\n", false, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseVMCoreInfo([]byte(tc.text))
			if (v == nil) != tc.nilInfo {
				t.Fatalf("info %v, want nil: %v", v, tc.nilInfo)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if v != nil && (len(v.Keys()) != tc.keys || v.Err != err) {
				t.Errorf("keys %v, Err %v", v.Keys(), v.Err)
			}
		})
	}
	// Every lookup on a nil VMCoreInfo finds nothing.
	var v *VMCoreInfo
	if _, ok := v.Symbol("x"); ok || v.OSRelease() != "" || v.Keys() != nil || v.Config("X") {
		t.Error("nil VMCoreInfo found something")
	}
	if _, ok := v.PageSize(); ok {
		t.Error("nil PageSize")
	}
	w := mustVMCoreInfo(t, "PAGESIZE=0\nKERNELOFFSET=zz\nCRASHTIME=x\nNUMBER(a)=1.5\nSIZE(b)=-1\n")
	if _, ok := w.PageSize(); ok {
		t.Error("PAGESIZE=0 accepted")
	}
	if _, ok := w.KernelOffset(); ok {
		t.Error("bad KERNELOFFSET accepted")
	}
	if _, ok := w.CrashTime(); ok {
		t.Error("bad CRASHTIME accepted")
	}
	if _, ok := w.Number("a"); ok {
		t.Error("bad NUMBER accepted")
	}
	if _, ok := w.Size("b"); ok {
		t.Error("negative SIZE accepted")
	}
}
