package dump

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// VMCoreInfo is the kernel's VMCOREINFO note: KEY=VALUE lines that tell a
// dump reader where the kernel keeps things, parsed into typed lookups.
//
// The kernel writes the lines with vmcoreinfo_append_str in
// kernel/crash_core.c (kernel/vmcore_info.c since 6.8), through macros in
// include/linux/crash_core.h (include/linux/vmcore_info.h):
//
//	OSRELEASE=%s  BUILD-ID=%s  PAGESIZE=%ld
//	SYMBOL(name)=%lx           hex, no 0x
//	SIZE(name)=%lu  OFFSET(struct.member)=%lu  LENGTH(name)=%lu
//	NUMBER(name)=%ld           decimal, may be negative; some arm64
//	                           NUMBERs are printed 0x%llx
//	CONFIG_NAME=y  KERNELOFFSET=%lx  CRASHTIME=%lld (seconds)
//
// The lookup methods accept either base where the kernel has used both.
// All methods are safe on a nil *VMCoreInfo (they find nothing).
type VMCoreInfo struct {
	Raw string // the note's text, trailing NULs removed

	// Err is the first malformed line, when there was one; the entries
	// of the well-formed lines are still available.
	Err error

	keys   []string          // in order of first appearance
	values map[string]string // the last value given for each key
}

// ParseVMCoreInfo parses VMCOREINFO text. Lines that are not KEY=VALUE
// are skipped and the first of them is reported in the error (and in
// Err); the result then still holds every well-formed line. The result is
// nil only when no line is well-formed.
func ParseVMCoreInfo(text []byte) (*VMCoreInfo, error) {
	raw := string(bytes.TrimRight(text, "\x00"))
	v := &VMCoreInfo{Raw: raw, values: make(map[string]string)}
	for i, line := range strings.Split(raw, "\n") {
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t\x00") {
			if v.Err == nil {
				v.Err = fmt.Errorf("VMCOREINFO line %d: %q is not KEY=VALUE", i+1, truncate(line, 60))
			}
			continue
		}
		if _, seen := v.values[key]; !seen {
			v.keys = append(v.keys, key)
		}
		v.values[key] = val
	}
	if len(v.keys) == 0 {
		if v.Err == nil {
			v.Err = fmt.Errorf("VMCOREINFO is empty")
		}
		return nil, v.Err
	}
	return v, v.Err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Keys lists the keys in the order the kernel wrote them, each once.
func (v *VMCoreInfo) Keys() []string {
	if v == nil {
		return nil
	}
	return append([]string(nil), v.keys...)
}

// Get returns the raw value of key, e.g. Get("SYMBOL(init_uts_ns)").
func (v *VMCoreInfo) Get(key string) (string, bool) {
	if v == nil {
		return "", false
	}
	s, ok := v.values[key]
	return s, ok
}

// Symbol returns SYMBOL(name): the symbol's kernel virtual address.
func (v *VMCoreInfo) Symbol(name string) (uint64, bool) {
	return v.hex("SYMBOL(" + name + ")")
}

// Offset returns OFFSET(structName.member): the member's offset in bytes.
func (v *VMCoreInfo) Offset(structName, member string) (uint64, bool) {
	return v.unsigned("OFFSET(" + structName + "." + member + ")")
}

// Size returns SIZE(name): the size in bytes of a type or variable.
func (v *VMCoreInfo) Size(name string) (uint64, bool) {
	return v.unsigned("SIZE(" + name + ")")
}

// Length returns LENGTH(name): the number of elements of an array.
func (v *VMCoreInfo) Length(name string) (uint64, bool) {
	return v.unsigned("LENGTH(" + name + ")")
}

// Number returns NUMBER(name). Values the kernel printed in hex beyond
// int64's range (arm64's kimage_voffset) keep their bit pattern.
func (v *VMCoreInfo) Number(name string) (int64, bool) {
	s, ok := v.Get("NUMBER(" + name + ")")
	if !ok {
		return 0, false
	}
	if h, ok := cutHexPrefix(s); ok {
		n, err := strconv.ParseUint(h, 16, 64)
		return int64(n), err == nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		u, err := strconv.ParseUint(s, 10, 64)
		return int64(u), err == nil
	}
	return n, true
}

// Config reports whether CONFIG_name=y appears.
func (v *VMCoreInfo) Config(name string) bool {
	s, ok := v.Get("CONFIG_" + name)
	return ok && s == "y"
}

// PageSize returns PAGESIZE.
func (v *VMCoreInfo) PageSize() (int, bool) {
	n, ok := v.unsigned("PAGESIZE")
	if !ok || n == 0 || n > 1<<30 {
		return 0, false
	}
	return int(n), true
}

// OSRelease returns OSRELEASE (uname -r of the dumped kernel), or "".
func (v *VMCoreInfo) OSRelease() string {
	s, _ := v.Get("OSRELEASE")
	return s
}

// BuildID returns BUILD-ID (the kernel's GNU build ID in hex), or "".
func (v *VMCoreInfo) BuildID() string {
	s, _ := v.Get("BUILD-ID")
	return s
}

// KernelOffset returns KERNELOFFSET, the KASLR displacement of the kernel
// image (printed %lx).
func (v *VMCoreInfo) KernelOffset() (uint64, bool) {
	return v.hex("KERNELOFFSET")
}

// CrashTime returns CRASHTIME, the time of the crash (seconds since the
// epoch, appended by the kernel when it panicked).
func (v *VMCoreInfo) CrashTime() (time.Time, bool) {
	s, ok := v.Get("CRASHTIME")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// hex parses a value the kernel printed with %lx (tolerating a 0x).
func (v *VMCoreInfo) hex(key string) (uint64, bool) {
	s, ok := v.Get(key)
	if !ok {
		return 0, false
	}
	if h, ok := cutHexPrefix(s); ok {
		s = h
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return n, err == nil
}

// unsigned parses a value the kernel printed with %lu (tolerating 0x).
func (v *VMCoreInfo) unsigned(key string) (uint64, bool) {
	s, ok := v.Get(key)
	if !ok {
		return 0, false
	}
	if h, ok := cutHexPrefix(s); ok {
		n, err := strconv.ParseUint(h, 16, 64)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func cutHexPrefix(s string) (string, bool) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		return h, true
	}
	return strings.CutPrefix(s, "0X")
}
