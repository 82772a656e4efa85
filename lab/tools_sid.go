package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// sidMakedumpfilePackages are what sid's makedumpfile needs to run on
// bookworm through sid's own loader. bookworm's makedumpfile 1.7.2 drops
// in-use slab pages of kernels >= 6.2 at -d 8 and -d 16; 1.7.8 knows
// them, so it is the collector's reference for page counts. (Debian's
// 1.7.8 is built without snappy.)
// libgcc-s1 is for --num-threads: glibc loads libgcc_s to unwind at
// pthread_exit.
var sidMakedumpfilePackages = []string{"makedumpfile", "libc6", "libdw1t64", "libelf1t64", "liblzo2-2", "libzstd1", "zlib1g", "libbz2-1.0", "liblzma5", "libgcc-s1"}

// sidMakedumpfile fetches sid's makedumpfile into tools/makedumpfile-sid
// of the cache and returns its version ("1.7.8").
func (l *Lab) sidMakedumpfile() (string, error) {
	dir := filepath.Join(l.Cache, "tools", "makedumpfile-sid")
	// .complete holds the version, then the packages it was made of: a
	// changed package list fetches again.
	want := strings.Join(sidMakedumpfilePackages, " ")
	if b, err := os.ReadFile(filepath.Join(dir, ".complete")); err == nil {
		if v, pkgs, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); pkgs == want {
			return v, nil
		}
	}
	l.logf("fetching sid's makedumpfile (private apt configuration in %s)", dir)
	root, err := l.fetchDebianSuite(dir, "sid", sidMakedumpfilePackages)
	if err != nil {
		return "", fmt.Errorf("fetching sid's makedumpfile: %w", err)
	}
	lib := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	ctx, cancel := timeoutCtx(time.Minute)
	defer cancel()
	// makedumpfile -v exits 0 and prints "makedumpfile: version 1.7.8 (…)".
	out, err := command(ctx, "", filepath.Join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib, filepath.Join(root, "usr/bin/makedumpfile"), "-v")
	if err != nil {
		return "", fmt.Errorf("sid's makedumpfile does not run here: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 || f[1] != "version" {
		return "", fmt.Errorf("makedumpfile -v: unexpected output %q", out)
	}
	return f[2], os.WriteFile(filepath.Join(dir, ".complete"), []byte(f[2]+"\n"+want+"\n"), 0o644)
}

// fetchDebianSuite downloads pkgs from Debian's suite with a private apt
// configuration under dir (the machine's own sources and state are left
// alone) and unpacks them all into dir/root, which it returns.
func (l *Lab) fetchDebianSuite(dir, suite string, pkgs []string) (string, error) {
	os.RemoveAll(dir)
	for _, d := range []string{"etc", "state/lists/partial", "cache/archives/partial", "debs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	src := "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian " + suite + " main\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/sources.list"), []byte(src), 0o644); err != nil {
		return "", err
	}
	opts := []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "etc/sources.list"),
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State=" + filepath.Join(dir, "state"),
		"-o", "Dir::State::status=/var/lib/dpkg/status",
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "APT::Architecture=amd64",
	}
	ctx, cancel := timeoutCtx(15 * time.Minute)
	defer cancel()
	if _, err := command(ctx, "", "apt-get", append(opts, "-q", "update")...); err != nil {
		return "", err
	}
	if _, err := command(ctx, filepath.Join(dir, "debs"), "apt-get", append(append(opts, "-q", "download"), pkgs...)...); err != nil {
		return "", err
	}
	root := filepath.Join(dir, "root")
	debs, _ := filepath.Glob(filepath.Join(dir, "debs", "*.deb"))
	for _, d := range debs {
		if _, err := command(ctx, "", "dpkg-deb", "-x", d, root); err != nil {
			return "", err
		}
	}
	return root, nil
}
