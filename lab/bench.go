package lab

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"salvage/capture/cpio"
	"salvage/lab/corpus"
)

// The bench crash: a big machine (issue 6's "4–8 GiB guest whose memory is
// filled with page cache and anonymous data before the crash"), for the
// collector's benchmarks only. It is not a Scenario: its 6 GiB dump would
// make every test that iterates the manifest's dumps slow, so it lives
// under $cache/bench/, is described by its own bench.json, and is built
// only by `salvage lab build --bench` (`make bench`).
const (
	benchMemMiB   = 6144
	benchCPUs     = 2
	benchAnonMiB  = 2560 // the workload's anonymous memory
	benchCacheMiB = 1536 // a file written to the guest's disk, left in its page cache
	// The dump disk holds the cache file, the capture kernel's copy of
	// /proc/vmcore (about the guest's memory) and a filtered dump; it is
	// sparse and deleted once the dumps are read back.
	benchDiskBytes = 12 << 30
	benchRecipe    = "lab-bench-1"
)

// benchInit is the bench guest's /init. It is embedded apart from guestFS
// so that guestHash, and with it the key of every other crash, does not
// depend on it: it keys the bench crash alone.
//
//go:embed guest/bench/init.sh
var benchInit []byte

// benchKey identifies the bench crash: the guest images' key (kernel,
// guest files, Debian tool versions), the bench's own /init, and the
// machine's size and fill.
func (l *Lab) benchKey(k *Kernel) (guest, key string, err error) {
	guest, err = l.guestKey(k)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	fmt.Fprintln(h, benchRecipe, guest, benchMemMiB, benchCPUs, benchAnonMiB, benchCacheMiB, benchDiskBytes)
	h.Write(benchInit)
	return guest, hex.EncodeToString(h.Sum(nil)), nil
}

// benchAppend is the bench guest's kernel command line.
func benchAppend() string {
	return fmt.Sprintf("console=ttyS0 crashkernel=256M panic=5 lab.scenario=bench lab.anon_mb=%d lab.cache_mb=%d", benchAnonMiB, benchCacheMiB)
}

// benchVariants are the dumps the bench crash keeps: the capture kernel's
// cp of /proc/vmcore (what the benchmarks collect) and bookworm's
// makedumpfile's -l -d 31 of it, made in the capture kernel.
var benchVariants = []variant{rawELF, lzo31}

// BuildBench makes (or finds in the cache) the bench crash of the lab's
// default kernel.
func (l *Lab) BuildBench() (*corpus.Bench, error) {
	k, err := l.FetchKernel(DefaultKernel)
	if err != nil {
		return nil, err
	}
	gkey, key, err := l.benchKey(k)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.Cache, corpus.BenchDir, k.Release+"-"+key[:12])
	recPath := filepath.Join(dir, corpus.BenchRecord)
	if b, err := os.ReadFile(recPath); err == nil {
		var rec corpus.Bench
		if json.Unmarshal(b, &rec) == nil && rec.Key == key {
			l.logf("bench crash %s: cached (%s)", rec.ID, dir)
			return &rec, nil
		}
	}
	start := time.Now()
	prod, _, err := l.guestImages(k, gkey)
	if err != nil {
		return nil, err
	}
	// A bench crash made from other inputs is stale now: one ~6 GiB dump
	// per release is enough.
	stale, _ := filepath.Glob(filepath.Join(l.Cache, corpus.BenchDir, k.Release+"-*"))
	for _, p := range stale {
		os.RemoveAll(p)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	initrd := filepath.Join(dir, "bench.img")
	if err := benchImage(prod, initrd); err != nil {
		return nil, err
	}
	defer os.Remove(initrd)
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(disk)
	if err := os.Truncate(disk, benchDiskBytes); err != nil {
		return nil, err
	}
	ctx, cancel := timeoutCtx(2 * time.Minute)
	_, err = command(ctx, "", "mkfs.ext4", "-q", "-F", "-L", "labdump", disk)
	cancel()
	if err != nil {
		return nil, err
	}
	crashID := k.Release + "/bench"
	l.logf("%s: booting (QEMU TCG, %d MiB, %d CPUs, crashkernel=256M; fill: %d MiB anonymous, %d MiB page cache)",
		crashID, benchMemMiB, benchCPUs, benchAnonMiB, benchCacheMiB)
	v, err := startVM(vmConfig{
		Kernel: filepath.Join(k.Dir, "vmlinuz"), Initrd: initrd, Disk: disk, Dir: dir,
		Append: benchAppend(), MemMiB: benchMemMiB, CPUs: benchCPUs,
	})
	if err != nil {
		return nil, err
	}
	defer v.kill()
	phases := map[string]float64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.watchPhases(v, start, crashID, phases, stop)
	}()
	werr := v.wait(60 * time.Minute)
	close(stop)
	wg.Wait()
	if werr != nil {
		return nil, fmt.Errorf("%s: %w", crashID, werr)
	}
	con, _ := os.ReadFile(v.console)
	if !strings.Contains(string(con), "LAB: capture: done") {
		return nil, fmt.Errorf("%s: the capture kernel did not finish; console tail:\n%s", crashID, v.consoleTail(40))
	}
	// Read the dump disk back without mounting it.
	out := filepath.Join(dir, "disk-out")
	os.MkdirAll(out, 0o755)
	defer os.RemoveAll(out)
	rs := time.Now()
	ctx, cancel = timeoutCtx(30 * time.Minute)
	_, err = command(ctx, "", "debugfs", "-R", "rdump /dumps /truth "+out, disk)
	cancel()
	if err != nil {
		return nil, err
	}
	phases["read back"] = time.Since(rs).Seconds()
	os.Remove(disk)
	rec := &corpus.Bench{Key: key, ID: crashID, Release: k.Release, MemMiB: benchMemMiB, CPUs: benchCPUs,
		AnonMiB: benchAnonMiB, CacheMiB: benchCacheMiB}
	for _, vr := range benchVariants {
		d := corpus.Dump{
			ID: crashID + "/" + vr.Name, Release: k.Release, Scenario: "bench", Crash: crashID,
			Variant: vr.Name, Producer: vr.Producer, Format: vr.Format, Compression: vr.Compression,
			DumpLevel: vr.DumpLevel,
		}
		for _, f := range vr.Files {
			dst := filepath.Join(dir, f)
			if err := os.Rename(filepath.Join(out, "dumps", f), dst); err != nil {
				return nil, fmt.Errorf("%s: the guest did not write %s: %w", crashID, f, err)
			}
			os.Chmod(dst, 0o600)
			st, err := os.Stat(dst)
			if err != nil {
				return nil, err
			}
			d.Size += st.Size()
			rel, _ := filepath.Rel(l.Cache, dst)
			d.Files = append(d.Files, rel)
			if d.SHA256 == "" {
				if d.SHA256, err = sha256File(dst); err != nil {
					return nil, err
				}
			}
		}
		rec.Dumps = append(rec.Dumps, d)
	}
	if exists(filepath.Join(out, "truth")) {
		os.Rename(filepath.Join(out, "truth"), filepath.Join(dir, "truth"))
	}
	if exists(filepath.Join(out, "dumps", "dmesg.txt")) {
		os.Rename(filepath.Join(out, "dumps", "dmesg.txt"), filepath.Join(dir, "dmesg.txt"))
	}
	for i := range rec.Dumps {
		if exists(filepath.Join(dir, "truth")) {
			rec.Dumps[i].Truth, _ = filepath.Rel(l.Cache, filepath.Join(dir, "truth"))
		}
		if exists(filepath.Join(dir, "dmesg.txt")) {
			rec.Dumps[i].Dmesg, _ = filepath.Rel(l.Cache, filepath.Join(dir, "dmesg.txt"))
		}
	}
	os.Rename(v.console, filepath.Join(dir, "console.log"))
	os.Remove(v.qmpPath)
	rec.Phases = phases
	rec.Seconds = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := writeFileAtomic(recPath, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	l.logf("%s: %d dumps in %.0f s (%s)", crashID, len(rec.Dumps), rec.Seconds, dir)
	return rec, nil
}

// benchImage writes the bench guest's initramfs: the production guest's
// image followed by a second cpio archive whose /init replaces the first's
// (the kernel unpacks concatenated archives in order, and a later regular
// file of the same name overwrites the earlier one).
func benchImage(prod, dst string) error {
	b, err := os.ReadFile(prod)
	if err != nil {
		return err
	}
	a := cpio.New()
	a.File("init", 0o755, benchInit)
	buf := bytes.NewBuffer(b)
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
	if _, err := a.WriteTo(buf); err != nil {
		return err
	}
	return writeFileAtomic(dst, buf.Bytes(), 0o644)
}

// benchPhases are the console markers whose times the bench build logs
// (the build's cost under TCG is the point of measuring them).
var benchPhases = []struct{ marker, name string }{
	{"LAB: kexec_crash_loaded", "boot"},
	{"LAB: fill: anon", "page cache fill"},
	{"LAB: fill: done", "anonymous fill"},
	{"LAB: ready scenario=bench", "ground truth"},
	{"LAB: capture: makedumpfile -l", "capture kernel boot and dmesg"},
	{"LAB: capture: cp /proc/vmcore", "makedumpfile -l -d 31 in the guest"},
	{"LAB: capture: done", "cp /proc/vmcore"},
}

// watchPhases logs each phase of the bench guest as its console marker
// appears, with the seconds it took, until stop is closed (then it reads
// the console once more: the last markers come just before QEMU exits).
func (l *Lab) watchPhases(v *vm, start time.Time, id string, phases map[string]float64, stop chan struct{}) {
	last, next := start, 0
	for final := false; next < len(benchPhases) && !final; {
		select {
		case <-stop:
			final = true // QEMU has exited: the console is complete
		case <-time.After(2 * time.Second):
		}
		con, _ := os.ReadFile(v.console)
		for next < len(benchPhases) && bytes.Contains(con, []byte(benchPhases[next].marker)) {
			now := time.Now()
			p := benchPhases[next]
			phases[p.name] = now.Sub(last).Seconds()
			l.logf("%s: %s: %.0f s (%.0f s in all)", id, p.name, now.Sub(last).Seconds(), now.Sub(start).Seconds())
			last = now
			next++
		}
	}
}
