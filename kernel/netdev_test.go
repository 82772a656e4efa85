package kernel

import (
	"net/netip"
	"strings"
	"testing"

	"salvage/debuginfo"
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

// TestTaskSocketsSynthetic: only the open fds (open_fds bits below
// max_fds) whose inode is a socket, with the inet_sock's addresses and
// ports (big-endian in memory); a task without files has no sockets.
func TestTaskSocketsSynthetic(t *testing.T) {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	ushort := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned short", Size: 2}
	ptr := func(t *debuginfo.Type) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: t}
	}
	st := func(name string, size int64, m ...debuginfo.Member) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindStruct, Name: name, Size: size, Members: m}
	}
	bytes := func(n int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindArray, Elem: &debuginfo.Type{Kind: debuginfo.KindInt, Name: "u8", Size: 1}, Len: n, Size: n}
	}
	inode := st("inode", 64, debuginfo.Member{Name: "i_mode", Type: ushort})
	dentry := st("dentry", 64, debuginfo.Member{Name: "d_inode", Type: ptr(inode), Offset: 48})
	path := st("path", 16, debuginfo.Member{Name: "dentry", Type: ptr(dentry), Offset: 8})
	file := st("file", 64, debuginfo.Member{Name: "f_path", Type: path, Offset: 16})
	fdt := st("fdtable", 32, debuginfo.Member{Name: "max_fds", Type: uint}, debuginfo.Member{Name: "fd", Type: ptr(ptr(file)), Offset: 8},
		debuginfo.Member{Name: "open_fds", Type: ptr(ulong), Offset: 16})
	files := st("files_struct", 32, debuginfo.Member{Name: "fdt", Type: ptr(fdt), Offset: 8})
	task := st("task_struct", 64, debuginfo.Member{Name: "files", Type: ptr(files), Offset: 40})
	anon := &debuginfo.Type{Kind: debuginfo.KindStruct, Size: 8, Members: []debuginfo.Member{{Name: "skc_daddr", Type: bytes(4)}, {Name: "skc_rcv_saddr", Type: bytes(4), Offset: 4}}}
	common := st("sock_common", 64, debuginfo.Member{Type: anon}, debuginfo.Member{Name: "skc_dport", Type: ushort, Offset: 12},
		debuginfo.Member{Name: "skc_family", Type: ushort, Offset: 16}, debuginfo.Member{Name: "skc_v6_daddr", Type: bytes(16), Offset: 24},
		debuginfo.Member{Name: "skc_v6_rcv_saddr", Type: bytes(16), Offset: 40})
	sock := st("sock", 96, debuginfo.Member{Name: "__sk_common", Type: common}, debuginfo.Member{Name: "sk_type", Type: ushort, Offset: 64})
	inet := st("inet_sock", 128, debuginfo.Member{Name: "sk", Type: sock}, debuginfo.Member{Name: "inet_sport", Type: ushort, Offset: 100})
	socket := st("socket", 48, debuginfo.Member{Name: "sk", Type: ptr(sock), Offset: 24})
	alloc := st("socket_alloc", 128, debuginfo.Member{Name: "socket", Type: socket}, debuginfo.Member{Name: "vfs_inode", Type: inode, Offset: 64})
	types := fakeTypes{"struct inode": inode, "struct dentry": dentry, "struct file": file, "struct fdtable": fdt,
		"struct files_struct": files, "struct task_struct": task, "struct sock": sock, "struct inet_sock": inet,
		"struct socket": socket, "struct socket_alloc": alloc}

	vm := fakeVM{}
	const base = 0xffff888000400000
	o := func(i int) uint64 { return base + uint64(i)*0x100 }
	for i := 0; i < 24; i++ {
		vm.write(o(i), make([]byte, 0x100))
	}
	tsk, noFiles := o(0), o(1)
	vm.put64(tsk+40, o(2))
	vm.put64(o(2)+8, o(3))
	vm.write(o(3), []byte{70}) // max_fds 70: fd 69 counts, not 70
	vm.put64(o(3)+8, o(4))
	vm.put64(o(3)+16, o(5))
	vm.put64(o(5), 1<<1|1<<3|1<<5)
	vm.put64(o(5)+8, 1<<5|1<<6) // fds 69, 70
	fileAt := func(fd int, f uint64, mode uint16, ino uint64) {
		vm.put64(o(4)+uint64(fd)*8, f)
		vm.put64(f+16+8, f+0x80) // f_path.dentry
		vm.put64(f+0x80+48, ino)
		vm.write(ino, []byte{byte(mode), byte(mode >> 8)})
	}
	fileAt(1, o(6), 0o100644, o(7)) // a regular file
	sa := o(8)                      // socket_alloc: socket, then vfs_inode at +64
	fileAt(3, o(10), 0o140777, sa+64)
	sk := o(12)
	vm.put64(sa+24, sk)
	vm.write(sk, []byte{127, 0, 0, 1, 127, 0, 0, 1}) // daddr, rcv_saddr
	vm.write(sk+12, []byte{0x1e, 0x61})              // dport 7777
	vm.write(sk+16, []byte{2})                       // AF_INET
	vm.write(sk+64, []byte{1})                       // SOCK_STREAM
	vm.write(sk+100, []byte{0xa7, 0x2c})             // sport 42796
	// fd 5 is open but NULL, fd 69 a socket of its own, fd 70 past max_fds.
	sa2, sk2 := o(14), o(16)
	fileAt(69, o(18), 0o140777, sa2+64)
	vm.put64(sa2+24, sk2)
	vm.write(sk2+16, []byte{10})
	vm.write(sk2+40, []byte{15: 1})
	vm.write(sk2+64, []byte{2})
	fileAt(70, o(20), 0o140777, sa+64)

	k, err := New(nil, fakeSyms{}, types, vm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.TaskSockets(tsk)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	if g := got[0]; g.FD != 3 || g.Socket != sa || g.Sock != sk || g.Family != 2 || g.Type != 1 ||
		g.Src.String() != "127.0.0.1" || g.SrcPort != 42796 || g.Dst.String() != "127.0.0.1" || g.DstPort != 7777 || g.Err != nil {
		t.Errorf("fd 3: %+v", g)
	}
	if g := got[1]; g.FD != 69 || g.Sock != sk2 || g.Family != 10 || g.Type != 2 || g.Src.String() != "::1" || g.Err != nil {
		t.Errorf("fd 69: %+v", g)
	}
	if s, err := k.TaskSockets(noFiles); err != nil || len(s) != 0 {
		t.Errorf("a task without files: %+v, %v", s, err)
	}
}
