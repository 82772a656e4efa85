package capture

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestPropagate runs propagate against Debian's sshd with the operator's
// credentials being a key in a temporary HOME that the server already
// authorizes: the kdump key is made, the host key is refused until it is
// vouched for, then recorded; the public key lands once in the server's
// authorized_keys (the file sshd really reads), and a key-only login
// makes the dump directory.
func TestPropagate(t *testing.T) {
	s := startSSHD(t)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	opPub := newTestKey(t, filepath.Join(home, ".ssh", "id_ed25519"))
	os.MkdirAll(filepath.Dir(s.AuthorizedKeys), 0o700)
	// The operator's line has no trailing newline: propagate must not
	// glue its line onto it.
	if err := os.WriteFile(s.AuthorizedKeys, []byte(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(opPub)))), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	op, done := OperatorAuth(home)
	defer done()
	if keys, _ := op(); len(keys) != 1 {
		t.Fatalf("OperatorAuth found %d keys in %s, want the one", len(keys), home)
	}
	etc := t.TempDir()
	dumpPath := filepath.Join(s.Dir, "var", "crash")
	target := "root@127.0.0.1:" + strconv.Itoa(s.Port)
	fp := ssh.FingerprintSHA256(s.HostKey)
	opts := PropagateOptions{Target: target, DumpPath: dumpPath,
		KeyFile: filepath.Join(etc, "root", ".ssh", "kdump_id_rsa"), KnownHosts: filepath.Join(etc, "etc", "salvage", "known_hosts"),
		Operator: op, Comment: "salvage-kdump@test", Timeout: time.Minute, Logf: t.Logf}
	ctx := context.Background()

	// Refused: no confirmation possible, a wrong fingerprint, a "no".
	var asked []string
	for _, c := range []struct {
		name   string
		mod    func(*PropagateOptions)
		substr string
	}{
		{"no-terminal", func(o *PropagateOptions) {}, "--accept-host-key " + fp},
		{"wrong-fingerprint", func(o *PropagateOptions) { o.AcceptHostKey = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, "is not the one --accept-host-key gives"},
		{"operator-says-no", func(o *PropagateOptions) {
			o.Confirm = func(h, typ, f string) (bool, error) { asked = append(asked, h+" "+typ+" "+f); return false, nil }
		}, "not accepted"},
	} {
		o := opts
		c.mod(&o)
		_, err := Propagate(ctx, o)
		if err == nil || !strings.Contains(err.Error(), c.substr) || !strings.Contains(err.Error(), fp) {
			t.Errorf("%s: %v, want a refusal with %q and the fingerprint", c.name, err, c.substr)
		}
		if b, _ := os.ReadFile(opts.KnownHosts); len(b) != 0 {
			t.Fatalf("%s: known_hosts was written: %q", c.name, b)
		}
	}
	if len(asked) != 1 || asked[0] != "127.0.0.1:"+strconv.Itoa(s.Port)+" ssh-ed25519 "+fp {
		t.Errorf("Confirm was asked %q", asked)
	}
	if b, _ := os.ReadFile(s.AuthorizedKeys); strings.Count(string(b), "ssh-ed25519") != 1 {
		t.Fatalf("authorized_keys changed before the host key was accepted:\n%s", b)
	}

	// Accepted by the operator.
	o := opts
	o.Confirm = func(h, typ, f string) (bool, error) { return f == fp, nil }
	res, err := Propagate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// The key was made by the first, refused, run (as kdump-config
	// propagate makes it before connecting).
	if res.KeyCreated || !res.HostKeyRecorded || !res.KeyAuthorized || res.HostKey != "ssh-ed25519 "+fp {
		t.Errorf("result %+v", res)
	}
	fi, err := os.Stat(opts.KeyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	key, err := readSigner(opts.KeyFile)
	if err != nil {
		t.Fatalf("the key made is not a valid OpenSSH private key: %v", err)
	}
	if out, err := execOut("ssh-keygen", "-y", "-f", opts.KeyFile); err != nil || !strings.HasPrefix(out, "ssh-ed25519 ") {
		t.Errorf("OpenSSH's ssh-keygen cannot read the key: %v %s", err, out)
	}
	auth, _ := os.ReadFile(s.AuthorizedKeys)
	lines := strings.Split(strings.TrimSpace(string(auth)), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[1], " salvage-kdump@test") || !strings.HasPrefix(lines[1], res.PublicKey) {
		t.Errorf("authorized_keys:\n%s", auth)
	}
	kh, _ := os.ReadFile(opts.KnownHosts)
	if want := s.knownHostsLine(s.HostKey) + "\n"; string(kh) != want {
		t.Errorf("known_hosts %q, want %q", kh, want)
	}
	if fi, err := os.Stat(dumpPath); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("dump path on the server: %v %v", fi, err)
	}

	// Again: nothing duplicated; now without the operator's keys, since
	// the kdump key is authorized.
	o = opts
	o.Operator = nil
	res, err = Propagate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.KeyCreated || res.HostKeyRecorded || res.KeyAuthorized {
		t.Errorf("second run did something: %+v", res)
	}
	if b, _ := os.ReadFile(s.AuthorizedKeys); string(b) != string(auth) {
		t.Errorf("authorized_keys changed on the second run:\n%s", b)
	}
	if b, _ := os.ReadFile(opts.KnownHosts); string(b) != string(kh) {
		t.Errorf("known_hosts changed on the second run:\n%s", b)
	}

	// The key alone logs in, as the capture kernel will.
	conn, err := DialSSH(ctx, &SSHConfig{User: "root", Host: "127.0.0.1", Port: s.Port, KeyFile: opts.KeyFile, KnownHosts: opts.KnownHosts, Attempts: 1}, nil)
	if err != nil {
		t.Fatalf("key-only login: %v", err)
	}
	conn.Close()
	if !strings.Contains(s.Log.String(), "Accepted publickey for root") || !strings.Contains(s.Log.String(), ssh.FingerprintSHA256(key.PublicKey())) {
		t.Errorf("sshd's log does not show the kdump key's login")
	}

	// A host whose recorded key changed is refused, even if confirmed.
	other := newTestKey(t, filepath.Join(t.TempDir(), "other"))
	os.WriteFile(opts.KnownHosts, []byte(s.knownHostsLine(other)+"\n"), 0o644)
	o = opts
	o.AcceptHostKey = fp
	_, err = Propagate(ctx, o)
	var he *HostKeyError
	if !errors.As(err, &he) || !he.Mismatch {
		t.Errorf("changed host key: %v, want a HostKeyError mismatch", err)
	}

	// Operator credentials the server refuses.
	os.WriteFile(opts.KnownHosts, kh, 0o644)
	os.WriteFile(s.AuthorizedKeys, nil, 0o600)
	o = opts
	o.KeyFile = filepath.Join(t.TempDir(), "fresh")
	start := time.Now()
	_, err = Propagate(ctx, o)
	t.Logf("refused operator: %v", time.Since(start))
	if err == nil || !strings.Contains(err.Error(), "credentials were refused") {
		t.Errorf("refused operator: %v", err)
	}
}

func execOut(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).CombinedOutput()
	return string(b), err
}

func TestEnsureKeyKeepsExisting(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sub", "k")
	s1, made, err := EnsureKey(f, "c")
	if err != nil || !made {
		t.Fatalf("first: %v %v", made, err)
	}
	if fi, _ := os.Stat(filepath.Dir(f)); fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %o", fi.Mode().Perm())
	}
	pub, _ := os.ReadFile(f + ".pub")
	if !strings.HasSuffix(string(pub), " c\n") {
		t.Errorf(".pub = %q", pub)
	}
	s2, made, err := EnsureKey(f, "c")
	if err != nil || made || string(s1.PublicKey().Marshal()) != string(s2.PublicKey().Marshal()) {
		t.Errorf("second: made %v err %v, same key %v", made, err, string(s1.PublicKey().Marshal()) == string(s2.PublicKey().Marshal()))
	}
	os.WriteFile(f, []byte("garbage"), 0o600)
	if _, _, err := EnsureKey(f, "c"); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("garbage key: %v", err)
	}
}
