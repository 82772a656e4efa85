package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"salvage/lab/corpus"
)

// A crash build to compare with. Debian bookworm's crash 8.0.2 cannot list
// the tasks of the 6.1.19x kernels (the struct pid change it learned in
// 8.0.4), so the oracle is trixie's 8.0.6, run through trixie's own loader;
// 8.0.2's answers are kept beside it under the "crash-8.0.2:" prefix.
type crashTool struct {
	Name   string // "crash-8.0.6"
	Prefix string // prefix of its keys in Dump.Refs
	argv   []string
}

// trixiePackages are what trixie's crash needs to run on bookworm.
var trixiePackages = []string{"crash", "libc6", "libncursesw6", "libtinfo6", "liblzo2-2", "libsnappy1v5", "libstdc++6", "libgcc-s1", "libzstd1", "zlib1g"}

// trixieCrash fetches trixie's crash with a private apt configuration (the
// machine's own sources are left alone) and unpacks it into the cache.
func (l *Lab) trixieCrash() (*crashTool, error) {
	dir := filepath.Join(l.Cache, "tools", "crash-trixie")
	root := filepath.Join(dir, "root")
	lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	tool := &crashTool{Prefix: "", argv: []string{filepath.Join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib, filepath.Join(root, "usr/bin/crash")}}
	if b, err := os.ReadFile(filepath.Join(dir, ".complete")); err == nil {
		tool.Name = strings.TrimSpace(string(b))
		return tool, nil
	}
	l.logf("fetching trixie's crash (private apt configuration in %s)", dir)
	if _, err := l.fetchDebianSuite(dir, "trixie", trixiePackages); err != nil {
		return nil, fmt.Errorf("fetching trixie's crash: %w", err)
	}
	ctx, cancel := timeoutCtx(time.Minute)
	defer cancel()
	out, err := command(ctx, "", tool.argv[0], append(tool.argv[1:], "--version")...)
	if err != nil {
		return nil, err
	}
	tool.Name = "crash-" + strings.TrimPrefix(strings.Fields(string(out))[0]+" "+strings.Fields(string(out))[1], "crash ")
	if err := os.WriteFile(filepath.Join(dir, ".complete"), []byte(tool.Name+"\n"), 0o644); err != nil {
		return nil, err
	}
	return tool, nil
}

// bookwormCrash is Debian 12's own crash, installed by make test.
func bookwormCrash() (*crashTool, error) {
	ctx, cancel := timeoutCtx(time.Minute)
	defer cancel()
	out, err := command(ctx, "", "crash", "--version")
	if err != nil {
		return nil, fmt.Errorf("Debian's crash is not installed (make test installs it): %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return nil, fmt.Errorf("crash --version: unexpected output %q", out)
	}
	return &crashTool{Name: "crash-" + f[1], Prefix: "crash-" + f[1] + ":", argv: []string{"crash"}}, nil
}

// refCommand is one reference command: the key it is stored under and the
// command line, in which {PID}, {TASK}, {VADDR} and {PADDR} are replaced.
type refCommand struct{ Key, Cmd string }

// The commands run on every dump, in three sessions: the later ones need
// values read from the first (the workload's task, a physical address).
var refPhases = [][]refCommand{
	{
		{"sys", "sys"}, {"sys-t", "sys -t"}, {"ps", "ps"}, {"bt", "bt"}, {"bt-a", "bt -a"},
		{"log", "log"}, {"kmem-i", "kmem -i"}, {"mod", "mod"}, {"irq", "irq"}, {"runq", "runq"},
		{"mount", "mount"}, {"dev", "dev"}, {"net", "net"},
		{"sym", "sym linux_banner"}, {"sym-init_task", "sym init_task"},
		{"dis", "dis sysrq_handle_crash"}, {"struct-page-o", "struct page -o"},
		{"foreach-bt", "foreach bt"}, {"bt-f", "bt -f"}, {"ps-t", "ps -t"},
		{"log-T", "log -T"}, {"log-m", "log -m"}, {"log-t", "log -t"},
	},
	{
		{"files", "files {PID}"}, {"vm", "vm {PID}"}, {"task", "task {PID}"},
		{"struct-task", "struct task_struct {TASK}"}, {"vtop", "vtop {VADDR}"},
		{"bt-pid", "bt {PID}"}, {"ps-p", "ps -p {PID}"}, {"ps-a", "ps -a {PID}"},
		{"ps-c", "ps -c 1"}, {"task-R", "task -R pid,comm,__state {PID}"},
	},
	{
		{"rd", "rd -p {PADDR} 32"}, {"rd-8", "rd -p -8 {PADDR} 64"}, {"rd-32", "rd -p -32 {PADDR} 16"},
		{"rd-a", "rd -p -a {PADDR}"},
	},
}

// oldCommands are what bookworm's crash 8.0.2 is asked: the first
// session's commands but mount, dev and net, which it loops on for ever
// with kernels it does not fully understand (mount on a live dump), and
// the task-table walks (foreach bt, ps -t) it cannot do on these kernels.
var oldCommands = func() []refCommand {
	var out []refCommand
	for _, c := range refPhases[0] {
		switch c.Key {
		case "mount", "dev", "net", "foreach-bt", "ps-t":
		default:
			out = append(out, c)
		}
	}
	return out
}()

var (
	symRe  = regexp.MustCompile(`(?m)^([0-9a-f]{16}) \(\w\) linux_banner`)
	vtopRe = regexp.MustCompile(`(?m)^([0-9a-f]{16})\s+([0-9a-f]+)\s*$`)
)

// runCrash runs one session of tool over a dump: each command's output is
// redirected to its own file; a command that leaves no output has its
// error taken from the session's output.
func (l *Lab) runCrash(tool *crashTool, vmlinux string, files []string, dir string, cmds []refCommand, vals map[string]string) (refs, errs map[string]string, err error) {
	refs, errs = map[string]string{}, map[string]string{}
	var script strings.Builder
	var todo []refCommand
	for _, c := range cmds {
		line := c.Cmd
		skip := false
		for k, v := range vals {
			if strings.Contains(line, "{"+k+"}") {
				if v == "" {
					skip = true
				}
				line = strings.ReplaceAll(line, "{"+k+"}", v)
			}
		}
		if skip {
			errs[c.Key] = "not run: a value it needs was not found in the first session"
			continue
		}
		out := filepath.Join(dir, c.Key+".txt")
		os.Remove(out)
		fmt.Fprintf(&script, "%s > %s\n", line, out)
		todo = append(todo, refCommand{c.Key, line})
	}
	if len(todo) == 0 {
		return refs, errs, nil
	}
	script.WriteString("q\n")
	in := filepath.Join(dir, "session.in")
	if err := os.WriteFile(in, []byte(script.String()), 0o644); err != nil {
		return nil, nil, err
	}
	args := append(append([]string{}, tool.argv[1:]...), "-s", vmlinux)
	args = append(args, files...)
	args = append(args, "-i", in)
	// A session takes 10–60 s here; crash 8.0.2 loops for ever on some
	// commands of kernels it does not understand (mount on a live dump).
	ctx, cancel := timeoutCtx(3 * time.Minute)
	defer cancel()
	out, runErr := command(ctx, dir, tool.argv[0], args...)
	session := strings.TrimSpace(string(out))
	if runErr != nil {
		session = strings.TrimSpace(session + "\n" + runErr.Error())
	}
	for _, c := range todo {
		p := filepath.Join(dir, c.Key+".txt")
		b, err := os.ReadFile(p)
		if err == nil && len(strings.TrimSpace(string(b))) > 0 && !crashFailed(string(b)) {
			refs[c.Key] = p
			continue
		}
		msg := lastLines(session, 3)
		if err == nil && len(b) > 0 {
			msg = lastLines(string(b), 3)
		}
		if msg == "" {
			msg = "no output"
		}
		errs[c.Key] = msg
	}
	return refs, errs, nil
}

// crashFailed recognises an output that is only crash's error report.
func crashFailed(s string) bool {
	t := strings.TrimSpace(s)
	return !strings.Contains(t, "\n") && (strings.Contains(t, ": invalid") || strings.Contains(t, "cannot") || strings.Contains(t, "failed"))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// refsKey identifies the reference outputs of one dump by everything that
// made them, the cache's own path included: crash prints the vmlinux's
// and the dump's paths (sys's KERNEL and DUMPFILE), so a moved cache
// needs its references made again.
func refsKey(d corpus.Dump, tools []*crashTool, root string) string {
	h := sha256.New()
	fmt.Fprintln(h, d.SHA256, d.ID, root)
	for _, t := range tools {
		fmt.Fprintln(h, t.Name)
	}
	b, _ := json.Marshal([][][]refCommand{refPhases, {oldCommands}})
	h.Write(b)
	h.Write([]byte(drgnScript))
	return hex.EncodeToString(h.Sum(nil))
}

// refsRecord is refs.json beside a dump's reference outputs.
type refsRecord struct {
	Key         string            `json:"key"`
	Refs        map[string]string `json:"refs"` // relative to the corpus root
	RefCommands map[string]string `json:"ref_commands"`
	RefErrors   map[string]string `json:"ref_errors"`
	Vals        map[string]string `json:"vals,omitempty"` // PID, TASK, VADDR, PADDR of this crash
}

// References runs the reference tools over every dump in m, each with the
// debug vmlinux of its kernel (one of ks), and records their outputs in m.
func (l *Lab) References(ks []*Kernel, m *corpus.Manifest) error {
	oracle, err := l.trixieCrash()
	if err != nil {
		return err
	}
	old, err := bookwormCrash()
	if err != nil {
		return err
	}
	vmlinuxOf := map[string]string{}
	for _, k := range ks {
		vmlinuxOf[k.Release] = filepath.Join(k.Dir, "vmlinux")
	}
	// Dumps of one crash share every address: the values the later
	// commands need are found once per crash (from the fastest dump to
	// open, the raw ELF), and the other dumps get a single session.
	crashVals := map[string]map[string]string{}
	oldDone := map[string]bool{} // crashes crash 8.0.2 has seen
	order := make([]int, len(m.Dumps))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return m.Dumps[order[a]].Format == "elf" && m.Dumps[order[a]].DumpLevel < 0 &&
			!(m.Dumps[order[b]].Format == "elf" && m.Dumps[order[b]].DumpLevel < 0)
	})
	var mu sync.Mutex // crashVals, oldDone
	one := func(i int) error {
		d := &m.Dumps[i]
		vmlinux := vmlinuxOf[d.Release]
		if vmlinux == "" {
			return fmt.Errorf("%s: no kernel of release %s in this build", d.ID, d.Release)
		}
		dir := filepath.Join(l.Cache, "refs", d.ID)
		key := refsKey(*d, []*crashTool{oracle, old}, l.Cache)
		var rec refsRecord
		if b, err := os.ReadFile(filepath.Join(dir, "refs.json")); err == nil && json.Unmarshal(b, &rec) == nil && rec.Key == key {
			d.Refs, d.RefCommands, d.RefErrors = rec.Refs, rec.RefCommands, rec.RefErrors
			if rec.Vals != nil {
				mu.Lock()
				crashVals[d.Crash] = rec.Vals
				mu.Unlock()
			}
			return nil
		}
		start := time.Now()
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		rec = refsRecord{Key: key, Refs: map[string]string{}, RefCommands: map[string]string{}, RefErrors: map[string]string{}}
		files := m.Paths(*d)
		mu.Lock()
		vals := crashVals[d.Crash]
		mu.Unlock()
		known := vals != nil
		if !known {
			vals = map[string]string{}
			if d.Truth != "" {
				if b, err := os.ReadFile(filepath.Join(m.Path(d.Truth), "workload.pid")); err == nil {
					vals["PID"] = strings.TrimSpace(string(b))
				}
			}
		}
		record := func(tool *crashTool, phase []refCommand, refs, errs map[string]string) {
			for _, c := range phase {
				key := tool.Prefix + c.Key
				line := c.Cmd
				for k, v := range vals {
					line = strings.ReplaceAll(line, "{"+k+"}", v)
				}
				rec.RefCommands[key] = line
				if p, ok := refs[c.Key]; ok {
					rec.Refs[key], _ = filepath.Rel(l.Cache, p)
				} else {
					rec.RefErrors[key] = tool.Name + ": " + errs[c.Key]
				}
			}
		}
		odir := filepath.Join(dir, oracle.Name)
		if err := os.MkdirAll(odir, 0o755); err != nil {
			return err
		}
		if known {
			var all []refCommand
			for _, ph := range refPhases {
				all = append(all, ph...)
			}
			refs, errs, err := l.runCrash(oracle, vmlinux, files, odir, all, vals)
			if err != nil {
				return err
			}
			record(oracle, all, refs, errs)
		} else {
			for pi, phase := range refPhases {
				if pi == 1 {
					vals["TASK"] = taskOf(rec.Refs["ps"], m, vals["PID"])
					if b, err := os.ReadFile(m.Path(rec.Refs["sym"])); err == nil {
						if mm := symRe.FindStringSubmatch(string(b)); mm != nil {
							vals["VADDR"] = mm[1]
						}
					}
				}
				if pi == 2 {
					if b, err := os.ReadFile(m.Path(rec.Refs["vtop"])); err == nil {
						if mm := vtopRe.FindStringSubmatch(string(b)); mm != nil {
							vals["PADDR"] = mm[2]
						}
					}
				}
				refs, errs, err := l.runCrash(oracle, vmlinux, files, odir, phase, vals)
				if err != nil {
					return err
				}
				record(oracle, phase, refs, errs)
			}
			if vals["TASK"] != "" && vals["PADDR"] != "" {
				rec.Vals = vals
				mu.Lock()
				crashVals[d.Crash] = vals
				mu.Unlock()
			}
		}
		// bookworm's crash: on the first dump of each crash (the raw ELF),
		// to compare the two versions, and on every dump 8.0.6 cannot
		// read, where it is the only reference.
		_, oracleOK := rec.Refs["sys"]
		mu.Lock()
		first := !oldDone[d.Crash]
		oldDone[d.Crash] = true
		mu.Unlock()
		if first || !oracleOK {
			tdir := filepath.Join(dir, old.Name)
			if err := os.MkdirAll(tdir, 0o755); err != nil {
				return err
			}
			refs, errs, err := l.runCrash(old, vmlinux, files, tdir, oldCommands, vals)
			if err != nil {
				return err
			}
			record(old, oldCommands, refs, errs)
		}
		// Where the oracle failed, ask drgn.
		if _, ok := rec.Refs["ps"]; !ok {
			if err := l.runDrgn(vmlinux, *d, m, dir, &rec); err != nil {
				rec.RefErrors["drgn"] = err.Error()
			}
		}
		b, _ := json.MarshalIndent(rec, "", "  ")
		if err := writeFileAtomic(filepath.Join(dir, "refs.json"), b, 0o644); err != nil {
			return err
		}
		d.Refs, d.RefCommands, d.RefErrors = rec.Refs, rec.RefCommands, rec.RefErrors
		l.logf("%s: %d reference outputs, %d failed commands (%.0f s)", d.ID, len(rec.Refs), len(rec.RefErrors), time.Since(start).Seconds())
		return nil
	}
	// crash runs on one CPU: two sessions at once, on dumps of different
	// crashes first (the first dump of each crash finds the values the
	// later commands need), then the other dumps of each crash.
	var firsts, rest []int
	seen := map[string]bool{}
	for _, i := range order {
		if c := m.Dumps[i].Crash; !seen[c] {
			seen[c] = true
			firsts = append(firsts, i)
		} else {
			rest = append(rest, i)
		}
	}
	for _, batch := range [][]int{firsts, rest} {
		if err := parallel(min(2, runtime.NumCPU()), batch, one); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs f on each of items, n at a time, and returns the first
// error (after the runs under way end).
func parallel(n int, items []int, f func(int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < max(n, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, i := range items {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// taskOf finds a PID's task address in crash's ps output.
func taskOf(psRel string, m *corpus.Manifest, pid string) string {
	if psRel == "" || pid == "" {
		return ""
	}
	b, err := os.ReadFile(m.Path(psRel))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), ">"))
		if len(f) >= 4 && f[0] == pid {
			return f[3]
		}
	}
	return ""
}
