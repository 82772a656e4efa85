package dump

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeSplit writes the parts of s split at the given PFN boundaries, the
// way makedumpfile --split does: every part has the full headers and
// bitmaps, and the pages of its own range.
func writeSplit(t *testing.T, s *synthDump, bounds []uint64, flat bool) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i := 0; i+1 < len(bounds); i++ {
		p := *s
		p.split, p.start, p.end = true, bounds[i], bounds[i+1]
		b, _ := p.build()
		if flat {
			b = flattenForTest(b, 4096, nil)
		}
		path := filepath.Join(dir, "vmcore."+string(rune('a'+i)))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

func TestSplit(t *testing.T) {
	for _, flat := range []bool{false, true} {
		name := "kdump parts"
		if flat {
			name = "flattened parts"
		}
		t.Run(name, func(t *testing.T) {
			s, want := standardDump(t, "zlib", 6)
			paths := writeSplit(t, s, []uint64{0, 30, 70, 100}, flat)
			// Parts given in any order.
			f, err := Open(paths[2], paths[0], paths[1])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Format != FormatSplit || f.Inner != FormatKdump || f.Path != paths[0] {
				t.Fatalf("Format %v Inner %v Path %v", f.Format, f.Inner, f.Path)
			}
			wantParts := [][2]uint64{{0, 30}, {30, 70}, {70, 100}}
			for i, p := range f.Parts {
				if p.Path != paths[i] || p.StartPFN != wantParts[i][0] || p.EndPFN != wantParts[i][1] || p.Size == 0 || flat != (p.Records > 0) {
					t.Fatalf("Parts[%d] = %+v", i, p)
				}
			}
			if len(f.PRStatus) != 2 || f.VMCoreInfo == nil || !slices.Equal(f.Compression, []string{"zlib"}) {
				t.Fatalf("PRStatus %d VMCoreInfo %v Compression %v", len(f.PRStatus), f.VMCoreInfo, f.Compression)
			}
			checkKdumpPages(t, f, s, want)
		})
	}
}

// A part opened alone reads its own range; the rest of the dump is missing.
func TestSplitPartAlone(t *testing.T) {
	s, want := standardDump(t, "zlib", 6)
	paths := writeSplit(t, s, []uint64{0, 30, 100}, false)
	f, err := Open(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Parts) != 1 || f.Parts[0].StartPFN != 30 || f.Parts[0].EndPFN != 100 || f.Parts[0].Path != paths[1] {
		t.Fatalf("Parts = %+v", f.Parts)
	}
	buf := make([]byte, 4096)
	for pfn, data := range want {
		_, err := f.Memory.ReadPhys(buf, pfn*4096)
		var pe *PageError
		switch {
		case pfn >= 30 && (err != nil || !bytes.Equal(buf, data)):
			t.Fatalf("pfn %#x: %v", pfn, err)
		case pfn < 30 && s.pages[pfn].data != nil && (!errors.As(err, &pe) || pe.State != PageMissing):
			t.Fatalf("pfn %#x of another part: %v", pfn, err)
		}
	}
}

func TestSplitErrors(t *testing.T) {
	s, _ := standardDump(t, "zlib", 6)
	paths := writeSplit(t, s, []uint64{0, 30, 70, 100}, false)
	other := *s
	other.nrCPUs = 4
	otherPaths := writeSplit(t, &other, []uint64{0, 30, 70, 100}, false)
	whole, _ := s.build()
	wholePath := filepath.Join(t.TempDir(), "whole")
	os.WriteFile(wholePath, whole, 0o600)

	tests := []struct {
		name  string
		paths []string
		inMsg string
	}{
		{"middle part missing", []string{paths[0], paths[2]}, "no part holds PFNs [0x1e, 0x46)"},
		{"first part missing", []string{paths[1], paths[2]}, "no part holds PFNs [0x0, 0x1e)"},
		{"last part missing", []string{paths[0], paths[1]}, "no part holds PFNs [0x46, 0x64)"},
		{"part twice", []string{paths[0], paths[1], paths[1], paths[2]}, "overlapping"},
		{"part of another dump", []string{paths[0], otherPaths[1], paths[2]}, "nr_cpus"},
		{"whole dump among parts", []string{paths[0], wholePath}, "no split flag"},
		{"no such file", []string{paths[0], paths[0] + ".nope"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Open(tt.paths...)
			if err == nil {
				f.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Fatalf("err = %v, want it to say %q", err, tt.inMsg)
			}
		})
	}
}
