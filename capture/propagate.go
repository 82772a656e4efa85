package capture

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// PropagateOptions is what `salvage kdump propagate` works with. Paths
// are on the running machine (the command joins --root).
type PropagateOptions struct {
	// Target is kdump.conf's ssh user@host[:port]; DumpPath the dump
	// directory on it.
	Target   string
	DumpPath string
	// KeyFile is the capture kernel's private key, created (ed25519)
	// when missing; KnownHosts is where the target's host key is kept.
	KeyFile    string
	KnownHosts string
	// Operator gives the operator's keys for the first connection (the
	// agent's and ~/.ssh's: OperatorAuth); Password, when set, is asked
	// after them (a prompt on a terminal).
	Operator func() ([]ssh.Signer, error)
	Password func() (string, error)
	// AcceptHostKey is a fingerprint ("SHA256:…") accepted for an
	// unrecorded host without asking; otherwise Confirm is asked (nil:
	// refuse). A recorded host key that differs is always refused.
	AcceptHostKey string
	Confirm       func(host, keyType, fingerprint string) (bool, error)
	// Comment is the public key's comment in authorized_keys.
	Comment string
	Timeout time.Duration
	Logf    func(string, ...any)
}

// PropagateResult says what propagate did.
type PropagateResult struct {
	Target          string `json:"target"`
	KeyFile         string `json:"key_file"`
	KeyCreated      bool   `json:"key_created"`
	PublicKey       string `json:"public_key"`
	HostKey         string `json:"host_key"`
	HostKeyRecorded bool   `json:"host_key_recorded"`
	KnownHosts      string `json:"known_hosts"`
	// KeyAuthorized is true when the key was appended to the target's
	// authorized_keys, false when it was there already.
	KeyAuthorized bool   `json:"key_authorized"`
	DumpPath      string `json:"dump_path"`
	// Store is the dump directory as the capture kernel will see it,
	// reached with the key alone.
	Store string `json:"store"`
}

// EnsureKey reads the unencrypted private key in file, or creates one
// (ed25519, OpenSSH format, 0600, with file.pub beside it) when there is
// none. It returns the signer and whether the key was created.
func EnsureKey(file, comment string) (ssh.Signer, bool, error) {
	if _, err := os.Stat(file); err == nil {
		s, err := readSigner(file)
		return s, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	blk, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, false, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	// O_EXCL: never overwrite a key another process made meanwhile.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	if _, err := f.Write(pem.EncodeToMemory(blk)); err != nil {
		f.Close()
		os.Remove(file)
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	pub := authorizedLine(s.PublicKey(), comment)
	if err := os.WriteFile(file+".pub", []byte(pub), 0o644); err != nil {
		return nil, false, fmt.Errorf("ssh key: %w", err)
	}
	return s, true, nil
}

// authorizedLine is key's authorized_keys line, with a comment.
func authorizedLine(key ssh.PublicKey, comment string) string {
	l := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(key)), "\n")
	if comment != "" {
		l += " " + comment
	}
	return l + "\n"
}

// OperatorAuth gathers the operator's keys: the ssh agent's at
// $SSH_AUTH_SOCK, and the unencrypted ~/.ssh/id_ed25519, id_ecdsa and
// id_rsa of home. The returned function closes the agent connection.
// (x/crypto/ssh tries each auth method once, so every key must come
// through one publickey method.)
func OperatorAuth(home string) (func() ([]ssh.Signer, error), func()) {
	var ag agent.ExtendedAgent
	done := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			ag = agent.NewClient(c)
			done = func() { c.Close() }
		}
	}
	var files []ssh.Signer
	for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		if home == "" {
			break
		}
		b, err := os.ReadFile(filepath.Join(home, ".ssh", n))
		if err != nil {
			continue
		}
		if s, err := ssh.ParsePrivateKey(b); err == nil {
			files = append(files, s)
		}
	}
	return func() ([]ssh.Signer, error) {
		var all []ssh.Signer
		if ag != nil {
			if s, err := ag.Signers(); err == nil {
				all = append(all, s...)
			}
		}
		return append(all, files...), nil
	}, done
}

// Propagate sets up the ssh target as kdump-config propagate does: the
// key made when missing, the host key checked and recorded (only with
// the operator's consent), the public key added once to the target's
// ~/.ssh/authorized_keys (over SFTP: the directory 0700, the file 0600),
// then a login with the key alone that creates the dump directory.
func Propagate(ctx context.Context, o PropagateOptions) (*PropagateResult, error) {
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	user, host, port, err := ParseSSHTarget(o.Target)
	if err != nil {
		return nil, err
	}
	target := &SSHConfig{User: user, Host: host, Port: port, KeyFile: o.KeyFile, KnownHosts: o.KnownHosts, Timeout: o.Timeout, Attempts: 1}
	res := &PropagateResult{Target: target.String(), KeyFile: o.KeyFile, KnownHosts: o.KnownHosts, DumpPath: o.DumpPath}
	comment := o.Comment
	if comment == "" {
		comment = "salvage-kdump"
		if h, err := os.Hostname(); err == nil {
			comment += "@" + h
		}
	}
	key, created, err := EnsureKey(o.KeyFile, comment)
	if err != nil {
		return nil, err
	}
	res.KeyCreated = created
	res.PublicKey = strings.TrimSpace(authorizedLine(key.PublicKey(), ""))
	if created {
		logf("created the key %s (%s)", o.KeyFile, ssh.FingerprintSHA256(key.PublicKey()))
	}

	// The host key: checked against known_hosts when recorded, else
	// shown and recorded only once the operator (or --accept-host-key)
	// vouches for it.
	if err := os.MkdirAll(filepath.Dir(o.KnownHosts), 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.KnownHosts); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(o.KnownHosts, nil, 0o644); err != nil {
			return nil, err
		}
	}
	hk, err := newHostKeyChecker(o.KnownHosts)
	if err != nil {
		return nil, err
	}
	var newHostKey, offered ssh.PublicKey
	var refused error
	check := func(hostname string, remote net.Addr, k ssh.PublicKey) error {
		offered = k
		err := hk.check(hostname, remote, k)
		var he *HostKeyError
		if !errors.As(err, &he) || he.Mismatch {
			return err
		}
		fp := ssh.FingerprintSHA256(k)
		switch {
		case o.AcceptHostKey != "":
			if o.AcceptHostKey != fp {
				refused = fmt.Errorf("ssh %s: host key %s %s is not the one --accept-host-key gives (%s): nothing was recorded", hostname, k.Type(), fp, o.AcceptHostKey)
				return refused
			}
		case o.Confirm != nil:
			ok, err := o.Confirm(hostname, k.Type(), fp)
			if err != nil {
				refused = err
				return err
			}
			if !ok {
				refused = fmt.Errorf("ssh %s: host key %s %s not accepted: nothing was recorded", hostname, k.Type(), fp)
				return refused
			}
		default:
			refused = fmt.Errorf("ssh %s: host key %s %s is not in %s: confirm it on a terminal, or pass --accept-host-key %s once you have checked it on the target (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub)",
				hostname, k.Type(), fp, o.KnownHosts, fp)
			return refused
		}
		newHostKey = k
		return nil
	}
	auth := []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		all := []ssh.Signer{key}
		if o.Operator != nil {
			more, err := o.Operator()
			if err != nil {
				return nil, err
			}
			all = append(all, more...)
		}
		return all, nil
	})}
	if o.Password != nil {
		auth = append(auth, ssh.PasswordCallback(o.Password),
			ssh.KeyboardInteractive(func(name, instr string, qs []string, echos []bool) ([]string, error) {
				ans := make([]string, len(qs))
				for i := range qs {
					p, err := o.Password()
					if err != nil {
						return nil, err
					}
					ans[i] = p
				}
				return ans, nil
			}))
	}
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: check,
		HostKeyAlgorithms: hk.algorithms(target.Addr()), Timeout: target.Timeout}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	conn, err := dialOnce(ctx, target.Addr(), target.Addr(), cfg, cfg.Timeout)
	switch {
	case refused != nil:
		return nil, refused
	case hk.err != nil && hk.err.Mismatch:
		return nil, hk.err
	case err != nil && strings.Contains(err.Error(), "unable to authenticate"):
		return nil, fmt.Errorf("ssh %s: the operator's credentials were refused (tried the kdump key, the ssh agent, ~/.ssh/id_* keys and a password when on a terminal): log in once by hand to check the account", target)
	case err != nil:
		return nil, fmt.Errorf("ssh %s: %v", target, err)
	}
	if newHostKey != nil {
		line := knownhosts.Line([]string{knownhosts.Normalize(target.Addr())}, newHostKey)
		if err := appendLine(o.KnownHosts, line); err != nil {
			conn.Close()
			return nil, err
		}
		res.HostKeyRecorded = true
		logf("recorded %s's host key %s in %s", target, ssh.FingerprintSHA256(newHostKey), o.KnownHosts)
	}
	res.HostKey = offered.Type() + " " + ssh.FingerprintSHA256(offered)

	added, err := authorizeKey(conn, key.PublicKey(), comment)
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %v", target, err)
	}
	res.KeyAuthorized = added

	// The proof: the capture kernel's own way in, with the key alone.
	st, err := OpenSFTPStore(ctx, target, o.DumpPath, logf)
	if err != nil {
		return res, fmt.Errorf("the key-only login failed after set-up: %w", err)
	}
	res.Store = st.String()
	return res, st.Close()
}

// appendLine appends line (ending it with a newline) to file, adding a
// newline first when the file does not end with one.
func appendLine(file, line string) error {
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		line = "\n" + line
	}
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	_, err = io.WriteString(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// authorizeKey appends key to ~/.ssh/authorized_keys on the server (the
// SFTP session starts in the user's home) unless a line already has it.
// It reports whether it appended.
func authorizeKey(conn *ssh.Client, key ssh.PublicKey, comment string) (bool, error) {
	cl, err := sftp.NewClient(conn)
	if err != nil {
		return false, fmt.Errorf("the sftp subsystem: %v", err)
	}
	defer cl.Close()
	const dir, file = ".ssh", ".ssh/authorized_keys"
	if _, err := cl.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := cl.Mkdir(dir); err != nil {
			return false, fmt.Errorf("mkdir ~/%s: %v", dir, err)
		}
		if err := cl.Chmod(dir, 0o700); err != nil {
			return false, fmt.Errorf("chmod ~/%s: %v", dir, err)
		}
	}
	var old []byte
	if f, err := cl.Open(file); err == nil {
		old, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return false, fmt.Errorf("reading ~/%s: %v", file, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reading ~/%s: %v", file, err)
	}
	want := key.Marshal()
	for _, l := range bytes.Split(old, []byte("\n")) {
		if k, _, _, _, err := ssh.ParseAuthorizedKey(l); err == nil && bytes.Equal(k.Marshal(), want) {
			return false, nil
		}
	}
	f, err := cl.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return false, fmt.Errorf("opening ~/%s: %v", file, err)
	}
	if old == nil {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return false, fmt.Errorf("chmod ~/%s: %v", file, err)
		}
	}
	line := authorizedLine(key, comment)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	// O_APPEND is not honoured by every server: write at the end.
	if _, err := f.WriteAt([]byte(line), int64(len(old))); err != nil {
		f.Close()
		return false, fmt.Errorf("writing ~/%s: %v", file, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("writing ~/%s: %v", file, err)
	}
	return true, nil
}
