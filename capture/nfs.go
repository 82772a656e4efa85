package capture

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// NFSModules are the kernel modules an nfs target needs in the capture
// initramfs (their dependencies, sunrpc, lockd and the rest, come from
// modules.dep).
var NFSModules = []string{"nfs", "nfsv4", "nfsv3"}

// mounter is mount(2) and umount2(2), faked in tests.
type mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
}

type sysMounter struct{}

// Mount is mount(2).
func (sysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount is umount2(2).
func (sysMounter) Unmount(target string, flags int) error { return unix.Unmount(target, flags) }

// nfsAttempt is one mount(2) call of the version fallback.
type nfsAttempt struct {
	Source, FSType, Data string
}

// ParseNFSTarget splits kdump.conf's `nfs server:/export`.
func ParseNFSTarget(spec string) (server, export string, err error) {
	i := strings.LastIndex(spec, ":/")
	if i <= 0 {
		return "", "", fmt.Errorf("nfs target %q: write it as server:/export", spec)
	}
	server, export = strings.Trim(spec[:i], "[]"), path.Clean(spec[i+1:])
	if server == "" {
		return "", "", fmt.Errorf("nfs target %q: no server", spec)
	}
	return server, export, nil
}

// nfsAttempts lists the mounts tried, newest protocol first, with the
// kernel's own text options (fs/nfs/fs_context.c): the kernel cannot
// resolve names, so addr= carries the server's address, and NFSv4's
// callback channel needs clientaddr=, our address towards the server;
// NFSv3 goes without the lock manager (nolock: no rpc.statd in the
// capture kernel) and asks mountd over TCP.
func nfsAttempts(serverIP net.IP, export string, clientAddr net.IP) []nfsAttempt {
	host := serverIP.String()
	if serverIP.To4() == nil {
		host = "[" + host + "]"
	}
	src := host + ":" + export
	var out []nfsAttempt
	for _, v := range []string{"4.2", "4.1", "4.0"} {
		data := "vers=" + v + ",addr=" + serverIP.String()
		if clientAddr != nil {
			data += ",clientaddr=" + clientAddr.String()
		}
		out = append(out, nfsAttempt{src, "nfs4", data})
	}
	out = append(out, nfsAttempt{src, "nfs", "vers=3,proto=tcp,mountproto=tcp,nolock,addr=" + serverIP.String() + ",mountaddr=" + serverIP.String()})
	return out
}

// nfsFallback says whether a failed mount should be retried with an older
// protocol: the server or this kernel lacks the version (as mount.nfs
// falls back on EPROTONOSUPPORT).
func nfsFallback(err error) bool {
	for _, e := range []error{unix.EPROTONOSUPPORT, unix.EINVAL, unix.ENODEV, unix.EOPNOTSUPP, unix.ENOENT} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// mountNFS mounts the export at mountpoint, trying NFS 4.2, 4.1, 4.0,
// then 3.
func mountNFS(m mounter, serverIP net.IP, export, mountpoint string, clientAddr net.IP, logf func(string, ...any)) (string, error) {
	if err := os.MkdirAll(mountpoint, 0o700); err != nil {
		return "", err
	}
	var errs []string
	for _, a := range nfsAttempts(serverIP, export, clientAddr) {
		err := m.Mount(a.Source, mountpoint, a.FSType, 0, a.Data)
		if err == nil {
			logf("nfs: mounted %s on %s (%s)", a.Source, mountpoint, a.Data)
			return a.Data, nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", strings.SplitN(a.Data, ",", 2)[0], err))
		if !nfsFallback(err) {
			break
		}
		logf("nfs: %s %s: %v; trying an older version", a.Source, a.Data, err)
	}
	return "", fmt.Errorf("nfs: mounting %s:%s failed (%s)", serverIP, export, strings.Join(errs, "; "))
}

// localAddrTowards is the address the kernel would send from to reach ip
// (a UDP "connection" sends nothing).
func localAddrTowards(ip net.IP) net.IP {
	c, err := net.Dial("udp", net.JoinHostPort(ip.String(), "2049"))
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP
}

// OpenNFSStore mounts the nfs target (server:/export at serverIP) on
// mountpoint and returns a Store rooted at dir inside the export (dir is
// kdump.conf's path, relative to the export); Close unmounts.
func OpenNFSStore(spec string, serverIP net.IP, dir, mountpoint string, logf func(string, ...any)) (Store, error) {
	return openNFSStore(systemMounter, spec, serverIP, dir, mountpoint, localAddrTowards(serverIP), logf)
}

// systemMounter is mount(2) itself; tests of the capture flow replace it.
var systemMounter mounter = sysMounter{}

func openNFSStore(m mounter, spec string, serverIP net.IP, dir, mountpoint string, clientAddr net.IP, logf func(string, ...any)) (Store, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	_, export, err := ParseNFSTarget(spec)
	if err != nil {
		return nil, err
	}
	if serverIP == nil {
		return nil, fmt.Errorf("nfs %s: no address for the server", spec)
	}
	opts, err := mountNFS(m, serverIP, export, mountpoint, clientAddr, logf)
	if err != nil {
		return nil, err
	}
	s := &nfsDir{name: "nfs " + spec + ":" + path.Clean("/"+dir) + " (" + opts + ")", mountpoint: mountpoint,
		root: filepath.Join(mountpoint, path.Clean("/"+dir)), m: m}
	if err := s.MkdirAll("."); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// nfsDir is a Store on a mounted directory (the nfs export); Close
// unmounts it.
type nfsDir struct {
	name, mountpoint, root string
	m                      mounter
}

// String names the export, the dump path and the options that mounted it.
func (s *nfsDir) String() string { return s.name }

func (s *nfsDir) path(name string) string { return filepath.Join(s.root, path.Clean("/"+name)) }

// MkdirAll creates the missing components of dir, 0700.
func (s *nfsDir) MkdirAll(dir string) error {
	p := s.path(dir)
	var missing []string
	for q := p; q != s.mountpoint && q != "/"; q = filepath.Dir(q) {
		if _, err := os.Stat(q); err == nil {
			break
		}
		missing = append(missing, q)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %v", s, err)
		}
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", s, p)
	}
	return nil
}

// nfsFile syncs on Close: the data is on the server when Close returns
// (NFS commits it on fsync).
type nfsFile struct{ *os.File }

// Close fsyncs, then closes.
func (f nfsFile) Close() error {
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

// Create creates or truncates name, 0600.
func (s *nfsDir) Create(name string) (File, error) {
	f, err := os.OpenFile(s.path(name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s, err)
	}
	// The umask may have narrowed nothing but a pre-existing file keeps
	// its mode: make it 0600 either way.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %v", s, err)
	}
	return nfsFile{f}, nil
}

// Rename refuses to replace newname (NFS has no RENAME_NOREPLACE; the
// capture kernel is the only writer of its dump directory).
func (s *nfsDir) Rename(oldname, newname string) error {
	if _, err := os.Lstat(s.path(newname)); err == nil {
		return fmt.Errorf("%s: rename to %s: %w", s, s.path(newname), fs.ErrExist)
	}
	if err := os.Rename(s.path(oldname), s.path(newname)); err != nil {
		return fmt.Errorf("%s: %v", s, err)
	}
	return nil
}

// ReadDir lists dir's names, sorted.
func (s *nfsDir) ReadDir(dir string) ([]string, error) {
	es, err := os.ReadDir(s.path(dir))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s, err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// RemoveAll removes name and what is below it, never the dump directory.
func (s *nfsDir) RemoveAll(name string) error {
	p := s.path(name)
	if p == s.root {
		return fmt.Errorf("%s: refusing to remove the dump directory itself", s)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("%s: %v", s, err)
	}
	return nil
}

// Close unmounts the export.
func (s *nfsDir) Close() error {
	if err := s.m.Unmount(s.mountpoint, 0); err != nil {
		return fmt.Errorf("%s: unmount %s: %v", s, s.mountpoint, err)
	}
	return nil
}

// resolveNFSServer gives the server's address for the capture kernel,
// which has no resolver: a literal address, else the one recorded.
func resolveNFSServer(server string, recorded string) net.IP {
	if ip := net.ParseIP(server); ip != nil {
		return ip
	}
	return net.ParseIP(recorded)
}
