package capture

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	kib = uint64(1) << 10
	mib = uint64(1) << 20
	gib = uint64(1) << 30
)

func TestMemParse(t *testing.T) {
	for _, c := range []struct {
		in string
		v  uint64
		n  int
	}{
		{"256M", 256 * mib, 4},
		{"256m", 256 * mib, 4},
		{"1G", gib, 2},
		{"1k", kib, 2},
		{"2T", 2 << 40, 2},
		{"1P", 1 << 50, 2},
		{"1E", 1 << 60, 2},
		{"1e", 1 << 60, 2}, // 'e' is no decimal digit, so it is the suffix
		{"0x10000000", 256 * mib, 10},
		{"0X1fM", 31 * mib, 5},
		{"010M", 8 * mib, 4}, // a leading 0 is octal, as in C
		{"09M", 0, 1},        // octal stops at 9
		{"0x", 0, 1},         // "0x" without a hex digit: octal 0, stops at x
		{"0xg", 0, 1},
		{"", 0, 0},
		{"abc", 0, 0},
		{"-1M", 0, 0},
		{"M", 0, 1},      // memparse applies the suffix even with no digits
		{"16E", 0, 3},    // 16<<60 wraps to 0
		{"123@", 123, 3}, // no suffix
		{"4096 x", 4096, 4},
	} {
		v, n := MemParse(c.in)
		if v != c.v || n != c.n {
			t.Errorf("MemParse(%q) = %d, %d; want %d, %d", c.in, v, n, c.v, c.n)
		}
	}
}

// TestParseCrashkernel walks the kernel's rules (kernel/crash_reserve.c)
// case by case; want is "" for ErrNoCrashkernel, or a substring of the
// error.
func TestParseCrashkernel(t *testing.T) {
	type ck = Crashkernel
	for _, c := range []struct {
		cmdline string
		ram     uint64
		want    ck
		err     string
	}{
		// SIZE[@OFFSET]
		{"crashkernel=256M", gib, ck{Size: 256 * mib}, ""},
		{"ro crashkernel=256M@16M quiet", gib, ck{Size: 256 * mib, Base: 16 * mib}, ""},
		{"crashkernel=0x10000000", gib, ck{Size: 256 * mib}, ""},
		{"crashkernel=010M", gib, ck{Size: 8 * mib}, ""},
		{"crashkernel=256m", gib, ck{Size: 256 * mib}, ""},
		{"crashkernel=1k", gib, ck{Size: kib}, ""},
		{"crashkernel=64M@", gib, ck{Size: 64 * mib}, ""},                        // empty offset reads as 0
		{"crashkernel=64M@16Mjunk", gib, ck{Size: 64 * mib, Base: 16 * mib}, ""}, // nothing after OFFSET is read
		{"crashkernel=128M quiet:x", gib, ck{Size: 128 * mib}, ""},               // a ':' after the space is not the range form
		// the last crashkernel= wins, found anywhere
		{"crashkernel=128M crashkernel=256M", gib, ck{Size: 256 * mib}, ""},
		{"foo.crashkernel=128M", gib, ck{Size: 128 * mib}, ""},
		{"quiet -- crashkernel=128M", gib, ck{Size: 128 * mib}, ""},
		// ranges: matched against RAM rounded up to 128M, end exclusive
		{"crashkernel=1G-4G:320M,4G-32G:512M", 8 * gib, ck{Size: 512 * mib}, ""},
		{"crashkernel=1G-4G:320M,4G-32G:512M", gib, ck{Size: 320 * mib}, ""},
		{"crashkernel=1G-4G:320M,4G-32G:512M", 4 * gib, ck{Size: 512 * mib}, ""},
		{"crashkernel=1G-4G:320M,4G-32G:512M", 4*gib - 64*mib, ck{Size: 512 * mib}, ""}, // rounds up to 4G
		{"crashkernel=1G-4G:320M,4G-32G:512M", 4*gib - 128*mib, ck{Size: 320 * mib}, ""},
		{"crashkernel=1G-4G:320M,4G-32G:512M", 64 * gib, ck{}, "no range matches 64G"},
		{"crashkernel=1G-4G:320M,4G-32G:512M", 512 * mib, ck{}, "size 512M is not below the system RAM (512M"},
		{"crashkernel=512M-:192M", gib, ck{Size: 192 * mib}, ""},
		{"crashkernel=512M-:192M", 256 * mib, ck{}, "no range matches 256M"},
		{"crashkernel=384M-:128M@16M", gib, ck{Size: 128 * mib, Base: 16 * mib}, ""},
		{"crashkernel=1G-:256M,garbage", 2 * gib, ck{Size: 256 * mib}, ""}, // ranges after a match are not read
		{"crashkernel=0-1G:64M,1G-:128M", gib, ck{Size: 128 * mib}, ""},
		{"crashkernel=1G-:128M quiet", 2 * gib, ck{Size: 128 * mib}, ""},
		// ,high ,low ,cma
		{"crashkernel=256M,high", 8 * gib, ck{Size: 256 * mib, High: true, LowSize: DefaultLowSize}, ""},
		{"crashkernel=1G,high crashkernel=128M,low", 8 * gib, ck{Size: gib, High: true, LowSize: 128 * mib}, ""},
		{"crashkernel=1G,high crashkernel=0,low", 8 * gib, ck{Size: gib, High: true}, ""},
		{"crashkernel=512M crashkernel=1G,high", 8 * gib, ck{Size: 512 * mib}, ""}, // the plain form wins
		{"crashkernel=256M crashkernel=64M,cma", 8 * gib, ck{Size: 256 * mib, CMASize: 64 * mib}, ""},
		{"crashkernel=256M crashkernel=x,cma", 8 * gib, ck{Size: 256 * mib}, ""}, // a bad ,cma is ignored
		// no crashkernel=
		{"", gib, ck{}, ""},
		{"quiet crashkernel", gib, ck{}, ""},
		{"crashkernel=64M,cma", gib, ck{}, ""},
		// malformed
		{"crashkernel=", gib, ck{}, "memory value expected"},
		{"crashkernel=abc", gib, ck{}, "memory value expected"},
		{"crashkernel=256X", gib, ck{}, "unrecognized char 'X'"},
		{"crashkernel=M", gib, ck{}, "size is zero"},
		{"crashkernel=16E", gib, ck{}, "size is zero"},
		{"crashkernel=0x", gib, ck{}, "unrecognized char 'x'"},
		{"crashkernel=256M,hig", gib, ck{}, "unrecognized char ','"},
		{"crashkernel=256M,high2", gib, ck{}, "unrecognized char ','"},
		{"crashkernel=1G:64M", gib, ck{}, "'-' expected"},
		{"crashkernel=1G-2G", gib, ck{}, "unrecognized char '-'"},
		{"crashkernel=1G-2G;64M", gib, ck{}, "unrecognized char '-'"},
		{"crashkernel=1G-2G:", gib, ck{}, "memory value expected at \"\""},
		{"crashkernel=-2G:64M", gib, ck{}, "memory value expected"},
		{"crashkernel=1G-x:64M", gib, ck{}, "memory value expected at \"x:64M\""},
		{"crashkernel=2G-1G:64M", gib, ck{}, "range end 1G is not above its start 2G"},
		{"crashkernel=1G-1G:64M", gib, ck{}, "range end 1G is not above its start 1G"},
		{"crashkernel=1G-2G:1G", gib, ck{}, "size 1G is not below the system RAM"},
		{"crashkernel=1G-:128M@", gib, ck{}, "memory value expected after '@'"},
		{"crashkernel=128M,low", 8 * gib, ck{}, "needs crashkernel=X,high"},
		{"crashkernel=0,high", 8 * gib, ck{}, "size is zero"},
		{"crashkernel=256M,high crashkernel=bad,low", 8 * gib, ck{}, "memory value expected"},
		{"crashkernel=256Mx,high", 8 * gib, ck{}, "unrecognized char 'x'"},
		// 6.11+: not below the RAM itself
		{"crashkernel=1G", gib, ck{}, "size 1G is not below the system RAM (1G)"},
		{"crashkernel=2G,high", gib, ck{}, "size 2G is not below the system RAM"},
		{"crashkernel=0-:990M", gib - 64*mib, ck{}, "size 990M is not below the system RAM (960M)"}, // below the rounded 1G, not the RAM
	} {
		got, err := ParseCrashkernel(c.cmdline, c.ram)
		switch {
		case c.err == "" && c.want.Size == 0:
			if !errors.Is(err, ErrNoCrashkernel) {
				t.Errorf("%q: got %+v, %v; want ErrNoCrashkernel", c.cmdline, got, err)
			}
		case c.err != "":
			var ce *CrashkernelError
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &ce) {
				t.Errorf("%q (RAM %s): error %v; want a CrashkernelError containing %q", c.cmdline, FormatSize(c.ram), err, c.err)
			}
		default:
			if err != nil {
				t.Errorf("%q (RAM %s): %v", c.cmdline, FormatSize(c.ram), err)
				continue
			}
			got.Params = nil
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("%q (RAM %s) = %+v; want %+v", c.cmdline, FormatSize(c.ram), *got, c.want)
			}
		}
	}
}

func TestCrashkernelParams(t *testing.T) {
	got, err := ParseCrashkernel("a crashkernel=1G,high crashkernel=128M,low crashkernel=64M,cma b", 8*gib)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"crashkernel=1G,high", "crashkernel=128M,low", "crashkernel=64M,cma"}
	if strings.Join(got.Params, " ") != strings.Join(want, " ") {
		t.Errorf("Params = %q; want %q", got.Params, want)
	}
}

func TestFormatSize(t *testing.T) {
	for v, want := range map[uint64]string{0: "0", 1: "1", 1024: "1K", 1536 * kib: "1536K", 256 * mib: "256M", 3 * gib: "3G", 1 << 60: "1E"} {
		if got := FormatSize(v); got != want {
			t.Errorf("FormatSize(%d) = %q; want %q", v, got, want)
		}
		if v != 0 {
			if back, n := MemParse(FormatSize(v)); back != v || n != len(FormatSize(v)) {
				t.Errorf("MemParse(FormatSize(%d)) = %d", v, back)
			}
		}
	}
}

// FuzzParseCrashkernel: any command line gives a result or an error, never
// a panic; a result reserves something; MemParse never reads past the end.
func FuzzParseCrashkernel(f *testing.F) {
	for _, s := range []string{"crashkernel=256M", "crashkernel=1G-4G:320M,4G-:512M@16M", "crashkernel=1G,high crashkernel=128M,low",
		"crashkernel=0x", "crashkernel=64M,cma", "x crashkernel=1G-:128M@", "crashkernel=M"} {
		f.Add(s, uint64(8*gib))
	}
	f.Fuzz(func(t *testing.T, cmdline string, ram uint64) {
		if _, n := MemParse(cmdline); n > len(cmdline) {
			t.Fatalf("MemParse read %d of %d bytes", n, len(cmdline))
		}
		ck, err := ParseCrashkernel(cmdline, ram)
		if err == nil && (ck == nil || ck.Size == 0 || len(ck.Params) == 0) {
			t.Fatalf("%q: no error and nothing reserved: %+v", cmdline, ck)
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
