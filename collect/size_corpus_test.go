package collect

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// The pages makedumpfile keeps, compressed by salvage, take no more room
// than makedumpfile's: each of the sysrq crash's makedumpfile dumps (lzo
// and zlib at -d 31) against salvage's Exact collection of the same
// /proc/vmcore copy, the same pages by the same rules (the page counts
// are checked equal first). The header, bitmaps and descriptor table are
// the same size on both sides, so the difference is the codec's. This is
// what holds the LZO compressor's speed work (dump/lzo) to "output no
// larger" (issue 6).
func TestCollectNoLargerThanMakedumpfile(t *testing.T) {
	m := corpus.Require(t)
	var src corpus.Dump
	refs := map[dump.Compression]corpus.Dump{}
	for _, d := range m.Dumps {
		if d.Scenario != "sysrq" || d.Release != "6.1.0-56-cloud-amd64" {
			continue
		}
		switch d.Variant {
		case "vmcore-elf":
			src = d
		case "lzo-d31":
			refs["lzo"] = d
		case "zlib-d31":
			refs["zlib"] = d
		}
	}
	if src.ID == "" || len(refs) != 2 {
		t.Fatalf("the corpus lacks the sysrq crash's vmcore-elf, lzo-d31 or zlib-d31 of 6.1.0-56-cloud-amd64")
	}
	f := openDump(t, m, src)
	dir := t.TempDir()
	for _, codec := range []dump.Compression{"lzo", "zlib"} {
		t.Run(string(codec), func(t *testing.T) {
			ref := refs[codec]
			dest := filepath.Join(dir, string(codec))
			res, err := Collect(context.Background(), f, dest, Options{Level: 31, Compression: codec, Exact: true})
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(dest)
			if err != nil {
				t.Fatal(err)
			}
			rst, err := os.Stat(m.Paths(ref)[0])
			if err != nil {
				t.Fatal(err)
			}
			// The same pages: the comparison is of codecs only.
			rf := openDump(t, m, ref)
			var kept uint64
			for pfn := uint64(0); pfn < res.Selection.MaxPFN; pfn++ {
				if s := rf.Memory.State(pfn); s == dump.PagePresent || s == dump.PageZero {
					kept++
				}
			}
			if kept != res.Pages {
				t.Fatalf("%s holds %d pages, salvage's Exact dump %d: not the same pages", ref.ID, kept, res.Pages)
			}
			if st.Size() > rst.Size() {
				t.Errorf("%s: salvage wrote %d bytes (%d pages), %s %d bytes: larger", codec, st.Size(), res.Pages, ref.Producer, rst.Size())
			}
			t.Logf("%s: salvage %d bytes, %s %d bytes (%.2f%%), %d pages", codec, st.Size(), ref.Producer, rst.Size(), 100*float64(st.Size())/float64(rst.Size()), res.Pages)
		})
	}
}
