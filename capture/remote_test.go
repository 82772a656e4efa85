package capture

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// netRoot copies testdata/net-qemu (symlinks kept) to a new --root.
func netRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", "testdata/net-qemu", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return root
}

func TestRemoteInitramfsFilesSSH(t *testing.T) {
	root := netRoot(t)
	conf := DefaultKdumpConf()
	conf.Target = Target{Kind: "ssh", Host: "dumps@10.0.2.2"}
	if _, _, err := RemoteInitramfsFiles(root, conf); err == nil || !strings.Contains(err.Error(), "/root/.ssh/kdump_id_rsa is missing: run `salvage kdump propagate`") {
		t.Errorf("no key: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "root/.ssh"), 0o700)
	newTestKey(t, filepath.Join(root, "root/.ssh/kdump_id_rsa"))
	if _, _, err := RemoteInitramfsFiles(root, conf); err == nil || !strings.Contains(err.Error(), "known") {
		t.Errorf("no known_hosts: %v", err)
	}
	hostKey := newTestKey(t, filepath.Join(t.TempDir(), "hk"))
	os.MkdirAll(filepath.Join(root, "etc/salvage"), 0o755)
	kh := knownhosts.Line([]string{"10.0.2.9"}, hostKey) + "\n"
	os.WriteFile(filepath.Join(root, KnownHostsPath), []byte(kh), 0o644)
	if _, _, err := RemoteInitramfsFiles(root, conf); err == nil || !strings.Contains(err.Error(), "has no host key for dumps@10.0.2.2") {
		t.Errorf("host not in known_hosts: %v", err)
	}
	kh += knownhosts.Line([]string{"10.0.2.2"}, hostKey) + "\n"
	os.WriteFile(filepath.Join(root, KnownHostsPath), []byte(kh), 0o644)
	files, mods, err := RemoteInitramfsFiles(root, conf)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(root, "root/.ssh/kdump_id_rsa"))
	if string(files[remoteKey]) != string(key) || string(files[remoteKnownHosts]) != kh {
		t.Errorf("key or known_hosts not carried: %q", files)
	}
	if !reflect.DeepEqual(mods, []string{"virtio_net", "virtio_pci"}) {
		t.Errorf("modules %v", mods)
	}
	var nc NetConfig
	if err := json.Unmarshal(files[remoteNetConfig], &nc); err != nil {
		t.Fatal(err)
	}
	want := NetConfig{Host: "10.0.2.2", TargetIP: "10.0.2.2", Interface: "ens3", MAC: "52:54:00:12:34:56", MTU: 1500,
		Modules: []string{"virtio_net", "virtio_pci"}, DHCP: true, Address: "10.0.2.15/24"}
	if !reflect.DeepEqual(nc, want) {
		t.Errorf("net.json %+v, want %+v", nc, want)
	}
	if len(files) != 3 {
		t.Errorf("files %v", len(files))
	}
	// The configured sshkey wins over the default.
	conf.SSHKey = "/etc/salvage/other_key"
	if _, _, err := RemoteInitramfsFiles(root, conf); err == nil || !strings.Contains(err.Error(), "/etc/salvage/other_key") {
		t.Errorf("sshkey: %v", err)
	}
}

func TestRemoteInitramfsFilesNFS(t *testing.T) {
	root := netRoot(t)
	conf := DefaultKdumpConf()
	conf.Target = Target{Kind: "nfs", Host: "172.16.5.20:/srv/dumps"}
	files, mods, err := RemoteInitramfsFiles(root, conf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mods, []string{"e1000", "nfs", "nfsv4", "nfsv3"}) {
		t.Errorf("modules %v", mods)
	}
	if _, ok := files[remoteNetConfig]; !ok || len(files) != 1 {
		t.Errorf("files %v", files)
	}
	conf.Target = Target{Kind: "nfs", Host: "10.10.1.1:/srv"}
	if _, _, err := RemoteInitramfsFiles(root, conf); err == nil || !strings.Contains(err.Error(), "br0") {
		t.Errorf("through a bridge: %v", err)
	}
	conf.Target = Target{Kind: "local"}
	if _, _, err := RemoteInitramfsFiles(root, conf); err == nil {
		t.Error("local target accepted")
	}
}

// TestOpenRemoteStoreSSH opens the ssh target as PID 1 does, from the
// files of an image (the key and known_hosts under root), against
// Debian's sshd; the network is the host's (no net.json: loopback).
func TestOpenRemoteStoreSSH(t *testing.T) {
	fx := newSSHFixture(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, remoteDir), 0o700)
	for from, to := range map[string]string{fx.Conf.KeyFile: remoteKey, fx.Conf.KnownHosts: remoteKnownHosts} {
		b, _ := os.ReadFile(from)
		os.WriteFile(filepath.Join(root, to), b, 0o600)
	}
	conf := DefaultKdumpConf()
	conf.Target = Target{Kind: "ssh", Host: "root@127.0.0.1:" + strconv.Itoa(fx.Port)}
	conf.Path = filepath.Join(fx.Dir, "crash")
	var logs []string
	st, err := OpenRemoteStore(context.Background(), root, conf, func(f string, a ...any) { logs = append(logs, f) })
	if err != nil {
		t.Fatal(err)
	}
	f, err := st.Create("dmesg.1")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("log"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if b, _ := os.ReadFile(filepath.Join(conf.Path, "dmesg.1")); string(b) != "log" {
		t.Errorf("on the server: %q", b)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "missing") {
		t.Errorf("logs %q", logs)
	}
	// A host key changed since the image was built: refused.
	other := newTestKey(t, filepath.Join(t.TempDir(), "o"))
	os.WriteFile(filepath.Join(root, remoteKnownHosts), []byte(fx.knownHostsLine(other)+"\n"), 0o600)
	if _, err := OpenRemoteStore(context.Background(), root, conf, nil); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("changed host key: %v", err)
	}
	_ = ssh.FingerprintSHA256
}
