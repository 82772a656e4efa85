package capture

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The local layout of saved dumps is Debian kdump-tools' (kdump-config's
// kdump_save_core): one directory per crash named by the minute it was
// saved, KDUMP_STAMP=`date +"%Y%m%d%H%M"`, holding dump.STAMP and
// dmesg.STAMP. A dump still being written is dump.STAMP.incomplete.

// StampLayout is the time layout of a dump directory's name.
const StampLayout = "200601021504"

// IncompleteSuffix marks a dump file that is still being written, or
// whose writing was cut short (it stays readable, marked incomplete).
const IncompleteSuffix = ".incomplete"

// dumpDirRe matches a dump directory's name: the stamp, and -N when
// several crashes were saved in one minute.
var dumpDirRe = regexp.MustCompile(`^[0-9]{12}(-[0-9]+)?$`)

// Stamp is the name of the dump directory of a crash saved at t.
func Stamp(t time.Time) string { return t.UTC().Format(StampLayout) }

// IsDumpDir says whether name is the name of a dump directory.
func IsDumpDir(name string) bool {
	if !dumpDirRe.MatchString(name) {
		return false
	}
	_, err := time.Parse(StampLayout, name[:12])
	return err == nil
}

// DumpFile and DmesgFile are the names of the dump and its kernel log in
// the dump directory dir.
func DumpFile(dir string) string  { return dir + "/dump." + dir }
func DmesgFile(dir string) string { return dir + "/dmesg." + dir }

// NewDumpDir creates the dump directory for a crash saved at t in s: the
// stamp, or stamp-2, stamp-3… when a directory of that minute exists.
func NewDumpDir(s Store, t time.Time) (string, error) {
	names, err := s.ReadDir(".")
	if err != nil {
		return "", fmt.Errorf("%s: %w", s, err)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	dir := Stamp(t)
	for i := 2; have[dir]; i++ {
		dir = fmt.Sprintf("%s-%d", Stamp(t), i)
	}
	if err := s.MkdirAll(dir); err != nil {
		return "", fmt.Errorf("%s: %w", s, err)
	}
	return dir, nil
}

// DumpDirs lists the dump directories of s, oldest first. Only names of
// the stamp layout count: nothing else in the dump path is ever touched.
func DumpDirs(s Store) ([]string, error) {
	names, err := s.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	var out []string
	for _, n := range names {
		if IsDumpDir(n) {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return dumpDirLess(out[i], out[j]) })
	return out, nil
}

// dumpDirLess orders stamps by time, then by their -N.
func dumpDirLess(a, b string) bool {
	if a[:12] != b[:12] {
		return a[:12] < b[:12]
	}
	n := func(s string) int {
		var k int
		if i := strings.IndexByte(s, '-'); i >= 0 {
			fmt.Sscan(s[i+1:], &k)
		}
		return k
	}
	return n(a) < n(b)
}

// PruneDumps removes the oldest dump directories of s so that keep remain
// (KDUMP_NUM_DUMPS; 0 keeps all). The directory current is never removed.
// It returns the directories removed.
func PruneDumps(s Store, keep int, current string) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	dirs, err := DumpDirs(s)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, d := range dirs {
		if len(dirs)-len(removed) <= keep {
			break
		}
		if d == current {
			continue
		}
		if err := s.RemoveAll(d); err != nil {
			return removed, fmt.Errorf("%s: removing old dump %s: %w", s, d, err)
		}
		removed = append(removed, d)
	}
	return removed, nil
}
