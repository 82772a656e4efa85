package capture

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testSSHD is Debian's OpenSSH server run as a child of the test, on a
// free loopback port, with its own host key, authorized_keys and SFTP
// start directory (its "home": where relative SFTP paths land).
type testSSHD struct {
	Port           int
	Dir            string
	Home           string // sftp-server's start directory
	HostKey        ssh.PublicKey
	AuthorizedKeys string // Home/.ssh/authorized_keys
	Log            *strings.Builder
}

// startSSHD writes an sshd_config and runs `/usr/sbin/sshd -D -e -f` on
// it; the server is killed when the test ends. It fails (never skips) when
// openssh-server is missing: lab/deps.sh installs it.
func startSSHD(t *testing.T) *testSSHD {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/lib/openssh/sftp-server"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the ssh target's tests need Debian's openssh-server (lab/deps.sh installs it): %v", err)
		}
	}
	// sshd refuses to start without its privilege-separation directory,
	// which the (never started) system service would create.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pubText, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &testSSHD{Port: port, Dir: dir, Home: home, HostKey: pub,
		AuthorizedKeys: filepath.Join(home, ".ssh", "authorized_keys"), Log: &strings.Builder{}}
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp /usr/lib/openssh/sftp-server -d %s
`, port, hostKey, filepath.Join(dir, "sshd.pid"), s.AuthorizedKeys, home)
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	logDone := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			s.Log.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "Server listening") {
				once = true
				close(ready)
			}
		}
		if !once {
			close(ready)
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-logDone
		if t.Failed() {
			t.Logf("sshd's log:\n%s", s.Log)
		}
	})
	<-ready
	if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Fatalf("sshd is not listening: %v\n%s", err, s.Log)
	} else {
		c.Close()
	}
	return s
}

// knownHostsLine is the known_hosts line of key for the server.
func (s *testSSHD) knownHostsLine(key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)))}, key)
}

// newTestKey writes a fresh ed25519 private key (OpenSSH format, 0600)
// to file and returns its public key.
func newTestKey(t *testing.T, file string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sg, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sg.PublicKey()
}

// sshFixture is a server with a client key authorized and its host key
// recorded.
type sshFixture struct {
	*testSSHD
	Conf *SSHConfig
}

func newSSHFixture(t *testing.T) *sshFixture {
	t.Helper()
	s := startSSHD(t)
	cdir := t.TempDir()
	key := filepath.Join(cdir, "kdump_id_ed25519")
	pub := newTestKey(t, key)
	if err := os.MkdirAll(filepath.Dir(s.AuthorizedKeys), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.AuthorizedKeys, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(cdir, "known_hosts")
	if err := os.WriteFile(kh, []byte(s.knownHostsLine(s.HostKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &sshFixture{testSSHD: s, Conf: &SSHConfig{User: "root", Host: "127.0.0.1", Port: s.Port, KeyFile: key, KnownHosts: kh, Attempts: 1, Timeout: time.Minute}}
}

func TestParseSSHTarget(t *testing.T) {
	for _, c := range []struct {
		in         string
		user, host string
		port       int
		err        bool
	}{
		{"root@10.0.2.2", "root", "10.0.2.2", 22, false},
		{"dumps@backup.example.org", "dumps", "backup.example.org", 22, false},
		{"10.0.2.2", "root", "10.0.2.2", 22, false},
		{"root@127.0.0.1:2222", "root", "127.0.0.1", 2222, false},
		{"root@[fe80::1]:2200", "root", "fe80::1", 2200, false},
		{"root@[fe80::1]", "root", "fe80::1", 22, false},
		{"root@fe80::1", "root", "fe80::1", 22, false},
		{"root@host:0", "", "", 0, true},
		{"root@host:99999", "", "", 0, true},
		{"root@[fe80::1", "", "", 0, true},
		{"@host", "", "", 0, true},
	} {
		u, h, p, err := ParseSSHTarget(c.in)
		if (err != nil) != c.err || u != c.user || h != c.host || p != c.port {
			t.Errorf("ParseSSHTarget(%q) = %q %q %d %v; want %q %q %d err=%v", c.in, u, h, p, err, c.user, c.host, c.port, c.err)
		}
	}
}

// TestSSHStoreOperations exercises every Store operation against the
// real server and checks the results on its disk.
func TestSSHStoreOperations(t *testing.T) {
	fx := newSSHFixture(t)
	root := filepath.Join(fx.Dir, "var", "crash")
	st, err := OpenSFTPStore(context.Background(), fx.Conf, root, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// OpenSSH offers both extensions: Close then fsyncs on the server,
	// and Rename is rename(2) there.
	if ss := st.(*sftpStore); !ss.fsync || !ss.posix {
		t.Errorf("fsync@openssh.com %v, posix-rename@openssh.com %v: want both", ss.fsync, ss.posix)
	}
	if want := "ssh root@127.0.0.1:" + strconv.Itoa(fx.Port) + ":" + root; st.String() != want {
		t.Errorf("String() = %q, want %q", st.String(), want)
	}
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	for _, d := range []string{filepath.Join(fx.Dir, "var"), root} {
		if m := mode(d); m != 0o700 {
			t.Errorf("%s: mode %o, want 700", d, m)
		}
	}
	if err := st.MkdirAll("202611221530/sub"); err != nil {
		t.Fatal(err)
	}
	if m := mode(filepath.Join(root, "202611221530")); m != 0o700 {
		t.Errorf("mode %o, want 700", m)
	}
	f, err := st.Create("202611221530/dump.202611221530.incomplete")
	if err != nil {
		t.Fatal(err)
	}
	// Out of order, as the collector writes its bitmaps after the pages.
	if _, err := f.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello "), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "202611221530/dump.202611221530.incomplete"))
	if err != nil || string(got) != "hello world" {
		t.Fatalf("file on the server: %q %v", got, err)
	}
	if m := mode(filepath.Join(root, "202611221530/dump.202611221530.incomplete")); m != 0o600 {
		t.Errorf("dump mode %o, want 600", m)
	}
	if err := st.Rename("202611221530/dump.202611221530.incomplete", "202611221530/dump.202611221530"); err != nil {
		t.Fatal(err)
	}
	// A second rename over the finished dump must fail and leave it.
	f2, err := st.Create("202611221530/other")
	if err != nil {
		t.Fatal(err)
	}
	f2.Write([]byte("x"))
	f2.Close()
	if err := st.Rename("202611221530/other", "202611221530/dump.202611221530"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("rename over an existing dump: %v, want an error saying it exists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "202611221530/dump.202611221530")); string(b) != "hello world" {
		t.Errorf("the dump was replaced: %q", b)
	}
	names, err := st.ReadDir("202611221530")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, " ") != "dump.202611221530 other sub" {
		t.Errorf("ReadDir = %q", names)
	}
	// Pruning: make three dump directories, keep the newest.
	for _, d := range []string{"202601010000", "202602020000"} {
		if err := st.MkdirAll(d); err != nil {
			t.Fatal(err)
		}
		f, err := st.Create(d + "/dump." + d)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("old"))
		f.Close()
	}
	names, _ = st.ReadDir(".")
	if strings.Join(names, " ") != "202601010000 202602020000 202611221530" {
		t.Fatalf("ReadDir(.) = %q", names)
	}
	for _, d := range names[:2] {
		if err := st.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RemoveAll("does-not-exist"); err != nil {
		t.Errorf("RemoveAll of a missing name: %v", err)
	}
	if err := st.RemoveAll("."); err == nil {
		t.Errorf("RemoveAll(.) removed the dump directory")
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != "202611221530" {
		t.Errorf("after pruning the server has %v", ents)
	}
	// Names cannot escape the dump directory.
	if err := st.MkdirAll("../../escape"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "escape")); err != nil {
		t.Errorf("../../escape was not kept below the root: %v", err)
	}
	if _, err := st.ReadDir("missing"); err == nil || !strings.Contains(err.Error(), root+"/missing") {
		t.Errorf("ReadDir(missing) = %v, want an error naming the path", err)
	}
}

// TestSSHHostKeyRefused: a recorded key that differs, and a host with no
// recorded key, are both refused with one line naming the host, the key
// offered and the known_hosts file.
func TestSSHHostKeyRefused(t *testing.T) {
	fx := newSSHFixture(t)
	fp := ssh.FingerprintSHA256(fx.HostKey)
	host := "127.0.0.1:" + strconv.Itoa(fx.Port)

	wrong := filepath.Join(t.TempDir(), "known_hosts")
	other := newTestKey(t, filepath.Join(t.TempDir(), "k"))
	os.WriteFile(wrong, []byte("# a comment\n"+fx.knownHostsLine(other)+"\n"), 0o600)
	unknown := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(unknown, []byte(knownhosts.Line([]string{"[10.9.9.9]:22"}, fx.HostKey)+"\n"), 0o600)

	for _, c := range []struct {
		name, file string
		mismatch   bool
		want       []string
	}{
		{"wrong", wrong, true, []string{host, "ssh-ed25519", fp, wrong + ":2", "does not match"}},
		{"unknown", unknown, false, []string{host, "ssh-ed25519", fp, unknown, "unknown"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := *fx.Conf
			conf.KnownHosts = c.file
			conf.Attempts = 3
			st, err := OpenSFTPStore(context.Background(), &conf, filepath.Join(fx.Dir, "crash"), t.Logf)
			if err == nil {
				st.Close()
				t.Fatal("connected despite the host key")
			}
			var he *HostKeyError
			if !errors.As(err, &he) || he.Mismatch != c.mismatch {
				t.Fatalf("error %v (%T), want a HostKeyError with Mismatch %v", err, err, c.mismatch)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if _, serr := os.Stat(filepath.Join(fx.Dir, "crash")); serr == nil {
				t.Error("the dump directory was made on a server whose key was refused")
			}
		})
	}
	t.Run("no-known-hosts", func(t *testing.T) {
		conf := *fx.Conf
		conf.KnownHosts = ""
		if _, err := DialSSH(context.Background(), &conf, nil); err == nil || !strings.Contains(err.Error(), "known_hosts") {
			t.Errorf("without known_hosts: %v, want a refusal", err)
		}
	})
}

// TestSSHWrongClientKey: a key the server does not authorize gives one
// clear line naming the key and the fix, without retries.
func TestSSHWrongClientKey(t *testing.T) {
	fx := newSSHFixture(t)
	conf := *fx.Conf
	conf.KeyFile = filepath.Join(t.TempDir(), "stranger")
	pub := newTestKey(t, conf.KeyFile)
	conf.Attempts = 5
	_, err := DialSSH(context.Background(), &conf, func(f string, a ...any) { t.Errorf("retried: "+f, a...) })
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an AuthError", err, err)
	}
	msg := err.Error()
	for _, w := range []string{"root@127.0.0.1:" + strconv.Itoa(fx.Port), conf.KeyFile, ssh.FingerprintSHA256(pub), "authorized_keys", "propagate"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	// A missing key file and a passphrase-protected one are named too.
	conf.KeyFile = filepath.Join(t.TempDir(), "absent")
	if _, err := DialSSH(context.Background(), &conf, nil); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("missing key: %v", err)
	}
	enc := filepath.Join(t.TempDir(), "enc")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", enc).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	conf.KeyFile = enc
	if _, err := DialSSH(context.Background(), &conf, nil); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("encrypted key: %v", err)
	}
}

// TestSSHConnectRetryAndCancel: nothing listening is retried as
// configured; a cancelled context stops the retries.
func TestSSHConnectRetryAndCancel(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k")
	newTestKey(t, key)
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, nil, 0o600)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := &SSHConfig{User: "root", Host: "127.0.0.1", Port: port, KeyFile: key, KnownHosts: kh, Attempts: 2, Timeout: 5 * time.Second}
	var retries int
	_, err := DialSSH(context.Background(), conf, func(string, ...any) { retries++ })
	if err == nil || !strings.Contains(err.Error(), "after 2 attempts") || retries != 1 {
		t.Errorf("err %v after %d retries, want a failure after 2 attempts", err, retries)
	}
	ctx, cancel := context.WithCancel(context.Background())
	conf.Attempts = 1000
	_, err = DialSSH(ctx, conf, func(string, ...any) { cancel() })
	if err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
		t.Errorf("cancelled: %v", err)
	}
}

// TestHostKeyAlgorithms: the client asks the server for the key types
// known_hosts holds for the host (port 22 is written without a port),
// so a host recorded by its RSA key is not taken for a changed one.
func TestHostKeyAlgorithms(t *testing.T) {
	dir := t.TempDir()
	ed := newTestKey(t, filepath.Join(dir, "ed"))
	rsaFile := filepath.Join(dir, "rsa")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsaFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	rb, _ := os.ReadFile(rsaFile + ".pub")
	rsaPub, _, _, _, err := ssh.ParseAuthorizedKey(rb)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{"10.0.2.2"}, rsaPub)+"\n"+
		knownhosts.Line([]string{"[10.0.2.2]:2222"}, ed)+"\n"+knownhosts.Line([]string{"[10.0.2.2]:2222"}, rsaPub)+"\n"), 0o600)
	hk, err := newHostKeyChecker(kh)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"10.0.2.2:22":   "rsa-sha2-512 rsa-sha2-256 ssh-rsa",
		"10.0.2.2:2222": "ssh-ed25519 rsa-sha2-512 rsa-sha2-256 ssh-rsa",
		"10.0.2.3:22":   "",
	} {
		if got := strings.Join(hk.algorithms(addr), " "); got != want {
			t.Errorf("algorithms(%s) = %q, want %q", addr, got, want)
		}
	}
}

// TestSSHHashedKnownHosts: a known_hosts hashed by `ssh-keygen -H` (as
// HashKnownHosts leaves operators' files) vouches for the host too.
func TestSSHHashedKnownHosts(t *testing.T) {
	fx := newSSHFixture(t)
	if out, err := exec.Command("ssh-keygen", "-H", "-f", fx.Conf.KnownHosts).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v %s", err, out)
	}
	b, _ := os.ReadFile(fx.Conf.KnownHosts)
	if !strings.HasPrefix(string(b), "|1|") {
		t.Fatalf("not hashed: %q", b)
	}
	c, err := DialSSH(context.Background(), fx.Conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
