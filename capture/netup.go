package capture

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// NetConfig is what the capture kernel needs to reach a remote target,
// recorded on the running machine when the capture initramfs is built
// (RecordNetConfig) and applied by salvage as PID 1 (BringUp).
type NetConfig struct {
	// Host is the target's host as configured; TargetIP the IPv4 address
	// it resolved to when recorded (the capture kernel has no resolver).
	Host     string `json:"host"`
	TargetIP string `json:"target_ip"`
	// Interface is the production name of the interface whose route
	// reaches the target; MAC finds it in the capture kernel, where it
	// may be named differently (no udev renames it).
	Interface string `json:"interface"`
	MAC       string `json:"mac"`
	MTU       int    `json:"mtu,omitempty"`
	// Modules are the kernel modules of the interface's device and its
	// parents (e.g. virtio_net, virtio_pci), innermost first.
	Modules []string `json:"modules,omitempty"`
	// DHCP is set when the production interface got its address by
	// DHCP; Address (CIDR) and Gateway are what it had, used as they are
	// when DHCP is off or gets no answer (the lease is still ours: the
	// machine crashed a moment ago).
	DHCP    bool   `json:"dhcp"`
	Address string `json:"address"`
	Gateway string `json:"gateway,omitempty"`
	// Nameservers are the running machine's, recorded when Host is a
	// name (for messages; the capture kernel dials TargetIP).
	Nameservers []string `json:"nameservers,omitempty"`
}

// route is one line of /proc/net/route.
type route struct {
	iface            string
	dst, gw, mask    net.IP
	flags, metric    uint32
	prefixLen, index int
}

// parseHexIP reads /proc/net/route's address: 8 hex digits of the
// 32-bit value in host (little-endian on amd64) order.
func parseHexIP(s string) (net.IP, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return nil, fmt.Errorf("bad address %q", s)
	}
	v := binary.BigEndian.Uint32(b)
	ip := make(net.IP, 4)
	binary.LittleEndian.PutUint32(ip, v)
	return ip, nil
}

// readRoutes parses /proc/net/route (the kernel's ipv4 FIB as
// fib_route_seq_show prints it: Iface Destination Gateway Flags RefCnt
// Use Metric Mask MTU Window IRTT).
func readRoutes(file string) ([]route, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rs []route
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fl := strings.Fields(sc.Text())
		if n == 1 || len(fl) < 8 {
			continue
		}
		var r route
		var errs [3]error
		r.iface = fl[0]
		r.dst, errs[0] = parseHexIP(fl[1])
		r.gw, errs[1] = parseHexIP(fl[2])
		r.mask, errs[2] = parseHexIP(fl[7])
		if err := errors.Join(errs[:]...); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		fv, err1 := strconv.ParseUint(fl[3], 16, 32)
		mv, err2 := strconv.ParseUint(fl[6], 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad flags or metric", file, n)
		}
		r.flags, r.metric = uint32(fv), uint32(mv)
		r.prefixLen, _ = net.IPMask(r.mask).Size()
		r.index = n
		rs = append(rs, r)
	}
	return rs, sc.Err()
}

const (
	rtfUp      = 0x1 // RTF_UP, include/uapi/linux/route.h
	rtfGateway = 0x2 // RTF_GATEWAY
)

// bestRoute is the route the kernel would pick for ip: the longest
// prefix, then the lowest metric.
func bestRoute(rs []route, ip net.IP) (route, bool) {
	var best route
	found := false
	for _, r := range rs {
		if r.flags&rtfUp == 0 || !ip.Mask(net.IPMask(r.mask)).Equal(r.dst) {
			continue
		}
		if !found || r.prefixLen > best.prefixLen || r.prefixLen == best.prefixLen && r.metric < best.metric {
			best, found = r, true
		}
	}
	return best, found
}

// localAddrs lists the addresses /proc/net/fib_trie marks "/32 host
// LOCAL" (the machine's own addresses: the local table's entries,
// net/ipv4/fib_trie.c fib_trie_seq_show).
func localAddrs(file string) ([]net.IP, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []net.IP
	seen := map[string]bool{}
	var last net.IP
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "|-- "):
			last = net.ParseIP(strings.TrimPrefix(l, "|-- ")).To4()
		case strings.HasPrefix(l, "/32 host LOCAL") && last != nil:
			if !seen[last.String()] {
				seen[last.String()] = true
				out = append(out, last)
			}
		}
	}
	return out, sc.Err()
}

// deviceModules walks the interface's device and its parents in sysfs
// (under root) and names the kernel modules bound to them: for a virtio
// NIC virtio_net, then virtio_pci. Built-in drivers have no module link.
func deviceModules(root, iface string) ([]string, error) {
	dev, err := filepath.EvalSymlinks(filepath.Join(root, "sys/class/net", iface, "device"))
	if err != nil {
		return nil, fmt.Errorf("interface %s has no device in /sys/class/net (a bridge, bond, VLAN or tunnel?): salvage brings up plain interfaces only; route the target through one", iface)
	}
	sysRoot, err := filepath.EvalSymlinks(filepath.Join(root, "sys"))
	if err != nil {
		return nil, err
	}
	var mods []string
	seen := map[string]bool{}
	for d := dev; strings.HasPrefix(d, sysRoot+"/devices/"); d = filepath.Dir(d) {
		m, err := filepath.EvalSymlinks(filepath.Join(d, "driver", "module"))
		if err != nil {
			continue
		}
		if name := filepath.Base(m); !seen[name] {
			seen[name] = true
			mods = append(mods, name)
		}
	}
	return mods, nil
}

// dhcpLeased says whether a DHCP client holds a lease for iface: the
// lease files of systemd-networkd, ISC dhclient (ifupdown) and
// NetworkManager, under root.
func dhcpLeased(root, iface string) bool {
	isFile := func(rel string) bool {
		fi, err := os.Stat(filepath.Join(root, rel))
		return err == nil && !fi.IsDir()
	}
	if idx, err := os.ReadFile(filepath.Join(root, "sys/class/net", iface, "ifindex")); err == nil {
		if isFile("run/systemd/netif/leases/" + strings.TrimSpace(string(idx))) {
			return true
		}
	}
	for _, f := range []string{"var/lib/dhcp/dhclient." + iface + ".leases", "run/dhclient." + iface + ".pid", "run/dhclient-" + iface + ".pid"} {
		if isFile(f) {
			return true
		}
	}
	if ms, _ := filepath.Glob(filepath.Join(root, "var/lib/NetworkManager/*-"+iface+".lease")); len(ms) > 0 {
		return true
	}
	ms, _ := filepath.Glob(filepath.Join(root, "var/lib/dhcp/dhclient*.leases"))
	for _, m := range ms {
		if b, err := os.ReadFile(m); err == nil && strings.Contains(string(b), `interface "`+iface+`"`) {
			return true
		}
	}
	return false
}

// RecordNetConfig records how the running machine (under root) reaches
// host: the route and interface, the interface's MAC, MTU, address,
// driver modules and whether it used DHCP. resolve looks a name up (nil:
// the system resolver). IPv4 only.
func RecordNetConfig(root, host string, resolve func(string) ([]net.IP, error)) (*NetConfig, error) {
	c := &NetConfig{Host: host}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil {
		if resolve == nil {
			resolve = net.LookupIP
		}
		ips, err := resolve(host)
		if err != nil {
			return nil, fmt.Errorf("resolving the target %s: %v", host, err)
		}
		for _, i := range ips {
			if i.To4() != nil {
				ip = i
				break
			}
		}
		if ip == nil {
			return nil, fmt.Errorf("the target %s has no IPv4 address (%v): IPv6 targets are not supported yet", host, ips)
		}
		c.Nameservers = nameservers(filepath.Join(root, "etc/resolv.conf"))
	}
	if ip.To4() == nil {
		return nil, fmt.Errorf("the target %s is IPv6: IPv6 targets are not supported yet", host)
	}
	ip = ip.To4()
	if ip.IsLoopback() {
		return nil, fmt.Errorf("the target %s is this machine's loopback: the capture kernel cannot reach it; give the target's network address", host)
	}
	c.TargetIP = ip.String()
	routeFile := filepath.Join(root, "proc/net/route")
	rs, err := readRoutes(routeFile)
	if err != nil {
		return nil, fmt.Errorf("reading routes: %v", err)
	}
	r, ok := bestRoute(rs, ip)
	if !ok {
		return nil, fmt.Errorf("no route to the target %s in %s", ip, routeFile)
	}
	c.Interface = r.iface
	if r.flags&rtfGateway != 0 {
		c.Gateway = r.gw.String()
	}
	sysNet := filepath.Join(root, "sys/class/net", r.iface)
	mac, err := os.ReadFile(filepath.Join(sysNet, "address"))
	if err != nil {
		return nil, fmt.Errorf("interface %s: %v", r.iface, err)
	}
	c.MAC = strings.TrimSpace(string(mac))
	if b, err := os.ReadFile(filepath.Join(sysNet, "mtu")); err == nil {
		c.MTU, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if c.Modules, err = deviceModules(root, r.iface); err != nil {
		return nil, err
	}
	// The address: the machine's own address inside the on-link subnet
	// of that interface.
	locals, err := localAddrs(filepath.Join(root, "proc/net/fib_trie"))
	if err != nil {
		return nil, fmt.Errorf("reading addresses: %v", err)
	}
	var subnets []route
	for _, s := range rs {
		if s.iface == r.iface && s.flags&rtfGateway == 0 && s.prefixLen > 0 {
			subnets = append(subnets, s)
		}
	}
	sort.Slice(subnets, func(i, j int) bool { return subnets[i].prefixLen > subnets[j].prefixLen })
	gw := net.ParseIP(c.Gateway)
	for _, s := range subnets {
		if gw != nil && !gw.Mask(net.IPMask(s.mask)).Equal(s.dst) {
			continue
		}
		if gw == nil && !ip.Mask(net.IPMask(s.mask)).Equal(s.dst) {
			continue
		}
		for _, l := range locals {
			if l.Mask(net.IPMask(s.mask)).Equal(s.dst) {
				c.Address = fmt.Sprintf("%s/%d", l, s.prefixLen)
				break
			}
		}
		if c.Address != "" {
			break
		}
	}
	if c.Address == "" {
		return nil, fmt.Errorf("interface %s has no IPv4 address on the subnet that reaches %s", r.iface, ip)
	}
	c.DHCP = dhcpLeased(root, r.iface)
	return c, nil
}

// nameservers reads resolv.conf's nameserver lines.
func nameservers(file string) []string {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var ns []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "nameserver" {
			ns = append(ns, f[1])
		}
	}
	return ns
}

// BringUp configures the interface of c in the capture kernel: found by
// MAC (else by name), set up, addressed by DHCP when the production
// machine used it (falling back to the recorded address), with the
// route to the target. It returns when the kernel has a route to the
// target; the modules must be loaded already.
func BringUp(ctx context.Context, c *NetConfig, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	link, err := findLink(ctx, c)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	if c.MTU > 0 && link.Attrs().MTU != c.MTU {
		if err := netlink.LinkSetMTU(link, c.MTU); err != nil {
			logf("net: mtu %d on %s: %v", c.MTU, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("net: setting %s up: %v", name, err)
	}
	addr, gw := c.Address, c.Gateway
	if c.DHCP {
		if a, g, err := dhcpLease(ctx, name); err != nil {
			logf("net: DHCP on %s: %v; using the recorded %s", name, err, c.Address)
		} else {
			logf("net: DHCP on %s: %s, router %s", name, a, g)
			addr, gw = a, g
		}
	}
	a, err := netlink.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("net: address %q: %v", addr, err)
	}
	if err := netlink.AddrReplace(link, a); err != nil {
		return fmt.Errorf("net: adding %s to %s: %v", addr, name, err)
	}
	target := net.ParseIP(c.TargetIP)
	via := "the local subnet"
	if gw != "" && !a.IPNet.Contains(target) {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP(gw)}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("net: default route via %s on %s: %v", gw, name, err)
		}
		via = gw
	}
	rs, err := netlink.RouteGet(target)
	if err != nil || len(rs) == 0 {
		return fmt.Errorf("net: no route to the target %s after configuring %s: %v", target, name, err)
	}
	logf("net: %s (%s) up with %s, target %s via %s", name, link.Attrs().HardwareAddr, addr, target, via)
	return nil
}

// findLink waits (the driver may still be probing) for the interface
// with c's MAC, else c's name.
func findLink(ctx context.Context, c *NetConfig) (netlink.Link, error) {
	mac, _ := net.ParseMAC(c.MAC)
	deadline := time.Now().Add(30 * time.Second)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("net: listing interfaces: %v", err)
		}
		var names []string
		for _, l := range links {
			if mac != nil && l.Attrs().HardwareAddr.String() == mac.String() {
				return l, nil
			}
			names = append(names, l.Attrs().Name+" "+l.Attrs().HardwareAddr.String())
		}
		for _, l := range links {
			if l.Attrs().Name == c.Interface {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("net: no interface with MAC %s or name %s (there are: %s): is its driver (%s) in the image?", c.MAC, c.Interface, strings.Join(names, ", "), strings.Join(c.Modules, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dhcpLease asks for an address on iface: address (CIDR) and router.
func dhcpLease(ctx context.Context, iface string) (string, string, error) {
	// The DHCP library draws its transaction IDs from getrandom(2), which
	// in a capture kernel without a hardware RNG can wait minutes for the
	// random pool: an ID needs no secrecy, so let it read /dev/urandom.
	os.Setenv("UROOT_NOHWRNG", "1")
	cl, err := nclient4.New(iface)
	if err != nil {
		return "", "", err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := cl.Request(ctx)
	if err != nil {
		return "", "", err
	}
	ones, _ := l.ACK.SubnetMask().Size()
	if ones == 0 {
		ones = 24
	}
	gw := ""
	if r := l.ACK.Router(); len(r) > 0 {
		gw = r[0].String()
	}
	return fmt.Sprintf("%s/%d", l.ACK.YourIPAddr, ones), gw, nil
}
