package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"salvage/capture/cpio"
	"salvage/lab/corpus"
)

// writeBzImage writes the first bytes of a bzImage: the setup header
// with its magic, protocol version and init_size.
func writeBzImage(t *testing.T, name string, version uint16, initSize uint32) {
	t.Helper()
	h := make([]byte, 0x300)
	copy(h[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(h[0x206:], version)
	binary.LittleEndian.PutUint32(h[0x260:], initSize)
	if err := os.WriteFile(name, h, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBzImageInitSize(t *testing.T) {
	dir := t.TempDir()
	k := filepath.Join(dir, "vmlinuz")
	writeBzImage(t, k, 0x20f, 50<<20)
	if n, err := BzImageInitSize(k); err != nil || n != 50<<20 {
		t.Errorf("init_size %d, %v", n, err)
	}
	writeBzImage(t, k, 0x209, 50<<20)
	if _, err := BzImageInitSize(k); err == nil || !strings.Contains(err.Error(), "boot protocol 2.09 predates init_size") {
		t.Errorf("old protocol: %v", err)
	}
	os.WriteFile(k, make([]byte, 0x300), 0o644)
	if _, err := BzImageInitSize(k); err == nil || !strings.Contains(err.Error(), "no HdrS") {
		t.Errorf("no magic: %v", err)
	}
	os.WriteFile(k, []byte("short"), 0o644)
	if _, err := BzImageInitSize(k); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short: %v", err)
	}
}

// writeInitramfs writes an early uncompressed cpio followed by a gzip one
// (the layout of Debian's initramfs-tools images), with files of the
// given sizes.
func writeInitramfs(t *testing.T, name string, early, main []int) {
	t.Helper()
	var buf bytes.Buffer
	a := cpio.New()
	for i, n := range early {
		a.File("kernel/x86/microcode/f"+string(rune('a'+i)), 0o644, make([]byte, n))
	}
	a.WriteTo(&buf)
	buf.Write(make([]byte, 512)) // padding between archives
	b := cpio.New()
	for i, n := range main {
		b.File("bin/f"+string(rune('a'+i)), 0o755, bytes.Repeat([]byte{'x'}, n))
	}
	zw := gzip.NewWriter(&buf)
	b.WriteTo(zw)
	zw.Close()
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMeasureInitramfs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "initrd")
	writeInitramfs(t, p, []int{5000}, []int{1, 4096, 4097, 0})
	s, err := MeasureInitramfs(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	// files: 5000 → 2 pages; 1 → 1; 4096 → 1; 4097 → 2; 0 → 0; plus the
	// directories the archive adds (no pages).
	if s.Unpacked != 6*4096 || s.File != uint64(st.Size()) {
		t.Errorf("got %+v; want 6 pages unpacked and file %d", s, st.Size())
	}
	os.WriteFile(p, []byte("not an initramfs at all"), 0o644)
	if _, err := MeasureInitramfs(p); err == nil || !strings.Contains(err.Error(), "not an initramfs") {
		t.Errorf("garbage: %v", err)
	}
	os.WriteFile(p, append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 100)...), 0o644)
	if s, err := MeasureInitramfs(p); err != nil || s.Guessed != "xz" || s.Unpacked != 106*guessRatio {
		t.Errorf("xz: %+v, %v", s, err)
	}
	hdr := "070701" + strings.Repeat("00000000", 11) + "00002000" + "00000000"
	os.WriteFile(p, []byte(hdr), 0o644)
	if _, err := MeasureInitramfs(p); err == nil || !strings.Contains(err.Error(), "cpio name of 8192 bytes: longer than PATH_MAX") {
		t.Errorf("long name: %v", err)
	}
	os.WriteFile(p, []byte("070701000000"), 0o644)
	if _, err := MeasureInitramfs(p); err == nil || !strings.Contains(err.Error(), "truncated cpio header") {
		t.Errorf("truncated: %v", err)
	}
}

func TestModulesSize(t *testing.T) {
	dir := t.TempDir()
	// The lab kernel's virtio disk stack (its load-order file).
	write(t, dir, "modules.dep", "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"+
		"kernel/drivers/virtio/virtio_ring.ko: kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio.ko:\n"+
		"kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\nkernel/fs/fat/fat.ko:\n")
	for name, n := range map[string]int{"block/virtio_blk": 100, "virtio/virtio_ring": 30, "virtio/virtio": 7} {
		write(t, dir, "kernel/drivers/"+name+".ko", strings.Repeat("m", n))
	}
	n, files, err := ModulesSize(dir, []string{"virtio-blk", "virtio"})
	if err != nil || n != 137 || files != 3 {
		t.Errorf("virtio_blk: %d bytes in %d files, %v", n, files, err)
	}
	if _, _, err := ModulesSize(dir, []string{"nosuch"}); err == nil || !strings.Contains(err.Error(), "module nosuch is not in") {
		t.Errorf("missing module: %v", err)
	}
	if _, _, err := ModulesSize(dir, []string{"vfat"}); err == nil {
		t.Error("a missing .ko file is no error")
	}
	if _, _, err := ModulesSize(t.TempDir(), []string{"x"}); err == nil || !strings.Contains(err.Error(), "modules.dep") {
		t.Errorf("no modules.dep: %v", err)
	}
}

// TestEstimateFormula checks each term and the total on the lab guest's
// machine root with a kernel and initramfs of known sizes.
func TestEstimateFormula(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	writeBzImage(t, k, 0x20f, 50<<20)
	writeInitramfs(t, i, nil, []int{10 << 20})
	st, _ := os.Stat(i)
	e, err := EstimateReservation(EstimateInput{Root: "testdata/root/lab-ready", Kernel: k, Initrd: i})
	if err != nil {
		t.Fatal(err)
	}
	maxPFN := uint64(0x3ffdd000 / 4096)
	// … + Go runtime + kernel model (no kallsyms or System.map under the root: 160000 symbols assumed)
	collector := 2*(5*((maxPFN+7)/8)+2*256*2*4096) + 12<<20 + 2*(10<<20+160000*128)
	elfhdr := uint64(4096) // 1 CPU (no cpuinfo), 2 ranges: 64+5×56 bytes
	need := uint64(50<<20) + uint64(st.Size()) + 10<<20 + collector + elfhdr + 64<<20
	rec := roundUp(need*64/63*110/100, 16<<20)
	if e.MaxPFN != maxPFN || e.Need != need || e.Recommended != rec || e.Param != "crashkernel="+FormatSize(rec) {
		t.Errorf("got max_pfn %d need %d recommended %d %s; want %d %d %d", e.MaxPFN, e.Need, e.Recommended, e.Param, maxPFN, need, rec)
	}
	if e.Recommended != 240<<20 {
		t.Errorf("recommended %s; want 240M", FormatSize(e.Recommended))
	}
	// The lab's 256M is enough: no warning about the reservation.
	for _, w := range e.Warnings {
		if strings.Contains(w, "smaller") {
			t.Errorf("warning %q", w)
		}
	}
	// The same on a machine that reserved too little.
	root := t.TempDir()
	write(t, root, "proc/cmdline", "crashkernel=64M")
	write(t, root, "proc/meminfo", "MemTotal: 1048576 kB\n")
	write(t, root, "sys/kernel/kexec_crash_size", "67108864")
	write(t, root, "sys/kernel/kexec_crash_loaded", "0")
	e, err = EstimateReservation(EstimateInput{Root: root, Kernel: k, Initrd: i})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(e.Warnings, "\n"), "the current reservation (64M) is smaller than the 240M recommended") {
		t.Errorf("warnings %q", e.Warnings)
	}
	// A kernel named but unreadable is an error, not a guess.
	if _, err := EstimateReservation(EstimateInput{Root: root, Kernel: filepath.Join(dir, "nosuch")}); err == nil {
		t.Error("missing --kernel is no error")
	}
	// No kernel found: assumed, with a warning.
	e, err = EstimateReservation(EstimateInput{Root: root, Release: "9.9.9"})
	if err != nil || !strings.Contains(strings.Join(e.Warnings, "\n"), "assuming 64M; give --kernel") {
		t.Errorf("no kernel: %v %q", err, e.Warnings)
	}
}

func TestCollectorMemoryWindow(t *testing.T) {
	// The collector's bitmaps cover one window of 2^21 frames (8 GiB):
	// past that, more RAM costs the collector nothing more.
	const syms = 100000
	if CollectorMemory(1<<21, syms) != CollectorMemory(1<<30, syms) || CollectorMemory(1<<18, syms) >= CollectorMemory(1<<21, syms) {
		t.Errorf("%d %d %d", CollectorMemory(1<<18, syms), CollectorMemory(1<<21, syms), CollectorMemory(1<<30, syms))
	}
	// The kernel model grows with the kernel's symbols.
	if CollectorMemory(1<<18, 2*syms) <= CollectorMemory(1<<18, syms) {
		t.Error("more symbols cost the collector nothing")
	}
}

// TestEstimateLab estimates for the lab guest with the lab's real kernel
// and capture initramfs. The lab captured every crash in a 256M
// reservation, so the estimate must fit in it; and it must cover at least
// the kernel's init_size and the initramfs.
func TestEstimateLab(t *testing.T) {
	m := corpus.Require(t)
	checked := 0
	for _, k := range m.Kernels {
		if k.Vmlinuz == "" {
			continue
		}
		imgs, _ := filepath.Glob(m.Path(filepath.Join("guest", k.Release, "*", "capture.img")))
		if len(imgs) == 0 {
			continue
		}
		e, err := EstimateReservation(EstimateInput{Root: "testdata/root/lab-ready", Kernel: m.Path(k.Vmlinuz), Initrd: imgs[0], SystemMap: m.Path(k.SystemMap)})
		if err != nil {
			t.Fatal(err)
		}
		init, _ := BzImageInitSize(m.Path(k.Vmlinuz))
		st, _ := os.Stat(imgs[0])
		if e.Recommended > 256<<20 || e.Recommended < init+2*uint64(st.Size()) {
			t.Errorf("%s: %s recommended (init_size %s, initramfs %d)", k.Release, e.Param, FormatSize(init), st.Size())
		}
		t.Logf("%s: %s (need %d: %v)", k.Release, e.Param, e.Need, e.Items)
		checked++
	}
	if checked == 0 {
		t.Fatal("the lab has no kernel with a capture initramfs")
	}
}

// TestEstimateHere runs on this machine as it is (no reservation, maybe
// no kernel under /boot).
func TestEstimateHere(t *testing.T) {
	e, err := EstimateReservation(EstimateInput{Root: "/"})
	if err != nil {
		t.Fatal(err)
	}
	mi, _ := ReadMeminfo("/")
	if e.RAM < mi.MemTotal || e.Recommended < KernelRuntime || e.Recommended%(16<<20) != 0 || e.CPUs < 1 {
		t.Errorf("%+v", e)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "grub.d", "salvage-kdump.cfg")
	for _, text := range []string{GrubDropIn("crashkernel=192M"), GrubDropIn("crashkernel=256M")} {
		if err := WriteFileAtomic(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		st, _ := os.Stat(p)
		if string(b) != text || st.Mode().Perm() != 0o644 {
			t.Errorf("%q %v", b, st.Mode())
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if !strings.Contains(GrubDropIn("crashkernel=256M"), `GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT crashkernel=256M"`) {
		t.Error(GrubDropIn("crashkernel=256M"))
	}
	if err := WriteFileAtomic(filepath.Join(p, "under-a-file"), nil, 0o644); err == nil {
		t.Error("writing under a file is no error")
	}
}

// FuzzMeasureInitramfs: any file gives a size or an error, never a panic
// or a huge allocation.
func FuzzMeasureInitramfs(f *testing.F) {
	var buf bytes.Buffer
	a := cpio.New()
	a.File("init", 0o755, []byte("#!/bin/sh\n"))
	a.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte("070701"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name := filepath.Join(t.TempDir(), "initrd")
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := MeasureInitramfs(name)
		if err == nil && s.File != uint64(len(b)) {
			t.Fatalf("file size %d of %d bytes", s.File, len(b))
		}
	})
}
