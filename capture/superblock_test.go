package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mkfsImage makes a small filesystem image with e2fsprogs.
func mkfsImage(t *testing.T, path, fstype, label, uuid string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 8<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "-F", "-t", fstype, "-U", uuid}
	if label != "" {
		args = append(args, "-L", label)
	}
	if out, err := exec.Command("mke2fs", append(args, path)...).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs %v: %v\n%s", args, err, out)
	}
}

func TestReadFSIDExt(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		fstype, label, uuid string
	}{
		{"ext4", "dumps", "3f0f8d2e-5b1c-4c3a-9d47-0e2e5a1b7c11"},
		{"ext3", "old-one", "00112233-4455-6677-8899-aabbccddeeff"},
		{"ext2", "", "0e2e5a1b-7c11-4c3a-9d47-3f0f8d2e5b1c"},
		{"ext4", "sixteen-chars-ok", "8c2b6d1e-2f4a-4e9b-a1c3-5d6e7f809a1b"},
	} {
		img := filepath.Join(dir, c.fstype+c.label+".img")
		mkfsImage(t, img, c.fstype, c.label, c.uuid)
		id, err := ReadFSIDFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if want := (FSID{Type: c.fstype, UUID: c.uuid, Label: c.label}); id != want {
			t.Errorf("%s: %+v, want %+v", c.fstype, id, want)
		}
	}
}

// xfs is not installed on the build machine: a superblock laid out as
// xfs_format.h's struct xfs_dsb (synthetic: an edge case).
func TestReadFSIDXFS(t *testing.T) {
	b := make([]byte, 4096)
	copy(b, "XFSB")
	binary.BigEndian.PutUint32(b[4:], 4096)
	copy(b[32:], []byte{0x8c, 0x2b, 0x6d, 0x1e, 0x2f, 0x4a, 0x4e, 0x9b, 0xa1, 0xc3, 0x5d, 0x6e, 0x7f, 0x80, 0x9a, 0x1b})
	copy(b[108:], "xfsdumps")
	id, err := ReadFSID(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if want := (FSID{Type: "xfs", UUID: "8c2b6d1e-2f4a-4e9b-a1c3-5d6e7f809a1b", Label: "xfsdumps"}); id != want {
		t.Errorf("%+v, want %+v", id, want)
	}
	if _, err := ReadFSID(bytes.NewReader(make([]byte, 8192))); err != errNoFS {
		t.Errorf("zeroes: %v, want %v", err, errNoFS)
	}
	if _, err := ReadFSID(bytes.NewReader([]byte("short"))); err != errNoFS {
		t.Errorf("a short device: %v, want %v", err, errNoFS)
	}
}

// fakeBlockRoot makes a machine root whose /dev/NAME are images and whose
// /sys/class/block lists them, without udev's /dev/disk.
func fakeBlockRoot(t *testing.T, images map[string]string) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	for name, img := range images {
		os.MkdirAll(filepath.Join(root, "sys/class/block", name), 0o755)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "dev", name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFindDevice(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	mkfsImage(t, a, "ext4", "root", "11111111-2222-3333-4444-555555555555")
	mkfsImage(t, b, "ext4", "crash", "66666666-7777-8888-9999-aaaaaaaaaaaa")
	root := fakeBlockRoot(t, map[string]string{"vda": a, "vdb": b})
	os.WriteFile(filepath.Join(root, "dev/vdc"), []byte("not a filesystem"), 0o600)
	os.MkdirAll(filepath.Join(root, "sys/class/block/vdc"), 0o755)
	for _, c := range []struct{ spec, want, err string }{
		{spec: "/dev/vdb", want: "/dev/vdb"},
		{spec: "UUID=66666666-7777-8888-9999-aaaaaaaaaaaa", want: "/dev/vdb"},
		{spec: "UUID=66666666-7777-8888-9999-AAAAAAAAAAAA", want: "/dev/vdb"},
		{spec: "LABEL=root", want: "/dev/vda"},
		{spec: "LABEL=nope", err: "device LABEL=nope: no block device has it"},
		{spec: "/dev/sdz", err: "device /dev/sdz: "},
		{spec: "PARTUUID=1234", err: "partition names need udev's links"},
		{spec: "FOO=bar", err: "want /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL="},
	} {
		got, err := FindDevice(root, c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("FindDevice(%q) = %q, %v; want an error with %q", c.spec, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("FindDevice(%q) = %q, %v; want %q", c.spec, got, err, c.want)
		}
	}
	// udev's links win when they exist.
	os.MkdirAll(filepath.Join(root, "dev/disk/by-label"), 0o755)
	os.Symlink("../../vdc", filepath.Join(root, "dev/disk/by-label/crash"))
	if got, err := FindDevice(root, "LABEL=crash"); err != nil || got != "/dev/vdc" {
		t.Errorf("FindDevice(LABEL=crash) with /dev/disk/by-label = %q, %v; want /dev/vdc", got, err)
	}
}
