package capture

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// sftpStore is the ssh target: a Store over one SFTP session, rooted at
// the configured dump path on the server.
type sftpStore struct {
	conn   *ssh.Client
	client *sftp.Client
	target string
	root   string
	fsync  bool // fsync@openssh.com is offered
	posix  bool // posix-rename@openssh.com is offered
}

// OpenSFTPStore connects to the ssh target and returns a Store rooted at
// dir on it (created, 0700, when missing).
func OpenSFTPStore(ctx context.Context, c *SSHConfig, dir string, logf func(string, ...any)) (Store, error) {
	conn, err := DialSSH(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	// Concurrent writes keep the link busy: the collector's buffers are
	// large, and one request at a time would cost a round trip each.
	cl, err := sftp.NewClient(conn, sftp.UseConcurrentWrites(true))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s: the sftp subsystem: %v (the server must allow `Subsystem sftp`)", c, err)
	}
	s := &sftpStore{conn: conn, client: cl, target: c.String(), root: path.Clean(dir)}
	_, s.fsync = cl.HasExtension("fsync@openssh.com")
	_, s.posix = cl.HasExtension("posix-rename@openssh.com")
	if err := s.MkdirAll("."); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// String names the target as "ssh user@host:/path".
func (s *sftpStore) String() string { return "ssh " + s.target + ":" + s.root }

// path maps a store name to the server's path, never above root.
func (s *sftpStore) path(name string) string {
	return path.Join(s.root, path.Clean("/"+name))
}

func (s *sftpStore) errorf(op, name string, err error) error {
	var se *sftp.StatusError
	if errors.As(err, &se) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s: %s %s: %v", s, op, s.path(name), err)
	}
	return fmt.Errorf("%s: %s %s: %w", s, op, s.path(name), err)
}

// MkdirAll creates each missing component of dir with mode 0700 (the
// server's umask would otherwise decide).
func (s *sftpStore) MkdirAll(dir string) error {
	p := s.path(dir)
	if fi, err := s.client.Stat(p); err == nil {
		if !fi.IsDir() {
			return s.errorf("mkdir", dir, errors.New("exists and is not a directory"))
		}
		return nil
	}
	var missing []string
	for q := p; q != "/" && q != "."; q = path.Dir(q) {
		if _, err := s.client.Stat(q); err == nil {
			break
		}
		missing = append(missing, q)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := s.client.Mkdir(missing[i]); err != nil {
			if fi, serr := s.client.Stat(missing[i]); serr == nil && fi.IsDir() {
				continue // made by someone else meanwhile
			}
			return s.errorf("mkdir", dir, err)
		}
		if err := s.client.Chmod(missing[i], 0o700); err != nil {
			return s.errorf("chmod", dir, err)
		}
	}
	return nil
}

// sftpFile is a dump file on the target.
type sftpFile struct {
	*sftp.File
	store *sftpStore
	name  string
}

// Name names the file with its store.
func (f *sftpFile) Name() string { return f.store.String() + "/" + path.Clean(f.name) }

// Close makes the data durable on the server's disk when it offers
// fsync@openssh.com (OpenSSH does): a dump is only renamed complete once
// it is there.
func (f *sftpFile) Close() error {
	var err error
	if f.store.fsync {
		err = f.File.Sync()
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %v", f.Name(), err)
	}
	return nil
}

// Create creates or truncates name with mode 0600. The mode is set before
// any data is written.
func (s *sftpStore) Create(name string) (File, error) {
	p := s.path(name)
	f, err := s.client.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, s.errorf("create", name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, s.errorf("chmod", name, err)
	}
	return &sftpFile{File: f, store: s, name: name}, nil
}

// Rename refuses to replace newname; it uses posix-rename@openssh.com
// (atomic rename(2) on the server) when offered, else SFTP's own rename,
// which OpenSSH also refuses to make over an existing name.
func (s *sftpStore) Rename(oldname, newname string) error {
	np := s.path(newname)
	if _, err := s.client.Lstat(np); err == nil {
		return s.errorf("rename to", newname, fs.ErrExist)
	}
	var err error
	if s.posix {
		err = s.client.PosixRename(s.path(oldname), np)
	} else {
		err = s.client.Rename(s.path(oldname), np)
	}
	if err != nil {
		return s.errorf("rename", oldname, err)
	}
	return nil
}

// ReadDir lists dir's names, sorted.
func (s *sftpStore) ReadDir(dir string) ([]string, error) {
	fis, err := s.client.ReadDir(s.path(dir))
	if err != nil {
		return nil, s.errorf("list", dir, err)
	}
	var names []string
	for _, fi := range fis {
		if n := fi.Name(); n != "." && n != ".." {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// RemoveAll removes name and everything below it; a missing name is not
// an error. It refuses to remove the store's root.
func (s *sftpStore) RemoveAll(name string) error {
	p := s.path(name)
	if p == s.root {
		return s.errorf("remove", name, errors.New("refusing to remove the dump directory itself"))
	}
	if _, err := s.client.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := s.client.RemoveAll(p); err != nil {
		return s.errorf("remove", name, err)
	}
	return nil
}

// Close ends the SFTP session and the connection.
func (s *sftpStore) Close() error {
	err := s.client.Close()
	if cerr := s.conn.Close(); err == nil {
		err = cerr
	}
	return err
}
