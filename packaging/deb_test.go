package packaging

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"salvage/capture"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// salvageBinary builds cmd/salvage once (static, as the Makefile does)
// with version v1.4.0-3-gabcdef0 (a git describe of a tagged tree).
func salvageBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "salvage-pkg-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "salvage")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath",
			"-ldflags", "-X main.version=v1.4.0-3-gabcdef0", "-o", builtBin, "../cmd/salvage")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building salvage: %v", buildErr)
	}
	return builtBin
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// buildDeb runs build-deb.sh as `make package` does and returns the .deb.
func buildDeb(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	deb := strings.TrimSpace(run(t, "./build-deb.sh", salvageBinary(t), out))
	if want := filepath.Join(out, "salvage_1.4.0+3+gabcdef0_amd64.deb"); deb != want {
		t.Fatalf("build-deb.sh made %q, want %q", deb, want)
	}
	return deb
}

// TestDebContents checks every entry of the package: path, mode, owner.
func TestDebContents(t *testing.T) {
	deb := buildDeb(t)
	want := []string{
		"drwxr-xr-x root/root ./",
		"drwxr-xr-x root/root ./etc/",
		"drwxr-xr-x root/root ./etc/salvage/",
		"-rw-r--r-- root/root ./etc/salvage/kdump.conf",
		"drwxr-xr-x root/root ./lib/",
		"drwxr-xr-x root/root ./lib/systemd/",
		"drwxr-xr-x root/root ./lib/systemd/system/",
		"-rw-r--r-- root/root ./lib/systemd/system/salvage-kdump.service",
		"drwxr-xr-x root/root ./usr/",
		"drwxr-xr-x root/root ./usr/bin/",
		"-rwxr-xr-x root/root ./usr/bin/salvage",
		"drwxr-xr-x root/root ./usr/share/",
		"drwxr-xr-x root/root ./usr/share/doc/",
		"drwxr-xr-x root/root ./usr/share/doc/salvage/",
		"-rw-r--r-- root/root ./usr/share/doc/salvage/README.md",
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		got = append(got, f[0]+" "+f[1]+" "+f[len(f)-1])
	}
	byPath := func(l []string) {
		sort.Slice(l, func(i, j int) bool { return strings.Fields(l[i])[2] < strings.Fields(l[j])[2] })
	}
	byPath(got)
	byPath(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dpkg-deb -c:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The binary in the package is the one built, byte for byte.
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, x)
	a, _ := os.ReadFile(salvageBinary(t))
	b, _ := os.ReadFile(filepath.Join(x, "usr/bin/salvage"))
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Error("usr/bin/salvage differs from the binary given")
	}
	// The unit's commands exist in the packaged binary.
	for _, args := range [][]string{{"kdump", "load", "--help"}, {"kdump", "unload", "--help"}, {"kdump", "savecore", "--help"}} {
		if out, err := exec.Command(filepath.Join(x, "usr/bin/salvage"), args...).CombinedOutput(); err != nil {
			t.Errorf("salvage %v: %v\n%s", args, err, out)
		} else if args[1] == "savecore" && !strings.Contains(string(out), "--raw") {
			t.Errorf("salvage kdump savecore has no --raw:\n%s", out)
		}
	}
}

// TestDebControl checks the control fields and maintainer scripts.
func TestDebControl(t *testing.T) {
	deb := buildDeb(t)
	info := run(t, "dpkg-deb", "-f", deb)
	fields := map[string]string{}
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
			fields[k] = v
		}
	}
	for k, v := range map[string]string{"Package": "salvage", "Version": "1.4.0+3+gabcdef0", "Architecture": "amd64", "Section": "admin", "Priority": "optional"} {
		if fields[k] != v {
			t.Errorf("%s: %q, want %q", k, fields[k], v)
		}
	}
	for _, k := range []string{"Depends", "Pre-Depends", "Recommends"} {
		if _, ok := fields[k]; ok {
			t.Errorf("%s is set (%q): salvage is static and depends on nothing", k, fields[k])
		}
	}
	if !regexp.MustCompile(`^[0-9]+$`).MatchString(fields["Installed-Size"]) || fields["Maintainer"] == "" || fields["Description"] == "" {
		t.Errorf("fields %q", fields)
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/salvage/kdump.conf\n" {
		t.Errorf("conffiles %q", b)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		fi, err := os.Stat(filepath.Join(ctl, s))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", s, fi, err)
			continue
		}
		run(t, "sh", "-n", filepath.Join(ctl, s))
	}
	// postinst enables the unit only when systemd runs: try it with a
	// fake systemctl, with /run/systemd/system absent and present (the
	// script rewritten to a directory of the test).
	fakeBin := t.TempDir()
	log := filepath.Join(fakeBin, "calls")
	os.WriteFile(filepath.Join(fakeBin, "systemctl"), []byte("#!/bin/sh\necho \"$@\" >> "+log+"\n"), 0o755)
	script, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	if !bytes.Contains(script, []byte("/run/systemd/system")) {
		t.Fatalf("postinst does not check for a running systemd:\n%s", script)
	}
	for _, c := range []struct {
		running bool
		args    []string
		want    string
	}{
		{false, []string{"configure"}, ""},
		{true, []string{"configure", ""}, "daemon-reload\nenable salvage-kdump.service\n"},
		{true, []string{"abort-upgrade"}, ""},
	} {
		os.Remove(log)
		sd := filepath.Join(t.TempDir(), "run-systemd-system")
		if c.running {
			os.Mkdir(sd, 0o755)
		}
		p := filepath.Join(t.TempDir(), "postinst")
		os.WriteFile(p, bytes.ReplaceAll(script, []byte("/run/systemd/system"), []byte(sd)), 0o755)
		cmd := exec.Command(p, c.args...)
		cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("postinst %v: %v %s", c.args, err, out)
		}
		calls, _ := os.ReadFile(log)
		if string(calls) != c.want {
			t.Errorf("postinst %v (systemd running %v) ran systemctl %q, want %q", c.args, c.running, calls, c.want)
		}
	}
}

// TestDebVersion maps `salvage version` to Debian versions.
func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.4.0":           "1.4.0",
		"1.4.0-3-gabcdef0": "1.4.0+3+gabcdef0",
		"3f69c71":          "0~git3f69c71",
		"3f69c71-dirty":    "0~git3f69c71~dirty",
		"dev-0123456789ab": "0~git0123456789ab",
		"dev":              "0~dev",
	} {
		dir := t.TempDir()
		fake := filepath.Join(dir, "salvage")
		os.WriteFile(fake, []byte("#!/bin/sh\necho 'salvage "+in+"'\necho 'go: go1.26'\n"), 0o755)
		out, err := exec.Command("./build-deb.sh", fake, dir).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v %s", in, err, out)
			continue
		}
		if got := filepath.Base(strings.TrimSpace(string(out))); got != "salvage_"+want+"_amd64.deb" {
			t.Errorf("salvage %s → %s, want version %s", in, got, want)
		}
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "notsalvage")
	os.WriteFile(fake, []byte("#!/bin/sh\necho hello\n"), 0o755)
	if out, err := exec.Command("./build-deb.sh", fake, dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "is it salvage?") {
		t.Errorf("a binary that is not salvage: %v %s", err, out)
	}
	if out, err := exec.Command("./build-deb.sh").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage:") {
		t.Errorf("no arguments: %v %s", err, out)
	}
}

// iniUnit reads a systemd unit: section → key → values (repeatable keys
// keep every value). It fails on lines outside a section, lines without
// "=", and unknown sections.
func iniUnit(t *testing.T, b []byte) map[string]map[string][]string {
	t.Helper()
	u := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			sec = l[1 : len(l)-1]
			if sec != "Unit" && sec != "Service" && sec != "Install" {
				t.Errorf("unit line %d: unknown section %q", n, sec)
			}
			u[sec] = map[string][]string{}
		case sec == "":
			t.Errorf("unit line %d: %q outside a section", n, l)
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Errorf("unit line %d: %q is not key=value", n, l)
				continue
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

// TestUnit checks salvage-kdump.service: its meaning (read as INI) and,
// with systemd-analyze verify, that systemd accepts it.
func TestUnit(t *testing.T) {
	b, err := os.ReadFile("salvage-kdump.service")
	if err != nil {
		t.Fatal(err)
	}
	u := iniUnit(t, b)
	for _, c := range []struct{ sec, key, want string }{
		{"Service", "Type", "oneshot"},
		{"Service", "RemainAfterExit", "yes"},
		{"Service", "ExecStart", "/usr/bin/salvage kdump load"},
		{"Service", "ExecStop", "/usr/bin/salvage kdump unload"},
		{"Service", "ExecStartPre", "-/usr/bin/salvage kdump savecore --if-raw"},
		{"Install", "WantedBy", "multi-user.target"},
		{"Unit", "Wants", "network-online.target"},
	} {
		if got := strings.Join(u[c.sec][c.key], "|"); got != c.want {
			t.Errorf("[%s] %s=%q, want %q", c.sec, c.key, got, c.want)
		}
	}
	after := " " + strings.Join(u["Unit"]["After"], " ") + " "
	for _, w := range []string{"local-fs.target", "network-online.target"} {
		if !strings.Contains(after, " "+w+" ") {
			t.Errorf("After=%q lacks %s", after, w)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("systemd-analyze is not installed: the unit was checked as INI only")
		return
	}
	// verify checks that the commands exist: point them at a packaged
	// tree, then it must print nothing (it exits 0 even on bad values,
	// with a message).
	deb := buildDeb(t)
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, x)
	unit := bytes.ReplaceAll(b, []byte("/usr/bin/salvage"), []byte(x+"/usr/bin/salvage"))
	vdir := t.TempDir()
	p := filepath.Join(vdir, "salvage-kdump.service")
	os.WriteFile(p, unit, 0o644)
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And it does catch a mistake, so its silence above means something.
	bad := filepath.Join(vdir, "bad.service")
	os.WriteFile(bad, bytes.Replace(unit, []byte("Type=oneshot"), []byte("Type=oneshoot"), 1), 0o644)
	if out, _ := exec.Command(sa, "verify", bad).CombinedOutput(); !bytes.Contains(out, []byte("oneshoot")) {
		t.Errorf("systemd-analyze verify did not flag a bad Type=: %s", out)
	}
}

// TestDefaultKdumpConf parses the shipped kdump.conf as salvage does: as
// shipped it is the defaults, and each commented example, enabled alone
// (with the one target it may need), is valid.
func TestDefaultKdumpConf(t *testing.T) {
	b, err := os.ReadFile("kdump.conf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := capture.ParseKdumpConf("kdump.conf", bytes.NewReader(b), nil)
	if err != nil || len(c.Warnings) > 0 {
		t.Fatalf("as shipped: %v %v", err, c.Warnings)
	}
	def := capture.DefaultKdumpConf()
	if c.Target != def.Target || c.Path != def.Path || strings.Join(c.CoreCollector, " ") != strings.Join(def.CoreCollector, " ") {
		t.Errorf("as shipped it is not the defaults: %+v", c)
	}
	examples := 0
	for _, l := range strings.Split(string(b), "\n") {
		if !regexp.MustCompile(`^#[a-z_0-9]+ `).MatchString(l) {
			continue
		}
		examples++
		line := strings.TrimPrefix(l, "#")
		text := line + "\n"
		if strings.HasPrefix(line, "sshkey ") {
			text = "ssh dumps@backup.example.org\n" + text
		}
		c, err := capture.ParseKdumpConf("kdump.conf", strings.NewReader(text), nil)
		if err != nil || len(c.Warnings) > 0 {
			t.Errorf("example %q: %v %v", line, err, c.Warnings)
		}
	}
	if examples < 15 {
		t.Errorf("only %d examples found", examples)
	}
}
