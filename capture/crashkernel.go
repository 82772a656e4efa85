package capture

import (
	"errors"
	"fmt"
	"strings"
)

// The crashkernel= parser follows the kernel's own, function by function
// (kernel/crash_reserve.c in 6.7+, kernel/crash_core.c before:
// get_last_crashkernel, parse_crashkernel_mem, parse_crashkernel_simple,
// parse_crashkernel_suffix, parse_crashkernel; lib/cmdline.c memparse;
// lib/kstrtox.c _parse_integer_fixup_radix), quirks included, so that what
// salvage says a command line reserves is what the kernel reserves:
//
//   - the last crashkernel= wins, and it is found by substring search over
//     the whole command line — also inside another parameter's value and
//     after "--";
//   - numbers take C's base prefixes (0x hex, a leading 0 octal) and wrap
//     on overflow; the suffixes K M G T P E (either case) multiply by 1024
//     per step;
//   - in the range form the ranges are matched against the system RAM
//     rounded up to 128 MiB, the upper bound is exclusive and may be left
//     out (no limit); ranges after the matching one are not read;
//   - a size that is not below the rounded RAM in any range read is an
//     error, as is a total of zero bytes, and (6.11+) a size not below
//     the RAM itself.
//
// It follows the generic parse_crashkernel of 6.7+ (x86 uses it since
// 6.7). Older x86 kernels differ at the edges: 6.1 also tries ,high when
// the plain form is malformed (not only when it is absent), and before
// 6.16 there is no ,cma, so "crashkernel=64M,cma" is a malformed plain
// form there.

// DefaultLowSize is what the kernel reserves below 4 GiB when
// crashkernel=X,high comes without crashkernel=Y,low: on x86_64
// DEFAULT_CRASH_KERNEL_LOW_SIZE is max(swiotlb size + 8 MiB, 256 MiB)
// (arch/x86/include/asm/crash_reserve.h), 256 MiB with the default
// 64 MiB swiotlb.
const DefaultLowSize = 256 << 20

// ErrNoCrashkernel says the command line has no crashkernel= parameter
// (the kernel's -ENOENT).
var ErrNoCrashkernel = errors.New("no crashkernel= on the kernel command line")

// CrashkernelError is a crashkernel= value the kernel refuses: Param is the
// parameter's text (up to the next space) and Msg the kernel's complaint.
type CrashkernelError struct {
	Param string
	Msg   string
}

// Error prints the parameter and the kernel's complaint.
func (e *CrashkernelError) Error() string {
	return fmt.Sprintf("%s: %s", e.Param, e.Msg)
}

// Crashkernel is what a command line's crashkernel= parameters ask the
// kernel to reserve.
type Crashkernel struct {
	// Size is the main reservation in bytes.
	Size uint64 `json:"size"`
	// Base is the physical address asked for with @OFFSET; 0 lets the
	// kernel choose.
	Base uint64 `json:"base,omitempty"`
	// High: crashkernel=X,high — the reservation may sit above 4 GiB,
	// with LowSize more below 4 GiB for DMA.
	High    bool   `json:"high,omitempty"`
	LowSize uint64 `json:"low_size,omitempty"`
	// CMASize is crashkernel=Y,cma (6.16+): extra CMA memory the capture
	// kernel may use, which the first kernel lends to movable pages.
	CMASize uint64 `json:"cma_size,omitempty"`
	// Params are the crashkernel= parameters that decided the result.
	Params []string `json:"params"`
}

// MemParse parses the start of s as the kernel's memparse does and
// returns the value and the number of bytes read; n == 0 means no number.
func MemParse(s string) (v uint64, n int) {
	i, base := 0, uint64(10)
	if at(s, 0) == '0' {
		if lower(at(s, 1)) == 'x' && isXDigit(at(s, 2)) {
			base, i = 16, 2
		} else {
			base = 8
		}
	}
	for ; i < len(s); i++ {
		c := lower(s[i])
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			d = base // stops the loop below
		}
		if d >= base {
			break
		}
		v = v*base + d // wraps, as simple_strtoull does
	}
	// A suffix counts even after no digits at all: memparse("M") is 0 with
	// one byte read, which the callers take for a number.
	shift := map[byte]uint{'k': 10, 'm': 20, 'g': 30, 't': 40, 'p': 50, 'e': 60}[lower(at(s, i))]
	if shift != 0 {
		v <<= shift
		i++
	}
	return v, i
}

// ParseCrashkernel returns what cmdline reserves on a machine with
// systemRAM bytes of RAM (the kernel uses memblock's total; SystemRAM
// gives it from /proc/iomem). It follows the generic parse_crashkernel of
// 6.7+: crashkernel=X[@OFFSET] or the range form first; when there is
// none, crashkernel=X,high with an optional crashkernel=Y,low; then the
// optional crashkernel=Z,cma. With no crashkernel= at all the error is
// ErrNoCrashkernel; a value the kernel refuses gives a *CrashkernelError.
func ParseCrashkernel(cmdline string, systemRAM uint64) (*Crashkernel, error) {
	ck := &Crashkernel{}
	p, size, base, err := parseCrashkernelAt(cmdline, systemRAM, "")
	switch {
	case errors.Is(err, ErrNoCrashkernel):
		p, size, base, err = parseCrashkernelAt(cmdline, 0, ",high")
		if errors.Is(err, ErrNoCrashkernel) {
			if lp, _, _, lerr := parseCrashkernelAt(cmdline, 0, ",low"); lerr != ErrNoCrashkernel {
				return nil, &CrashkernelError{Param: lp, Msg: "crashkernel=Y,low needs crashkernel=X,high"}
			}
			return nil, ErrNoCrashkernel
		}
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, &CrashkernelError{Param: p, Msg: "size is zero"}
		}
		ck.High = true
		ck.Params = append(ck.Params, p)
		lp, low, _, lerr := parseCrashkernelAt(cmdline, 0, ",low")
		switch {
		case errors.Is(lerr, ErrNoCrashkernel):
			low = DefaultLowSize
		case lerr != nil:
			return nil, lerr
		default:
			ck.Params = append(ck.Params, lp)
		}
		ck.LowSize = low
	case err != nil:
		return nil, err
	default:
		ck.Params = append(ck.Params, p)
	}
	ck.Size, ck.Base = size, base
	// The kernel ignores a bad ,cma value; so do we.
	if cp, cma, _, cerr := parseCrashkernelAt(cmdline, 0, ",cma"); cerr == nil {
		ck.CMASize = cma
		ck.Params = append(ck.Params, cp)
	}
	if ck.Size >= systemRAM && ck.Size != 0 {
		// Added in 6.11 (kernel/crash_reserve.c parse_crashkernel): older
		// kernels accept the value and then fail to allocate it, which
		// reserves nothing all the same.
		return ck, &CrashkernelError{Param: p, Msg: fmt.Sprintf("size %s is not below the system RAM (%s)", FormatSize(ck.Size), FormatSize(systemRAM))}
	}
	if ck.Size == 0 {
		msg := "size is zero"
		if colon, space := strings.IndexByte(p, ':'), strings.IndexByte(p, ' '); colon >= 0 && (space < 0 || colon < space) {
			msg = fmt.Sprintf("no range matches %s of RAM (rounded up to 128M): nothing is reserved", FormatSize(roundUp(systemRAM, 128<<20)))
		}
		return ck, &CrashkernelError{Param: p, Msg: msg}
	}
	return ck, nil
}

// crashkernelSuffixes are the suffixes a plain crashkernel= must not end
// with (suffix_tbl).
var crashkernelSuffixes = []string{",high", ",low", ",cma"}

// lastCrashkernel is get_last_crashkernel: the index just after the last
// "crashkernel=" whose parameter ends with suffix (or, for "", with none
// of the known suffixes), or -1.
func lastCrashkernel(cmdline, suffix string) int {
	const name = "crashkernel="
	found := -1
	for p := strings.Index(cmdline, name); p >= 0; {
		end := strings.IndexByte(cmdline[p:], ' ')
		if end < 0 {
			end = len(cmdline)
		} else {
			end += p
		}
		tok := cmdline[p:end]
		if suffix == "" {
			known := false
			for _, s := range crashkernelSuffixes {
				if strings.HasSuffix(tok, s) {
					known = true
				}
			}
			if !known {
				found = p
			}
		} else if strings.HasSuffix(tok, suffix) {
			found = p
		}
		next := strings.Index(cmdline[p+1:], name)
		if next < 0 {
			break
		}
		p += 1 + next
	}
	if found < 0 {
		return -1
	}
	return found + len(name)
}

// parseCrashkernelAt is __parse_crashkernel; param is the parameter's
// text for messages.
func parseCrashkernelAt(cmdline string, systemRAM uint64, suffix string) (param string, size, base uint64, err error) {
	i := lastCrashkernel(cmdline, suffix)
	if i < 0 {
		return "", 0, 0, ErrNoCrashkernel
	}
	s := cmdline[i:]
	param = "crashkernel=" + s
	if sp := strings.IndexByte(s, ' '); sp >= 0 {
		param = "crashkernel=" + s[:sp]
	}
	fail := func(format string, a ...any) (string, uint64, uint64, error) {
		return param, 0, 0, &CrashkernelError{Param: param, Msg: fmt.Sprintf(format, a...)}
	}
	if suffix != "" {
		v, n := MemParse(s)
		if n == 0 {
			return fail("memory value expected")
		}
		if !strings.HasPrefix(s[n:], suffix) {
			return fail("unrecognized char %q", at(s, n))
		}
		if c := at(s, n+len(suffix)); c != ' ' && c != 0 {
			return fail("unrecognized char %q", c)
		}
		return param, v, 0, nil
	}
	colon, space := strings.IndexByte(s, ':'), strings.IndexByte(s, ' ')
	if colon >= 0 && (space < 0 || colon < space) {
		size, base, err := parseCrashkernelRanges(s, systemRAM)
		if err != nil {
			return fail("%s", err)
		}
		return param, size, base, nil
	}
	// parse_crashkernel_simple: SIZE[@OFFSET]; what follows OFFSET is not
	// looked at.
	v, n := MemParse(s)
	if n == 0 {
		return fail("memory value expected")
	}
	switch c := at(s, n); c {
	case '@':
		base, _ = MemParse(s[n+1:])
	case ' ', 0:
	default:
		return fail("unrecognized char %q", c)
	}
	return param, v, base, nil
}

// parseCrashkernelRanges is parse_crashkernel_mem:
// start-[end]:size[,start-[end]:size...][@offset].
func parseCrashkernelRanges(s string, systemRAM uint64) (size, base uint64, err error) {
	total := roundUp(systemRAM, 128<<20)
	cur := 0
	for {
		start, n := MemParse(s[cur:])
		if n == 0 {
			return 0, 0, fmt.Errorf("memory value expected at %q", rest(s, cur))
		}
		cur += n
		if at(s, cur) != '-' {
			return 0, 0, fmt.Errorf("'-' expected at %q", rest(s, cur))
		}
		cur++
		end := ^uint64(0)
		if at(s, cur) != ':' {
			e, n := MemParse(s[cur:])
			if n == 0 {
				return 0, 0, fmt.Errorf("memory value expected at %q", rest(s, cur))
			}
			cur += n
			if e <= start {
				return 0, 0, fmt.Errorf("range end %s is not above its start %s", FormatSize(e), FormatSize(start))
			}
			end = e
		}
		if at(s, cur) != ':' {
			return 0, 0, fmt.Errorf("':' expected at %q", rest(s, cur))
		}
		cur++
		sz, n := MemParse(s[cur:])
		if n == 0 {
			return 0, 0, fmt.Errorf("memory value expected at %q", rest(s, cur))
		}
		cur += n
		if sz >= total {
			return 0, 0, fmt.Errorf("size %s is not below the system RAM (%s rounded up to 128M)", FormatSize(sz), FormatSize(total))
		}
		if total >= start && total < end {
			size = sz
			break
		}
		c := at(s, cur)
		cur++
		if c != ',' {
			break
		}
	}
	if size > 0 {
		for cur < len(s) && s[cur] != ' ' && s[cur] != '@' {
			cur++
		}
		if at(s, cur) == '@' {
			cur++
			b, n := MemParse(s[cur:])
			if n == 0 {
				return 0, 0, fmt.Errorf("memory value expected after '@'")
			}
			base = b
		}
	}
	return size, base, nil
}

// FormatSize prints a byte count the way crashkernel= takes it: the
// largest suffix that divides it exactly ("256M", "1G", "1536K").
func FormatSize(v uint64) string {
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{60, "E"}, {50, "P"}, {40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if v != 0 && v&(1<<u.shift-1) == 0 {
			return fmt.Sprintf("%d%s", v>>u.shift, u.suffix)
		}
	}
	return fmt.Sprint(v)
}

func roundUp(v, to uint64) uint64 { return (v + to - 1) / to * to }

// at is C's s[i] on a NUL-terminated string.
func at(s string, i int) byte {
	if i < 0 || i >= len(s) {
		return 0
	}
	return s[i]
}

func rest(s string, i int) string {
	if i >= len(s) {
		return ""
	}
	if sp := strings.IndexByte(s[i:], ' '); sp >= 0 {
		return s[i : i+sp]
	}
	return s[i:]
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isXDigit(c byte) bool {
	c = lower(c)
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
}
