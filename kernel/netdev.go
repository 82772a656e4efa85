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

// Neighbour is one entry of the IPv4 neighbour (ARP) cache: a struct
// neighbour (include/net/neighbour.h) of arp_tbl, with what crash's
// net -a shows of it and of its device.
type Neighbour struct {
	Addr    uint64
	IP      netip.Addr // primary_key, the first 4 bytes
	HA      []byte     // ha, as long as the device's addr_len
	State   uint8      // nud_state (NUD_* flags)
	Dev     uint64
	DevName string
	DevType uint16 // net_device.type: an ARPHRD_* value
	Err     error
}

// ARPNeighbours walks arp_tbl's hash table (neigh_table.nht, a
// neigh_hash_table of 1<<hash_shift buckets — hash_mask+1 in kernels
// that had that member) bucket by bucket, each bucket's chain by
// neighbour.next.
func (k *Kernel) ARPNeighbours() ([]Neighbour, error) {
	a, err := k.SymbolAddr("arp_tbl")
	if err != nil {
		return nil, err
	}
	tbl, err := k.ObjectOf(a, "struct neigh_table")
	if err != nil {
		return nil, err
	}
	nhtp, err := tbl.Member("nht")
	if err != nil {
		return nil, fmt.Errorf("arp_tbl: %w", err)
	}
	nht, err := nhtp.Deref()
	if err != nil {
		return nil, fmt.Errorf("arp_tbl.nht: %w", err)
	}
	var n uint64
	if shift, err := devMember(nht, "hash_shift"); err == nil {
		if shift > 30 {
			return nil, fmt.Errorf("arp_tbl.nht at %#x: hash_shift %d is not a table size", nht.Address(), shift)
		}
		n = 1 << shift
	} else if mask, err := devMember(nht, "hash_mask"); err == nil {
		n = mask&0xffffffff + 1
	} else {
		return nil, fmt.Errorf("arp_tbl.nht at %#x: neither hash_shift nor hash_mask: %w", nht.Address(), err)
	}
	buckets, err := devMember(nht, "hash_buckets")
	if err != nil {
		return nil, err
	}
	var out []Neighbour
	for i := uint64(0); i < n; i++ {
		p, err := k.ReadPointer(buckets + i*uint64(k.ptrSize))
		if err != nil {
			return out, fmt.Errorf("arp_tbl hash bucket %d at %#x: %w", i, buckets+i*uint64(k.ptrSize), err)
		}
		seen := map[uint64]bool{}
		for p != 0 && !seen[p] && len(out) < maxListLen {
			seen[p] = true
			nb, next := k.neighbour(p)
			out = append(out, nb)
			p = next
		}
	}
	return out, nil
}

// neighbour reads the struct neighbour at p and the next in its chain.
func (k *Kernel) neighbour(p uint64) (Neighbour, uint64) {
	nb := Neighbour{Addr: p}
	v, err := k.ObjectOf(p, "struct neighbour")
	if err != nil {
		nb.Err = err
		return nb, 0
	}
	next, err := devMember(v, "next")
	if err != nil {
		nb.Err = err
		return nb, 0
	}
	var errs []error
	if m, err := v.Member("primary_key"); err != nil {
		errs = append(errs, err)
	} else {
		var b [4]byte
		if err := k.Read(b[:], m.Address()); err != nil {
			errs = append(errs, fmt.Errorf("neighbour at %#x: primary_key: %w", p, err))
		}
		nb.IP = netip.AddrFrom4(b)
	}
	state, err := devMember(v, "nud_state")
	errs = append(errs, err)
	nb.State = uint8(state)
	if nb.Dev, err = devMember(v, "dev"); err != nil || nb.Dev == 0 {
		errs = append(errs, err)
	} else if dev, err := k.ObjectOf(nb.Dev, "struct net_device"); err != nil {
		errs = append(errs, err)
	} else {
		if m, err := dev.Member("name"); err == nil {
			nb.DevName, err = m.CString(16)
			errs = append(errs, err)
		} else {
			errs = append(errs, err)
		}
		typ, err1 := devMember(dev, "type")
		alen, err2 := devMember(dev, "addr_len")
		nb.DevType = uint16(typ)
		errs = append(errs, err1, err2)
		if ha, err := v.Member("ha"); err != nil {
			errs = append(errs, err)
		} else if b, err := ha.Bytes(); err != nil {
			errs = append(errs, err)
		} else {
			nb.HA = b[:min(int(alen&0xff), len(b))]
		}
	}
	nb.Err = errors.Join(errs...)
	return nb, next
}

// TaskNetNamespace is the network namespace of the task_struct at task
// (task->nsproxy->net_ns). An exited task has no nsproxy: the error says
// so.
func (k *Kernel) TaskNetNamespace(task uint64) (Value, error) {
	t, err := k.ObjectOf(task, "struct task_struct")
	if err != nil {
		return Value{}, err
	}
	nsp, err := t.Member("nsproxy")
	if err != nil {
		return Value{}, err
	}
	if p, err := nsp.Uint(); err != nil {
		return Value{}, err
	} else if p == 0 {
		return Value{}, fmt.Errorf("task %#x has no nsproxy (it has exited)", task)
	}
	ns, err := nsp.Member("net_ns")
	if err != nil {
		return Value{}, err
	}
	return ns.Deref()
}

// Socket is one open socket of a task: the fd, its struct socket (the
// socket half of the socket_alloc whose vfs_inode the file's inode is)
// and struct sock, and what crash's net -s shows of the sock.
type Socket struct {
	FD               int
	Socket, Sock     uint64
	Family, Type     uint16 // sk_family (AF_*), sk_type (SOCK_*)
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Err              error
}

// TaskSockets lists the sockets among the open files of the task_struct
// at task: files->fdt's fd[] for each bit of open_fds below max_fds,
// whose inode is a socket (S_IFSOCK). A task without files has none.
func (k *Kernel) TaskSockets(task uint64) ([]Socket, error) {
	t, err := k.ObjectOf(task, "struct task_struct")
	if err != nil {
		return nil, err
	}
	files, err := devMember(t, "files")
	if err != nil || files == 0 {
		return nil, err
	}
	fv, err := k.ObjectOf(files, "struct files_struct")
	if err != nil {
		return nil, err
	}
	fdtp, err := devMember(fv, "fdt")
	if err != nil || fdtp == 0 {
		return nil, err
	}
	fdt, err := k.ObjectOf(fdtp, "struct fdtable")
	if err != nil {
		return nil, err
	}
	maxFDs, err1 := devMember(fdt, "max_fds")
	fds, err2 := devMember(fdt, "fd")
	open, err3 := devMember(fdt, "open_fds")
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	if maxFDs > 1<<20 {
		return nil, fmt.Errorf("fdtable at %#x: max_fds %d", fdtp, maxFDs)
	}
	var out []Socket
	for i := uint64(0); i < maxFDs; i += 64 {
		word, err := k.ReadPointer(open + i/8)
		if err != nil {
			return out, fmt.Errorf("open_fds of the fdtable at %#x: %w", fdtp, err)
		}
		for b := uint64(0); word != 0 && i+b < maxFDs; b, word = b+1, word>>1 {
			if word&1 == 0 {
				continue
			}
			fd := int(i + b)
			file, err := k.ReadPointer(fds + uint64(fd*k.ptrSize))
			if err != nil {
				return out, fmt.Errorf("fd %d: %w", fd, err)
			}
			if file == 0 {
				continue
			}
			s, ok := k.fileSocket(file)
			if ok {
				s.FD = fd
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// fileSocket reads the socket behind the file at file; ok is false when
// the file is not a socket (or its dentry or inode is unset).
func (k *Kernel) fileSocket(file uint64) (Socket, bool) {
	var s Socket
	f, err := k.ObjectOf(file, "struct file")
	if err != nil {
		return s, false
	}
	dentry, err := devMember(f, "f_path.dentry")
	if err != nil || dentry == 0 {
		return s, false
	}
	dv, err := k.ObjectOf(dentry, "struct dentry")
	if err != nil {
		return s, false
	}
	inode, err := devMember(dv, "d_inode")
	if err != nil || inode == 0 {
		return s, false
	}
	iv, err := k.ObjectOf(inode, "struct inode")
	if err != nil {
		return s, false
	}
	mode, err := devMember(iv, "i_mode")
	if err != nil || mode&0o170000 != 0o140000 {
		return s, false
	}
	sa, err := k.ContainerOf(inode, "struct socket_alloc", "vfs_inode")
	if err != nil {
		s.Err = err
		return s, true
	}
	sock, err := sa.Member("socket")
	if err != nil {
		s.Err = err
		return s, true
	}
	s.Socket = sock.Address()
	if s.Sock, err = devMember(sock, "sk"); err != nil || s.Sock == 0 {
		s.Err = err
		return s, true
	}
	is, err := k.ObjectOf(s.Sock, "struct inet_sock")
	if err != nil {
		s.Err = err
		return s, true
	}
	family, err1 := devMember(is, "sk.__sk_common.skc_family")
	typ, err2 := devMember(is, "sk.sk_type")
	dport, err3 := devMember(is, "sk.__sk_common.skc_dport")
	sport, err4 := devMember(is, "inet_sport")
	s.Family, s.Type = uint16(family), uint16(typ)
	// The ports are big-endian in memory.
	s.DstPort, s.SrcPort = uint16(dport>>8|dport<<8), uint16(sport>>8|sport<<8)
	s.Err = errors.Join(err1, err2, err3, err4)
	read := func(path string, n int) netip.Addr {
		m, err := is.Member(path)
		if err != nil {
			s.Err = errors.Join(s.Err, err)
			return netip.Addr{}
		}
		b := make([]byte, n)
		if err := k.Read(b, m.Address()); err != nil {
			s.Err = errors.Join(s.Err, err)
			return netip.Addr{}
		}
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	switch s.Family {
	case 2: // AF_INET
		s.Src, s.Dst = read("sk.__sk_common.skc_rcv_saddr", 4), read("sk.__sk_common.skc_daddr", 4)
	case 10: // AF_INET6
		s.Src, s.Dst = read("sk.__sk_common.skc_v6_rcv_saddr", 16), read("sk.__sk_common.skc_v6_daddr", 16)
	}
	return s, true
}
