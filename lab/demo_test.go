package lab

import (
	"bytes"
	"testing"
)

// TestDemoLineFilter: the demo shows the machine's and salvage's steps
// and the panic, from the kernel's time stamp, without the firmware's
// screen codes before the first line.
func TestDemoLineFilter(t *testing.T) {
	var b bytes.Buffer
	f := lineFilter{w: &b, keep: demoLines}
	f.Write([]byte("Probing EDD (edd=off to disable)... o\x1b[?7l\x1b[2J\x1b[0mk[    0.000000] Linux version 6.1.0-56-cloud-amd64 (x)\n" +
		"[    1.000000] virtio_blk virtio0: [vda]\n" +
		"E2E: load: loaded: ready to kdump\n" +
		"[   12.520799] Kernel panic - not syncing: sysrq triggered crash\n" +
		"salvage: dump saved; poweroff\n"))
	want := "  guest | [    0.000000] Linux version 6.1.0-56-cloud-amd64 (x)\n" +
		"  guest | E2E: load: loaded: ready to kdump\n" +
		"  guest | [   12.520799] Kernel panic - not syncing: sysrq triggered crash\n" +
		"  guest | salvage: dump saved; poweroff\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
