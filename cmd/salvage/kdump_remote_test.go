package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
