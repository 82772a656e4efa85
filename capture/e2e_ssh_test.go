package capture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"salvage/capture/cpio"
)

// netModules are the production guest's network drivers, from the lab
// kernel's own package (the lab's module set is the disk's alone), in
// load order, with their place in Debian's tree.
var netModules = []string{"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"}

// addNetModules extracts netModules from the lab's linux-image .deb into
// the e2e module tree, indexes it again with depmod and appends them to
// the production guest's load order.
func addNetModules(t *testing.T, e *e2eLab) {
	t.Helper()
	m := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(e.assets.Vmlinuz))), "debs")
	debs, _ := filepath.Glob(filepath.Join(m, "linux-image-"+e.assets.Release+"_*_amd64.deb"))
	if len(debs) == 0 {
		t.Fatalf("no linux-image-%s .deb in %s (make lab fetches it)", e.assets.Release, m)
	}
	stage := filepath.Join(e.dir, "stage")
	var members []string
	for _, rel := range netModules {
		members = append(members, "./lib/modules/"+e.assets.Release+"/"+rel)
	}
	sh := fmt.Sprintf("dpkg-deb --fsys-tarfile %q | tar -x -C %q %s", debs[0], stage, strings.Join(members, " "))
	if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
		t.Fatalf("extracting the network modules: %v\n%s", err, out)
	}
	if out, err := exec.Command("depmod", "-b", stage, e.assets.Release).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	tree := filepath.Join(stage, "lib/modules", e.assets.Release)
	for _, rel := range append([]string{"modules.dep", "modules.alias", "modules.builtin", "modules.order", "modules.softdep", "modules.symbols", "modules.builtin.modinfo", "modules.devname"}, netModules...) {
		b, err := os.ReadFile(filepath.Join(tree, rel))
		if err != nil {
			continue
		}
		e.modules[rel] = b
	}
	e.order = append(e.order, netModules...)
}

// sshProdImage is the production initramfs of the ssh cycle: the e2e
// tree with testdata/sshprod as /init, and what `salvage kdump propagate`
// would have left on the machine (the key, the known host key).
func sshProdImage(t *testing.T, e *e2eLab, init []byte, conf string, key, knownHosts []byte) string {
	t.Helper()
	a := cpio.New()
	for _, d := range []string{"proc", "sys", "dev", "tmp", "var/lib/salvage", "etc/e2e", "root", "root/.ssh"} {
		a.Dir(d, 0o755)
	}
	a.CharDev("dev/console", 0o600, 5, 1)
	a.File("init", 0o755, init)
	sb, err := os.ReadFile(e.salvage)
	if err != nil {
		t.Fatal(err)
	}
	a.File("bin/salvage", 0o755, sb)
	kb, err := os.ReadFile(e.assets.Vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	a.File("boot/vmlinuz-"+e.assets.Release, 0o644, kb)
	a.File("boot/config-"+e.assets.Release, 0o644, e.config)
	for rel, b := range e.modules {
		a.File("lib/modules/"+e.assets.Release+"/"+rel, 0o644, b)
	}
	a.File("etc/e2e/load-order", 0o644, []byte(strings.Join(e.order, "\n")+"\n"))
	a.File("etc/salvage/kdump.conf", 0o644, []byte(conf))
	a.File("etc/default/kdump-tools", 0o644, []byte("USE_KDUMP=1\n"))
	a.File(strings.TrimPrefix(DefaultSSHKey, "/"), 0o600, key)
	a.File(strings.TrimPrefix(KnownHostsPath, "/"), 0o644, knownHosts)
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(e.dir, "prod-ssh.img")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestE2ESSH is the ssh target end to end, twice: with the address
// recorded at load time (static), and with DHCP in the capture kernel
// (the production interface marked DHCP-configured; QEMU's user network
// answers).
func TestE2ESSH(t *testing.T) {
	e := setupE2E(t)
	addNetModules(t, e)
	goBuild(t, filepath.Join(e.dir, "sshprod"), "./testdata/sshprod")
	init, err := os.ReadFile(filepath.Join(e.dir, "sshprod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"static", "dhcp"} {
		t.Run(mode, func(t *testing.T) { runSSHCycle(t, e, init, mode) })
	}
}

// runSSHCycle is one ssh cycle: the lab's kernel boots under
// QEMU with a virtio NIC on QEMU's user network; `salvage kdump load`
// builds the capture initramfs with the network driver, the key, the
// known host key and the network configuration; `salvage kdump test`
// crashes it; the capture kernel (salvage as PID 1) brings eth0 up and
// saves the dump over SFTP to Debian's sshd on this host's loopback
// (10.0.2.2 from the guest), host key checked. The host then finds the
// dump and its dmesg in the local layout, 0600, and salvage's analyzer
// finds the sysrq panic and its stack in it.
func runSSHCycle(t *testing.T, e *e2eLab, init []byte, mode string) {
	s := startSSHD(t)
	keyFile := filepath.Join(t.TempDir(), "kdump_id_rsa")
	pub := newTestKey(t, keyFile)
	key, _ := os.ReadFile(keyFile)
	os.MkdirAll(filepath.Dir(s.AuthorizedKeys), 0o700)
	if err := os.WriteFile(s.AuthorizedKeys, ssh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	target := "10.0.2.2:" + strconv.Itoa(s.Port)
	kh := knownhosts.Line([]string{knownhosts.Normalize(target)}, s.HostKey) + "\n"
	dumps := filepath.Join(s.Dir, "crash")
	conf := "ssh root@" + target + "\npath " + dumps + "\ncore_collector makedumpfile -l --message-level 7 -d 31\nfinal_action poweroff\nfailure_action poweroff\n"
	img := sshProdImage(t, e, init, conf, key, []byte(kh))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", e.assets.Vmlinuz, "-initrd", img, "-netdev", "user,id=n", "-device", "virtio-net-pci,netdev=n",
		"-append", "console=ttyS0 panic=-1 crashkernel=256M e2e.net="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console []string
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		console = append(console, strings.TrimRight(sc.Text(), "\r"))
	}
	cmd.Wait()
	dur := time.Since(start)
	ok := false
	defer func() {
		if !ok {
			t.Logf("console:\n%s", strings.Join(console, "\n"))
			fmt.Printf("e2e: sysrq → ssh root@%s (%s network): FAILED (%.0f s)\n", target, mode, dur.Seconds())
		}
	}()
	all := strings.Join(console, "\n")
	wants := []string{"loaded: ready to kdump", "salvage: capture kernel: saving the dump", "salvage: dump saved; poweroff"}
	if mode == "dhcp" {
		wants = append(wants, "salvage: net: DHCP on eth0: 10.0.2.15/24, router 10.0.2.2")
	}
	for _, want := range wants {
		if !strings.Contains(all, want) {
			t.Fatalf("no %q on the console", want)
		}
	}
	ents, err := os.ReadDir(dumps)
	if err != nil || len(ents) != 1 || !IsDumpDir(ents[0].Name()) {
		t.Fatalf("dump directory on the ssh target: %v %v", ents, err)
	}
	dir := ents[0].Name()
	files, _ := os.ReadDir(filepath.Join(dumps, dir))
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
		fi, _ := f.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s/%s: mode %o, want 0600", dir, f.Name(), fi.Mode().Perm())
		}
	}
	if want := "dmesg." + dir + " dump." + dir; strings.Join(names, " ") != want {
		t.Fatalf("%s holds %v, want %s", dir, names, want)
	}
	if !strings.Contains(s.Log.String(), "Accepted publickey for root from 127.0.0.1") || !strings.Contains(s.Log.String(), ssh.FingerprintSHA256(pub)) {
		t.Errorf("sshd's log shows no login with the kdump key:\n%s", s.Log)
	}
	c := e2eCycle{scenario: "sysrq", panic: "sysrq triggered crash", frame: `^sysrq_handle_crash`, dmesg: []string{"Kernel panic - not syncing: sysrq triggered crash"}}
	dump := filepath.Join(dumps, dir, "dump."+dir)
	panicText, stack, good := e.analyzeDump(t, dump, c)
	if !good || !checkDmesg(t, filepath.Join(dumps, dir, "dmesg."+dir), c.dmesg) {
		t.FailNow()
	}
	fi, _ := os.Stat(dump)
	ok = true
	fmt.Printf("e2e: sysrq → ssh root@%s (SFTP, host key checked, %s network): ok, dump.%s (%.0f MiB, lzo -d 31), PANIC %q, bt: %s (%.0f s; capture initramfs %s)\n",
		target, mode, dir, float64(fi.Size())/(1<<20), panicText, fmtStack(stack), dur.Seconds(), initrdSize(console))
	for _, l := range console {
		if strings.Contains(l, "net: ") || strings.Contains(l, "ssh: ") || strings.Contains(l, "nclient4") || strings.Contains(l, "crng init") {
			t.Log(l)
		}
	}
}
