package analyze

import (
	"encoding/json"
	"testing"

	"salvage/lab/corpus"
)

// TestKernelCommandsJSON checks the shape of --json for each kernel-model
// command on a corpus dump, with the vmlinux and without: one JSON
// document with the keys each command documents.
func TestKernelCommandsJSON(t *testing.T) {
	m := corpus.Require(t)
	var d *corpus.Dump
	for i := range m.Dumps {
		if m.Dumps[i].ID == "6.1.0-56-cloud-amd64/sysrq/vmcore-elf" {
			d = &m.Dumps[i]
		}
	}
	if d == nil {
		t.Fatal("corpus lacks 6.1.0-56-cloud-amd64/sysrq/vmcore-elf")
	}
	task := d.RefCommands["struct-task"] // "struct task_struct ADDR"
	cases := []struct {
		cmd  string
		keys []string // of the document, or of its first element for arrays
		list bool
	}{
		{"sym linux_banner --json", []string{"symbols"}, false},
		{"sym -q init_uts --json", []string{"symbols"}, false},
		{"whatis task_struct --json", []string{"name", "kind", "declaration", "size", "members"}, false},
		{"whatis linux_banner --json", []string{"name", "kind", "declaration", "size"}, false},
		{"struct list_head -o --json", []string{"type", "size", "members"}, false},
		{task + " --json", []string{"type", "size", "address", "members"}, false},
		{"union bpf_iter_link_info --json", []string{"type", "size", "members"}, false},
		{"p jiffies --json", []string{"expression", "type", "address", "value", "history"}, false},
		{"p init_task.comm --json", []string{"expression", "type", "address", "value", "history"}, false},
		{"vtop " + d.RefCommands["vtop"][len("vtop "):] + " --json", []string{"virtual", "physical", "page_size", "steps", "page"}, true},
		{"ptov 1000 --json", []string{"virtual", "physical"}, true},
		{"rd linux_banner 4 --json", []string{"address", "space", "format", "size", "count", "values", "bytes"}, false},
	}
	for _, mode := range []string{"vmlinux", "btf"} {
		t.Run(mode, func(t *testing.T) {
			s := corpusSession(t, m, *d, mode == "vmlinux")
			for _, c := range cases {
				out, errs := execCapture(s, c.cmd)
				if errs != "" {
					t.Errorf("%s: %s", c.cmd, errs)
					continue
				}
				var doc map[string]json.RawMessage
				if c.list {
					var all []map[string]json.RawMessage
					if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) == 0 {
						t.Errorf("%s: not a non-empty JSON array: %v\n%s", c.cmd, err, out)
						continue
					}
					doc = all[0]
				} else if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Errorf("%s: not a JSON object: %v\n%s", c.cmd, err, out)
					continue
				}
				for _, k := range c.keys {
					if _, ok := doc[k]; !ok {
						t.Errorf("%s: no %q in %s", c.cmd, k, out)
					}
				}
			}
			// Spot values: the JSON says what the text says.
			var sym symResult
			out, _ := execCapture(s, "sym linux_banner --json")
			if err := json.Unmarshal([]byte(out), &sym); err != nil || len(sym.Symbols) != 1 || sym.Symbols[0].Name != "linux_banner" || sym.Symbols[0].Type != "D" {
				t.Errorf("sym --json: %v %+v", err, sym)
			}
			var rd rdJSON
			out, _ = execCapture(s, "rd linux_banner 2 --json")
			if err := json.Unmarshal([]byte(out), &rd); err != nil || rd.Space != "virtual" || rd.Bytes[:10] != "4c696e7578" {
				t.Errorf("rd --json: %v %+v", err, rd)
			}
		})
	}
}
