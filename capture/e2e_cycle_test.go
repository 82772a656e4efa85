package capture

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"salvage/lab"
	"salvage/lab/corpus"
)

// The kdump cycles end to end: the lab's kernel boots under QEMU with a
// production initramfs that holds salvage and nothing else of kdump (no
// kexec-tools, makedumpfile, busybox or shell): its /init
// (lab/guest/kdumpinit) loads the disk's drivers, runs `salvage kdump load` —
// which builds the capture initramfs in the guest from its /lib/modules
// and live sysfs and loads it with kexec_file_load — and crashes; the
// capture kernel runs salvage as PID 1, which saves the dump to the
// target; the host then reads the disk (debugfs, without mounting it) or
// runs `salvage kdump savecore` on the raw disk image, and analyzes the
// dump with salvage (no vmlinux: BTF and kallsyms from the dump) for the
// right PANIC and the right function in the panic task's stack.
//
// Each cycle prints one "e2e:" line on standard output (make e2e shows
// them); the guests' consoles go to the log only when a cycle fails.

var e2eSysrqCycles = flag.Int("e2e-cycles", 3, "TestE2ESysrqCycles: how many sysrq cycles in a row")

var e2eTranscript = flag.String("e2e-transcript", "", "TestE2E*: write each cycle's transcript (the guests' console, the files saved, salvage's sys and bt of the dump) into this directory")

// writeTranscript writes a cycle's story for people: the console from
// the panic to the capture kernel's last line, the dump directory, and
// what salvage's analyzer says of the dump.
func (e *e2eLab) writeTranscript(t *testing.T, name string, console []string, files, dump string) {
	t.Helper()
	if *e2eTranscript == "" {
		return
	}
	var b strings.Builder
	from := 0
	for i, l := range console {
		if strings.Contains(l, "E2E: ") && from == 0 {
			from = i
		}
	}
	fmt.Fprintf(&b, "# the guests' console (from the production kernel's first salvage step)\n%s\n\n", strings.Join(console[from:], "\n"))
	fmt.Fprintf(&b, "# the dump on the disk\n%s\n\n", files)
	out, err := exec.Command(e.salvage, "analyze", dump, "-c", "sys", "-c", "bt").CombinedOutput()
	fmt.Fprintf(&b, "# salvage analyze DUMP -c sys -c bt (no vmlinux: BTF and kallsyms from the dump)\n%s", out)
	if err != nil {
		fmt.Fprintf(&b, "(%v)\n", err)
	}
	os.MkdirAll(*e2eTranscript, 0o755)
	if err := os.WriteFile(filepath.Join(*e2eTranscript, name+".txt"), []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}
}

// e2eLab is what every cycle boots with.
type e2eLab struct {
	guest   *lab.KdumpGuest
	assets  *lab.E2EAssets
	dir     string
	salvage string            // the static salvage binary
	init    []byte            // lab/guest/kdumpinit
	modules map[string][]byte // /lib/modules/RELEASE/… files, modules.dep included
	order   []string          // module paths to load, relative to the tree
	config  []byte            // the kernel's config (for the initramfs codec)
}

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	// Stripped (-s -w), as a packaged binary is: the capture initramfs
	// carries it whole.
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func setupE2E(t *testing.T) *e2eLab {
	t.Helper()
	m := corpus.Require(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "salvage")
	goBuild(t, bin, "../cmd/salvage")
	l := &lab.Lab{Cache: m.Root}
	g, err := l.NewKdumpGuest(m, dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	return &e2eLab{guest: g, assets: g.Assets, dir: dir, salvage: bin, init: g.Init, modules: g.Modules, order: g.Order, config: g.Config}
}

// prodImage writes the production initramfs with kdump.conf and
// kdump-tools' file.
func (e *e2eLab) prodImage(t *testing.T, name, kdumpConf, kdumpTools, mount string) string {
	t.Helper()
	p, err := e.guest.ProdImage(name, kdumpConf, kdumpTools, mount)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// boot runs the guest to its end (the capture kernel powers it off) and
// returns its console.
func (e *e2eLab) boot(t *testing.T, initrd, disk, scenario string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	console, err := e.guest.Boot(ctx, initrd, disk, scenario, nil)
	if err != nil {
		t.Fatalf("%v; console tail:\n%s", err, consoleTail(console, 30))
	}
	return console
}

// e2eCycle is one crash and its checks.
type e2eCycle struct {
	scenario string
	target   string   // kdump.conf's target line
	conf     string   // more kdump.conf lines
	tools    string   // /etc/default/kdump-tools
	panic    string   // in the summary's PANIC
	dmesg    []string // in the last lines of the saved kernel log
	frame    string   // a function of the panic task's stack (regexp)
	// blocked, for the hung task: a function of a D-state task's stack.
	blocked string
	// mount is a filesystem the production machine mounts ("DEVICE DIR
	// FSTYPE"); dir is where the dumps are on the disk (default
	// /var/crash).
	mount, dir string
	// console are more lines the capture must print.
	console []string
}

func mkfsExt4(t *testing.T, disk, label, uuid string) {
	t.Helper()
	if err := lab.MkfsExt4(disk, label, uuid); err != nil {
		t.Fatal(err)
	}
}

func debugfsList(t *testing.T, disk, dir string) []lab.DiskEntry {
	t.Helper()
	ents, err := lab.ListDisk(disk, dir)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

func debugfsRead(t *testing.T, disk, file, out string) {
	t.Helper()
	if err := lab.ReadDisk(disk, file, out); err != nil {
		t.Fatal(err)
	}
}

// summary is what the checks read of `salvage analyze --summary-json`.
type e2eSummary struct {
	Panic string `json:"panic"`
	Task  *struct {
		Comm  string   `json:"command"`
		Stack []string `json:"stack"`
	} `json:"task"`
	Blocked []struct {
		Comm  string   `json:"command"`
		Stack []string `json:"stack"`
	} `json:"blocked"`
}

// analyzeDump checks a saved dump with salvage's analyzer and returns
// the panic and the stack for the report line.
func (e *e2eLab) analyzeDump(t *testing.T, path string, c e2eCycle) (string, []string, bool) {
	t.Helper()
	out, err := exec.Command(e.salvage, "analyze", "--summary-json", path).Output()
	if err != nil {
		t.Errorf("salvage analyze --summary-json %s: %v\n%s", path, err, out)
		return "", nil, false
	}
	var s e2eSummary
	if err := json.Unmarshal(out, &s); err != nil {
		t.Errorf("summary of %s: %v", path, err)
		return "", nil, false
	}
	ok := true
	if !strings.Contains(s.Panic, c.panic) {
		t.Errorf("%s: PANIC %q, want %q", path, s.Panic, c.panic)
		ok = false
	}
	if s.Task == nil {
		t.Errorf("%s: no panic task", path)
		return s.Panic, nil, false
	}
	re := regexp.MustCompile(c.frame)
	found := false
	for _, f := range s.Task.Stack {
		found = found || re.MatchString(f)
	}
	if !found {
		t.Errorf("%s: no %s in the panic task's (%s) stack %q", path, c.frame, s.Task.Comm, s.Task.Stack)
		ok = false
	}
	if c.blocked != "" {
		re := regexp.MustCompile(c.blocked)
		found := false
		for _, b := range s.Blocked {
			for _, f := range b.Stack {
				found = found || re.MatchString(f)
			}
		}
		if !found {
			t.Errorf("%s: no blocked task with %s in its stack: %+v", path, c.blocked, s.Blocked)
			ok = false
		}
	}
	return s.Panic, s.Task.Stack, ok
}

// checkDmesg checks the saved kernel log ends with the panic: its last
// lines hold each of want.
func checkDmesg(t *testing.T, path string, want []string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return false
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	tail := strings.Join(lines[max(0, len(lines)-120):], "\n")
	for _, w := range want {
		if !strings.Contains(tail, w) {
			t.Errorf("%s: the last lines do not hold %q:\n%s", path, w, tail)
			return false
		}
	}
	return true
}

func fmtStack(s []string) string {
	if len(s) > 4 {
		s = append(s[:4:4], "…")
	}
	return strings.Join(s, " ← ")
}

func consoleTail(console []string, n int) string {
	return strings.Join(console[max(0, len(console)-n):], "\n")
}

// runExt4Cycle boots one cycle onto disk (an ext4 image) and checks the
// dump it leaves under /var/crash; it returns the dump directories after.
func (e *e2eLab) runExt4Cycle(t *testing.T, i, n int, c e2eCycle, disk string, keep int) (after []string) {
	t.Helper()
	crashDir := c.dir
	if crashDir == "" {
		crashDir = "/var/crash"
	}
	var before []string
	for _, ent := range debugfsList(t, disk, crashDir) {
		if IsDumpDir(ent.Name) {
			before = append(before, ent.Name)
		}
	}
	start := time.Now()
	img := e.prodImage(t, fmt.Sprintf("prod-%s-%d.img", c.scenario, i), c.target+"\npath /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\nfinal_action poweroff\nfailure_action poweroff\n"+c.conf, c.tools, c.mount)
	console := e.boot(t, img, disk, c.scenario)
	dur := time.Since(start)
	failed, failedBefore := false, t.Failed()
	fail := func(format string, a ...any) {
		t.Errorf(format, a...)
		failed = true
	}
	defer func() {
		if failed || t.Failed() && !failedBefore {
			t.Logf("cycle %d/%d %s console:\n%s", i, n, c.scenario, strings.Join(console, "\n"))
			fmt.Printf("e2e: cycle %d/%d %s → %s: FAILED (%.0f s)\n", i, n, c.scenario, describeE2ETarget(c), dur.Seconds())
		}
	}()
	all := strings.Join(console, "\n")
	if strings.Contains(all, "kdump_pre failed") {
		fail("cycle %d %s: kdump_pre failed", i, c.scenario)
	}
	for _, want := range append([]string{"E2E: load: capture initramfs: /var/lib/salvage/initrd.img-" + e.assets.Release + " built", "loaded: ready to kdump",
		"salvage: capture kernel: saving the dump", "salvage: dump saved; poweroff"}, c.console...) {
		if !strings.Contains(all, want) {
			fail("cycle %d %s: no %q on the console", i, c.scenario, want)
			return before
		}
	}
	for _, ent := range debugfsList(t, disk, crashDir) {
		if IsDumpDir(ent.Name) {
			after = append(after, ent.Name)
		}
	}
	var added []string
	for _, d := range after {
		if !contains(before, d) {
			added = append(added, d)
		}
	}
	if len(added) != 1 {
		fail("cycle %d: dump directories %v before, %v after: want one new", i, before, after)
		return after
	}
	dir := added[0]
	wantDirs := len(before) + 1
	if keep > 0 && wantDirs > keep {
		wantDirs = keep
	}
	if len(after) != wantDirs {
		fail("cycle %d: %d dump directories after (%v), want %d (KDUMP_NUM_DUMPS=%d)", i, len(after), after, wantDirs, keep)
	}
	ents := debugfsList(t, disk, path.Join(crashDir, dir))
	var names []string
	var dumpSize int64
	for _, ent := range ents {
		names = append(names, ent.Name)
		if ent.Mode&0o7777 != 0o600 {
			fail("%s/%s: mode %o, want 0600", dir, ent.Name, ent.Mode&0o7777)
		}
		if strings.HasSuffix(ent.Name, IncompleteSuffix) {
			fail("%s/%s: an incomplete dump is left", dir, ent.Name)
		}
		if ent.Name == "dump."+dir {
			dumpSize = ent.Size
		}
	}
	if want := []string{"dmesg." + dir, "dump." + dir}; strings.Join(names, " ") != strings.Join(want, " ") {
		fail("%s holds %v, want %v", dir, names, want)
		return after
	}
	local := filepath.Join(e.dir, fmt.Sprintf("%s-%d", c.scenario, i))
	os.MkdirAll(local, 0o755)
	debugfsRead(t, disk, path.Join(crashDir, dir, "dump."+dir), filepath.Join(local, "dump"))
	debugfsRead(t, disk, path.Join(crashDir, dir, "dmesg."+dir), filepath.Join(local, "dmesg"))
	panicText, stack, ok := e.analyzeDump(t, filepath.Join(local, "dump"), c)
	if !ok || !checkDmesg(t, filepath.Join(local, "dmesg"), c.dmesg) {
		failed = true
		return after
	}
	var listing []string
	for _, ent := range ents {
		listing = append(listing, fmt.Sprintf("%s/%s/%s  mode %o  %d bytes", strings.TrimSuffix(crashDir, "/"), dir, ent.Name, ent.Mode&0o7777, ent.Size))
	}
	e.writeTranscript(t, fmt.Sprintf("%s-%d", c.scenario, i), console, strings.Join(listing, "\n"), filepath.Join(local, "dump"))
	fmt.Printf("e2e: cycle %d/%d %s → %s: ok, dump.%s (%.0f MiB, lzo -d 31), PANIC %q, bt: %s (%.0f s; capture initramfs %s)\n",
		i, n, c.scenario, describeE2ETarget(c), dir, float64(dumpSize)/(1<<20), panicText, fmtStack(stack), dur.Seconds(), initrdSize(console))
	return after
}

func describeE2ETarget(c e2eCycle) string {
	if c.mount != "" {
		f := strings.Fields(c.mount)
		return "local /var/crash (" + f[2] + " " + f[0] + " mounted there)"
	}
	return c.target
}

var initrdBuilt = regexp.MustCompile(`capture initramfs: \S+ built \(([^)]+)\)`)

// initrdSize is the size of the capture initramfs the guest built.
func initrdSize(console []string) string {
	for _, l := range console {
		if m := initrdBuilt.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	return "?"
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// TestE2ESysrqCycles crashes the guest through `salvage kdump test` three
// times in a row onto one ext4 disk with KDUMP_NUM_DUMPS=2: every cycle
// must leave a valid dump, and pruning must keep the last two.
func TestE2ESysrqCycles(t *testing.T) {
	e := setupE2E(t)
	disk := filepath.Join(e.dir, "sysrq.disk")
	mkfsExt4(t, disk, "e2edump", "3f0f8d2e-5b1c-4c3a-9d47-0e2e5a1b7c11")
	c := e2eCycle{scenario: "sysrq", target: "ext4 /dev/vda", tools: "KDUMP_NUM_DUMPS=2\n",
		panic: "sysrq triggered crash", frame: `^sysrq_handle_crash`, dmesg: []string{"Kernel panic - not syncing: sysrq triggered crash"}}
	var dirs []string
	n := max(*e2eSysrqCycles, 3)
	for i := 1; i <= n; i++ {
		dirs = e.runExt4Cycle(t, i, n, c, disk, 2)
		if t.Failed() {
			t.Fatalf("%d consecutive successful sysrq cycles, then a failure", i-1)
		}
	}
	t.Logf("%d consecutive successful sysrq cycles; dump directories left: %v", n, dirs)
}

// TestE2EOopsAndHung crashes the guest with the lab module's NULL
// dereference (panic_on_oops) and its task stuck in D state
// (hung_task_panic), saving to the ext4 disk named by UUID= and by
// LABEL= (found by the capture's own superblock reader: no udev).
func TestE2EOopsAndHung(t *testing.T) {
	e := setupE2E(t)
	disk := filepath.Join(e.dir, "oops.disk")
	uuid := "8c2b6d1e-2f4a-4e9b-a1c3-5d6e7f809a1b"
	mkfsExt4(t, disk, "e2edump", uuid)
	cycles := []e2eCycle{
		{scenario: "oops", target: "ext4 UUID=" + uuid, conf: "kdump_pre /bin/salvage version\n",
			// kdump_pre is salvage itself (a link to /init), run as a program.
			console: []string{"salvage: running kdump_pre: /bin/salvage version", "codecs: zlib lzo snappy zstd"},
			panic:   "Oops: ", frame: `^salvage_lab_oops`,
			// oops_end kexecs before panic() prints "Fatal exception": the
			// log ends with the oops itself.
			dmesg: []string{"BUG: kernel NULL pointer dereference", "Oops: ", "salvage_lab_oops"}},
		// A local path: the machine has the disk mounted on /var/crash, so
		// the capture mounts it from the UUID the initramfs recorded, and
		// the dumps are at the top of the disk.
		{scenario: "hung", target: "# local", mount: "/dev/vda /var/crash ext4", dir: "/",
			panic: "hung_task: blocked tasks", frame: `^(watchdog|check_hung_uninterruptible_tasks)`, blocked: `^salvage_lab_hang`,
			dmesg: []string{"blocked for more than", "Kernel panic - not syncing: hung_task: blocked tasks"}},
	}
	for i, c := range cycles {
		e.runExt4Cycle(t, i+1, len(cycles), c, disk, 0)
	}
}

// TestE2ERaw saves the dump of a sysrq crash to a raw disk, then runs
// `salvage kdump savecore --raw` on the host over the disk image: the dump
// must come out in the local layout, analyzable, and a second savecore
// must find nothing (the header is cleared).
func TestE2ERaw(t *testing.T) {
	e := setupE2E(t)
	disk := filepath.Join(e.dir, "raw.disk")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 256<<20); err != nil {
		t.Fatal(err)
	}
	c := e2eCycle{scenario: "sysrq", target: "raw /dev/vda", panic: "sysrq triggered crash", frame: `^sysrq_handle_crash`,
		dmesg: []string{"Kernel panic - not syncing: sysrq triggered crash"}}
	start := time.Now()
	img := e.prodImage(t, "prod-raw.img", c.target+"\ncore_collector makedumpfile -l -d 31\nfinal_action poweroff\n", "", "")
	console := e.boot(t, img, disk, c.scenario)
	dur := time.Since(start)
	defer func() {
		if t.Failed() {
			t.Logf("raw cycle console:\n%s", strings.Join(console, "\n"))
			fmt.Printf("e2e: cycle 1/1 sysrq → raw /dev/vda: FAILED (%.0f s)\n", dur.Seconds())
		}
	}()
	if all := strings.Join(console, "\n"); !strings.Contains(all, "salvage: dump saved; poweroff") {
		t.Fatalf("the capture did not save the dump; console tail:\n%s", consoleTail(console, 30))
	}
	root := filepath.Join(e.dir, "hostroot") // no configuration: the defaults
	os.MkdirAll(root, 0o755)
	out := filepath.Join(e.dir, "saved")
	cmd := exec.Command(e.salvage, "kdump", "savecore", "--root", root, "--raw", disk, "--dir", out, "--json")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("salvage kdump savecore: %v\n%s", err, b)
	}
	b0 := b
	var sv Saved
	if err := json.Unmarshal(b, &sv); err != nil {
		t.Fatal(err)
	}
	if sv.Incomplete || sv.Dmesg == "" {
		t.Errorf("savecore: %+v", sv)
	}
	for _, f := range []string{sv.Dump, sv.Dmesg} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 0600", f, st.Mode().Perm())
		}
	}
	panicText, stack, ok := e.analyzeDump(t, filepath.Join(out, sv.Dump), c)
	if ok {
		ok = checkDmesg(t, filepath.Join(out, sv.Dmesg), c.dmesg)
	}
	b, err = exec.Command(e.salvage, "kdump", "savecore", "--root", root, "--raw", disk, "--dir", out).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "no salvage raw dump header") {
		t.Errorf("a second savecore: %v, %s; want the header cleared", err, b)
	}
	if ok && !t.Failed() {
		e.writeTranscript(t, "raw-1", console, fmt.Sprintf("salvage kdump savecore --raw DISK --dir %s --json:\n%s", out, b0), filepath.Join(out, sv.Dump))
		fmt.Printf("e2e: cycle 1/1 sysrq → raw /dev/vda, savecore on the host: ok, %s (%.0f MiB, lzo -d 31), PANIC %q, bt: %s (%.0f s; capture initramfs %s)\n",
			sv.Dump, float64(sv.Bytes)/(1<<20), panicText, fmtStack(stack), dur.Seconds(), initrdSize(console))
	}
}
