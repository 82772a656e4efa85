package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeMounter records mount(2) calls and answers each with the next
// scripted error; a successful "mount" leaves the mount point as it is,
// standing for the export.
type fakeMounter struct {
	errs     []error
	calls    []string
	unmounts []string
}

func (f *fakeMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	f.calls = append(f.calls, fmt.Sprintf("%s %s %s %d %s", source, filepath.Base(target), fstype, flags, data))
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *fakeMounter) Unmount(target string, flags int) error {
	f.unmounts = append(f.unmounts, filepath.Base(target))
	return nil
}

func TestParseNFSTarget(t *testing.T) {
	for _, c := range []struct{ in, server, export, err string }{
		{"10.0.2.2:/srv/dumps", "10.0.2.2", "/srv/dumps", ""},
		{"nfs.example.org:/export/", "nfs.example.org", "/export", ""},
		{"[fd00::2]:/export", "fd00::2", "/export", ""},
		{"fd00::2:/export", "fd00::2", "/export", ""},
		{"10.0.2.2", "", "", "server:/export"},
		{":/export", "", "", "server:/export"},
	} {
		s, e, err := ParseNFSTarget(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want error %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || s != c.server || e != c.export {
			t.Errorf("%q = %q %q %v", c.in, s, e, err)
		}
	}
}

// TestNFSMountFallback checks the mount(2) sequence: NFS 4.2, 4.1, 4.0
// then 3 while the kernel or server lacks the version; a hard error
// (unreachable server) stops at once and is reported with each try.
func TestNFSMountFallback(t *testing.T) {
	srv, cli := net.ParseIP("10.0.2.2"), net.ParseIP("10.0.2.15")
	all := []string{
		"10.0.2.2:/srv/dumps mnt nfs4 0 vers=4.2,addr=10.0.2.2,clientaddr=10.0.2.15",
		"10.0.2.2:/srv/dumps mnt nfs4 0 vers=4.1,addr=10.0.2.2,clientaddr=10.0.2.15",
		"10.0.2.2:/srv/dumps mnt nfs4 0 vers=4.0,addr=10.0.2.2,clientaddr=10.0.2.15",
		"10.0.2.2:/srv/dumps mnt nfs 0 vers=3,proto=tcp,mountproto=tcp,nolock,addr=10.0.2.2,mountaddr=10.0.2.2",
	}
	for _, c := range []struct {
		name  string
		errs  []error
		calls int
		err   string
	}{
		{"v4.2", nil, 1, ""},
		{"v4.0", []error{unix.EPROTONOSUPPORT, unix.EPROTONOSUPPORT}, 3, ""},
		{"v3", []error{unix.ENODEV, unix.EINVAL, unix.EPROTONOSUPPORT}, 4, ""},
		{"unreachable", []error{unix.EHOSTUNREACH}, 1, "vers=4.2: no route to host"},
		{"none", []error{unix.EPROTONOSUPPORT, unix.EPROTONOSUPPORT, unix.EPROTONOSUPPORT, unix.EACCES}, 4, "vers=3: permission denied"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &fakeMounter{errs: c.errs}
			mp := filepath.Join(t.TempDir(), "mnt")
			st, err := openNFSStore(m, "nfs.example.org:/srv/dumps", srv, "/var/crash", mp, cli, t.Logf)
			if strings.Join(m.calls, "\n") != strings.Join(all[:c.calls], "\n") {
				t.Errorf("mount calls:\n%s\nwant:\n%s", strings.Join(m.calls, "\n"), strings.Join(all[:c.calls], "\n"))
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "10.0.2.2:/srv/dumps") {
					t.Errorf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(filepath.Join(mp, "var", "crash")); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("dump dir in the export: %v %v", fi, err)
			}
			if err := st.Close(); err != nil || len(m.unmounts) != 1 || m.unmounts[0] != "mnt" {
				t.Errorf("Close: %v, unmounts %v", err, m.unmounts)
			}
		})
	}
	// IPv6 server, no client address known.
	got := nfsAttempts(net.ParseIP("fd00::2"), "/e", nil)
	if got[0].Source != "[fd00::2]:/e" || got[0].Data != "vers=4.2,addr=fd00::2" {
		t.Errorf("IPv6: %+v", got[0])
	}
}

// TestNFSDirStore runs the Store operations on the (fake-mounted) export.
func TestNFSDirStore(t *testing.T) {
	m := &fakeMounter{}
	mp := filepath.Join(t.TempDir(), "mnt")
	st, err := openNFSStore(m, "10.0.2.2:/srv", net.ParseIP("10.0.2.2"), "/var/crash", mp, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(mp, "var/crash")
	if !strings.HasPrefix(st.String(), "nfs 10.0.2.2:/srv:/var/crash (vers=4.2") {
		t.Errorf("String() = %q", st.String())
	}
	if err := st.MkdirAll("202611221802"); err != nil {
		t.Fatal(err)
	}
	f, err := st.Create("202611221802/dump.incomplete")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("dump"), 2)
	f.WriteAt([]byte("a "), 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Rename("202611221802/dump.incomplete", "202611221802/dump"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "202611221802/dump"))
	fi, _ := os.Stat(filepath.Join(root, "202611221802/dump"))
	if string(b) != "a dump" || fi.Mode().Perm() != 0o600 {
		t.Errorf("dump %q mode %o", b, fi.Mode().Perm())
	}
	g, _ := st.Create("x")
	g.Close()
	if err := st.Rename("x", "202611221802/dump"); !errors.Is(err, os.ErrExist) {
		t.Errorf("rename over the dump: %v", err)
	}
	names, _ := st.ReadDir(".")
	if strings.Join(names, " ") != "202611221802 x" {
		t.Errorf("ReadDir = %v", names)
	}
	if err := st.RemoveAll("202611221802"); err != nil {
		t.Fatal(err)
	}
	if err := st.RemoveAll("/"); err == nil {
		t.Error("RemoveAll of the root")
	}
	names, _ = st.ReadDir(".")
	if strings.Join(names, " ") != "x" {
		t.Errorf("after RemoveAll: %v", names)
	}
}

// TestOpenRemoteStoreNFS opens the nfs target as PID 1 does: the server's
// address comes from the spec, or from net.json when the spec names the
// server (the capture kernel has no resolver).
func TestOpenRemoteStoreNFS(t *testing.T) {
	m := &fakeMounter{}
	old := systemMounter
	systemMounter = m
	defer func() { systemMounter = old }()
	root := t.TempDir()
	conf := DefaultKdumpConf()
	conf.Target = Target{Kind: "nfs", Host: "127.0.0.1:/srv/dumps"}
	st, err := OpenRemoteStore(context.Background(), root, conf, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.calls) != 1 || !strings.HasPrefix(m.calls[0], "127.0.0.1:/srv/dumps nfs nfs4 0 vers=4.2,addr=127.0.0.1,clientaddr=127.0.0.1") {
		t.Errorf("mount calls %q", m.calls)
	}
	if _, err := os.Stat(filepath.Join(root, nfsMountpoint, "var/crash")); err != nil {
		t.Errorf("dump path in the export: %v", err)
	}
	st.Close()
	if len(m.unmounts) != 1 {
		t.Errorf("unmounts %v", m.unmounts)
	}
	conf.Target = Target{Kind: "nfs", Host: "nfs.example.org:/srv/dumps"}
	if _, err := OpenRemoteStore(context.Background(), root, conf, nil); err == nil || !strings.Contains(err.Error(), "no address recorded for nfs.example.org") {
		t.Errorf("a name without net.json: %v", err)
	}
}
