package debuginfo

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The name index is cached per vmlinux build ID, so that a second start
// on the same kernel reads a few megabytes instead of scanning
// .debug_info. The cache is best effort: any problem reading or writing
// it means the index is built again.
//
// File: $XDG_CACHE_HOME/salvage/index/<build-id>.dwarfidx (or
// ~/.cache/salvage/index/…): the magic and version line, the size of
// .debug_info (a rebuilt file with a reused build ID must not match),
// then per name space a count and (name, offset, size, line, decl)
// records, as uvarints.

// dwarfIndexMagic changes whenever the scanner indexes differently.
const dwarfIndexMagic = "salvage dwarf index v3\n"

func indexCachePath(buildID string) string {
	if buildID == "" {
		return ""
	}
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "salvage", "index", buildID+".dwarfidx")
}

func loadCachedIndex(buildID string, infoSize int) *dwarfIndex {
	p := indexCachePath(buildID)
	if p == "" {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	ix, err := readDwarfIndex(bufio.NewReaderSize(f, 1<<20), infoSize)
	if err != nil {
		return nil
	}
	return ix
}

func storeCachedIndex(buildID string, infoSize int, ix *dwarfIndex) {
	p := indexCachePath(buildID)
	if p == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".dwarfidx-*")
	if err != nil {
		return
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = writeDwarfIndex(w, infoSize, ix)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

func writeDwarfIndex(w *bufio.Writer, infoSize int, ix *dwarfIndex) error {
	var buf [binary.MaxVarintLen64]byte
	put := func(v uint64) {
		n := binary.PutUvarint(buf[:], v)
		w.Write(buf[:n])
	}
	w.WriteString(dwarfIndexMagic)
	put(uint64(infoSize))
	put(uint64(ix.Units))
	refAddr := uint64(0)
	if ix.RefAddr {
		refAddr = 1
	}
	put(refAddr)
	for ns := range ix.names {
		put(uint64(len(ix.names[ns])))
		for name, r := range ix.names[ns] {
			put(uint64(len(name)))
			w.WriteString(name)
			put(r.Off)
			put(uint64(r.Size + 1))
			put(uint64(r.Line))
			d := uint64(0)
			if r.Decl {
				d = 1
			}
			put(d)
		}
	}
	return nil
}

func readDwarfIndex(r *bufio.Reader, infoSize int) (*dwarfIndex, error) {
	magic := make([]byte, len(dwarfIndexMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != dwarfIndexMagic {
		return nil, errors.New("not a dwarf index")
	}
	var err error
	get := func() uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		v, err = binary.ReadUvarint(r)
		return v
	}
	if got := get(); err != nil || got != uint64(infoSize) {
		return nil, fmt.Errorf("index of a .debug_info of %d bytes, not %d", got, infoSize)
	}
	ix := &dwarfIndex{Units: int(get()), RefAddr: get() != 0}
	var name []byte
	for ns := range ix.names {
		n := get()
		if err != nil || n > 1<<24 {
			return nil, errors.New("bad dwarf index")
		}
		m := make(map[string]dieRef, n)
		for range n {
			l := get()
			if err != nil || l > 1<<16 {
				return nil, errors.New("bad dwarf index")
			}
			name = append(name[:0], make([]byte, l)...)
			if _, err = io.ReadFull(r, name); err != nil {
				return nil, err
			}
			ref := dieRef{Off: get(), Size: int64(get()) - 1, Line: uint32(get()), Decl: get() != 0}
			m[string(name)] = ref
		}
		ix.names[ns] = m
	}
	if err != nil {
		return nil, err
	}
	return ix, nil
}
