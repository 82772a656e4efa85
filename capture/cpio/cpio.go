// Package cpio writes initramfs archives in the "newc" cpio format that
// the kernel unpacks at boot (Documentation/driver-api/early-userspace/
// buffer-format.rst): a 110-byte ASCII header per entry, name and data
// each padded to 4 bytes, ended by a "TRAILER!!!" entry.
package cpio

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Mode bits of the entries (the S_IF* values of stat(2)).
const (
	ModeDir     = 0o040000
	ModeFile    = 0o100000
	ModeSymlink = 0o120000
	ModeChar    = 0o020000
)

// Entry is one archive member.
type Entry struct {
	Name  string // path without a leading slash
	Mode  uint32 // type and permission bits
	Data  []byte // file contents, or the target of a symlink
	Major uint32 // rdev, for device nodes
	Minor uint32
}

// Archive collects entries and writes them in a deterministic order, with
// every parent directory created first.
type Archive struct {
	entries map[string]Entry
}

// New returns an empty archive.
func New() *Archive { return &Archive{entries: map[string]Entry{}} }

func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *Archive) addParents(name string) {
	for d := path.Dir(name); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		if _, ok := a.entries[d]; !ok {
			a.entries[d] = Entry{Name: d, Mode: ModeDir | 0o755}
		}
	}
}

// Dir adds a directory.
func (a *Archive) Dir(name string, perm uint32) {
	name = clean(name)
	a.addParents(name)
	a.entries[name] = Entry{Name: name, Mode: ModeDir | perm}
}

// File adds a regular file, replacing any earlier entry of that name.
func (a *Archive) File(name string, perm uint32, data []byte) {
	name = clean(name)
	a.addParents(name)
	a.entries[name] = Entry{Name: name, Mode: ModeFile | perm, Data: data}
}

// Symlink adds a symbolic link to target.
func (a *Archive) Symlink(name, target string) {
	name = clean(name)
	a.addParents(name)
	a.entries[name] = Entry{Name: name, Mode: ModeSymlink | 0o777, Data: []byte(target)}
}

// CharDev adds a character device node.
func (a *Archive) CharDev(name string, perm, major, minor uint32) {
	name = clean(name)
	a.addParents(name)
	a.entries[name] = Entry{Name: name, Mode: ModeChar | perm, Major: major, Minor: minor}
}

// Has reports whether name is in the archive.
func (a *Archive) Has(name string) bool {
	_, ok := a.entries[clean(name)]
	return ok
}

// WriteTo writes the archive: directories sort before their contents
// because a parent's name is a prefix of its children's.
func (a *Archive) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	cw := &countWriter{w: w}
	for i, n := range names {
		if err := writeEntry(cw, uint32(i+1), a.entries[n]); err != nil {
			return cw.n, err
		}
	}
	if err := writeEntry(cw, 0, Entry{Name: "TRAILER!!!"}); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var zeros [4]byte

func pad(w *countWriter) error {
	if r := c4(w.n); r != 0 {
		_, err := w.Write(zeros[:r])
		return err
	}
	return nil
}

func c4(n int64) int64 { return (4 - n%4) % 4 }

func writeEntry(w *countWriter, ino uint32, e Entry) error {
	nlink := 1
	if e.Mode&0o170000 == ModeDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.Mode, 0, 0, nlink, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(e.Name)+1, 0)
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	if _, err := io.WriteString(w, e.Name+"\x00"); err != nil {
		return err
	}
	if err := pad(w); err != nil {
		return err
	}
	if _, err := w.Write(e.Data); err != nil {
		return err
	}
	return pad(w)
}
