package kernel

import (
	"errors"
	"fmt"
	"net/netip"
)

// NetDevice is one network device of a namespace: a struct net_device
// (include/linux/netdevice.h) with the IPv4 addresses of its in_device
// (ip_ptr->ifa_list, struct in_ifaddr chained by ifa_next,
// include/linux/inetdevice.h) and the IPv6 addresses of its inet6_dev
// (ip6_ptr->addr_list, struct inet6_ifaddr linked by if_list,
// include/net/if_inet6.h), each in list order.
type NetDevice struct {
	Addr uint64
	Name string
	IPv4 []netip.Addr
	IPv6 []netip.Addr
	// Err is what could not be read of this device's addresses.
	Err error
}

// NetNamespace is the network namespace crash's net shows: PID 0's
// (init_task.nsproxy->net_ns), which is init_net; init_net itself when
// the task's nsproxy cannot be read.
func (k *Kernel) NetNamespace() (Value, error) {
	if t, err := k.Global("init_task"); err == nil {
		if ns, err := t.Member("nsproxy->net_ns"); err == nil {
			if v, err := ns.Deref(); err == nil {
				return v, nil
			}
		}
	}
	return k.Global("init_net")
}

// NetDevices lists the devices of the namespace ns (struct net) in the
// order of its dev_base_head list (net_device.dev_list).
func (k *Kernel) NetDevices(ns Value) ([]NetDevice, error) {
	head, err := ns.Member("dev_base_head")
	if err != nil {
		return nil, fmt.Errorf("network devices: %w", err)
	}
	var out []NetDevice
	for dev, err := range k.ListEntries(head.Address(), "struct net_device", "dev_list") {
		if err != nil {
			return out, fmt.Errorf("network devices of the namespace at %#x: %w", ns.Address(), err)
		}
		nd := NetDevice{Addr: dev.Address()}
		if m, err := dev.Member("name"); err != nil {
			nd.Err = err
		} else if nd.Name, err = m.CString(16); err != nil {
			nd.Err = err
		}
		v4, err4 := k.netdevIPv4(dev)
		v6, err6 := k.netdevIPv6(dev)
		nd.IPv4, nd.IPv6 = v4, v6
		nd.Err = errors.Join(nd.Err, err4, err6)
		out = append(out, nd)
	}
	return out, nil
}

// netdevIPv4 reads dev->ip_ptr->ifa_list's addresses (ifa_address, in
// network order).
func (k *Kernel) netdevIPv4(dev Value) ([]netip.Addr, error) {
	ip, err := dev.Member("ip_ptr")
	if err != nil {
		return nil, err
	}
	p, err := ip.Uint()
	if err != nil || p == 0 {
		return nil, err
	}
	in, err := ip.Deref()
	if err != nil {
		return nil, err
	}
	list, err := in.Member("ifa_list")
	if err != nil {
		return nil, err
	}
	a, err := list.Uint()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	seen := map[uint64]bool{}
	for a != 0 {
		if seen[a] || len(seen) >= maxListLen {
			return out, fmt.Errorf("in_ifaddr list of %s loops at %#x", in, a)
		}
		seen[a] = true
		ifa, err := k.ObjectOf(a, "struct in_ifaddr")
		if err != nil {
			return out, err
		}
		m, err := ifa.Member("ifa_address")
		if err != nil {
			return out, err
		}
		var b [4]byte
		if err := k.Read(b[:], m.Address()); err != nil {
			return out, fmt.Errorf("in_ifaddr at %#x: %w", a, err)
		}
		out = append(out, netip.AddrFrom4(b))
		if a, err = devMember(ifa, "ifa_next"); err != nil {
			return out, err
		}
	}
	return out, nil
}

// netdevIPv6 reads dev->ip6_ptr->addr_list's addresses.
func (k *Kernel) netdevIPv6(dev Value) ([]netip.Addr, error) {
	ip, err := dev.Member("ip6_ptr")
	if err != nil {
		// A kernel without IPv6 has no ip6_ptr.
		return nil, nil
	}
	p, err := ip.Uint()
	if err != nil || p == 0 {
		return nil, err
	}
	in6, err := ip.Deref()
	if err != nil {
		return nil, err
	}
	head, err := in6.Member("addr_list")
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for ifa, err := range k.ListEntries(head.Address(), "struct inet6_ifaddr", "if_list") {
		if err != nil {
			return out, err
		}
		m, err := ifa.Member("addr")
		if err != nil {
			return out, err
		}
		var b [16]byte
		if err := k.Read(b[:], m.Address()); err != nil {
			return out, fmt.Errorf("inet6_ifaddr at %#x: %w", ifa.Address(), err)
		}
		out = append(out, netip.AddrFrom16(b))
	}
	return out, nil
}
