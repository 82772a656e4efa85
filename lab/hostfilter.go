package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"salvage/dump"
	"salvage/kernel"
	"salvage/lab/corpus"
)

// hostArgs are sid makedumpfile's arguments for each filtered variant of a
// kernel with KernelSpec.HostFilter, made on the host from the raw
// /proc/vmcore copy (IN and OUT stand for the files): the same flags the
// guest gives bookworm's makedumpfile for the 6.1 kernel.
var hostArgs = map[string][]string{
	"lzo-d31":       {"-l", "-d", "31"},
	"zlib-d31":      {"-c", "-d", "31"},
	"elf-d31":       {"-E", "-d", "31"},
	"flat-lzo-d31":  {"-F", "-l", "-d", "31"},
	"split-lzo-d31": {"--split", "-l", "-d", "31"},
}

// hostProducer is the Producer of the dumps made by hostFilter.
const hostProducer = "makedumpfile (sid 1.7.8, on the host)"

// sidMakedumpfileCmd runs sid's makedumpfile through its own loader.
func (l *Lab) sidMakedumpfileCmd(ctx context.Context, args ...string) (*exec.Cmd, error) {
	m := &corpus.Manifest{Root: l.Cache}
	return m.MakedumpfileSid(ctx, args...)
}

// hostFilter makes variant v of a crash from its raw ELF copy of
// /proc/vmcore with sid's makedumpfile; the files land in dir.
func (l *Lab) hostFilter(raw, dir string, v variant) error {
	args, ok := hostArgs[v.Name]
	if !ok {
		return fmt.Errorf("no host recipe for variant %s", v.Name)
	}
	args = append(append([]string{}, args...), "--message-level", "1", raw)
	flat := args[0] == "-F"
	if !flat {
		for _, f := range v.Files {
			args = append(args, filepath.Join(dir, f))
		}
	}
	ctx, cancel := timeoutCtx(10 * time.Minute)
	defer cancel()
	cmd, err := l.sidMakedumpfileCmd(ctx, args...)
	if err != nil {
		return err
	}
	var out *os.File
	if flat {
		if out, err = os.OpenFile(filepath.Join(dir, v.Files[0]), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return err
		}
		defer out.Close()
		cmd.Stdout = out
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sid makedumpfile %v: %v: %s", args, err, stderr.Bytes())
	}
	for _, f := range v.Files {
		if err := os.Chmod(filepath.Join(dir, f), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// taskCount opens a dump with salvage's kernel model (BTF-only) and counts
// its tasks: what a rejected dump has lost, measured.
func taskCount(paths ...string) (int, error) {
	f, err := dump.Open(paths...)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	k, err := kernel.Open(f, kernel.Options{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, err := range k.Tasks() {
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// dumpPath is the absolute path of a dump's first file.
func (l *Lab) dumpPath(d corpus.Dump) string {
	return filepath.Join(l.Cache, d.Files[0])
}

// reject keeps the guest's own dump of variant v (bookworm's makedumpfile)
// as a documented failure, with what it lost measured against the host's
// dump of the same variant.
func (l *Lab) reject(k *Kernel, crashID, guestDir, dir string, v variant, made []corpus.Dump) (corpus.Rejected, error) {
	name := "bookworm-" + v.Name
	r := corpus.Rejected{Dump: corpus.Dump{
		ID: crashID + "/" + name, Release: k.Release, Crash: crashID, Variant: name,
		Producer: "makedumpfile (bookworm 1.7.2, in the capture kernel)", Format: v.Format,
		Compression: v.Compression, DumpLevel: v.DumpLevel,
	}}
	r.Scenario = made[0].Scenario
	src := filepath.Join(guestDir, v.Files[0])
	dst := filepath.Join(dir, "bookworm-"+v.Files[0])
	if err := os.Rename(src, dst); err != nil {
		r.Reason = fmt.Sprintf("bookworm's makedumpfile %s wrote no dump: %v", v.Name, err)
		return r, nil
	}
	os.Chmod(dst, 0o600)
	st, err := os.Stat(dst)
	if err != nil {
		return r, err
	}
	r.Size = st.Size()
	rel, _ := filepath.Rel(l.Cache, dst)
	r.Files = []string{rel}
	if r.SHA256, err = sha256File(dst); err != nil {
		return r, err
	}
	got, gerr := taskCount(dst)
	r.Reason = fmt.Sprintf("bookworm's makedumpfile 1.7.2 drops in-use slab pages of kernels >= 6.2 at -d 8/-d 16: salvage (BTF-only) finds %d tasks in its %s dump (%d bytes)", got, v.Name, r.Size)
	if gerr != nil {
		r.Reason += fmt.Sprintf(" and then fails: %v", gerr)
	}
	for _, d := range made {
		if d.Variant == v.Name {
			n, err := taskCount(filepath.Join(l.Cache, d.Files[0]))
			r.Reason += fmt.Sprintf("; in sid 1.7.8's dump of the same /proc/vmcore (%d bytes) it finds %d", d.Size, n)
			if err != nil {
				r.Reason += fmt.Sprintf(" (then: %v)", err)
			}
		}
	}
	return r, nil
}
