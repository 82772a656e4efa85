package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Where the capture initramfs keeps what a remote target needs (written
// by RemoteInitramfsFiles, read by OpenRemoteStore).
const (
	remoteDir        = "/etc/salvage/remote"
	remoteNetConfig  = remoteDir + "/net.json"
	remoteKey        = remoteDir + "/id"
	remoteKnownHosts = remoteDir + "/known_hosts"
	// nfsMountpoint is where the capture kernel mounts an nfs export.
	nfsMountpoint = "/run/salvage/nfs"
)

// randomReady says whether getrandom(2) answers without blocking (the
// kernel's crng is initialized).
func randomReady() bool {
	var b [1]byte
	_, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK)
	return err == nil
}

// RemoteInitramfsFiles returns what the capture initramfs needs for an ssh
// or nfs target: the files to bake in (path in the image → contents: the
// ssh key, the known host keys, the network configuration) and the names
// of the kernel modules for the network (drivers of the interface that
// reaches the target, nfs). root is the --root of the commands.
func RemoteInitramfsFiles(root string, conf *KdumpConf) (files map[string][]byte, modules []string, err error) {
	files = map[string][]byte{}
	var host string
	switch conf.Target.Kind {
	case "ssh":
		user, h, port, err := ParseSSHTarget(conf.Target.Host)
		if err != nil {
			return nil, nil, err
		}
		host = h
		keyFile := conf.SSHKey
		if keyFile == "" {
			keyFile = DefaultSSHKey
		}
		if _, err := readSigner(filepath.Join(root, keyFile)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("the ssh key %s is missing: run `salvage kdump propagate`", keyFile)
			}
			return nil, nil, err
		}
		key, _ := os.ReadFile(filepath.Join(root, keyFile))
		files[remoteKey] = key
		khFile := filepath.Join(root, KnownHostsPath)
		hk, err := newHostKeyChecker(khFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%v: run `salvage kdump propagate`", err)
		}
		c := SSHConfig{User: user, Host: h, Port: port}
		if len(hk.algorithms(c.Addr())) == 0 {
			return nil, nil, fmt.Errorf("%s has no host key for %s: run `salvage kdump propagate` to check and record it", KnownHostsPath, c.String())
		}
		kh, _ := os.ReadFile(khFile)
		files[remoteKnownHosts] = kh
	case "nfs":
		server, _, err := ParseNFSTarget(conf.Target.Host)
		if err != nil {
			return nil, nil, err
		}
		host = server
		modules = append(modules, NFSModules...)
	default:
		return nil, nil, fmt.Errorf("target %q is not remote", conf.Target)
	}
	nc, err := RecordNetConfig(root, host, nil)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.MarshalIndent(nc, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	files[remoteNetConfig] = append(b, '\n')
	return files, append(nc.Modules, modules...), nil
}

// OpenRemoteStore runs in the capture kernel: it brings up the network
// from what RemoteInitramfsFiles baked into the image (under root),
// connects to the ssh or nfs target and returns it as a Store rooted at
// conf.Path. logf reports each step.
func OpenRemoteStore(ctx context.Context, root string, conf *KdumpConf, logf func(format string, a ...any)) (Store, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var nc *NetConfig
	if b, err := os.ReadFile(filepath.Join(root, remoteNetConfig)); err == nil {
		nc = &NetConfig{}
		if err := json.Unmarshal(b, nc); err != nil {
			return nil, fmt.Errorf("%s: %v", remoteNetConfig, err)
		}
		if err := BringUp(ctx, nc, logf); err != nil {
			return nil, err
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		// Only an image built without RemoteInitramfsFiles (a test's)
		// lacks it: the network is used as it is.
		logf("net: %s is missing; using the network as it is", remoteNetConfig)
	} else {
		return nil, err
	}
	switch conf.Target.Kind {
	case "ssh":
		user, host, port, err := ParseSSHTarget(conf.Target.Host)
		if err != nil {
			return nil, err
		}
		c := &SSHConfig{User: user, Host: host, Port: port, KeyFile: filepath.Join(root, remoteKey),
			KnownHosts: filepath.Join(root, remoteKnownHosts), Attempts: 10, Timeout: 30 * time.Second}
		if nc != nil && net.ParseIP(host) == nil {
			c.DialIP = nc.TargetIP
		}
		if !randomReady() {
			logf("ssh: the kernel's random pool is not ready yet, and ssh needs it: connecting waits for it (a CPU with RDRAND, or a hardware RNG driver such as extra_modules virtio_rng, makes this immediate)")
		}
		logf("ssh: connecting to %s", c)
		return OpenSFTPStore(ctx, c, conf.Path, logf)
	case "nfs":
		server, _, err := ParseNFSTarget(conf.Target.Host)
		if err != nil {
			return nil, err
		}
		recorded := ""
		if nc != nil {
			recorded = nc.TargetIP
		}
		ip := resolveNFSServer(server, recorded)
		if ip == nil {
			return nil, fmt.Errorf("nfs %s: no address recorded for %s (the capture kernel has no resolver): rebuild the capture initramfs", conf.Target.Host, server)
		}
		return OpenNFSStore(conf.Target.Host, ip, conf.Path, filepath.Join(root, nfsMountpoint), logf)
	}
	return nil, fmt.Errorf("target %q is not remote", conf.Target)
}
