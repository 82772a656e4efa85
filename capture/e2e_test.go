package capture

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"salvage/capture/cpio"
	"salvage/lab/corpus"
)

var e2eCrashkernel = flag.String("e2e-crashkernel", "", "TestLoadAndCaptureLab: reserve this crashkernel= instead of the estimate (to find the floor)")

// bootLab boots the lab kernel with initrd and args under QEMU and returns
// the guests' "E2E:" lines and the whole console.
func bootLab(t *testing.T, vmlinuz, initrd, args string) (e2e, console []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot",
		"-kernel", vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 "+args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		l := sc.Text()
		console = append(console, l)
		if i := strings.Index(l, "E2E: "); i >= 0 {
			e2e = append(e2e, l[i+5:])
		}
	}
	cmd.Wait()
	return e2e, console
}

// buildInit builds testdata/e2einit as a static binary.
func buildInit(t *testing.T, dir string) []byte {
	t.Helper()
	out := filepath.Join(dir, "init")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, "./testdata/e2einit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test init: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeArchive(t *testing.T, name string, files map[string][]byte) {
	t.Helper()
	a := cpio.New()
	for _, d := range []string{"proc", "sys", "dev"} {
		a.Dir(d, 0o755)
	}
	a.CharDev("dev/console", 0o600, 5, 1)
	for n, b := range files {
		perm := uint32(0o644)
		if n == "init" {
			perm = 0o755
		}
		a.File(n, perm, b)
	}
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadAndCaptureLab is the capture package end to end on each of the lab's
// kernels under QEMU (1 GiB, 2 CPUs, as the lab's guests): the production
// kernel boots with crashkernel= set to what EstimateReservation
// recommends for it, its /init (testdata/e2einit) loads the capture kernel
// with PlanLoad and Load (kexec_file_load), checks the state is "ready to
// kdump", unloads and loads again (Unload, Load), and panics through
// sysrq; the capture kernel boots with the command line CaptureCmdline
// derived, and its /init opens /proc/vmcore and runs the collector over
// it at -d 31 — all inside the estimated reservation. Two more boots
// check the kernel's own refusals without and with too small a
// reservation.
//
// With -e2e-crashkernel SIZE it reserves SIZE instead, to find the floor:
// on this guest 80M still captures (13M left available after the
// collector) and 64M does not (the capture kernel runs out of memory
// while booting), against the 176M then estimated (208M since the collector models the kernel, 224M since that model counts the kernel's symbols) — the estimate keeps room
// for the drivers and firmware of real machines that QEMU lacks.
func TestLoadAndCaptureLab(t *testing.T) {
	m := corpus.Require(t)
	n := 0
	for _, k := range m.Kernels {
		if k.Vmlinuz == "" || k.Role != "" {
			continue
		}
		n++
		name := k.Name
		if name == "" {
			name = k.Release
		}
		t.Run(name, func(t *testing.T) { loadAndCaptureLab(t, m.Path(k.Vmlinuz), m.Path(k.SystemMap), k.Release) })
	}
	if n == 0 {
		t.Fatal("the lab has no kernel image")
	}
}

// loadAndCaptureLab is TestLoadAndCaptureLab on one kernel.
func loadAndCaptureLab(t *testing.T, vmlinuz, systemMap, release string) {
	kernel, err := os.ReadFile(vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	initSize, err := BzImageInitSize(vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	init := buildInit(t, dir)
	capImg := filepath.Join(dir, "capture.img")
	writeArchive(t, capImg, map[string][]byte{"init": init})
	e, err := EstimateReservation(EstimateInput{Root: "testdata/root/lab-ready", Kernel: vmlinuz, Initrd: capImg, SystemMap: systemMap})
	if err != nil {
		t.Fatal(err)
	}
	capBytes, err := os.ReadFile(capImg)
	if err != nil {
		t.Fatal(err)
	}
	// The too-small case below reserves 16M: this kernel's init_size and
	// the capture initramfs must not fit in it (6.1: 52M + the image;
	// 6.12: 56M + the image), or the case proves nothing.
	if initSize+uint64(len(capBytes)) <= 16<<20 {
		t.Fatalf("init_size %s + initramfs %d bytes fit in 16M: the too-small case needs a smaller reservation", FormatSize(initSize), len(capBytes))
	}
	prodImg := filepath.Join(dir, "production.img")
	writeArchive(t, prodImg, map[string][]byte{"init": init, "vmlinuz": kernel, "capture.img": capBytes})

	if *e2eCrashkernel != "" {
		e.Param = "crashkernel=" + *e2eCrashkernel
	}
	e2e, console := bootLab(t, vmlinuz, prodImg, e.Param)
	t.Logf("%s, 1 GiB guest, %s (estimated %s):\n  %s", release, e.Param, FormatSize(e.Recommended), strings.Join(e2e, "\n  "))
	all := strings.Join(e2e, "\n")
	for _, want := range []string{"before load: current state:          not ready to kdump", "loaded /vmlinuz", "after load: ready to kdump",
		"after unload: not ready to kdump", "after reload: ready to kdump",
		"crashing", "capture kernel up; command line: ", "reset_devices", "vmcore of " + release, "collected "} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the guests' report; console tail:\n%s", want, strings.Join(console[max(0, len(console)-40):], "\n"))
			break
		}
	}
	if i := strings.Index(all, "capture kernel up"); i >= 0 && strings.Contains(all[i:], "crashkernel=") {
		t.Error("the capture kernel's command line keeps crashkernel=")
	}

	// Without a reservation: PlanLoad refuses, and the kernel itself
	// (e2e.force) refuses kexec_file_load, which Load explains.
	for _, c := range []struct {
		args string
		want []string
	}{
		{"e2e.force", []string{"plan failed: cannot load a capture kernel: no crashkernel= on the kernel command line",
			"load failed: kexec_file_load: there is no crashkernel reservation: `salvage kdump estimate` says how much to reserve (EADDRNOTAVAIL)"}},
		{"e2e.force crashkernel=16M", []string{fmt.Sprintf("plan failed: the kernel (init_size %s) and initramfs", FormatSize(roundUp(initSize, 1<<20))),
			"load failed: kexec_file_load: the capture kernel and initramfs do not fit in the 16M reservation"}},
	} {
		e2e, console = bootLab(t, vmlinuz, prodImg, c.args)
		t.Logf("%s, %s:\n  %s", release, c.args, strings.Join(e2e, "\n  "))
		all = strings.Join(e2e, "\n")
		for _, want := range c.want {
			if !strings.Contains(all, want) {
				t.Errorf("no %q in the guest's report; console tail:\n%s", want, strings.Join(console[max(0, len(console)-40):], "\n"))
			}
		}
	}
}
