package capture

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultSSHKey is the private key of the ssh target when kdump.conf has
// no sshkey (kexec-tools' default, also Debian's kdump-tools SSH_KEY
// default path).
const DefaultSSHKey = "/root/.ssh/kdump_id_rsa"

// KnownHostsPath is where `salvage kdump propagate` records the ssh
// target's host key; the capture initramfs carries a copy.
const KnownHostsPath = "/etc/salvage/known_hosts"

// SSHConfig says how to reach an ssh target.
type SSHConfig struct {
	// User and Host are the target's user@host; Port is 22 unless the
	// target was written user@host:port (or user@[v6addr]:port).
	User string
	Host string
	Port int
	// DialIP, when set, is the address dialed instead of Host (the
	// capture kernel has no resolver); the host key is still checked
	// under Host's name.
	DialIP string
	// KeyFile is the private key (OpenSSH or PEM format, unencrypted).
	KeyFile string
	// Signer, when set, replaces KeyFile (propagate's operator
	// credentials: an agent, ~/.ssh keys).
	Signers []ssh.Signer
	// KnownHosts is the known_hosts file the host key must be in.
	KnownHosts string
	// Timeout bounds one connection attempt (default 20 s); Attempts is
	// how many are made before giving up on a network error (default 6,
	// with growing pauses): the capture kernel's network may take a while
	// to come up. Host-key and authentication failures are not retried.
	Timeout  time.Duration
	Attempts int
}

// ParseSSHTarget splits kdump.conf's `ssh user@host[:port]` (the user
// defaults to root, as kexec-tools does).
func ParseSSHTarget(spec string) (user, host string, port int, err error) {
	user, host = "root", spec
	if u, h, ok := strings.Cut(spec, "@"); ok {
		user, host = u, h
	}
	port = 22
	switch {
	case strings.HasPrefix(host, "["):
		h, rest, ok := strings.Cut(host[1:], "]")
		if !ok {
			return "", "", 0, fmt.Errorf("ssh target %q: unclosed [", spec)
		}
		host = h
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", "", 0, fmt.Errorf("ssh target %q: expected :port after ]", spec)
			}
			if port, err = strconv.Atoi(rest[1:]); err != nil || port <= 0 || port > 65535 {
				return "", "", 0, fmt.Errorf("ssh target %q: bad port %q", spec, rest[1:])
			}
		}
	case strings.Count(host, ":") == 1:
		h, p, _ := strings.Cut(host, ":")
		host = h
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("ssh target %q: bad port %q", spec, p)
		}
	}
	if user == "" || host == "" {
		return "", "", 0, fmt.Errorf("ssh target %q: write it as user@host", spec)
	}
	return user, host, port, nil
}

// Addr is host:port for dialing.
func (c *SSHConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String names the target as user@host[:port].
func (c *SSHConfig) String() string {
	if c.Port == 22 || c.Port == 0 {
		return c.User + "@" + c.Host
	}
	return c.User + "@" + c.Addr()
}

// HostKeyError is a host key that known_hosts does not vouch for: unknown
// (Mismatch false) or different from the recorded one (Mismatch true).
type HostKeyError struct {
	Host        string
	KeyType     string
	Fingerprint string
	KnownHosts  string
	Mismatch    bool
	// Line is the known_hosts line of the recorded key (when Mismatch).
	Line int
}

// Error is one line: the host, the key offered, the file and what to do.
func (e *HostKeyError) Error() string {
	if e.Mismatch {
		return fmt.Sprintf("ssh %s: host key %s %s does not match the one recorded in %s:%d (the target was reinstalled, or this is not the target): check it, then remove that line and run `salvage kdump propagate`",
			e.Host, e.KeyType, e.Fingerprint, e.KnownHosts, e.Line)
	}
	return fmt.Sprintf("ssh %s: host key %s %s is unknown: %s has no key for this host; run `salvage kdump propagate` to check and record it",
		e.Host, e.KeyType, e.Fingerprint, e.KnownHosts)
}

// AuthError is the server refusing our key.
type AuthError struct {
	Target  string
	Key     string
	Keys    []string // fingerprints offered
	Details string
}

// Error is one line naming the user, host, key and the fix.
func (e *AuthError) Error() string {
	return fmt.Sprintf("ssh %s: the server refused the key %s (%s): add its public key to the target's ~/.ssh/authorized_keys with `salvage kdump propagate`",
		e.Target, e.Key, strings.Join(e.Keys, ", "))
}

// hostKeyChecker checks server keys against a known_hosts file and
// remembers the error it gave (the ssh package wraps it in a handshake
// error).
type hostKeyChecker struct {
	file string
	cb   ssh.HostKeyCallback
	err  *HostKeyError
}

func newHostKeyChecker(file string) (*hostKeyChecker, error) {
	if file == "" {
		return nil, errors.New("ssh: no known_hosts file given: salvage never connects without checking the host key")
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("ssh: reading known hosts: %w", err)
	}
	return &hostKeyChecker{file: file, cb: cb}, nil
}

func (h *hostKeyChecker) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.cb(hostname, remote, key)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		h.err = &HostKeyError{Host: hostname, KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), KnownHosts: h.file}
		if len(ke.Want) > 0 {
			h.err.Mismatch = true
			h.err.Line = ke.Want[0].Line
		}
		return h.err
	}
	return err
}

// algorithms lists the host key algorithms known_hosts has for addr
// (host:port), so
// that the server is asked for a key we can check rather than its
// preferred one (a host with both ed25519 and RSA keys, recorded by its
// RSA key, would otherwise look changed).
func (h *hostKeyChecker) algorithms(addr string) []string {
	// A throw-away key makes the callback list every key it knows for the
	// host in KeyError.Want.
	probe, err := ssh.NewPublicKey(ed25519Probe)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(h.cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe), &ke) {
		return nil
	}
	var algs []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		t := k.Key.Type()
		var add []string
		switch t {
		case ssh.KeyAlgoRSA:
			add = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		default:
			add = []string{t}
		}
		for _, a := range add {
			if !seen[a] {
				seen[a] = true
				algs = append(algs, a)
			}
		}
	}
	return algs
}

// ed25519Probe is a fixed public key no host has (32 bytes of 0x5a).
var ed25519Probe = ed25519.PublicKey(bytes.Repeat([]byte{0x5a}, 32))

// readSigner reads an unencrypted private key.
func readSigner(file string) (ssh.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var pp *ssh.PassphraseMissingError
		if errors.As(err, &pp) {
			return nil, fmt.Errorf("ssh key %s is protected by a passphrase: the capture kernel cannot type it; make one without (salvage kdump propagate does)", file)
		}
		return nil, fmt.Errorf("ssh key %s: %v", file, err)
	}
	return s, nil
}

// DialSSH connects and authenticates to the target, checking its host key
// against c.KnownHosts; network errors are retried, a refused host key or
// key is not.
func DialSSH(ctx context.Context, c *SSHConfig, logf func(string, ...any)) (*ssh.Client, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	hk, err := newHostKeyChecker(c.KnownHosts)
	if err != nil {
		return nil, err
	}
	signers := c.Signers
	keyName := c.KeyFile
	if len(signers) == 0 {
		if c.KeyFile == "" {
			return nil, errors.New("ssh: no key given")
		}
		s, err := readSigner(c.KeyFile)
		if err != nil {
			return nil, err
		}
		signers = []ssh.Signer{s}
	} else if keyName == "" {
		keyName = "(operator's keys)"
	}
	timeout, attempts := c.Timeout, c.Attempts
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	if attempts <= 0 {
		attempts = 6
	}
	cfg := &ssh.ClientConfig{
		User:              c.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: hk.algorithms(c.Addr()),
		Timeout:           timeout,
	}
	pause := time.Second
	for try := 1; ; try++ {
		cl, err := dialOnce(ctx, c.dialAddr(), c.Addr(), cfg, timeout)
		if err == nil {
			return cl, nil
		}
		if hk.err != nil {
			return nil, hk.err
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			ae := &AuthError{Target: c.String(), Key: keyName}
			for _, s := range signers {
				ae.Keys = append(ae.Keys, s.PublicKey().Type()+" "+ssh.FingerprintSHA256(s.PublicKey()))
			}
			return nil, ae
		}
		if ctx.Err() != nil || try >= attempts {
			return nil, fmt.Errorf("ssh %s: %v (after %d attempts)", c.String(), err, try)
		}
		logf("ssh %s: %v; retrying in %v", c.String(), err, pause)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh %s: %w", c.String(), ctx.Err())
		case <-time.After(pause):
		}
		if pause < 8*time.Second {
			pause *= 2
		}
	}
}

func (c *SSHConfig) dialAddr() string {
	if c.DialIP != "" {
		return net.JoinHostPort(c.DialIP, strconv.Itoa(c.Port))
	}
	return c.Addr()
}

// dialOnce makes one connection to dial, checking the host key as addr's;
// ctx cancels it even mid-handshake.
func dialOnce(ctx context.Context, dial, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", dial)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}
