package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// cutCopy writes the first frac of the file at path to dir, as a copy
// of /proc/vmcore cut short by a failing disk or a capture kernel that
// lost power would be.
func cutCopy(t *testing.T, path, dir string, frac float64) string {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	st, _ := in.Stat()
	cut := filepath.Join(dir, "vmcore.cut")
	out, err := os.Create(cut)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.CopyN(out, in, int64(float64(st.Size())*frac)); err != nil {
		t.Fatal(err)
	}
	return cut
}

// A source that ends early (the sysrq crash's /proc/vmcore cut at 40%):
// the kdump-compressed dump holds every page the source has, byte for
// byte, leaves the others missing (not excluded: a reader must not take
// them for filtered), is marked incomplete, and Collect's error is a
// *SourceError of one line naming the source and where it ends; the
// ELF dump, which cannot mark a page missing, stops at the first,
// marked incomplete, with the same kind of error.
func TestCollectTruncatedSource(t *testing.T) {
	m := corpus.Require(t)
	raw, _ := crashDumps(t, m, "sysrq")
	dir := t.TempDir()
	cut := cutCopy(t, m.Paths(raw)[0], dir, 0.4)
	src, err := dump.Open(cut)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, c := range []struct {
		name string
		opt  Options
	}{
		{"lzo.kdump", Options{Level: 31, Compression: "lzo"}},
		{"d31.elf", Options{Level: 31, Format: FormatELF}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dest := filepath.Join(dir, c.name)
			res, err := Collect(context.Background(), src, dest, c.opt)
			var se *SourceError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a SourceError", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, cut+" ends early") || !strings.Contains(msg, "the file ends at offset 0x") {
				t.Errorf("error %q: want one line naming %s and the offset where it ends", msg, cut)
			}
			t.Logf("error: %s", msg)
			if res == nil || !res.Incomplete || res.Dest != dest+".incomplete" {
				t.Fatalf("result %+v", res)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Errorf("%s created from a source that ends early", dest)
			}
			got, err := dump.Open(dest + ".incomplete")
			if err != nil {
				t.Fatalf("the dump does not open: %v", err)
			}
			defer got.Close()
			if !got.Incomplete {
				t.Error("the dump is not marked incomplete")
			}
			ps := uint64(got.Memory.PageSize())
			a, b := make([]byte, ps), make([]byte, ps)
			var same, lacked, notMissing uint64
			for _, r := range src.Memory.Ranges() {
				for pfn := r.Start / ps; pfn < r.End/ps; pfn++ {
					if src.Memory.State(pfn) == dump.PageMissing {
						lacked++
						if c.opt.Format == FormatKdump && got.Memory.State(pfn) != dump.PageMissing {
							notMissing++
						}
						continue
					}
					if _, err := got.Memory.ReadPhys(a, pfn*ps); err != nil {
						continue
					}
					if _, err := src.Memory.ReadPhys(b, pfn*ps); err != nil || !bytes.Equal(a, b) {
						t.Fatalf("frame %#x reads differently from the source (%v)", pfn, err)
					}
					same++
				}
			}
			if same == 0 || lacked == 0 || notMissing != 0 {
				t.Errorf("%d frames equal to the source, %d the source lacks, %d of those not missing in the dump", same, lacked, notMissing)
			}
			if c.opt.Format == FormatKdump && res.Missing != se.Missing {
				t.Errorf("result says %d missing, the error %d", res.Missing, se.Missing)
			}
			t.Logf("%s: %d frames equal to the source; %d it lacks (%d left missing by the writer)", c.name, same, lacked, res.Missing)
		})
	}
	// A flattened stream (-F) of it: the same, the missing pages' records
	// never sent, the stream marked incomplete.
	t.Run("lzo.flat", func(t *testing.T) {
		p := filepath.Join(dir, "lzo.flat")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CollectStream(context.Background(), src, f, Options{Level: 31, Compression: "lzo"})
		f.Close()
		var se *SourceError
		if !errors.As(err, &se) {
			t.Fatalf("error %v, want a SourceError", err)
		}
		got, err := dump.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Close()
		if !got.Incomplete {
			t.Error("the stream is not marked incomplete")
		}
		ps := uint64(got.Memory.PageSize())
		a, b := make([]byte, ps), make([]byte, ps)
		var same, notMissing uint64
		for _, r := range src.Memory.Ranges() {
			for pfn := r.Start / ps; pfn < r.End/ps; pfn++ {
				if src.Memory.State(pfn) == dump.PageMissing {
					if got.Memory.State(pfn) != dump.PageMissing {
						notMissing++
					}
					continue
				}
				if _, err := got.Memory.ReadPhys(a, pfn*ps); err != nil {
					continue
				}
				if _, err := src.Memory.ReadPhys(b, pfn*ps); err != nil || !bytes.Equal(a, b) {
					t.Fatalf("frame %#x reads differently from the source (%v)", pfn, err)
				}
				same++
			}
		}
		if same == 0 || notMissing != 0 {
			t.Errorf("%d frames equal to the source; %d the source lacks are not missing in the stream", same, notMissing)
		}
		t.Logf("lzo.flat: %d frames equal to the source, %d missing as in the source", same, se.Missing)
	})
}

// OutOfSpace, which --retry-levels acts on, knows a full disk, a quota,
// a file size limit and -L through any wrapping, and nothing else.
func TestOutOfSpace(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("d.incomplete: writing 4096 bytes at offset 0x1000: %w", &os.PathError{Op: "write", Path: "d", Err: syscall.ENOSPC}), true},
		{fmt.Errorf("x: %w", syscall.EDQUOT), true},
		{fmt.Errorf("x: %w", syscall.EFBIG), true},
		{fmt.Errorf("d.incomplete: writing: %w", ErrLimit), true},
		{fmt.Errorf("x: %w", syscall.EIO), false},
		{&SourceError{Source: "s", Missing: 1, Total: 2}, false},
		{errors.New("no space left on device"), false}, // words are not the errno
	} {
		if got := OutOfSpace(c.err); got != c.want {
			t.Errorf("OutOfSpace(%v) = %v", c.err, got)
		}
	}
}
