package debuginfo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// LoadSystemMap reads a System.map (nm -n output filtered by the kernel's
// scripts/mksysmap: "ffffffff81000000 T _stext" per line) and relocates
// it by kaslrOffset. The same parser reads /proc/kallsyms text, whose
// optional fourth column "[module]" sets Symbol.Module (pass 0 for
// kaslrOffset: its addresses are already the run-time ones).
func LoadSystemMap(path string, kaslrOffset uint64) (*Table, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ParseSystemMap(fh, path, kaslrOffset)
}

// SystemMapError is a line of a System.map that could not be read.
type SystemMapError struct {
	File string
	Line int
	Text string
	Msg  string
}

func (e *SystemMapError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %q", e.File, e.Line, e.Msg, truncateText(e.Text, 80))
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// debianPlaceholder is the one line of the System.map that Debian's
// linux-image packages ship; the real map is in the -dbg package.
const debianPlaceholder = "The real System.map is in"

// ParseSystemMap reads System.map (or /proc/kallsyms) text from r; name
// is used in messages and in the table's Source. Symbols in kernel space
// (the upper half of the address space) are moved by kaslrOffset;
// absolute symbols ('A') and per-CPU offsets (x86_64 links them at 0)
// are not, as the kernel's boot-time relocation leaves them.
func ParseSystemMap(r io.Reader, name string, kaslrOffset uint64) (*Table, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var syms []Symbol
	// Module names repeat on every line of /proc/kallsyms: keep one copy.
	modules := map[string]string{}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		s, msg := parseSystemMapLine(text, modules)
		if msg != "" {
			if bytes.Contains(text, []byte(debianPlaceholder)) {
				msg = "Debian's placeholder System.map; the real one is in the linux-image-…-dbg package (usr/lib/debug/boot/System.map-<release>)"
			}
			return nil, &SystemMapError{File: name, Line: line, Text: string(text), Msg: msg}
		}
		if s.Addr >= 1<<63 && s.Type != 'A' && s.Type != 'a' {
			s.Addr += kaslrOffset
		}
		syms = append(syms, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if len(syms) == 0 {
		return nil, fmt.Errorf("%s: no symbols", name)
	}
	// Like kallsyms, System.map has no sizes: a kernel symbol runs to
	// the next (per-CPU offsets and absolute values have none).
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].Addr < syms[j].Addr })
	k := sort.Search(len(syms), func(i int) bool { return syms[i].Addr >= 1<<63 })
	setKallsymsSizes(syms[k:])
	t := NewTable("System.map "+name, syms)
	// /proc/kallsyms text lists modules too; System.map only vmlinux.
	t.bounded = len(modules) == 0
	return t, nil
}

// parseSystemMapLine parses "address type name [module]"; msg says what
// is wrong when it cannot.
func parseSystemMapLine(text []byte, modules map[string]string) (Symbol, string) {
	f := strings.Fields(string(text))
	if len(f) < 3 || len(f) > 4 {
		return Symbol{}, "want \"address type name\" or \"address type name [module]\""
	}
	addr, err := strconv.ParseUint(f[0], 16, 64)
	if err != nil || len(f[0]) > 16 {
		return Symbol{}, "address is not hexadecimal"
	}
	if len(f[1]) != 1 || !isTypeLetter(f[1][0]) {
		return Symbol{}, "type is not one nm type letter"
	}
	s := Symbol{Name: f[2], Addr: addr, Type: f[1][0]}
	if len(f) == 4 {
		m, ok := strings.CutPrefix(f[3], "[")
		m, ok2 := strings.CutSuffix(m, "]")
		if !ok || !ok2 || m == "" {
			return Symbol{}, "fourth column is not \"[module]\""
		}
		if c, ok := modules[m]; ok {
			m = c
		} else {
			modules[m] = m
		}
		s.Module = m
	}
	return s, ""
}

func isTypeLetter(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '?' || c == '-'
}
