package collect

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"salvage/dump"
	"salvage/lab/corpus"
)

// enospcEnv names the directory, a small tmpfs, in which the child test
// process collects.
const enospcEnv = "SALVAGE_TEST_ENOSPC_DIR"

// A disk that fills up mid-dump: collect fails with the disk's error,
// leaves DEST.incomplete marked incomplete and readable (every page it
// says is present reads as in the source), and never creates DEST. The
// test runs itself again in a private mount namespace (unshare -m) with
// an 8 MiB tmpfs as the destination, for the kdump-compressed and ELF
// writers; it needs root, as `make test` runs.
func TestCollectENOSPC(t *testing.T) {
	if dir := os.Getenv(enospcEnv); dir != "" {
		enospcChild(t, dir)
		return
	}
	dir := t.TempDir()
	script := `mount -t tmpfs -o size=8m salvage-enospc "$1" && shift && exec "$@"`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir,
		os.Args[0], "-test.run=^TestCollectENOSPC$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), enospcEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("the child test in an 8 MiB tmpfs failed (it needs root for unshare -m and mount): %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestCollectENOSPC") {
		t.Fatal("the child test did not run")
	}
}

func enospcChild(t *testing.T, dir string) {
	m := corpus.Require(t)
	raw, _ := crashDumps(t, m, "sysrq")
	src := openDump(t, m, raw)
	all, err := Prepare(src, 31)
	if err != nil {
		t.Fatal(err)
	}
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
			if err == nil {
				t.Fatalf("Collect into an 8 MiB tmpfs succeeded")
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("error %q does not wrap ENOSPC", err)
			}
			t.Logf("error: %v", err)
			if res == nil || !res.Incomplete || res.Dest != dest+".incomplete" {
				t.Fatalf("result %+v", res)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Errorf("%s was created for a failed dump", dest)
			}
			got, err := dump.Open(dest + ".incomplete")
			if err != nil {
				t.Fatalf("the partial dump does not open: %v", err)
			}
			defer got.Close()
			if !got.Incomplete {
				t.Error("the partial dump is not marked incomplete")
			}
			ps := uint64(got.Memory.PageSize())
			a, b := make([]byte, ps), make([]byte, ps)
			var present, missing uint64
			for pfn := all.Kept.Next(0); pfn < all.MaxPFN; pfn = all.Kept.Next(pfn + 1) {
				if _, err := got.Memory.ReadPhys(a, pfn*ps); err != nil {
					missing++
					continue
				}
				present++
				if _, err := src.Memory.ReadPhys(b, pfn*ps); err != nil || !bytes.Equal(a, b) {
					t.Fatalf("frame %#x reads differently from the source (%v)", pfn, err)
				}
			}
			if present == 0 || missing == 0 {
				t.Errorf("%d kept frames readable, %d missing: want some of each", present, missing)
			}
			t.Logf("%s: %d kept frames readable and equal to the source, %d missing", c.name, present, missing)
			os.Remove(dest + ".incomplete")
		})
	}
}
