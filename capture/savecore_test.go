package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"salvage/collect"
	"salvage/dump"
	"salvage/kernel"
	"salvage/lab/corpus"
)

// testDmesg writes the log as one line per record (the command's
// formatter is makedumpfile's; the layout is what is tested here).
func testDmesg(w io.Writer, src *dump.File) error {
	recs, err := kernel.DumpLog(src)
	for _, r := range recs {
		fmt.Fprintf(w, "[%5d.%06d] %s\n", r.TimeNS/1e9, r.TimeNS%1e9/1000, r.Text)
	}
	return err
}

func corpusDump(t *testing.T, scenario, variant string) (*corpus.Manifest, corpus.Dump) {
	t.Helper()
	m := corpus.Require(t)
	for _, d := range m.Dumps {
		if d.Scenario == scenario && d.Variant == variant {
			return m, d
		}
	}
	t.Fatalf("the lab has no %s/%s dump", scenario, variant)
	return nil, corpus.Dump{}
}

// A raw target's image made by the collector from the lab's sysrq crash:
// savecore must give back the very file the collector writes directly,
// the kernel log, and clear the header so a second savecore finds nothing.
func TestSavecoreRaw(t *testing.T) {
	m, d := corpusDump(t, "sysrq", "lzo-d31")
	src, err := dump.Open(m.Paths(d)...)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dir := t.TempDir()
	opt := collect.Options{Level: 31, Compression: "lzo", Threads: 2}
	direct := filepath.Join(dir, "direct")
	if _, err := collect.Collect(context.Background(), src, direct, opt); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "raw.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 21, 1, 0, 0, time.UTC)
	h, _, err := WriteRawDump(context.Background(), f, src, opt, testDmesg, at)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !h.Complete || h.Release != "6.1.0-56-cloud-amd64" || h.DmesgLen == 0 || h.Stamp != "202611222101" {
		t.Errorf("header %+v", h)
	}
	s, err := NewDirStore(filepath.Join(dir, "crash"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := Savecore(context.Background(), SavecoreOptions{Raw: img, Store: s})
	if err != nil {
		t.Fatal(err)
	}
	if sv.Dump != "202611222101/dump.202611222101" || sv.Dmesg != "202611222101/dmesg.202611222101" || sv.Incomplete {
		t.Errorf("saved %+v", sv)
	}
	// The flattened stream's records, replayed in order (dump's
	// reassembler, as `salvage reassemble` and makedumpfile -R do), must
	// be what savecore saved. (A streamed kdump file is laid out apart
	// from one written in place, so the direct collection is compared by
	// what it reads: the kernel log through the dump's page tables.)
	var flat bytes.Buffer
	if _, err := collect.CollectStream(context.Background(), src, &flat, opt); err != nil {
		t.Fatal(err)
	}
	fx, err := dump.IndexFlattened(bytes.NewReader(flat.Bytes()), int64(flat.Len()), "stream")
	if err != nil {
		t.Fatal(err)
	}
	var re memDevice
	if _, err := fx.WriteTo(&re); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "crash", sv.Dump))
	if !bytes.Equal(got, re.b) {
		t.Errorf("savecore saved %d bytes, not the stream's file (%d bytes)", len(got), len(re.b))
	}
	saved, err := dump.Open(filepath.Join(dir, "crash", sv.Dump))
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	directF, err := dump.Open(direct)
	if err != nil {
		t.Fatal(err)
	}
	defer directF.Close()
	var a, b bytes.Buffer
	testDmesg(&a, saved)
	testDmesg(&b, directF)
	if a.Len() == 0 || !bytes.Equal(a.Bytes(), b.Bytes()) || saved.Incomplete {
		t.Errorf("the saved dump's kernel log (%d bytes) is not the direct collection's (%d bytes), or it reads incomplete", a.Len(), b.Len())
	}
	var log bytes.Buffer
	testDmesg(&log, src)
	if b, _ := os.ReadFile(filepath.Join(dir, "crash", sv.Dmesg)); !bytes.Equal(b, log.Bytes()) || !strings.Contains(string(b), "sysrq triggered crash") {
		t.Errorf("the saved kernel log (%d bytes) is not the dump's (%d bytes)", len(b), log.Len())
	}
	for _, p := range []string{sv.Dump, sv.Dmesg} {
		if st, _ := os.Stat(filepath.Join(dir, "crash", p)); st == nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: not mode 0600", p)
		}
	}
	if _, err := Savecore(context.Background(), SavecoreOptions{Raw: img, Store: s}); !errors.Is(err, ErrNoRawDump) {
		t.Errorf("a second savecore: %v, want ErrNoRawDump", err)
	}

	// A capture cut short: the header still says incomplete; savecore
	// saves what there is, marked incomplete, and says so.
	cut := filepath.Join(dir, "cut.img")
	f, _ = os.Create(cut)
	hc := &RawHeader{StreamOff: rawHeaderSize, Stamp: "202611222102"}
	f.WriteAt(hc.marshal(), 0)
	f.WriteAt(flat.Bytes()[:flat.Len()/2], rawHeaderSize)
	f.Close()
	var said []string
	sv, err = Savecore(context.Background(), SavecoreOptions{Raw: cut, Store: s, Logf: func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	if !sv.Incomplete || !strings.HasSuffix(sv.Dump, IncompleteSuffix) || !strings.Contains(strings.Join(said, "\n"), "the capture did not finish") {
		t.Errorf("a cut capture: %+v, said %q", sv, said)
	}
}

func TestSavecoreNotKdumpKernel(t *testing.T) {
	s, _ := NewDirStore(t.TempDir(), "", nil)
	_, err := Savecore(context.Background(), SavecoreOptions{Vmcore: filepath.Join(t.TempDir(), "vmcore"), Store: s})
	if err == nil || !strings.Contains(err.Error(), "this is not a kdump kernel (give --raw DEVICE)") {
		t.Errorf("savecore without a vmcore: %v", err)
	}
}

// In a kdump kernel, savecore collects /proc/vmcore (here the lab's
// sysrq crash) into the layout as the capture kernel would.
func TestSavecoreVmcore(t *testing.T) {
	m, d := corpusDump(t, "sysrq", "lzo-d31")
	dir := t.TempDir()
	s, _ := NewDirStore(dir, "", nil)
	at := time.Date(2026, 11, 22, 21, 1, 0, 0, time.UTC)
	sv, err := Savecore(context.Background(), SavecoreOptions{Vmcore: m.Paths(d)[0], Store: s, Now: at, Dmesg: testDmesg,
		Options: collect.Options{Level: 31, Compression: "zstd", Threads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if sv.Dump != "202611222101/dump.202611222101" || sv.Dmesg != "202611222101/dmesg.202611222101" || sv.Incomplete {
		t.Errorf("saved %+v", sv)
	}
	f, err := dump.Open(filepath.Join(dir, sv.Dump))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.Compression, []string{"zstd"}) || f.VMCoreInfo.OSRelease() != "6.1.0-56-cloud-amd64" {
		t.Errorf("the saved dump: %s, %s", f.Compression, f.VMCoreInfo.OSRelease())
	}
}
