package analyze

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"regexp"

	"salvage/dump"
)

// ELF e_type values (include/uapi/linux/elf.h).
const (
	etExec = 2 // x86_64 vmlinux
	etDyn  = 3 // arm64 vmlinux (linked -pie)
	etCore = 4 // ELF crash dumps
)

// fileKind is what a command-line file holds, judged from its first bytes.
type fileKind int

const (
	kindDump      fileKind = iota // anything else: dump.Open decides
	kindKernel                    // an ELF kernel image (vmlinux)
	kindBzImage                   // a compressed kernel (vmlinuz)
	kindSystemMap                 // a System.map: "ADDRESS TYPE NAME" lines
)

// sniff reads enough of path to tell a kernel image from a dump.
func sniff(path string) (fileKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.IsDir() {
		return 0, fmt.Errorf("%s: is a directory, not a dump or kernel image", path)
	}
	var head [0x206]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return classify(head[:n]), nil
}

// classify judges a file from its first bytes: ELF executables and
// position-independent executables are kernel images; the x86 boot
// protocol's "HdrS" at 0x202 marks a bzImage.
func classify(head []byte) fileKind {
	if len(head) >= 18 && bytes.HasPrefix(head, []byte("\x7fELF")) {
		var typ uint16
		switch head[5] { // EI_DATA
		case 1:
			typ = binary.LittleEndian.Uint16(head[16:])
		case 2:
			typ = binary.BigEndian.Uint16(head[16:])
		}
		if typ == etExec || typ == etDyn {
			return kindKernel
		}
		return kindDump
	}
	if len(head) >= 0x206 && string(head[0x202:0x206]) == "HdrS" {
		return kindBzImage
	}
	if systemMapLine.Match(head) {
		return kindSystemMap
	}
	return kindDump
}

// systemMapLine is a System.map's first line (nm's format).
var systemMapLine = regexp.MustCompile(`^[0-9a-f]{8,16} [A-Za-z] \S+\n`)

// SplitTarget sorts `salvage analyze`'s file arguments into the kernel
// image (at most one, in any position) and the dump files (one, or the
// parts of a split dump).
func SplitTarget(args []string) (vmlinux string, dumps []string, err error) {
	t, err := splitTarget(args)
	return t.vmlinux, t.dumps, err
}

// target is the files of `salvage analyze`, sorted.
type target struct {
	vmlinux, systemMap string
	dumps              []string
}

func splitTarget(args []string) (t target, err error) {
	vmlinux, dumps, sysmap := "", []string(nil), ""
	defer func() { t = target{vmlinux, sysmap, dumps} }()
	for _, a := range args {
		k, err := sniff(a)
		if err != nil {
			return t, err
		}
		switch k {
		case kindSystemMap:
			if sysmap != "" {
				return t, fmt.Errorf("%s and %s are both System.map files; give one", sysmap, a)
			}
			sysmap = a
		case kindBzImage:
			return t, fmt.Errorf("%s: is a compressed kernel (vmlinuz); give the uncompressed vmlinux, ideally the debug one", a)
		case kindKernel:
			if vmlinux != "" {
				return t, fmt.Errorf("%s and %s are both kernel images; give one vmlinux and the dump", vmlinux, a)
			}
			vmlinux = a
		default:
			dumps = append(dumps, a)
		}
	}
	if len(dumps) == 0 {
		if vmlinux != "" {
			return t, fmt.Errorf("%s is a kernel image, not a dump: give the dump file too", vmlinux)
		}
		return t, fmt.Errorf("no dump file given")
	}
	return t, nil
}

// Open opens the dump (and remembers the kernel image) named by args for a
// session writing to out and errw.
func Open(args []string, out, errw io.Writer) (*Session, error) {
	t, err := splitTarget(args)
	if err != nil {
		return nil, err
	}
	d, err := openDump(t.dumps)
	if err != nil {
		return nil, err
	}
	s := NewSession(d, t.vmlinux, out, errw)
	s.SystemMap = t.systemMap
	return s, nil
}

// openDump is dump.Open, with a panic in a reader turned into an error
// that names the file: a malformed dump must not crash the session.
func openDump(paths []string) (d *dump.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("%s: internal error while opening the dump (this is a bug in salvage): %v", paths[0], r)
		}
	}()
	return dump.Open(paths...)
}

// Close closes the session's dump.
func (s *Session) Close() error {
	if s.Dump == nil {
		return nil
	}
	return s.Dump.Close()
}
