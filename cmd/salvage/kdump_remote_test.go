package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKdumpPropagateRefusesNonSSH: propagate names the configured target
// and the fix when it is not ssh, and rejects a malformed fingerprint
// before connecting anywhere.
func TestKdumpPropagateRefusesNonSSH(t *testing.T) {
	for _, c := range []struct {
		conf string
		args []string
		want string
	}{
		{"path /var/crash\n", nil, `the dump target is "local", not ssh`},
		{"nfs server:/export\n", nil, `the dump target is "nfs server:/export", not ssh`},
		{"ssh root@192.0.2.1\n", []string{"--accept-host-key", "md5:aa"}, `--accept-host-key "md5:aa": give the SHA256:`},
		{"ssh root@192.0.2.1\nbogus 1\n", nil, "unknown directive"},
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc/salvage"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/salvage/kdump.conf"), []byte(c.conf), 0o644)
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(""))
		cmd.SetArgs(append([]string{"kdump", "propagate", "--root", root}, c.args...))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %v: %v, want %q", c.conf, c.args, err, c.want)
		}
		if _, err := os.Stat(filepath.Join(root, "root/.ssh/kdump_id_rsa")); err == nil {
			t.Errorf("%q: a key was made though propagate refused", c.conf)
		}
	}
}

// TestKdumpPropagateCommand runs `salvage kdump propagate --root R
// --accept-host-key FP --json` against Debian's sshd on loopback, with
// the operator's key in a temporary HOME: the key is made under R, the
// host key recorded in R/etc/salvage/known_hosts, and a second run (text
// output) finds everything in place.
func TestKdumpPropagateCommand(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(home, ".ssh", "id_ed25519"))
	run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey"))
	opPub, _ := os.ReadFile(filepath.Join(home, ".ssh", "id_ed25519.pub"))
	auth := filepath.Join(home, ".ssh", "authorized_keys")
	os.WriteFile(auth, opPub, 0o600)
	fpOut, _ := exec.Command("ssh-keygen", "-lf", filepath.Join(dir, "hostkey.pub")).Output()
	fp := strings.Fields(string(fpOut))[1]

	os.MkdirAll("/run/sshd", 0o755)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("ListenAddress 127.0.0.1:%d\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nSubsystem sftp /usr/lib/openssh/sftp-server -d %s\n",
		port, filepath.Join(dir, "hostkey"), filepath.Join(dir, "pid"), auth, home)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)
	sshd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var slog bytes.Buffer
	sshd.Stderr = &slog
	if err := sshd.Start(); err != nil {
		t.Fatalf("sshd (openssh-server, installed by lab/deps.sh): %v", err)
	}
	defer func() { sshd.Process.Kill(); sshd.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatalf("sshd does not listen: %v\n%s", err, slog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc/salvage"), 0o755)
	dumps := filepath.Join(dir, "dumps")
	os.WriteFile(filepath.Join(root, "etc/salvage/kdump.conf"), []byte(fmt.Sprintf("ssh root@127.0.0.1:%d\npath %s\n", port, dumps)), 0o644)
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	exec1 := func(args ...string) (string, error) {
		cmd := newRootCmd()
		var out, errw bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errw)
		cmd.SetIn(strings.NewReader(""))
		cmd.SetArgs(append([]string{"kdump", "propagate", "--root", root}, args...))
		err := cmd.Execute()
		return out.String(), err
	}
	if _, err := exec1(); err == nil || !strings.Contains(err.Error(), "--accept-host-key "+fp) {
		t.Fatalf("without a terminal or --accept-host-key: %v, want the fingerprint and the flag", err)
	}
	out, err := exec1("--accept-host-key", fp, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, slog.String())
	}
	var res struct {
		KeyCreated      bool   `json:"key_created"`
		HostKeyRecorded bool   `json:"host_key_recorded"`
		KeyAuthorized   bool   `json:"key_authorized"`
		HostKey         string `json:"host_key"`
		KeyFile         string `json:"key_file"`
		Store           string `json:"store"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if res.KeyCreated || !res.HostKeyRecorded || !res.KeyAuthorized || res.HostKey != "ssh-ed25519 "+fp ||
		res.KeyFile != filepath.Join(root, "root/.ssh/kdump_id_rsa") || !strings.HasSuffix(res.Store, ":"+dumps) {
		// (The first, refused, run made the key.)
		t.Errorf("result %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/salvage/known_hosts")); !strings.HasPrefix(string(b), fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", port)) {
		t.Errorf("known_hosts %q", b)
	}
	if fi, err := os.Stat(dumps); err != nil || !fi.IsDir() {
		t.Errorf("dump directory: %v", err)
	}
	out, err = exec1()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"(existing)", "(already in " + filepath.Join(root, "etc/salvage/known_hosts") + ")", "key already present", "key-only login:  ok"} {
		if !strings.Contains(out, w) {
			t.Errorf("second run's output lacks %q:\n%s", w, out)
		}
	}
}
