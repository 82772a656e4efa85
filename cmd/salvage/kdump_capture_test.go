package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"salvage/collect"
)

// core_collector lines mean in the capture kernel what they mean on a
// command line.
func TestCollectorOptions(t *testing.T) {
	for _, c := range []struct {
		line string
		want collect.Options
		err  string
	}{
		{line: "makedumpfile -l --message-level 7 -d 31", want: collect.Options{Level: 31, Format: collect.FormatKdump, Compression: "lzo"}},
		{line: "/usr/sbin/makedumpfile -c -d 17", want: collect.Options{Level: 17, Format: collect.FormatKdump, Compression: "zlib"}},
		{line: "salvage collect --compression zstd -d 1 --num-threads 2", want: collect.Options{Level: 1, Format: collect.FormatKdump, Compression: "zstd", Threads: 2}},
		{line: "makedumpfile -E -d 31", want: collect.Options{Level: 31, Format: collect.FormatELF, Compression: "none"}},
		{line: "makedumpfile -F -p -d 31 --exact", want: collect.Options{Level: 31, Format: collect.FormatKdump, Compression: "snappy", Exact: true}},
		{line: "cp --sparse=always", err: `"cp": salvage collects with its own makedumpfile`},
		{line: "makedumpfile -l -c", err: "choose one compression"},
		{line: "makedumpfile --bogus", err: "unknown flag: --bogus"},
		{line: "makedumpfile -d 40", err: "-d 40: the dump level is 0–31"},
	} {
		got, err := collectorOptions(strings.Fields(c.line))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.line, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
}

// kdump test crashes only with --yes-i-want-to-crash and only when ready.
func TestKdumpTest(t *testing.T) {
	if _, err := runKdump(t, "test"); err == nil || err.Error() != "this crashes the machine: give --yes-i-want-to-crash" {
		t.Errorf("without the flag: %v", err)
	}
	for _, c := range []struct {
		root  string
		err   string
		crash bool
	}{
		{root: "lab-unloaded", err: "not ready to kdump: not crashing"},
		{root: "nokexec", err: "not ready to kdump: not crashing"},
		{root: "lab-ready", crash: true},
	} {
		root := t.TempDir()
		if out, err := exec.Command("cp", "-a", filepath.Join(fixtures, c.root)+"/.", root).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		trigger := filepath.Join(root, "proc/sysrq-trigger")
		os.WriteFile(trigger, nil, 0o644)
		out, err := runKdump(t, "test", "--yes-i-want-to-crash", "--root", root)
		b, _ := os.ReadFile(trigger)
		if c.crash {
			if err != nil || string(b) != "c" || !strings.Contains(out, "ready to kdump; crashing now (sysrq c)") {
				t.Errorf("%s: %v, sysrq-trigger %q, said %q", c.root, err, b, out)
			}
			continue
		}
		if err == nil || err.Error() != c.err || len(b) != 0 || !strings.Contains(out, "not ready to kdump") {
			t.Errorf("%s: %v, sysrq-trigger %q, said %q; want %q and no crash", c.root, err, b, out, c.err)
		}
	}
}

// savecore on a device with no dump says so in one line.
func TestKdumpSavecoreNothing(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "disk")
	os.WriteFile(dev, make([]byte, 1<<16), 0o600)
	_, err := runKdump(t, "savecore", "--root", t.TempDir(), "--raw", dev, "--dir", t.TempDir())
	if err == nil || err.Error() != dev+": no salvage raw dump header" {
		t.Errorf("savecore of an empty disk: %v", err)
	}
}

// savecore --if-raw (salvage-kdump.service's ExecStartPre) saves only
// from a configured raw target, and an empty one or another target is
// nothing to do, not an error; a raw target whose device is missing is.
func TestKdumpSavecoreIfRaw(t *testing.T) {
	for _, c := range []struct {
		conf, out, err string
		disk           bool
	}{
		{conf: "ext4 /dev/vdb\n", out: "savecore: the dump target is ext4 /dev/vdb, not a raw device: nothing to save\n"},
		{conf: "path /var/crash\n", out: "savecore: the dump target is local, not a raw device: nothing to save\n"},
		{conf: "raw /dev/vdb\n", disk: true, out: "holds no dump: nothing to save\n"},
		{conf: "raw /dev/vdc\n", err: "the raw target (kdump.conf line 1): device /dev/vdc: stat "},
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc/salvage"), 0o755)
		os.MkdirAll(filepath.Join(root, "dev"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/salvage/kdump.conf"), []byte(c.conf), 0o644)
		if c.disk {
			os.WriteFile(filepath.Join(root, "dev/vdb"), make([]byte, 1<<16), 0o600)
		}
		out, err := runKdump(t, "savecore", "--if-raw", "--root", root, "--dir", t.TempDir())
		switch {
		case c.err != "":
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.conf, err, c.err)
			}
		case err != nil || !strings.HasSuffix(out, c.out):
			t.Errorf("%q: %v, said %q; want %q", c.conf, err, out, c.out)
		}
	}
}
