package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"salvage/lab/corpus"
)

// recipe is bumped when the way dumps are made changes in a way the
// hashed inputs do not show.
const recipe = "lab-recipe-1"

// Scenario is one way of crashing the guest.
type Scenario struct {
	Name     string
	Panics   bool          // kdump captures it; otherwise QEMU dumps a live guest
	Timeout  time.Duration // for the whole QEMU run
	Variants []variant
	// Guest is what the guest is told to do (lab.scenario=); Name when "".
	Guest string
	// CPU is QEMU's -cpu model; "" is QEMU's default.
	CPU string
}

// guest is the lab.scenario the guest's init runs.
func (s Scenario) guest() string {
	if s.Guest != "" {
		return s.Guest
	}
	return s.Name
}

// variant is one dump file (or split set) a scenario produces.
type variant struct {
	Name        string
	Files       []string // names on the dump disk (or written by QEMU)
	Producer    string
	Format      string
	Compression string
	DumpLevel   int
}

var rawELF = variant{"vmcore-elf", []string{"vmcore.elf"}, "/proc/vmcore (cp)", "elf", "none", -1}
var lzo31 = variant{"lzo-d31", []string{"lzo-d31.kdump"}, "makedumpfile", "kdump", "lzo", 31}

// Scenarios are the lab's crashes, in the order they are built.
var Scenarios = []Scenario{
	{Name: "live", Timeout: 10 * time.Minute, Variants: []variant{
		{"qemu-elf", []string{"qemu-elf.vmcore"}, "qemu dump-guest-memory", "elf", "none", -1},
		// QEMU 7.2 writes its kdump-compressed output as a flattened
		// stream (kdump-raw-* formats came later), at dump level 1.
		{"qemu-kdump-zlib", []string{"qemu-kdump-zlib.vmcore"}, "qemu dump-guest-memory -z", "flattened", "zlib", 1},
	}},
	{Name: "sysrq", Panics: true, Timeout: 20 * time.Minute, Variants: []variant{
		rawELF, lzo31,
		{"zlib-d31", []string{"zlib-d31.kdump"}, "makedumpfile", "kdump", "zlib", 31},
		{"elf-d31", []string{"elf-d31.elf"}, "makedumpfile", "elf", "none", 31},
		{"flat-lzo-d31", []string{"flat-lzo-d31.flat"}, "makedumpfile", "flattened", "lzo", 31},
		{"split-lzo-d31", []string{"split-lzo-d31.1", "split-lzo-d31.2"}, "makedumpfile", "split", "lzo", 31},
	}},
	{Name: "oops", Panics: true, Timeout: 15 * time.Minute, Variants: []variant{rawELF, lzo31}},
	{Name: "hung", Panics: true, Timeout: 15 * time.Minute, Variants: []variant{rawELF, lzo31}},
	// Thousands of tasks (3000 parked threads of the workload), for the
	// analyzer's benchmarks: ps, bt and foreach must scale linearly.
	{Name: "many", Panics: true, Timeout: 20 * time.Minute, Variants: []variant{rawELF, lzo31}},
	// The sysrq crash on a CPU with LA57 (QEMU's "max"), where the 6.1
	// kernel (CONFIG_X86_5LEVEL) runs on 5-level page tables.
	{Name: "la57", Guest: "sysrq", CPU: "max", Panics: true, Timeout: 20 * time.Minute, Variants: []variant{rawELF, lzo31}},
}

// toolVersions are the Debian packages whose versions key the dumps.
var toolVersions = []string{"qemu-system-x86", "makedumpfile", "kexec-tools", "busybox-static"}

// guestKey identifies the guest images: the kernel, the embedded guest
// files and the Debian tools inside them.
func (l *Lab) guestKey(k *Kernel) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, recipe, k.Release, k.PackageVersion, guestHash())
	for _, p := range toolVersions {
		ctx, cancel := timeoutCtx(time.Minute)
		out, err := command(ctx, "", "dpkg-query", "-W", "-f=${Version}", p)
		cancel()
		if err != nil {
			return "", fmt.Errorf("%s is not installed (make test installs it): %w", p, err)
		}
		fmt.Fprintln(h, p, string(out))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// crashKey identifies one scenario's dumps.
func (l *Lab) crashKey(k *Kernel, s Scenario) (guest, crash string, err error) {
	guest, err = l.guestKey(k)
	if err != nil {
		return "", "", err
	}
	id := guest + " " + s.Name
	if s.CPU != "" || s.Guest != "" {
		id += " " + s.Guest + " " + s.CPU
	}
	if k.Spec.HostFilter {
		// The filtered variants are made on the host (hostArgs).
		id += fmt.Sprintf(" host-filter %v", hostArgs)
	}
	h := sha256.Sum256([]byte(id))
	return guest, hex.EncodeToString(h[:]), nil
}

// crashRecord is what a finished crash directory holds (crash.json).
type crashRecord struct {
	Key      string         `json:"key"`
	Release  string         `json:"release"`
	Scenario string         `json:"scenario"`
	Dumps    []corpus.Dump  `json:"dumps"`
	Seconds  float64        `json:"seconds"` // time to make it
	Extra    map[string]any `json:"extra,omitempty"`
	// Rejected are the guest's dumps kept only as documented failures.
	Rejected []corpus.Rejected `json:"rejected,omitempty"`
}

// describe re-applies the scenario's description of each variant (format,
// codec, level, producer): it describes the files, it does not make them,
// so a corrected description needs no new dumps.
func (rec *crashRecord) describe(k *Kernel, s Scenario) {
	for i := range rec.Dumps {
		for _, v := range s.Variants {
			if rec.Dumps[i].Variant == v.Name {
				d := &rec.Dumps[i]
				d.Producer, d.Format, d.Compression, d.DumpLevel = v.Producer, v.Format, v.Compression, v.DumpLevel
				if k.Spec.HostFilter && hostArgs[v.Name] != nil {
					d.Producer = hostProducer
				}
			}
		}
	}
}

// Crash makes (or finds in the cache) one scenario's dumps.
func (l *Lab) Crash(k *Kernel, s Scenario) (*crashRecord, error) {
	gkey, key, err := l.crashKey(k, s)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(l.Cache, "crashes", k.Release, s.Name+"-"+key[:12])
	recPath := filepath.Join(dir, "crash.json")
	if b, err := os.ReadFile(recPath); err == nil {
		var rec crashRecord
		if json.Unmarshal(b, &rec) == nil && rec.Key == key {
			rec.describe(k, s)
			return &rec, nil
		}
	}
	start := time.Now()
	prod, _, err := l.guestImages(k, gkey)
	if err != nil {
		return nil, err
	}
	// Dumps of this scenario made from other inputs are stale now.
	stale, _ := filepath.Glob(filepath.Join(l.Cache, "crashes", k.Release, s.Name+"-*"))
	for _, p := range stale {
		os.RemoveAll(p)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(disk, 3<<30); err != nil {
		return nil, err
	}
	ctx, cancel := timeoutCtx(2 * time.Minute)
	_, err = command(ctx, "", "mkfs.ext4", "-q", "-F", "-L", "labdump", disk)
	cancel()
	if err != nil {
		return nil, err
	}
	l.logf("%s/%s: booting (QEMU TCG, 1 GiB, 2 CPUs, crashkernel=256M%s)", k.Release, s.Name, map[bool]string{true: ", -cpu " + s.CPU}[s.CPU != ""])
	v, err := startVM(vmConfig{
		Kernel: filepath.Join(k.Dir, "vmlinuz"), Initrd: prod, Disk: disk, Dir: dir,
		Append: "console=ttyS0 crashkernel=256M panic=5 lab.scenario=" + s.guest(),
		MemMiB: 1024, CPUs: 2, CPUModel: s.CPU,
	})
	if err != nil {
		return nil, err
	}
	defer v.kill()
	if s.Panics {
		if err := v.wait(s.Timeout); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", k.Release, s.Name, err)
		}
		con, _ := os.ReadFile(v.console)
		if !strings.Contains(string(con), "LAB: capture: done") {
			return nil, fmt.Errorf("%s/%s: the capture kernel did not finish; console tail:\n%s", k.Release, s.Name, v.consoleTail(40))
		}
	} else {
		if err := v.waitConsole("LAB: ready", s.Timeout); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", k.Release, s.Name, err)
		}
		q, err := dialQMP(v.qmpPath)
		if err != nil {
			return nil, err
		}
		// Stop the guest so that every dump holds the same machine state.
		if err := q.do(context.Background(), "stop", nil); err != nil {
			q.close()
			return nil, fmt.Errorf("%s/%s: %w", k.Release, s.Name, err)
		}
		for _, vr := range s.Variants {
			args := map[string]any{"paging": false, "protocol": "file:" + filepath.Join(dir, "disk-out", vr.Files[0])}
			if strings.HasPrefix(vr.Name, "qemu-kdump-") {
				args["format"] = "kdump-" + vr.Compression
			}
			os.MkdirAll(filepath.Join(dir, "disk-out"), 0o755)
			ctx, cancel := timeoutCtx(10 * time.Minute)
			err := q.do(ctx, "dump-guest-memory", args)
			cancel()
			if err != nil {
				q.close()
				return nil, fmt.Errorf("%s/%s: %w", k.Release, s.Name, err)
			}
		}
		q.do(context.Background(), "quit", nil)
		q.close()
		v.wait(time.Minute)
	}
	// Read the dump disk back without mounting it.
	out := filepath.Join(dir, "disk-out")
	os.MkdirAll(out, 0o755)
	ctx, cancel = timeoutCtx(10 * time.Minute)
	_, err = command(ctx, "", "debugfs", "-R", "rdump /dumps /truth "+out, disk)
	cancel()
	if err != nil && s.Panics {
		return nil, err
	}
	rec := &crashRecord{Key: key, Release: k.Release, Scenario: s.Name}
	crashID := k.Release + "/" + s.Name
	// A kernel bookworm's makedumpfile mishandles: its filtered dumps are
	// made on the host from the raw copy, after it (rawELF comes first);
	// the guest's own -d 31 dump is kept as a documented failure.
	var rejected []variant
	if k.Spec.HostFilter {
		for _, vr := range s.Variants {
			if hostArgs[vr.Name] != nil && vr.Name == lzo31.Name {
				rejected = append(rejected, vr)
			}
		}
	}
	for _, vr := range s.Variants {
		host := k.Spec.HostFilter && hostArgs[vr.Name] != nil
		if host {
			if len(rec.Dumps) == 0 || rec.Dumps[0].Variant != rawELF.Name {
				return nil, fmt.Errorf("%s: variant %s is made from %s, which must come first", crashID, vr.Name, rawELF.Name)
			}
			hs := time.Now()
			if err := l.hostFilter(l.dumpPath(rec.Dumps[0]), dir, vr); err != nil {
				return nil, fmt.Errorf("%s: %w", crashID, err)
			}
			l.logf("%s/%s: sid makedumpfile on the host (%.0f s)", crashID, vr.Name, time.Since(hs).Seconds())
		}
		d := corpus.Dump{
			ID: crashID + "/" + vr.Name, Release: k.Release, Scenario: s.Name, Crash: crashID,
			Variant: vr.Name, Producer: vr.Producer, Format: vr.Format, Compression: vr.Compression,
			DumpLevel: vr.DumpLevel,
		}
		if host {
			d.Producer = hostProducer
		}
		for i, f := range vr.Files {
			src := filepath.Join(out, f) // written by QEMU
			if s.Panics {
				src = filepath.Join(out, "dumps", f) // written by the capture kernel
			}
			dst := filepath.Join(dir, f)
			if host {
				// The guest's file of that name, if any, is the rejected one.
				src = dst
			} else if err := os.Rename(src, dst); err != nil {
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
			if i == 0 {
				if d.SHA256, err = sha256File(dst); err != nil {
					return nil, err
				}
			}
		}
		rec.Dumps = append(rec.Dumps, d)
	}
	for _, vr := range rejected {
		r, err := l.reject(k, crashID, filepath.Join(out, "dumps"), dir, vr, rec.Dumps)
		if err != nil {
			return nil, err
		}
		rec.Rejected = append(rec.Rejected, r)
	}
	if exists(filepath.Join(out, "truth")) {
		os.Rename(filepath.Join(out, "truth"), filepath.Join(dir, "truth"))
	}
	if exists(filepath.Join(out, "dumps", "dmesg.txt")) {
		os.Rename(filepath.Join(out, "dumps", "dmesg.txt"), filepath.Join(dir, "dmesg.txt"))
	}
	for i := range rec.Rejected {
		if exists(filepath.Join(dir, "truth")) {
			rec.Rejected[i].Truth, _ = filepath.Rel(l.Cache, filepath.Join(dir, "truth"))
		}
	}
	for i := range rec.Dumps {
		if exists(filepath.Join(dir, "truth")) {
			rec.Dumps[i].Truth, _ = filepath.Rel(l.Cache, filepath.Join(dir, "truth"))
		}
		if exists(filepath.Join(dir, "dmesg.txt")) {
			rec.Dumps[i].Dmesg, _ = filepath.Rel(l.Cache, filepath.Join(dir, "dmesg.txt"))
		}
	}
	os.RemoveAll(out)
	os.Remove(disk)
	os.Remove(v.qmpPath)
	rec.Seconds = time.Since(start).Seconds()
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := writeFileAtomic(recPath, b, 0o644); err != nil {
		return nil, err
	}
	l.logf("%s: %d dumps in %.0f s", crashID, len(rec.Dumps), rec.Seconds)
	return rec, nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
