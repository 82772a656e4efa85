package lab

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"salvage/capture/cpio"
	"salvage/lab/corpus"
)

// TestBenchOutsideGuestHash checks that the bench guest's files are not
// among the files guestHash digests: if they were, every edit of the bench
// guest would change the key of every crash of the corpus and rebuild it.
func TestBenchOutsideGuestHash(t *testing.T) {
	fs.WalkDir(guestFS, "guest", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p, "guest/bench") {
			t.Errorf("%s is in guestFS: it would key every crash, not the bench crash alone", p)
		}
		return nil
	})
	if !bytes.Contains(benchInit, []byte("/proc/sysrq-trigger")) {
		t.Error("the embedded bench /init does not crash the guest through sysrq")
	}
}

// TestManifestHasNoBench checks that the bench crash stays out of the
// manifest every test iterates: its 6 GiB dump is for `make bench` alone.
func TestManifestHasNoBench(t *testing.T) {
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		if d.Scenario == "bench" || strings.HasPrefix(d.Files[0], corpus.BenchDir+"/") {
			t.Errorf("the manifest lists the bench dump %s", d.ID)
		}
	}
}

// TestLoadBenchMissing checks that a corpus without the bench crash
// answers with an error that says how to build it.
func TestLoadBenchMissing(t *testing.T) {
	_, err := corpus.LoadBench(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "make bench") {
		t.Fatalf("LoadBench of an empty directory: %v; want an error naming `make bench`", err)
	}
}

// TestBenchImageReplacesInit reads benchImage's output archive by archive,
// as the kernel unpacks an initramfs (newc headers, 4-byte alignment,
// archives one after another), and checks that the last /init is the
// bench guest's while the production image's other files remain.
func TestBenchImageReplacesInit(t *testing.T) {
	dir := t.TempDir()
	a := cpio.New()
	a.File("init", 0o755, []byte("#!/bin/sh\necho production\n"))
	a.File("bin/workload", 0o755, []byte("odd length."))
	var prod bytes.Buffer
	if _, err := a.WriteTo(&prod); err != nil {
		t.Fatal(err)
	}
	prod.WriteString("\x00") // an image whose length is not a multiple of 4
	src, dst := filepath.Join(dir, "guest.img"), filepath.Join(dir, "bench.img")
	if err := os.WriteFile(src, prod.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := benchImage(src, dst); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	trailers := 0
	for off := 0; off < len(img); {
		if img[off] == 0 { // padding between archives
			off++
			continue
		}
		if off%4 != 0 || off+110 > len(img) || string(img[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(img[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header at %d: field %d: %v", off, i, err)
			}
			return int(v)
		}
		size, nameSize := field(6), field(11) // c_filesize, c_namesize
		name := string(img[off+110 : off+110+nameSize-1])
		data := (off + 110 + nameSize + 3) &^ 3
		end := (data + size + 3) &^ 3
		if name == "TRAILER!!!" {
			trailers++
		} else {
			files[name] = img[data : data+size]
		}
		off = end
	}
	if trailers != 2 {
		t.Errorf("%d archives in the bench image, want 2", trailers)
	}
	if !bytes.Equal(files["init"], benchInit) {
		t.Errorf("the unpacked /init is %q, want the bench guest's", files["init"])
	}
	if string(files["bin/workload"]) != "odd length." {
		t.Errorf("the production image's bin/workload is lost: %q", files["bin/workload"])
	}
}
