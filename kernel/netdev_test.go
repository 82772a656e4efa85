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

// TestARPNeighboursSynthetic: arp_tbl's buckets in order, each chain by
// next, with the device's name, type and address length.
func TestARPNeighboursSynthetic(t *testing.T) {
	vm := fakeVM{}
	const base = 0xffff888000200000
	obj := func(i int) uint64 { return base + uint64(i)*0x100 }
	for i := 0; i < 10; i++ {
		vm.write(obj(i), make([]byte, 0x100))
	}
	const tbl = 0xffffffff82010000
	vm.write(tbl, make([]byte, 64))
	vm.put64(tbl+8, obj(0))       // nht
	vm.put64(obj(0), obj(1))      // hash_buckets
	vm.write(obj(0)+8, []byte{1}) // hash_shift: 2 buckets
	vm.put64(obj(1)+8, obj(2))    // bucket 1: n1 → n2; bucket 0 empty
	vm.put64(obj(2), obj(3))
	neigh := func(at uint64, ip []byte, ha []byte, state byte, dev uint64) {
		vm.write(at+16, []byte{state})
		vm.write(at+24, ha)
		vm.put64(at+56, dev)
		vm.write(at+64, ip)
	}
	neigh(obj(2), []byte{10, 0, 2, 2}, []byte{0x52, 0x54, 0, 0x12, 0x35, 2, 0xaa}, 0x02, obj(4))
	neigh(obj(3), []byte{0, 0, 0, 0}, nil, 0xc0, obj(5))
	vm.write(obj(4), []byte("eth0\x00"))
	vm.write(obj(4)+80, []byte{1, 0, 6})
	vm.write(obj(5), []byte("lo\x00"))
	vm.write(obj(5)+80, []byte{0x04, 0x03, 6}) // ARPHRD_LOOPBACK
	k, err := New(nil, fakeSyms{"arp_tbl": tbl}, devTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.ARPNeighbours()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	if g := got[0]; g.Addr != obj(2) || g.IP.String() != "10.0.2.2" || string(g.HA) != "\x52\x54\x00\x12\x35\x02" ||
		g.State != 2 || g.DevName != "eth0" || g.DevType != 1 || g.Err != nil {
		t.Errorf("first: %+v", g)
	}
	if g := got[1]; g.Addr != obj(3) || g.IP.String() != "0.0.0.0" || len(g.HA) != 6 || g.State != 0xc0 ||
		g.DevName != "lo" || g.DevType != 772 || g.Err != nil {
		t.Errorf("second: %+v", g)
	}
}
