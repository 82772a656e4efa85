package collect

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"salvage/analyze"
	"salvage/dump"
	"salvage/lab/corpus"
)

// matrixCell is one output of the compatibility matrix.
type matrixCell struct {
	format string // kdump, flattened, elf
	codec  dump.Compression
	level  int
}

func (c matrixCell) name() string { return fmt.Sprintf("%s-%s-d%d", c.format, c.codec, c.level) }

// matrixCells: every level bit (and 0 and 31) with every codec in
// kdump-compressed files; every level in ELF; every level (lzo) and every
// codec (-d 31) in flattened streams.
func matrixCells() []matrixCell {
	var cells []matrixCell
	levels := []int{0, 1, 2, 4, 8, 16, 31}
	for _, l := range levels {
		for _, c := range codecs {
			cells = append(cells, matrixCell{"kdump", c, l})
		}
		cells = append(cells, matrixCell{"elf", "none", l}, matrixCell{"flattened", "lzo", l})
	}
	for _, c := range codecs {
		if c != "lzo" {
			cells = append(cells, matrixCell{"flattened", c, 31})
		}
	}
	return cells
}

// matrixKeys are the commands both crash and salvage run on each output.
var matrixKeys = []string{"sys", "ps", "bt", "log"}

// normalizeSys drops what legitimately differs in sys between dumps of
// one crash: the DUMPFILE line (the path, and [PARTIAL DUMP] on filtered
// dumps only) and, for salvage without a vmlinux, the KERNEL line.
func normalizeSys(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimLeft(l, " ")
		if strings.HasPrefix(t, "DUMPFILE:") || strings.HasPrefix(t, "KERNEL:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

var matrixFull = flag.Bool("matrix-full", false, "TestCollectMatrix: every cell of the matrix (53 outputs), not its diagonal")

// The compatibility matrix: the sysrq crash collected at every level bit
// (0, 1, 2, 4, 8, 16, 31) with every codec (none, zlib, lzo, snappy,
// zstd) as kdump-compressed files, as ELF (-E), and as flattened streams
// (-F: every level with lzo, every codec at -d 31) — 53 outputs. crash
// 8.0.6 opens each (one session: sys, ps, bt, log) and so does salvage's
// analyzer from the dump alone (BTF); each command's output must equal
// crash's on makedumpfile's lzo -d 31 dump of the crash (sys without its
// DUMPFILE and KERNEL lines). Two outputs are checked at a time. The
// matrix is printed with -v. It takes 6–12 minutes on the lab's 2 CPUs
// (crash's sessions, and the 800 MB outputs of -d 0 without a codec), so
// `make test` checks a diagonal of 12 outputs, each level, codec and
// format at least once; -matrix-full (`make matrix`) checks all 53.
func TestCollectMatrix(t *testing.T) {
	m := corpus.Require(t)
	argv := crashBinary(t, m)
	// The sysrq crash of the corpus's first kernel (6.1), with its
	// makedumpfile lzo -d 31 dump's references.
	var raw corpus.Dump
	for _, d := range m.Dumps {
		if d.Scenario == "sysrq" && d.Variant == "vmcore-elf" {
			raw = d
			break
		}
	}
	if raw.ID == "" {
		t.Fatal("the corpus has no sysrq vmcore-elf")
	}
	filt := sameCrash(t, m, raw, "lzo-d31")
	vmlinux := m.Path(m.Kernel(raw.Release).DebugVmlinux)
	want := map[string]string{}
	for _, k := range matrixKeys {
		s, ok, err := m.Ref(filt, k)
		if err != nil || !ok {
			t.Fatalf("no crash reference %s: %v", k, err)
		}
		if k == "sys" {
			s = normalizeSys(s)
		}
		want[k] = s
	}
	dir := t.TempDir()
	cells := matrixCells()
	if !*matrixFull {
		// A diagonal of the matrix: each level, codec and format at
		// least once (12 outputs instead of 53).
		cells = []matrixCell{
			{"kdump", "none", 0}, {"kdump", "zlib", 1}, {"kdump", "lzo", 2}, {"kdump", "snappy", 4},
			{"kdump", "zstd", 8}, {"kdump", "lzo", 16}, {"kdump", "zstd", 31},
			{"elf", "none", 8}, {"elf", "none", 31},
			{"flattened", "zlib", 16}, {"flattened", "snappy", 31}, {"flattened", "lzo", 0},
		}
	}
	type result struct {
		size           int64
		crash, salvage []string // the commands that differ
		err            string
	}
	results := make([]result, len(cells))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, c := range cells {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &results[i]
			src, err := dump.Open(m.Paths(raw)...)
			if err != nil {
				r.err = err.Error()
				return
			}
			defer src.Close()
			dest := filepath.Join(dir, c.name())
			defer os.Remove(dest)
			opt := Options{Level: c.level, Compression: c.codec, Threads: 1}
			switch c.format {
			case "elf":
				opt.Format, opt.Compression = FormatELF, "none"
				_, err = Collect(context.Background(), src, dest, opt)
			case "kdump":
				_, err = Collect(context.Background(), src, dest, opt)
			case "flattened":
				var f *os.File
				if f, err = os.Create(dest); err == nil {
					_, err = CollectStream(context.Background(), src, f, opt)
					f.Close()
				}
			}
			if err != nil {
				r.err = "collect: " + err.Error()
				return
			}
			st, _ := os.Stat(dest)
			r.size = st.Size()

			// crash: one session, each command into a file.
			cd := filepath.Join(dir, c.name()+".crash")
			os.Mkdir(cd, 0o755)
			defer os.RemoveAll(cd)
			var script strings.Builder
			for _, k := range matrixKeys {
				fmt.Fprintf(&script, "%s > %s\n", k, filepath.Join(cd, k))
			}
			script.WriteString("q\n")
			in := filepath.Join(cd, "in")
			os.WriteFile(in, []byte(script.String()), 0o644)
			args := append(append([]string{}, argv[1:]...), "-s", vmlinux, dest, "-i", in)
			if out, err := exec.Command(argv[0], args...).CombinedOutput(); err != nil {
				r.err = fmt.Sprintf("crash: %v: %s", err, firstLine(string(out)))
				return
			}
			for _, k := range matrixKeys {
				b, _ := os.ReadFile(filepath.Join(cd, k))
				g := string(b)
				if k == "sys" {
					g = normalizeSys(g)
				}
				if g != want[k] {
					r.crash = append(r.crash, k)
				}
			}

			// salvage's analyzer, from the dump alone.
			f, err := dump.Open(dest)
			if err != nil {
				r.err = "salvage: " + err.Error()
				return
			}
			defer f.Close()
			for _, k := range matrixKeys {
				var out, errw bytes.Buffer
				s := analyze.NewSession(f, "", &out, &errw)
				if err := s.Exec(k); err != nil {
					r.salvage = append(r.salvage, k+"(error)")
					continue
				}
				g := out.String()
				if k == "sys" {
					g = normalizeSys(g)
				}
				if g != want[k] {
					r.salvage = append(r.salvage, k)
				}
			}
		}()
	}
	wg.Wait()

	var table strings.Builder
	fmt.Fprintf(&table, "| format | codec | -d | size (MB) | crash 8.0.6 sys/ps/bt/log | salvage sys/ps/bt/log |\n|---|---|---|---|---|---|\n")
	order := make([]int, len(cells))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ca, cb := cells[order[a]], cells[order[b]]
		if ca.format != cb.format {
			return ca.format < cb.format
		}
		if ca.codec != cb.codec {
			return ca.codec < cb.codec
		}
		return ca.level < cb.level
	})
	verdict := func(diff []string) string {
		if len(diff) == 0 {
			return "equal"
		}
		return "differs: " + strings.Join(diff, ",")
	}
	bad := 0
	for _, i := range order {
		c, r := cells[i], results[i]
		if r.err != "" {
			bad++
			t.Errorf("%s: %s", c.name(), r.err)
			fmt.Fprintf(&table, "| %s | %s | %d | – | %s | |\n", c.format, c.codec, c.level, r.err)
			continue
		}
		if len(r.crash)+len(r.salvage) > 0 {
			bad++
			t.Errorf("%s: crash differs in %v, salvage in %v", c.name(), r.crash, r.salvage)
		}
		fmt.Fprintf(&table, "| %s | %s | %d | %.1f | %s | %s |\n", c.format, c.codec, c.level, float64(r.size)/1e6, verdict(r.crash), verdict(r.salvage))
	}
	t.Logf("compatibility matrix, sysrq crash (%d outputs, %d with a difference):\n%s", len(cells), bad, table.String())
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
