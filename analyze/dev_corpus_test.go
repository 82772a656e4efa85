package analyze

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"salvage/kernel"
	"salvage/lab/corpus"
)

func init() {
	jsonCommands["dev"] = "dev --json"
	jsonCommands["net"] = "net --json"
}

// devNetKnownDiffs are the lines of crash's dev and net output salvage
// legitimately prints differently, by dump ID, reference key and crash's
// line, with the reason. None so far: on every lab dump, both kernels,
// both modes, the output is crash's byte for byte.
var devNetKnownDiffs = map[[3]string]string{}

// devNetLiveStandIn is the reference a live dump is compared with: crash
// 8.0.6 cannot open QEMU's dumps of a running 6.1 guest (it stops on an
// exception stack) and 8.0.2 loops in dev and net, so the lab has no
// reference there. The live guest boots the same kernel, initramfs and
// QEMU machine as the sysrq one, so it registers the same majors, names,
// operations and devices: its output must equal crash's on the sysrq
// vmcore with every address (16 hex digits) masked.
const devNetLiveStandIn = "sysrq/vmcore-elf"

var devNetAddr = regexp.MustCompile(`[0-9a-f]{16}`)

// TestDevNetCorpus: dev and net equal crash 8.0.6's output on every
// corpus dump that has its reference, with the debug vmlinux and from
// the dump's BTF and kallsyms alone (and, on one dump per kernel, with
// System.map's symbols); on the live dumps, the sysrq
// dump's with addresses masked (see devNetLiveStandIn). It logs how
// many lines match per dump and mode.
func TestDevNetCorpus(t *testing.T) {
	m := corpus.Require(t)
	if len(m.Dumps) == 0 {
		t.Fatal("the corpus has no dumps")
	}
	compared := 0
	for _, d := range m.Dumps {
		refs := map[string]string{}
		masked := false
		for _, key := range []string{"dev", "net"} {
			want, ok, err := m.Ref(d, key)
			if err != nil {
				t.Fatalf("%s: %s reference: %v", d.ID, key, err)
			}
			if !ok {
				if d.Scenario != "live" {
					t.Fatalf("%s: no %s reference", d.ID, key)
				}
				stand := m.Select(func(o corpus.Dump) bool { return o.ID == d.Release+"/"+devNetLiveStandIn })
				if len(stand) == 0 {
					t.Fatalf("%s: no %s dump of %s to stand in for the live dump's %s reference", d.ID, devNetLiveStandIn, d.Release, key)
				}
				if want, ok, err = m.Ref(stand[0], key); !ok || err != nil {
					t.Fatalf("%s: no %s reference (%v)", stand[0].ID, key, err)
				}
				masked = true
			}
			refs[key] = want
		}
		modes := []string{"vmlinux", "btf"}
		if d.Scenario == "oops" && d.Variant == "lzo-d31" {
			// Symbols from System.map (module symbols from the dump), types
			// from BTF: once per kernel.
			modes = append(modes, "sysmap")
		}
		for _, mode := range modes {
			s := corpusSessionMode(t, m, d, mode)
			for _, key := range []string{"dev", "net"} {
				got, errs := execCapture(s, key)
				if errs != "" {
					t.Errorf("%s %s %s: %s", d.ID, mode, key, errs)
				}
				want := refs[key]
				if masked {
					got, want = devNetAddr.ReplaceAllString(got, "X"), devNetAddr.ReplaceAllString(want, "X")
				}
				same, total := devNetCompare(t, d.ID, mode, key, got, want)
				t.Logf("%s %s %s: %d of %d lines as crash's%s", d.ID, mode, key, same, total, map[bool]string{true: " (addresses masked)"}[masked])
				compared++
			}
		}
	}
	if compared == 0 {
		t.Fatal("compared nothing")
	}
}

// devNetCompare compares got with crash's want line by line, allowing
// only devNetKnownDiffs, and returns how many lines are identical.
func devNetCompare(t *testing.T, id, mode, key, got, want string) (same, total int) {
	t.Helper()
	g, w := strings.Split(strings.TrimSuffix(got, "\n"), "\n"), strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	total = len(w)
	bad := len(g) != len(w) || strings.HasSuffix(got, "\n") != strings.HasSuffix(want, "\n")
	for i := 0; i < min(len(g), len(w)); i++ {
		if g[i] == w[i] {
			same++
			continue
		}
		if _, ok := devNetKnownDiffs[[3]string{id, key, w[i]}]; ok {
			continue
		}
		bad = true
	}
	if bad {
		t.Errorf("%s %s: %s differs from crash's:\n%s", id, mode, key, lineDiff(got, want))
	}
	return same, total
}

// TestDevNetJSONCorpus: the --json output says what the text does, on
// the oops dump of each lab kernel: every CHRDEV line's major, name and
// operations symbol, every net device with its addresses.
func TestDevNetJSONCorpus(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "oops" && d.Variant == "lzo-d31" })
	if len(ds) == 0 {
		t.Fatal("no oops lzo-d31 dump in the corpus")
	}
	for _, d := range ds {
		s := corpusSessionMode(t, m, d, "btf")
		devText, _, _ := m.Ref(d, "dev")
		netText, _, _ := m.Ref(d, "net")
		out, errs := execCapture(s, "dev --json")
		var dev struct {
			Char []struct {
				Major     uint32 `json:"major"`
				Name      string `json:"name"`
				OpsSymbol string `json:"ops_symbol"`
			} `json:"chrdev"`
			Block []struct {
				Major   uint32 `json:"major"`
				Name    string `json:"name"`
				Chained bool   `json:"chained"`
			} `json:"blkdev"`
		}
		if err := json.Unmarshal([]byte(out), &dev); err != nil || errs != "" {
			t.Fatalf("%s: dev --json: %v %s\n%.300s", d.ID, err, errs, out)
		}
		if len(dev.Char) == 0 || len(dev.Block) == 0 {
			t.Errorf("%s: dev --json lists %d character and %d block devices", d.ID, len(dev.Char), len(dev.Block))
		}
		for _, c := range dev.Char {
			f := strings.Fields(devLineNamed(devText, c.Name))
			if len(f) < 3 || f[0] != strconv.FormatUint(uint64(c.Major), 10) || (c.OpsSymbol != "" && f[len(f)-1] != c.OpsSymbol) {
				t.Errorf("%s: dev --json %+v; crash's line %q", d.ID, c, f)
			}
		}
		out, errs = execCapture(s, "net --json")
		var nets []struct {
			Name string   `json:"name"`
			IPv4 []string `json:"ipv4"`
			IPv6 []string `json:"ipv6"`
		}
		if err := json.Unmarshal([]byte(out), &nets); err != nil || errs != "" || len(nets) == 0 {
			t.Fatalf("%s: net --json: %v %s\n%.300s", d.ID, err, errs, out)
		}
		for _, n := range nets {
			addrs := strings.Join(append(append([]string{}, n.IPv4...), n.IPv6...), ", ")
			if !strings.Contains(netText, "  "+n.Name+" ") || !strings.Contains(netText, addrs) {
				t.Errorf("%s: net --json has %s %s; crash says\n%s", d.ID, n.Name, addrs, netText)
			}
		}
		// The options' JSON says what their text does (which the options
		// test compares with crash's).
		for _, c := range []struct {
			cmd   string
			count func(text string) int
			list  func(v map[string]any) int
		}{
			{"dev -i", func(s string) int { return strings.Count(s, "\n") - 3 }, func(v map[string]any) int {
				return len(v["ioport"].([]any)) + len(v["iomem"].([]any))
			}},
		} {
			text, _ := execCapture(s, c.cmd)
			out, errs := execCapture(s, c.cmd+" --json")
			var v map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil || errs != "" {
				t.Errorf("%s: %s --json: %v %s", d.ID, c.cmd, err, errs)
				continue
			}
			if c.count(text) != c.list(v) {
				t.Errorf("%s: %s lists %d entries, its --json %d", d.ID, c.cmd, c.count(text), c.list(v))
			}
		}
		pid, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "workload.pid"))
		if err != nil {
			t.Fatal(err)
		}
		sockText, _ := execCapture(s, "net -s "+strings.TrimSpace(string(pid)))
		out, errs = execCapture(s, "net -s "+strings.TrimSpace(string(pid))+" --json")
		var socks []struct {
			FD     int    `json:"fd"`
			Family string `json:"family"`
			Source string `json:"source"`
		}
		if err := json.Unmarshal([]byte(out), &socks); err != nil || errs != "" || len(socks) == 0 {
			t.Errorf("%s: net -s --json: %v %s\n%.300s", d.ID, err, errs, out)
		}
		for _, so := range socks {
			src := strings.Replace(so.Source, ":", "-", 1)
			if !strings.Contains(sockText, fmt.Sprintf("\n%2d ", so.FD)) || !strings.Contains(sockText, so.Family+":") || !strings.Contains(sockText, " "+src+" ") {
				t.Errorf("%s: net -s --json socket %+v is not in its text:\n%s", d.ID, so, sockText)
			}
		}
		for _, c := range []struct{ cmd, field string }{{"dev -d", "name"}, {"net -a", "device"}} {
			text, _ := execCapture(s, c.cmd)
			out, errs := execCapture(s, c.cmd+" --json")
			var v []map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil || errs != "" || len(v) == 0 {
				t.Errorf("%s: %s --json: %v %s\n%.300s", d.ID, c.cmd, err, errs, out)
				continue
			}
			if len(v) != strings.Count(text, "\n")-1 {
				t.Errorf("%s: %s lists %d entries, its --json %d", d.ID, c.cmd, strings.Count(text, "\n")-1, len(v))
			}
			for _, e := range v {
				if name, _ := e[c.field].(string); name == "" || !strings.Contains(text, " "+name+" ") {
					t.Errorf("%s: %s --json entry %v is not in its text:\n%s", d.ID, c.cmd, e, text)
				}
			}
		}
	}
}

// devLineNamed is the CHRDEV line of text whose name column is name.
func devLineNamed(text, name string) string {
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == name {
			return l
		}
	}
	return ""
}

// TestDevNetBadInput: operands where none go, unknown or clashing options,
// a bad number or PID: the session says what is wrong
// in one line and goes on.
func TestDevNetBadInput(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "oops" && d.Variant == "lzo-d31" })
	if len(ds) == 0 {
		t.Fatal("no oops lzo-d31 dump in the corpus")
	}
	s := corpusSessionMode(t, m, ds[0], "btf")
	for _, cmd := range []string{"dev 1", "net eth0", "dev -z", "dev -i -d", "net -N zz", "net -n 99999", "net -N", "net -s -n", "net -s 99999", "net -n 1 2"} {
		out, errs := execCapture(s, cmd)
		if out != "" || errs == "" || strings.Contains(errs, "panic") || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%s: out %q, errors %q", cmd, out, errs)
		}
	}
	if out, _ := execCapture(s, "net"); !strings.Contains(out, "NET_DEVICE") {
		t.Errorf("the session did not go on after bad input: net printed %q", out)
	}
}

// TestInet6String: IPv6 addresses print as glibc's inet_ntop does (the
// expected strings are its outputs): Go's netip differs for the
// IPv4-compatible form.
func TestInet6String(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"::", "::"},
		{"::1", "::1"},
		{"fe80::5054:ff:fe12:3456", "fe80::5054:ff:fe12:3456"},
		{"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},    // first of two equal runs
		{"2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"},      // the longer run
		{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"}, // a single zero is not compressed
		{"::ffff:10.0.2.15", "::ffff:10.0.2.15"},
		{"::10.0.2.15", "::10.0.2.15"},
		{"1::", "1::"},
	} {
		if got := inet6String(netip.MustParseAddr(c.in)); got != c.want {
			t.Errorf("inet6String(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

// devNetOptionSession is what crash runs for the options the lab's
// references lack (crashGoldenDir caches its outputs in the lab); PID is
// the guest's workload process, which holds TCP sockets.
const devNetOptionSession = `dev -i > GOLDEN/dev-i.txt
dev -d > GOLDEN/dev-d.txt
dev -D > GOLDEN/dev-D.txt
net -a > GOLDEN/net-a.txt
net -n 1 > GOLDEN/net-n-1.txt
net -n > GOLDEN/net-n.txt
net -N 0x0100007f > GOLDEN/net-N-hex.txt
net -N 16777343 > GOLDEN/net-N-dec.txt
net -s > GOLDEN/net-s.txt
net -s PID > GOLDEN/net-s-pid.txt
q
`

// TestDevNetOptionsCorpus: dev -i, -d, -D, net -a, -n, -s and -N
// equal the reference crash's output, run once on the oops dumps of each
// kernel (whole and filtered) and the hung one (a task stuck), with the
// vmlinux and without.
func TestDevNetOptionsCorpus(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool {
		return (d.Scenario == "oops" && (d.Variant == "vmcore-elf" || d.Variant == "lzo-d31")) ||
			(d.Scenario == "hung" && d.Variant == "vmcore-elf")
	})
	if len(ds) == 0 {
		t.Fatal("no oops dumps in the corpus")
	}
	for _, d := range ds {
		pid, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "workload.pid"))
		if err != nil {
			t.Fatal(err)
		}
		session := strings.ReplaceAll(devNetOptionSession, "PID", strings.TrimSpace(string(pid)))
		steps := readGoldenSession(session)
		dir := crashGoldenDir(t, m, d, session)
		for _, mode := range []string{"vmlinux", "btf"} {
			s := corpusSessionMode(t, m, d, mode)
			for _, st := range steps {
				b, err := os.ReadFile(filepath.Join(dir, st.file))
				if err != nil {
					t.Fatal(err)
				}
				got, errs := execCapture(s, st.cmd)
				if errs != "" {
					t.Errorf("%s %s %s: %s", d.ID, mode, st.cmd, errs)
				}
				same, total := devNetCompare(t, d.ID, mode, st.cmd, got, string(b))
				t.Logf("%s %s %s: %d of %d lines as crash's", d.ID, mode, st.cmd, same, total)
			}
		}
	}
}

// TestDevWrapName: a resource name that would pass column 80 breaks as
// crash's do_resource_list breaks it (no lab resource name is that long).
func TestDevWrapName(t *testing.T) {
	for _, c := range []struct {
		name        string
		wrap        int
		first, rest string
	}{
		{"PCI Bus 0000:00", 29, "PCI Bus 0000:00", ""},
		// 29 + 52 = 81: one column too many; the last space leaving at
		// least one character after it is the break.
		{strings.Repeat("a", 40) + " bbbbbb cccc", 29, strings.Repeat("a", 40) + " bbbbbb", "cccc"},
		// 37 + 48 = 85: 5 too many; the space before "ww" leaves only 2
		// characters after it, the one before "zzzzz ww" enough.
		{strings.Repeat("x", 30) + " yyyyyyyy zzzzz ww", 37, strings.Repeat("x", 30) + " yyyyyyyy", "zzzzz ww"},
		// No space to break at: printed whole.
		{strings.Repeat("q", 70), 29, strings.Repeat("q", 70), ""},
	} {
		first, rest := devWrapName(c.name, c.wrap)
		if first != c.first || rest != c.rest {
			t.Errorf("devWrapName(%q, %d) = %q, %q; want %q, %q", c.name, c.wrap, first, rest, c.first, c.rest)
		}
	}
}

// TestARPLine: net -a's line for the kinds of entries the lab's guests
// (loopback only) lack, laid out as crash's print_neighbour_q lays them
// out: an Ethernet address with colons, another type's bytes with
// spaces, several NUD flags joined by "|", no state at all.
func TestARPLine(t *testing.T) {
	for _, c := range []struct {
		n    kernel.Neighbour
		want string
	}{
		{kernel.Neighbour{Addr: 0xffff888003a1c000, IP: netip.MustParseAddr("10.0.2.2"), HA: []byte{0x52, 0x54, 0, 0x12, 0x35, 2}, State: 0x02, DevName: "eth0", DevType: 1},
			"ffff888003a1c000 10.0.2.2        ETHER      52:54:00:12:35:02  eth0    REACHABLE"},
		{kernel.Neighbour{Addr: 0xffff888003a1c200, IP: netip.MustParseAddr("192.168.100.200"), HA: []byte{1, 2}, State: 0xc0, DevName: "ax0", DevType: 3},
			"ffff888003a1c200 192.168.100.200 AX25       01 02  ax0     NOARP|PERMANENT"},
		{kernel.Neighbour{Addr: 0xffff888003a1c400, IP: netip.MustParseAddr("10.0.0.1"), DevName: "tun0", DevType: 65534},
			"ffff888003a1c400 10.0.0.1        UNKNOWN     tun0    "},
	} {
		if got := arpLine(c.n); got != c.want {
			t.Errorf("arpLine:\n got %q\nwant %q", got, c.want)
		}
	}
}

// TestSocketInfo: net -s's FAMILY:TYPE and address text for the kinds of
// sockets the lab's guests lack, as crash's get_sock_info builds it:
// INET6 as 8 hex groups, the destination centred under the source;
// (5 columns narrower: 2 spaces before, 3 after); DGRAM with its
// trailing space; unknown numbers as numbers.
func TestSocketInfo(t *testing.T) {
	lo6 := netip.MustParseAddr("::1")
	any6 := netip.MustParseAddr("::")
	for _, c := range []struct {
		s    kernel.Socket
		want string
	}{
		{kernel.Socket{Family: 10, Type: 1, Src: lo6, SrcPort: 22, Dst: lo6, DstPort: 5000}, "INET6:STREAM 0:0:0:0:0:0:0:1-22 0:0:0:0:0:0:0:1-5000"},
		{kernel.Socket{Family: 10, Type: 1, Src: lo6, SrcPort: 22, Dst: any6, DstPort: 0}, "INET6:STREAM 0:0:0:0:0:0:0:1-22 0:0:0:0:0:0:0:0-0 "},
		{kernel.Socket{Family: 10, Type: 2, Src: netip.MustParseAddr("fe80::1"), SrcPort: 546, Dst: any6}, "INET6:DGRAM  fe80:0:0:0:0:0:0:1-546   0:0:0:0:0:0:0:0-0   "},
		{kernel.Socket{Family: 2, Type: 2, Src: netip.MustParseAddr("0.0.0.0"), SrcPort: 68, Dst: netip.MustParseAddr("0.0.0.0")}, "INET:DGRAM   0.0.0.0-68 0.0.0.0-0"},
		{kernel.Socket{Family: 1, Type: 1}, "UNIX:STREAM "},
		{kernel.Socket{Family: 16, Type: 3}, "NETLINK/ROUTE:RAW "},
		{kernel.Socket{Family: 21, Type: 6}, "21:6 "},
	} {
		if got := socketInfo(c.s); got != c.want {
			t.Errorf("socketInfo(%+v):\n got %q\nwant %q", c.s, got, c.want)
		}
	}
}
