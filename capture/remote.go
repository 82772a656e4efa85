package capture

import (
	"context"
	"errors"
)

// RemoteInitramfsFiles returns what the capture initramfs needs for an ssh
// or nfs target: the files to bake in (path in the image → contents: the
// ssh key, the known host keys, the network configuration) and the names
// of the kernel modules for the network (drivers of the interface that
// reaches the target, nfs). root is the --root of the commands.
func RemoteInitramfsFiles(root string, conf *KdumpConf) (files map[string][]byte, modules []string, err error) {
	return nil, nil, errors.New("ssh and nfs targets are not built into this binary yet")
}

// OpenRemoteStore runs in the capture kernel: it brings up the network
// from what RemoteInitramfsFiles baked into the image (under root),
// connects to the ssh or nfs target and returns it as a Store rooted at
// conf.Path. logf reports each step.
func OpenRemoteStore(ctx context.Context, root string, conf *KdumpConf, logf func(format string, a ...any)) (Store, error) {
	return nil, errors.New("ssh and nfs targets are not built into this binary yet")
}
