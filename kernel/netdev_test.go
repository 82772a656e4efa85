package kernel

import (
	"net/netip"
	"strings"
	"testing"

	"salvage/dump"
)

// TestNetDevicesSynthetic: devices in list order with their IPv4 and
// IPv6 addresses; a device whose in_device the dump lacks is listed with
// an error.
func TestNetDevicesSynthetic(t *testing.T) {
	k := devTestKernel(t)
	ns, err := k.NetNamespace()
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.NetDevices(ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	addrs := func(as []netip.Addr) string {
		var s []string
		for _, a := range as {
			s = append(s, a.String())
		}
		return strings.Join(s, " ")
	}
	for i, w := range []struct{ name, v4, v6 string }{{"lo", "127.0.0.1", "::1"}, {"eth0", "10.0.2.15 192.168.1.2", ""}, {"eth1", "", ""}} {
		g := got[i]
		if g.Name != w.name || addrs(g.IPv4) != w.v4 || addrs(g.IPv6) != w.v6 || (g.Err != nil) != (i == 2) {
			t.Errorf("device %d: got %+v, want %+v", i, g, w)
		}
	}
	if st, ok := PageState(got[2].Err); !ok || st != dump.PageExcluded {
		t.Errorf("eth1: error %v does not say the page is excluded", got[2].Err)
	}
}
