package analyze

import (
	"encoding/json"
	"strings"
	"testing"

	"salvage/lab/corpus"
)

// jsonCommands is one --json invocation of every session command; a
// command added without one fails TestEveryCommandHasJSON.
var jsonCommands = map[string]string{
	"alias":   "alias --json",
	"bt":      "bt --json",
	"dis":     "dis sysrq_handle_crash --json",
	"foreach": "foreach active bt --json",
	"help":    "help --json",
	"log":     "log --json",
	"mod":     "mod --json",
	"p":       "p jiffies --json",
	"ps":      "ps --json",
	"ptov":    "ptov 1000 --json",
	"quit":    "", // ends the session: no output
	"rd":      "rd linux_banner 4 --json",
	"set":     "set --json",
	"struct":  "struct list_head -o --json",
	"summary": "summary --json",
	"sym":     "sym linux_banner --json",
	"sys":     "sys --json",
	"task":    "task --json",
	"union":   "union bpf_iter_link_info --json",
	"vtop":    "", // set from the dump's vtop reference below
	"whatis":  "whatis task_struct --json",
}

// TestEveryCommandHasJSON runs every command of the session with --json
// on a real dump, with the vmlinux and without: each prints valid JSON
// only (one document, or one per task for foreach), and no errors.
func TestEveryCommandHasJSON(t *testing.T) {
	m := corpus.Require(t)
	ds := m.Select(func(d corpus.Dump) bool { return d.Scenario == "oops" && d.Variant == "vmcore-elf" })
	if len(ds) == 0 {
		t.Fatal("no oops vmcore-elf dump in the corpus")
	}
	// One per lab kernel: every command's JSON on each kernel generation.
	for _, d := range ds {
		for _, mode := range []string{"vmlinux", "btf"} {
			checkEveryCommandJSON(t, m, d, mode)
		}
	}
}

func checkEveryCommandJSON(t *testing.T, m *corpus.Manifest, d corpus.Dump, mode string) {
	ds := []corpus.Dump{d}
	{
		s := corpusSessionMode(t, m, ds[0], mode)
		for _, c := range s.Commands().Commands() {
			line, ok := jsonCommands[c.Name]
			if c.Name == "vtop" {
				line = ds[0].RefCommands["vtop"] + " --json"
			}
			if !ok {
				t.Errorf("command %s has no --json case here: add one", c.Name)
				continue
			}
			if line == "" {
				continue
			}
			out, errs := execCapture(s, line)
			if errs != "" {
				t.Errorf("%s %s %s: %s", d.Release, mode, line, errs)
				continue
			}
			dec := json.NewDecoder(stringsReader(out))
			n := 0
			for dec.More() {
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Errorf("%s %s %s: not JSON: %v\n%.500s", d.Release, mode, line, err, out)
					break
				}
				n++
			}
			if n == 0 || (n > 1 && c.Name != "foreach") {
				t.Errorf("%s %s %s: %d JSON documents", d.Release, mode, line, n)
			}
		}
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
