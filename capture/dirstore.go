package capture

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// dirStore is a Store over a local directory: the root filesystem, a
// mounted target device, or an NFS mount.
type dirStore struct {
	dir   string
	name  string
	close func() error // unmounts what the store mounted, if anything
}

// NewDirStore returns the Store of the local directory dir (created,
// mode 0700, if missing). name names it in messages ("" for dir itself);
// closeFn, if not nil, runs at Close after the directory is synced (an
// unmount).
func NewDirStore(dir, name string, closeFn func() error) (Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if name == "" {
		name = dir
	}
	return &dirStore{dir: dir, name: name, close: closeFn}, nil
}

func (s *dirStore) String() string { return s.name }

// path maps a store name to the local path, refusing names that leave
// the store.
func (s *dirStore) path(name string) (string, error) {
	c := path.Clean(name)
	if strings.Contains(name, "\x00") || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%s: %q is not a name inside the dump path", s.name, name)
	}
	return filepath.Join(s.dir, filepath.FromSlash(c)), nil
}

func (s *dirStore) MkdirAll(dir string) error {
	p, err := s.path(dir)
	if err != nil {
		return err
	}
	return os.MkdirAll(p, 0o700)
}

// dirFile is a file of a dirStore: Close syncs it first.
type dirFile struct{ *os.File }

func (f dirFile) Close() error {
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *dirStore) Create(name string) (File, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	// O_CREAT's mode is masked by the umask and leaves an existing file's
	// mode: a dump is always 0600.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return dirFile{f}, nil
}

func (s *dirStore) Rename(oldname, newname string) error {
	o, err := s.path(oldname)
	if err != nil {
		return err
	}
	n, err := s.path(newname)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(n); err == nil {
		return &os.LinkError{Op: "rename", Old: o, New: n, Err: fs.ErrExist}
	}
	if err := os.Rename(o, n); err != nil {
		return err
	}
	syncDir(filepath.Dir(n))
	return nil
}

func (s *dirStore) ReadDir(dir string) ([]string, error) {
	p, err := s.path(dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

func (s *dirStore) RemoveAll(name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if filepath.Clean(p) == filepath.Clean(s.dir) {
		return fmt.Errorf("%s: refusing to remove the dump path itself", s.name)
	}
	return os.RemoveAll(p)
}

func (s *dirStore) Close() error {
	syncDir(s.dir)
	syscall.Sync()
	if s.close != nil {
		return s.close()
	}
	return nil
}

// syncDir makes a directory's entries durable (a rename into it).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
