package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestRecordNetConfig reads testdata/net-qemu: a QEMU guest's /sys and
// /proc with a virtio NIC (ens3, DHCP by systemd-networkd, default route
// via 10.0.2.2), an e1000 NIC with a static address (ens4, 172.16/16 via
// a router) and a bridge (br0).
func TestRecordNetConfig(t *testing.T) {
	const root = "testdata/net-qemu"
	resolve := func(h string) ([]net.IP, error) {
		switch h {
		case "backup.example.org":
			return []net.IP{net.ParseIP("2001:db8::1"), net.ParseIP("192.0.2.10")}, nil
		case "v6only.example.org":
			return []net.IP{net.ParseIP("2001:db8::1")}, nil
		}
		return nil, errors.New("no such host")
	}
	virtio := []string{"virtio_net", "virtio_pci"}
	for _, c := range []struct {
		host string
		want *NetConfig
		err  string
	}{
		{"10.0.2.2", &NetConfig{Host: "10.0.2.2", TargetIP: "10.0.2.2", Interface: "ens3", MAC: "52:54:00:12:34:56", MTU: 1500,
			Modules: virtio, DHCP: true, Address: "10.0.2.15/24"}, ""},
		{"192.0.2.10", &NetConfig{Host: "192.0.2.10", TargetIP: "192.0.2.10", Interface: "ens3", MAC: "52:54:00:12:34:56", MTU: 1500,
			Modules: virtio, DHCP: true, Address: "10.0.2.15/24", Gateway: "10.0.2.2"}, ""},
		{"backup.example.org", &NetConfig{Host: "backup.example.org", TargetIP: "192.0.2.10", Interface: "ens3", MAC: "52:54:00:12:34:56", MTU: 1500,
			Modules: virtio, DHCP: true, Address: "10.0.2.15/24", Gateway: "10.0.2.2", Nameservers: []string{"10.0.2.3"}}, ""},
		{"172.16.9.9", &NetConfig{Host: "172.16.9.9", TargetIP: "172.16.9.9", Interface: "ens4", MAC: "52:54:00:ab:cd:ef", MTU: 9000,
			Modules: []string{"e1000"}, Address: "172.16.5.7/24", Gateway: "172.16.5.1"}, ""},
		{"172.16.5.20", &NetConfig{Host: "172.16.5.20", TargetIP: "172.16.5.20", Interface: "ens4", MAC: "52:54:00:ab:cd:ef", MTU: 9000,
			Modules: []string{"e1000"}, Address: "172.16.5.7/24"}, ""},
		{"10.10.3.3", nil, "interface br0 has no device"},
		{"127.0.0.1", nil, "loopback"},
		{"v6only.example.org", nil, "IPv6 targets are not supported"},
		{"fe80::1", nil, "IPv6"},
		{"nowhere.example.org", nil, "resolving the target nowhere.example.org"},
	} {
		got, err := RecordNetConfig(root, c.host, resolve)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", c.host, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.host, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.host, got, c.want)
		}
	}
	if _, err := RecordNetConfig(t.TempDir(), "10.0.2.2", nil); err == nil || !strings.Contains(err.Error(), "route") {
		t.Errorf("empty root: %v", err)
	}
}

func TestParseHexIP(t *testing.T) {
	for in, want := range map[string]string{"0202000A": "10.0.2.2", "00FFFFFF": "255.255.255.0", "00000000": "0.0.0.0", "010510AC": "172.16.5.1"} {
		if ip, err := parseHexIP(in); err != nil || ip.String() != want {
			t.Errorf("parseHexIP(%s) = %v %v, want %s", in, ip, err, want)
		}
	}
	for _, bad := range []string{"", "0202000", "XYZW0000", "0202000A00"} {
		if _, err := parseHexIP(bad); err == nil {
			t.Errorf("parseHexIP(%q) accepted", bad)
		}
	}
}

// TestBringUpInNetns applies a NetConfig for real, with netlink, in a
// new network namespace of the test's own thread (the machine's network
// is untouched): lo stands for the NIC (this kernel has no dummy or veth
// driver), found by name since it has no MAC; the address and the route via the
// gateway must then be in the kernel's tables.
func TestBringUpInNetns(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Fatal("needs root (for a network namespace): run the tests as root, as make test does")
	}
	errc := make(chan error, 1)
	logs := make(chan string, 16)
	go func() {
		// The namespace belongs to this thread, which is never unlocked:
		// it exits with the goroutine, and the namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		c := &NetConfig{Host: "192.0.2.10", TargetIP: "192.0.2.10", Interface: "lo", MAC: "52:54:00:12:34:56",
			Address: "10.77.0.15/24", Gateway: "10.77.0.2"}
		err := BringUp(context.Background(), c, func(f string, a ...any) {
			select {
			case logs <- f:
			default:
			}
		})
		if err != nil {
			errc <- err
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			errc <- err
			return
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			errc <- errors.New("lo is not up")
			return
		}
		addrs, _ := netlink.AddrList(lo, netlink.FAMILY_V4)
		found := false
		for _, a := range addrs {
			found = found || a.IPNet.String() == "10.77.0.15/24"
		}
		if !found {
			errc <- errors.New("the address is missing: " + netlinkAddrs(addrs))
			return
		}
		// (RouteGet answers without the gateway on lo, so the table is
		// read instead.)
		rs, err := netlink.RouteList(lo, netlink.FAMILY_V4)
		viaGW := false
		for _, r := range rs {
			viaGW = viaGW || (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(net.ParseIP("10.77.0.2"))
		}
		if err != nil || !viaGW {
			errc <- fmt.Errorf("no default route via the gateway: %+v %v", rs, err)
			return
		}
		// Again: idempotent (the capture retries).
		errc <- BringUp(context.Background(), c, nil)
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func netlinkAddrs(as []netlink.Addr) string {
	var s []string
	for _, a := range as {
		s = append(s, a.IPNet.String())
	}
	return strings.Join(s, " ")
}
