package kernel

import (
	"encoding/binary"
	"strings"
	"testing"

	"salvage/debuginfo"
)

// devTestTypes builds the device and network structures with the
// members the analyzer reads, at made-up offsets (the code must take
// them from the types), and no variable types: BTF's case, where the
// hash tables' length falls back to 255.
func devTestTypes() fakeTypes {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	uint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	sint := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "int", Size: 4, Encoding: debuginfo.EncSigned}
	char := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "char", Size: 1, Encoding: debuginfo.EncChar}
	chars := func(n int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindArray, Elem: char, Len: n, Size: n}
	}
	ptr := func(t *debuginfo.Type) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8, Elem: t}
	}
	st := func(name string, size int64) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindStruct, Name: name, Size: size}
	}
	fops := st("file_operations", 256)
	lh := st("list_head", 16)
	lh.Members = []debuginfo.Member{{Name: "next", Type: ptr(lh)}, {Name: "prev", Type: ptr(lh), Offset: 8}}

	cdev := st("cdev", 128)
	cdev.Members = []debuginfo.Member{{Name: "ops", Type: ptr(fops), Offset: 72}}
	cds := st("char_device_struct", 104)
	cds.Members = []debuginfo.Member{{Name: "next", Type: ptr(cds)}, {Name: "major", Type: uint, Offset: 8},
		{Name: "baseminor", Type: uint, Offset: 12}, {Name: "minorct", Type: sint, Offset: 16},
		{Name: "name", Type: chars(64), Offset: 20}, {Name: "cdev", Type: ptr(cdev), Offset: 88}}
	probe := st("probe", 56)
	probe.Members = []debuginfo.Member{{Name: "next", Type: ptr(probe)}, {Name: "dev", Type: uint, Offset: 8},
		{Name: "range", Type: ulong, Offset: 16}, {Name: "data", Type: ptr(char), Offset: 48}}
	kobjMap := st("kobj_map", 255*8+8)
	kobjMap.Members = []debuginfo.Member{{Name: "probes", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: ptr(probe), Len: 255, Size: 255 * 8}}}

	bmn := st("blk_major_name", 32)
	bmn.Members = []debuginfo.Member{{Name: "next", Type: ptr(bmn)}, {Name: "major", Type: sint, Offset: 8}, {Name: "name", Type: chars(16), Offset: 12}}
	xarray := st("xarray", 16)
	xarray.Members = []debuginfo.Member{{Name: "xa_head", Type: ptr(char), Offset: 8}}
	xaNode := st("xa_node", 40+64*8)
	xaNode.Members = []debuginfo.Member{{Name: "slots", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: ptr(char), Len: 64, Size: 512}, Offset: 40}}
	sbWord := st("sbitmap_word", 128)
	sbWord.Members = []debuginfo.Member{{Name: "word", Type: ulong}, {Name: "cleared", Type: ulong, Offset: 64}}
	sbitmap := st("sbitmap", 64)
	sbitmap.Members = []debuginfo.Member{{Name: "depth", Type: uint}, {Name: "shift", Type: uint, Offset: 4},
		{Name: "map_nr", Type: uint, Offset: 8}, {Name: "map", Type: ptr(sbWord), Offset: 16}}
	sbq := st("sbitmap_queue", 64)
	sbq.Members = []debuginfo.Member{{Name: "sb", Type: sbitmap}}
	request := st("request", 64)
	tags := st("blk_mq_tags", 160)
	tags.Members = []debuginfo.Member{{Name: "nr_reserved_tags", Type: uint, Offset: 4}, {Name: "rqs", Type: ptr(ptr(request)), Offset: 16},
		{Name: "bitmap_tags", Type: sbq, Offset: 32}, {Name: "breserved_tags", Type: sbq, Offset: 96}}
	hctx := st("blk_mq_hw_ctx", 64)
	hctx.Members = []debuginfo.Member{{Name: "tags", Type: ptr(tags), Offset: 16}}
	rq := st("request_queue", 64)
	rq.Members = []debuginfo.Member{{Name: "mq_ops", Type: ptr(char)}, {Name: "hctx_table", Type: xarray, Offset: 8}}
	request.Members = []debuginfo.Member{{Name: "q", Type: ptr(rq)}, {Name: "cmd_flags", Type: uint, Offset: 8}, {Name: "state", Type: uint, Offset: 12}}
	gendisk := st("gendisk", 128)
	gendisk.Members = []debuginfo.Member{{Name: "major", Type: sint}, {Name: "fops", Type: ptr(fops), Offset: 16},
		{Name: "disk_name", Type: chars(32), Offset: 24}, {Name: "queue", Type: ptr(rq), Offset: 56}}
	bdev := st("block_device", 200)
	bdev.Members = []debuginfo.Member{{Name: "bd_disk", Type: ptr(gendisk), Offset: 24}}
	inode := st("inode", 300)
	inode.Members = []debuginfo.Member{{Name: "i_sb_list", Type: lh, Offset: 40}}
	bdevInode := st("bdev_inode", 512)
	bdevInode.Members = []debuginfo.Member{{Name: "bdev", Type: bdev}, {Name: "vfs_inode", Type: inode, Offset: 208}}
	sb := st("super_block", 128)
	sb.Members = []debuginfo.Member{{Name: "s_inodes", Type: lh, Offset: 64}}

	in6 := st("in6_addr", 16)
	ifa := st("in_ifaddr", 32)
	ifa.Members = []debuginfo.Member{{Name: "ifa_next", Type: ptr(ifa)}, {Name: "ifa_address", Type: uint, Offset: 12}}
	inDev := st("in_device", 64)
	inDev.Members = []debuginfo.Member{{Name: "ifa_list", Type: ptr(ifa), Offset: 8}}
	ifa6 := st("inet6_ifaddr", 64)
	ifa6.Members = []debuginfo.Member{{Name: "addr", Type: in6}, {Name: "if_list", Type: lh, Offset: 24}}
	in6Dev := st("inet6_dev", 64)
	in6Dev.Members = []debuginfo.Member{{Name: "addr_list", Type: lh, Offset: 16}}
	netdev := st("net_device", 128)
	ushort := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned short", Size: 2}
	uchar := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned char", Size: 1}
	netdev.Members = []debuginfo.Member{{Name: "name", Type: chars(16)}, {Name: "dev_list", Type: lh, Offset: 32},
		{Name: "ip_ptr", Type: ptr(inDev), Offset: 56}, {Name: "ip6_ptr", Type: ptr(in6Dev), Offset: 64},
		{Name: "type", Type: ushort, Offset: 80}, {Name: "addr_len", Type: uchar, Offset: 82}}
	neigh := st("neighbour", 72)
	neigh.Members = []debuginfo.Member{{Name: "next", Type: ptr(neigh)}, {Name: "nud_state", Type: uchar, Offset: 16},
		{Name: "ha", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: uchar, Len: 32, Size: 32}, Offset: 24},
		{Name: "dev", Type: ptr(netdev), Offset: 56},
		{Name: "primary_key", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: uchar, Len: 0, Size: 0}, Offset: 64}}
	nht := st("neigh_hash_table", 32)
	nht.Members = []debuginfo.Member{{Name: "hash_buckets", Type: ptr(ptr(neigh))}, {Name: "hash_shift", Type: uint, Offset: 8}}
	ntbl := st("neigh_table", 64)
	ntbl.Members = []debuginfo.Member{{Name: "key_len", Type: sint}, {Name: "nht", Type: ptr(nht), Offset: 8}}
	net := st("net", 64)
	net.Members = []debuginfo.Member{{Name: "dev_base_head", Type: lh, Offset: 16}}

	res := st("resource", 64)
	res.Members = []debuginfo.Member{{Name: "start", Type: ulong}, {Name: "end", Type: ulong, Offset: 8},
		{Name: "name", Type: ptr(char), Offset: 16}, {Name: "parent", Type: ptr(res), Offset: 32},
		{Name: "sibling", Type: ptr(res), Offset: 40}, {Name: "child", Type: ptr(res), Offset: 48}}

	return fakeTypes{"struct xa_node": xaNode, "struct sbitmap_word": sbWord, "struct sbitmap_queue": sbq,
		"struct request": request, "struct blk_mq_tags": tags, "struct blk_mq_hw_ctx": hctx, "struct request_queue": rq,
		"struct neighbour": neigh, "struct neigh_hash_table": nht, "struct neigh_table": ntbl, "struct resource": res, "struct list_head": lh, "struct cdev": cdev, "struct char_device_struct": cds,
		"struct probe": probe, "struct kobj_map": kobjMap, "struct blk_major_name": bmn, "struct gendisk": gendisk,
		"struct block_device": bdev, "struct inode": inode, "struct bdev_inode": bdevInode, "struct super_block": sb,
		"struct in_ifaddr": ifa, "struct in_device": inDev, "struct inet6_ifaddr": ifa6, "struct inet6_dev": in6Dev,
		"struct net_device": netdev, "struct net": net, "var init_net": net}
}

// Addresses of the synthetic kernel's objects; "missing" is memory the
// dump does not hold.
const (
	dtChrdevs  = 0xffffffff82000000
	dtCdevMap  = 0xffffffff82001000
	dtMajors   = 0xffffffff82002000
	dtBdevSB   = 0xffffffff82003000
	dtInitNet  = 0xffffffff82004000
	dtHeap     = 0xffff888000100000
	dtMissing  = 0xffff888000900000
	dtFopsMem  = 0xffffffff83000000
	dtFopsBig  = 0xffffffff83000100
	dtFopsVirt = 0xffffffff83000200
)

func devTestKernel(t *testing.T) *Kernel {
	vm := fakeVM{}
	zero := func(addr uint64, n int) { vm.write(addr, make([]byte, n)) }
	put32 := func(addr uint64, v uint32) {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], v)
		vm.write(addr, b[:])
	}
	obj := func(i int) uint64 { return dtHeap + uint64(i)*0x200 }
	zero(dtChrdevs, 255*8)
	zero(dtMajors, 255*8)
	for i := 0; i < 40; i++ {
		zero(obj(i), 0x200)
	}
	chr := func(at uint64, next uint64, major, minor uint32, name string, cdev uint64) {
		vm.put64(at, next)
		put32(at+8, major)
		put32(at+12, minor)
		put32(at+16, 1)
		vm.write(at+20, []byte(name+"\x00"))
		vm.put64(at+88, cdev)
	}
	// chrdevs[1]: mem (its own cdev), then big (major 256, slot 1; no
	// cdev of its own: the one cdev_add put in cdev_map).
	vm.put64(dtChrdevs+8, obj(0))
	chr(obj(0), obj(1), 1, 0, "mem", obj(2))
	vm.put64(obj(2)+72, dtFopsMem)
	chr(obj(1), 0, 256, 5, "big", 0)
	vm.put64(dtCdevMap, obj(3))
	zero(obj(3), 255*8+8)
	vm.put64(obj(3)+8, obj(8)) // probes[256 % 255]: a probe for another minor, then the one
	vm.put64(obj(8), obj(9))
	put32(obj(8)+8, 256<<20|4)
	vm.put64(obj(8)+48, obj(11))
	put32(obj(9)+8, 256<<20|5)
	vm.put64(obj(9)+48, obj(10))
	vm.put64(obj(10)+72, dtFopsBig)
	vm.put64(obj(11)+72, 0xdead)
	// chrdevs[4]: tty, whose cdev and next are memory the dump lacks.
	vm.put64(dtChrdevs+4*8, obj(12))
	chr(obj(12), dtMissing+0x1000, 4, 0, "tty", dtMissing)
	// chrdevs[13]: input, registered without any cdev.
	vm.put64(dtChrdevs+13*8, obj(13))
	chr(obj(13), 0, 13, 0, "input", 0)

	// major_names[4]: blkext (259) then a chained major; [254]: virtblk.
	bmn := func(at, next uint64, major uint32, name string) {
		vm.put64(at, next)
		put32(at+8, major)
		vm.write(at+12, []byte(name+"\x00"))
	}
	vm.put64(dtMajors+4*8, obj(14))
	bmn(obj(14), obj(15), 259, "blkext")
	bmn(obj(15), 0, 4, "chained")
	vm.put64(dtMajors+254*8, obj(16))
	bmn(obj(16), 0, 254, "virtblk")
	// The bdev file system: two block device inodes, the first without
	// a disk, the second on a virtblk gendisk.
	vm.put64(dtBdevSB, obj(17))
	head := obj(17) + 64
	in1, in2 := obj(18)+208+40, obj(20)+208+40 // bdev_inode → vfs_inode.i_sb_list
	zero(obj(20), 0x400)
	vm.put64(head, in1)
	vm.put64(in1, in2)
	vm.put64(in2, head)
	vm.put64(obj(20)+24, obj(22))
	put32(obj(22), 254)
	vm.put64(obj(22)+16, dtFopsVirt)

	// init_net: lo (127.0.0.1, ::1), eth0 (two IPv4, no IPv6) and eth1,
	// whose in_device the dump lacks.
	zero(dtInitNet, 64)
	devs := []uint64{obj(24), obj(25), obj(26)}
	prev := uint64(dtInitNet + 16)
	for _, d := range devs {
		vm.put64(prev, d+32)
		prev = d + 32
	}
	vm.put64(prev, dtInitNet+16)
	vm.write(devs[0], []byte("lo\x00"))
	vm.write(devs[1], []byte("eth0\x00"))
	vm.write(devs[2], []byte("eth1\x00"))
	vm.put64(devs[0]+56, obj(27))
	vm.put64(obj(27)+8, obj(28))
	vm.write(obj(28)+12, []byte{127, 0, 0, 1})
	vm.put64(devs[0]+64, obj(29))
	vm.put64(obj(29)+16, obj(30)+24)
	vm.put64(obj(30)+24, obj(29)+16)
	vm.write(obj(30), []byte{15: 1})
	vm.put64(devs[1]+56, obj(31))
	vm.put64(obj(31)+8, obj(32))
	vm.write(obj(32)+12, []byte{10, 0, 2, 15})
	vm.put64(obj(32), obj(33))
	vm.write(obj(33)+12, []byte{192, 168, 1, 2})
	vm.put64(devs[2]+56, dtMissing)

	syms := fakeSyms{"chrdevs": dtChrdevs, "cdev_map": dtCdevMap, "major_names": dtMajors,
		"blockdev_superblock": dtBdevSB, "init_net": dtInitNet}
	k, err := New(nil, syms, devTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCharDevicesSynthetic: chains are followed in order, a range
// without a cdev of its own finds the one cdev_map holds for its first
// device number, and memory the dump lacks makes an entry's error (its
// address said) rather than end the list or panic.
func TestCharDevicesSynthetic(t *testing.T) {
	k := devTestKernel(t)
	got, err := k.CharDevices()
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		major uint32
		name  string
		cdev  uint64
		ops   uint64
		err   bool
	}
	want := []row{
		{1, "mem", dtHeap + 2*0x200, dtFopsMem, false},
		{256, "big", dtHeap + 10*0x200, dtFopsBig, false},
		{4, "tty", dtMissing, 0, true},
		{0, "", 0, 0, true},
		{13, "input", 0, 0, false},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Major != w.major || g.Name != w.name || g.Cdev != w.cdev || g.Ops != w.ops || (g.Err != nil) != w.err {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
		if g.Err != nil {
			if _, ok := PageState(g.Err); !ok || !strings.Contains(g.Err.Error(), "0xffff88800090") {
				t.Errorf("entry %d: error %q does not name the missing page", i, g.Err)
			}
		}
	}
}

// TestBlockMajorsSynthetic: each major_names[] chain in order (the
// chained ones marked), and a major's disk found among the bdev inodes.
func TestBlockMajorsSynthetic(t *testing.T) {
	k := devTestKernel(t)
	got, err := k.BlockMajors()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	if g := got[0]; g.Major != 259 || g.Name != "blkext" || g.Chained || g.Gendisk != 0 || g.Err != nil {
		t.Errorf("blkext: %+v", g)
	}
	if g := got[1]; g.Major != 4 || g.Name != "chained" || !g.Chained {
		t.Errorf("chained: %+v", g)
	}
	if g := got[2]; g.Major != 254 || g.Name != "virtblk" || g.Gendisk != dtHeap+22*0x200 || g.Ops != dtFopsVirt || g.Err != nil {
		t.Errorf("virtblk: %+v", g)
	}
}

// TestResourcesSynthetic: the tree depth first, children before the next
// sibling; a name the dump lacks is an error on that entry only, and an
// entry the dump lacks ends its parent's list of children.
func TestResourcesSynthetic(t *testing.T) {
	vm := fakeVM{}
	const root = 0xffffffff82000000
	r := func(i int) uint64 { return root + uint64(i)*64 }
	names := uint64(root + 0x800)
	vm.write(names, []byte("root\x00a\x00a.1\x00b\x00"))
	res := func(i int, start, end, name, sibling, child uint64) {
		vm.put64(r(i), start)
		vm.put64(r(i)+8, end)
		vm.put64(r(i)+16, name)
		vm.put64(r(i)+40, sibling)
		vm.put64(r(i)+48, child)
	}
	res(0, 0, 0xffff, names, 0, r(1))
	res(1, 0x10, 0x1f, names+5, r(3), r(2))    // a, with child a.1
	res(2, 0x10, 0x17, names+7, 0, r(2))       // a.1, its own child (crash's guard)
	res(3, 0x20, 0x2f, dtMissing, r(4), 0)     // a name the dump lacks
	res(4, 0x30, 0x3f, names+11, dtMissing, 0) // b, then a sibling the dump lacks
	k, err := New(nil, fakeSyms{"ioport_resource": root}, devTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Resources("ioport_resource")
	if err == nil {
		t.Fatalf("no error for the missing sibling: %+v", got)
	}
	if _, ok := PageState(err); !ok {
		t.Errorf("error %v does not say the page is missing", err)
	}
	want := []struct {
		name       string
		depth      int
		start, end uint64
		err        bool
	}{{"root", 0, 0, 0xffff, false}, {"a", 1, 0x10, 0x1f, false}, {"a.1", 2, 0x10, 0x17, false}, {"", 1, 0x20, 0x2f, true}, {"b", 1, 0x30, 0x3f, false}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Depth != w.depth || g.Start != w.start || g.End != w.end || (g.Err != nil) != w.err {
			t.Errorf("entry %d: got %+v, want %+v", i, g, w)
		}
	}
}

// TestDiskIOSynthetic: a blk-mq disk's requests in flight are the busy,
// not cleared, tags of each hardware queue (the hctx_table xarray) whose
// request is in flight on the disk's queue, reserved tags first; a write
// is an odd REQ_OP. ram and loop disks are left out.
func TestDiskIOSynthetic(t *testing.T) {
	vm := fakeVM{}
	const base = 0xffff888000300000
	o := func(i int) uint64 { return base + uint64(i)*0x400 }
	for i := 0; i < 32; i++ {
		vm.write(o(i), make([]byte, 0x400))
	}
	put32 := func(a uint64, v uint32) { vm.write(a, binary.LittleEndian.AppendUint32(nil, v)) }
	disk, q, other := o(0), o(1), o(2)
	vm.write(disk, []byte{254})
	vm.write(disk+24, []byte("vda\x00"))
	vm.put64(disk+56, q)
	vm.put64(q, 0xffffffff81000000) // mq_ops
	vm.put64(q+8+8, o(3)|2)         // hctx_table: a node
	vm.put64(o(3)+40, o(4))         // slots[0], [1]: the hardware queues
	vm.put64(o(3)+48, o(5))
	sbitmap := func(at uint64, depth, shift, nr uint32, words uint64) {
		put32(at, depth)
		put32(at+4, shift)
		put32(at+8, nr)
		vm.put64(at+16, words)
	}
	request := func(at, queue uint64, flags, state uint32) {
		vm.put64(at, queue)
		put32(at+8, flags)
		put32(at+12, state)
	}
	// Hardware queue 0: one reserved tag (a write in flight), then 100
	// normal tags: bit 0 (a read in flight), bit 3 set but cleared, bit
	// 64 (a request of another queue), bit 100 past the depth.
	t0, rqs0 := o(6), o(7)
	vm.put64(o(4)+16, t0)
	put32(t0+4, 1)
	vm.put64(t0+16, rqs0)
	sbitmap(t0+96, 1, 6, 1, o(8))
	vm.put64(o(8), 1)
	sbitmap(t0+32, 100, 6, 2, o(9))
	vm.put64(o(9), 1|1<<3)
	vm.put64(o(9)+64, 1<<3)
	vm.put64(o(9)+128, 1|1<<40)
	vm.put64(rqs0, o(10))
	request(o(10), q, 1, 1)
	vm.put64(rqs0+8, o(11))
	request(o(11), q, 0, 1)
	vm.put64(rqs0+4*8, o(12))
	request(o(12), q, 1, 1)
	vm.put64(rqs0+65*8, o(13))
	request(o(13), other, 0, 1)
	// Hardware queue 1: no reserved tags; bit 1 a read in flight (REQ_OP
	// 0x22: even), bit 2 a completed request.
	t1, rqs1 := o(14), o(15)
	vm.put64(o(5)+16, t1)
	vm.put64(t1+16, rqs1)
	sbitmap(t1+32, 8, 3, 1, o(16))
	vm.put64(o(16), 1<<1|1<<2)
	vm.put64(rqs1+8, o(17))
	request(o(17), q, 0x22, 1)
	vm.put64(rqs1+16, o(18))
	request(o(18), q, 1, 2)
	loop := o(19)
	vm.write(loop+24, []byte("loop0\x00"))

	k, err := New(nil, fakeSyms{}, devTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	d, skip := k.diskIO(disk)
	if skip || d.Err != nil || !d.MQ || d.Name != "vda" || d.Major != 254 || d.Queue != q || d.Read != 2 || d.Write != 1 {
		t.Errorf("vda: skip %v, %+v; want 2 reads and 1 write in flight", skip, d)
	}
	if _, skip := k.diskIO(loop); !skip {
		t.Error("loop0 is not left out")
	}
}
