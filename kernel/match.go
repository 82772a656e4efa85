package kernel

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"salvage/debuginfo"
	"salvage/dump"
)

// Identity is what identifies a kernel build: its GNU build ID and its
// linux_banner ("Linux version 6.1.0-56-cloud-amd64 (…) (gcc-12 …) #1 SMP
// PREEMPT_DYNAMIC Debian 6.1.192-2 (…)").
type Identity struct {
	BuildID string // hex
	Banner  string // without the trailing newline
}

// VmlinuxIdentity reads a vmlinux's build ID (its NT_GNU_BUILD_ID note)
// and linux_banner (the bytes at the symbol, in the file).
func VmlinuxIdentity(path string) (Identity, error) {
	fh, err := os.Open(path)
	if err != nil {
		return Identity{}, err
	}
	defer fh.Close()
	return ReadVmlinuxIdentity(fh, path)
}

// ReadVmlinuxIdentity is VmlinuxIdentity for a vmlinux read through r;
// path names it in errors.
func ReadVmlinuxIdentity(r io.ReaderAt, path string) (Identity, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", path, err)
	}
	var id Identity
	id.BuildID, err = elfBuildID(f)
	if err != nil {
		return Identity{}, fmt.Errorf("%s: %w", path, err)
	}
	syms, err := f.Symbols()
	if err != nil {
		return id, fmt.Errorf("%s: no symbol table: %w", path, err)
	}
	for _, s := range syms {
		if s.Name != "linux_banner" || s.Section >= elf.SectionIndex(len(f.Sections)) {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Type == elf.SHT_NOBITS || s.Value < sec.Addr {
			break
		}
		n := s.Size
		if n == 0 || n > 1024 {
			n = 1024
		}
		b := make([]byte, n)
		m, err := sec.ReadAt(b, int64(s.Value-sec.Addr))
		if m == 0 && err != nil {
			return id, fmt.Errorf("%s: reading linux_banner: %w", path, err)
		}
		id.Banner = cstring(b[:m])
		return id, nil
	}
	return id, fmt.Errorf("%s: no linux_banner symbol", path)
}

// elfBuildID is debuginfo.BuildID, with an error when there is none.
func elfBuildID(f *elf.File) (string, error) {
	if id := debuginfo.BuildID(f); id != "" {
		return id, nil
	}
	return "", errors.New("no GNU build-id note")
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), "\n")
}

// Banner is linux_banner taken apart.
type Banner struct {
	Release  string // "6.1.0-56-cloud-amd64"
	Builder  string // "debian-kernel@lists.debian.org"
	Compiler string // "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40"
	Build    string // "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-…)"
	// DebianVersion is the package version in Build ("6.1.192-2"), when
	// the kernel is Debian's.
	DebianVersion string
}

var debianVersion = regexp.MustCompile(`\bDebian (\d\S*)`)

// ParseBanner splits "Linux version R (B) (C) #…" (init/version.c); the
// compiler part holds nested parentheses.
func ParseBanner(s string) (Banner, error) {
	s = strings.TrimRight(s, "\n\x00")
	rest, ok := strings.CutPrefix(s, "Linux version ")
	if !ok {
		return Banner{}, fmt.Errorf("not a linux_banner: %q", truncate(s, 40))
	}
	var b Banner
	b.Release, rest, _ = strings.Cut(rest, " ")
	var groups []string
	for {
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, "(") {
			break
		}
		depth, end := 0, -1
		for i, c := range rest {
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
				if depth == 0 {
					end = i
					break
				}
			}
		}
		if end < 0 {
			break
		}
		groups = append(groups, rest[1:end])
		rest = rest[end+1:]
	}
	if len(groups) > 0 {
		b.Builder = groups[0]
	}
	if len(groups) > 1 {
		b.Compiler = groups[1]
	}
	b.Build = strings.TrimSpace(rest)
	if m := debianVersion.FindStringSubmatch(b.Build); m != nil {
		b.DebianVersion = m[1]
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// MismatchError says how a vmlinux and a dump differ and where the right
// debug vmlinux is.
type MismatchError struct {
	VmlinuxBuildID, DumpBuildID string
	Vmlinux, Dump               Banner // Dump's from its memory, or only Release from VMCOREINFO
	DumpBannerErr               error  // why the dump's banner could not be read, if so
	Differences                 []string
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	b.WriteString("the vmlinux does not match the dump: ")
	b.WriteString(strings.Join(e.Differences, "; "))
	if e.DumpBannerErr != nil {
		fmt.Fprintf(&b, " (the dump's linux_banner could not be read: %v)", e.DumpBannerErr)
	}
	if p := e.Package(); p != "" {
		fmt.Fprintf(&b, "; the dump's debug vmlinux is in Debian's %s", p)
		if e.Dump.DebianVersion != "" {
			fmt.Fprintf(&b, " (version %s)", e.Dump.DebianVersion)
		}
		fmt.Fprintf(&b, ", as /usr/lib/debug/boot/vmlinux-%s", e.Dump.Release)
	}
	return b.String()
}

// Package names the Debian package that carries the dump's debug vmlinux
// (linux-image-<release>-dbg), or "" when the kernel is not Debian's.
func (e *MismatchError) Package() string {
	if e.Dump.Release != "" && (e.Dump.DebianVersion != "" || debianReleaseRE.MatchString(e.Dump.Release)) {
		return "linux-image-" + e.Dump.Release + "-dbg"
	}
	return ""
}

// debianReleaseRE recognizes Debian's release strings
// ("6.1.0-56-cloud-amd64", "6.12.48+deb12-cloud-amd64") when no banner
// was readable.
var debianReleaseRE = regexp.MustCompile(`^\d+\.\d+\.\d+(-\d+|\+deb\d+)(-[a-z0-9]+)*-(amd64|arm64)$`)

// CheckMatch compares a vmlinux (its build ID and linux_banner, from
// VmlinuxIdentity) with a dump: the build ID with VMCOREINFO's BUILD-ID,
// and the banner with the one in the dump's memory at bannerAddr (read
// through r; give the address from the dump's own kallsyms when loaded —
// a mismatched vmlinux's address may point elsewhere). It returns nil
// when they match and a *MismatchError naming every difference
// otherwise. Either side may be missing (empty string, bannerAddr 0, nil
// r); what remains is compared, and an error says when nothing can be.
func CheckMatch(vmlinuxBuildID, vmlinuxBanner string, f *dump.File, r debuginfo.VirtReader, bannerAddr uint64) error {
	e := &MismatchError{VmlinuxBuildID: strings.ToLower(vmlinuxBuildID)}
	var vi *dump.VMCoreInfo
	if f != nil {
		vi = f.VMCoreInfo
	}
	e.DumpBuildID = strings.ToLower(vi.BuildID())
	compared := false
	if e.VmlinuxBuildID != "" && e.DumpBuildID != "" {
		compared = true
		// The kernel truncates nothing today, but older ones printed a
		// prefix: a prefix match is a match.
		if !strings.HasPrefix(e.VmlinuxBuildID, e.DumpBuildID) {
			e.Differences = append(e.Differences, fmt.Sprintf("build ID %s (vmlinux) vs %s (dump's VMCOREINFO)", e.VmlinuxBuildID, e.DumpBuildID))
		}
	}
	var err error
	if vmlinuxBanner != "" {
		if e.Vmlinux, err = ParseBanner(vmlinuxBanner); err != nil {
			return fmt.Errorf("vmlinux: %w", err)
		}
	}
	dumpBanner := ""
	if r != nil && bannerAddr != 0 {
		buf := make([]byte, 512)
		n, rerr := r.ReadVirt(buf, bannerAddr)
		s := cstring(buf[:n])
		if strings.HasPrefix(s, "Linux version ") && (rerr == nil || bytes.IndexByte(buf[:n], 0) >= 0) {
			dumpBanner = s
		} else if rerr != nil {
			e.DumpBannerErr = rerr
		} else {
			e.DumpBannerErr = fmt.Errorf("%#x holds %q, not a banner", bannerAddr, truncate(s, 24))
		}
	}
	if dumpBanner != "" {
		e.Dump, _ = ParseBanner(dumpBanner)
	} else {
		e.Dump.Release = vi.OSRelease()
	}
	if e.Vmlinux.Release != "" && e.Dump.Release != "" {
		compared = true
		if e.Vmlinux.Release != e.Dump.Release {
			e.Differences = append(e.Differences, fmt.Sprintf("release %s (vmlinux) vs %s (dump)", e.Vmlinux.Release, e.Dump.Release))
		}
	}
	if dumpBanner != "" && vmlinuxBanner != "" && dumpBanner != strings.TrimRight(vmlinuxBanner, "\n") {
		if e.Vmlinux.Build != e.Dump.Build {
			e.Differences = append(e.Differences, fmt.Sprintf("build %q (vmlinux) vs %q (dump)", e.Vmlinux.Build, e.Dump.Build))
		}
		if e.Vmlinux.Compiler != e.Dump.Compiler {
			e.Differences = append(e.Differences, fmt.Sprintf("compiler %q (vmlinux) vs %q (dump)", e.Vmlinux.Compiler, e.Dump.Compiler))
		}
		if e.Vmlinux.Builder != e.Dump.Builder {
			e.Differences = append(e.Differences, fmt.Sprintf("built by %q (vmlinux) vs %q (dump)", e.Vmlinux.Builder, e.Dump.Builder))
		}
		if len(e.Differences) == 0 {
			e.Differences = append(e.Differences, fmt.Sprintf("banner %q (vmlinux) vs %q (dump)", vmlinuxBanner, dumpBanner))
		}
	}
	if !compared && dumpBanner == "" {
		return fmt.Errorf("cannot tell whether the vmlinux matches the dump: the dump has no BUILD-ID or OSRELEASE in VMCOREINFO and its linux_banner was not read")
	}
	if len(e.Differences) == 0 {
		return nil
	}
	return e
}
