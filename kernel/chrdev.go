package kernel

import (
	"errors"
	"fmt"
	"strings"

	"salvage/debuginfo"
)

// Device majors hash into fixed tables of this many heads: chrdevs[]
// (CHRDEV_MAJOR_HASH_SIZE, fs/char_dev.c), major_names[]
// (BLKDEV_MAJOR_HASH_SIZE, block/genhd.c) and kobj_map.probes[]
// (drivers/base/map.c). The size has been 255 since 2.6; the debug info
// says so when it declares the array, and BTF, which lacks most globals,
// falls back to it.
const devMajorHashSize = 255

// devMinorBits is MINORBITS (include/linux/kdev_t.h): a dev_t is the
// major above 20 bits of minor.
const devMinorBits = 20

// CharDevice is one registered range of character device numbers: a
// struct char_device_struct of fs/char_dev.c (next, major, baseminor,
// minorct, name[64], cdev), hashed by major into chrdevs[].
type CharDevice struct {
	Addr       uint64 // the struct char_device_struct
	Hash       int    // its chrdevs[] slot
	Major      uint32
	BaseMinor  uint32
	MinorCount int32
	Name       string
	// Cdev is the struct cdev serving the range: char_device_struct.cdev
	// when set, else the cdev that cdev_add registered in cdev_map for
	// (Major, BaseMinor). 0 when neither has one.
	Cdev uint64
	// Ops is the cdev's file_operations; 0 without a cdev.
	Ops uint64
	// Err is what could not be read of this entry (the rest of the list
	// still is).
	Err error
}

// devGlobalArray is the address and length of the global pointer array
// name: the length from the debug info when it types the variable, else
// devMajorHashSize.
func (k *Kernel) devGlobalArray(name string) (uint64, int, error) {
	addr, err := k.SymbolAddr(name)
	if err != nil {
		return 0, 0, err
	}
	n := devMajorHashSize
	if k.Types != nil {
		if t, err := k.Types.Var(name); err == nil {
			if r := t.Resolve(); r != nil && r.Kind == debuginfo.KindArray && r.Len > 0 {
				n = int(r.Len)
			}
		}
	}
	return addr, n, nil
}

// CharDevices lists the registered character device ranges in crash's
// order: chrdevs[] slot by slot, each slot's chain in list order.
func (k *Kernel) CharDevices() ([]CharDevice, error) {
	base, n, err := k.devGlobalArray("chrdevs")
	if err != nil {
		return nil, fmt.Errorf("character devices: %w", err)
	}
	probes := k.cdevMapProbes()
	var out []CharDevice
	for i := 0; i < n; i++ {
		p, err := k.ReadPointer(base + uint64(i*k.ptrSize))
		if err != nil {
			return out, fmt.Errorf("chrdevs[%d]: %w", i, err)
		}
		seen := map[uint64]bool{}
		for p != 0 && !seen[p] && len(seen) < maxListLen {
			seen[p] = true
			cd, next := k.charDevice(p, i, probes)
			out = append(out, cd)
			if cd.Err != nil && next == 0 {
				break
			}
			p = next
		}
	}
	return out, nil
}

// charDevice reads the char_device_struct at p and the pointer to the
// next in its chain.
func (k *Kernel) charDevice(p uint64, slot int, probes []uint64) (CharDevice, uint64) {
	cd := CharDevice{Addr: p, Hash: slot}
	v, err := k.ObjectOf(p, "struct char_device_struct")
	if err != nil {
		cd.Err = err
		return cd, 0
	}
	var next uint64
	if m, err := v.Member("next"); err == nil {
		next, err = m.Uint()
		if err != nil {
			cd.Err = err
			return cd, 0
		}
	}
	read := func(name string) uint64 {
		m, err := v.Member(name)
		if err != nil {
			cd.Err = errors.Join(cd.Err, err)
			return 0
		}
		x, err := m.Uint()
		if err != nil {
			cd.Err = errors.Join(cd.Err, err)
		}
		return x
	}
	cd.Major = uint32(read("major"))
	cd.BaseMinor = uint32(read("baseminor"))
	cd.MinorCount = int32(read("minorct"))
	if m, err := v.Member("name"); err == nil {
		// crash copies at most 63 characters of name[64].
		cd.Name, err = m.CString(63)
		if err != nil {
			cd.Err = errors.Join(cd.Err, err)
		}
	} else {
		cd.Err = errors.Join(cd.Err, err)
	}
	if m, err := v.Member("cdev"); err == nil {
		if c, err := m.Uint(); err == nil {
			cd.Cdev = c
		}
	}
	if cd.Cdev != 0 {
		cd.Ops, err = k.cdevOps(cd.Cdev)
		if err != nil {
			cd.Err = errors.Join(cd.Err, err)
		}
	} else if c := k.cdevMapLookup(probes, cd.Major, cd.BaseMinor); c != 0 {
		// A driver that calls cdev_add itself (misc, input…) leaves
		// char_device_struct.cdev NULL: its cdev is in cdev_map, under
		// the range's first device number.
		if ops, err := k.cdevOps(c); err == nil && ops != 0 {
			cd.Cdev, cd.Ops = c, ops
		}
	}
	return cd, next
}

// cdevOps reads cdev.ops (include/linux/cdev.h).
func (k *Kernel) cdevOps(cdev uint64) (uint64, error) {
	v, err := k.ObjectOf(cdev, "struct cdev")
	if err != nil {
		return 0, err
	}
	m, err := v.Member("ops")
	if err != nil {
		return 0, err
	}
	return m.Uint()
}

// cdevMapProbes reads cdev_map->probes[]: nil when the kernel has no
// cdev_map or it cannot be read (the lookup is only a fallback).
func (k *Kernel) cdevMapProbes() []uint64 {
	a, err := k.SymbolAddr("cdev_map")
	if err != nil {
		return nil
	}
	m, err := k.ReadPointer(a)
	if err != nil || m == 0 {
		return nil
	}
	v, err := k.ObjectOf(m, "struct kobj_map")
	if err != nil {
		return nil
	}
	pv, err := v.Member("probes")
	if err != nil {
		return nil
	}
	probes := make([]uint64, devMajorHashSize)
	for i := range probes {
		if probes[i], err = k.ReadPointer(pv.Address() + uint64(i*k.ptrSize)); err != nil {
			return nil
		}
	}
	return probes
}

// cdevMapLookup finds the data (a struct cdev) of the probe registered
// for exactly (major, minor) in the kobj_map chain of major; 0 when none.
func (k *Kernel) cdevMapLookup(probes []uint64, major, minor uint32) uint64 {
	if probes == nil {
		return 0
	}
	seen := map[uint64]bool{}
	for p := probes[major%devMajorHashSize]; p != 0 && !seen[p]; {
		seen[p] = true
		v, err := k.ObjectOf(p, "struct probe")
		if err != nil {
			return 0
		}
		dev, err1 := devMember(v, "dev")
		data, err2 := devMember(v, "data")
		next, err3 := devMember(v, "next")
		if err := errors.Join(err1, err2, err3); err != nil {
			return 0
		}
		if uint32(dev)>>devMinorBits == major && uint32(dev)&(1<<devMinorBits-1) == minor {
			return data
		}
		p = next
	}
	return 0
}

// devMember reads the integer or pointer member name of v.
func devMember(v Value, name string) (uint64, error) {
	m, err := v.Member(name)
	if err != nil {
		return 0, err
	}
	return m.Uint()
}

// BlockMajor is one registered block device major: a struct
// blk_major_name of block/genhd.c (next, major, name[16]), hashed by
// major into major_names[].
type BlockMajor struct {
	Addr  uint64 // the struct blk_major_name
	Hash  int    // its major_names[] slot
	Major uint32
	Name  string
	// Chained is set for a major further down its slot's chain than the
	// head (crash's dev lists only the heads).
	Chained bool
	// Gendisk is the first disk of the major found among the block
	// device inodes, and Ops its block_device_operations; 0 when the
	// major has no disk.
	Gendisk uint64
	Ops     uint64
	Err     error
}

// BlockMajors lists the registered block majors, major_names[] slot by
// slot, with the gendisk and fops of each (see blockDisks).
func (k *Kernel) BlockMajors() ([]BlockMajor, error) {
	base, n, err := k.devGlobalArray("major_names")
	if err != nil {
		return nil, fmt.Errorf("block devices: %w", err)
	}
	disks, diskErr := k.blockDisks()
	var out []BlockMajor
	for i := 0; i < n; i++ {
		p, err := k.ReadPointer(base + uint64(i*k.ptrSize))
		if err != nil {
			return out, fmt.Errorf("major_names[%d]: %w", i, err)
		}
		seen := map[uint64]bool{}
		for p != 0 && !seen[p] && len(seen) < maxListLen {
			seen[p] = true
			b := BlockMajor{Addr: p, Hash: i, Chained: len(seen) > 1}
			v, err := k.ObjectOf(p, "struct blk_major_name")
			if err != nil {
				b.Err = err
				out = append(out, b)
				break
			}
			major, err1 := devMember(v, "major")
			next, err2 := devMember(v, "next")
			b.Major = uint32(major)
			nm, err3 := v.Member("name")
			if err3 == nil {
				b.Name, err3 = nm.CString(16)
			}
			b.Err = errors.Join(err1, err2, err3)
			for _, d := range disks {
				if d.major == b.Major && d.ops != 0 {
					b.Gendisk, b.Ops = d.addr, d.ops
					break
				}
			}
			if b.Gendisk == 0 && diskErr != nil {
				b.Err = errors.Join(b.Err, diskErr)
			}
			out = append(out, b)
			if err2 != nil {
				break
			}
			p = next
		}
	}
	return out, nil
}

// blockDisk is a gendisk seen through a block device inode.
type blockDisk struct {
	addr  uint64
	major uint32
	ops   uint64
}

// blockDisks lists the gendisks of the block devices, in the order of
// the bdev pseudo file system's inodes (blockdev_superblock->s_inodes,
// linked by inode.i_sb_list): since 5.11 (bdev_map gone) that is where a
// major's disks are found. Each inode is the vfs_inode of a struct
// bdev_inode (block/bdev.c), whose bdev.bd_disk is the disk.
func (k *Kernel) blockDisks() ([]blockDisk, error) {
	a, err := k.SymbolAddr("blockdev_superblock")
	if err != nil {
		return nil, err
	}
	sb, err := k.ReadPointer(a)
	if err != nil {
		return nil, fmt.Errorf("blockdev_superblock: %w", err)
	}
	if sb == 0 {
		return nil, errors.New("blockdev_superblock is NULL")
	}
	sv, err := k.ObjectOf(sb, "struct super_block")
	if err != nil {
		return nil, err
	}
	head, err := sv.Member("s_inodes")
	if err != nil {
		return nil, err
	}
	// The block_device precedes the inode in struct bdev_inode: its
	// offset from the inode is vfs_inode's (crash assumes sizeof(struct
	// block_device), the same with today's layout).
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	var bdevOff uint64
	if t, err := ts.Struct("bdev_inode"); err == nil {
		mp, err := lookupMember(t, "vfs_inode")
		if err != nil {
			return nil, err
		}
		bdevOff = uint64(mp.Offset)
	} else if t, err := ts.Struct("block_device"); err == nil {
		bdevOff = uint64(sizeOf(t))
	} else {
		return nil, err
	}
	var out []blockDisk
	for inode, err := range k.ListEntries(head.Address(), "struct inode", "i_sb_list") {
		if err != nil {
			return out, err
		}
		bd, err := k.ObjectOf(inode.Address()-bdevOff, "struct block_device")
		if err != nil {
			return out, err
		}
		disk, err := devMember(bd, "bd_disk")
		if err != nil || disk == 0 {
			continue
		}
		gd, err := k.ObjectOf(disk, "struct gendisk")
		if err != nil {
			return out, err
		}
		major, err1 := devMember(gd, "major")
		ops, err2 := devMember(gd, "fops")
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, blockDisk{addr: disk, major: uint32(major), ops: ops})
	}
	return out, nil
}

// Resource is one node of a struct resource tree (include/linux/ioport.h:
// start, end, name, flags, parent, sibling, child): the I/O port and
// memory ranges that /proc/ioports and /proc/iomem show.
type Resource struct {
	Addr       uint64
	Start, End uint64
	Name       string // "" when unreadable (Err says why)
	Depth      int    // 0 for the root
	Err        error
}

// Resources lists the tree under the global root ("ioport_resource",
// "iomem_resource") depth first, each node before its children and the
// children before the next sibling, as crash's dev -i walks it. A node
// whose name cannot be read has Err set (crash shows "(unknown)"); one
// that cannot be read at all ends the walk with an error, as it does
// crash's.
func (k *Kernel) Resources(root string) ([]Resource, error) {
	a, err := k.SymbolAddr(root)
	if err != nil {
		return nil, err
	}
	var out []Resource
	var walk func(addr uint64, depth int) error
	walk = func(addr uint64, depth int) error {
		for addr != 0 {
			if len(out) >= maxListLen || depth > 64 {
				return fmt.Errorf("resource tree %s: too deep or too long at %#x", root, addr)
			}
			r := Resource{Addr: addr, Depth: depth}
			v, err := k.ObjectOf(addr, "struct resource")
			if err != nil {
				return err
			}
			var child, sibling uint64
			var errs [5]error
			r.Start, errs[0] = devMember(v, "start")
			r.End, errs[1] = devMember(v, "end")
			child, errs[2] = devMember(v, "child")
			sibling, errs[3] = devMember(v, "sibling")
			if nm, err := v.Member("name"); err != nil {
				errs[4] = err
			} else if p, err := nm.Uint(); err != nil || p == 0 {
				errs[4] = err
				if p == 0 && err == nil {
					errs[4] = fmt.Errorf("resource at %#x has no name", addr)
				}
			} else {
				r.Name, errs[4] = k.ReadCString(p, 1499) // crash reads BUFSIZE-1
			}
			if err := errors.Join(errs[:4]...); err != nil {
				// Without its links the rest of the tree is unknown.
				return fmt.Errorf("%s: resource at %#x: %w", root, addr, err)
			}
			r.Err = errs[4]
			out = append(out, r)
			if child != 0 && child != addr {
				if err := walk(child, depth+1); err != nil {
					return err
				}
			}
			addr = sibling
		}
		return nil
	}
	err = walk(a, 0)
	return out, err
}

// DiskIO is one disk's in-flight I/O as crash's dev -d counts it.
type DiskIO struct {
	Gendisk uint64
	Major   int32
	Name    string
	Queue   uint64 // the request_queue
	// Read and Write count the requests in flight: for a blk-mq queue,
	// the busy tags of its hardware queues whose request is
	// MQ_RQ_IN_FLIGHT on this queue; otherwise the per-CPU
	// disk_stats.in_flight of the disk's whole-device block_device.
	Read, Write uint64
	MQ          bool // the queue is blk-mq (request_queue.mq_ops set)
	// DriverInFlight is request_queue.in_flight (kernels that have it,
	// not blk-mq); HasDriverInFlight says whether the member exists.
	DriverInFlight    uint64
	HasDriverInFlight bool
	Err               error
}

// Disks lists the disks of the block class in its device list's order
// (the class's subsys_private.klist_devices, skipping dead klist nodes
// and devices whose type is not disk_type), leaving out ram and loop
// disks as crash does.
func (k *Kernel) Disks() ([]DiskIO, error) {
	ts, err := k.types()
	if err != nil {
		return nil, err
	}
	sp, err := k.blockSubsysPrivate()
	if err != nil {
		return nil, fmt.Errorf("block class: %w", err)
	}
	spv, err := k.ObjectOf(sp, "struct subsys_private")
	if err != nil {
		return nil, err
	}
	kl, err := spv.Member("klist_devices.k_list")
	if err != nil {
		return nil, err
	}
	diskType, err := k.SymbolAddr("disk_type")
	if err != nil {
		return nil, err
	}
	knode, err := ts.Struct("klist_node")
	if err != nil {
		return nil, err
	}
	nNode, err := lookupMember(knode, "n_node")
	if err != nil {
		return nil, err
	}
	var out []DiskIO
	for node, err := range k.ListNodes(kl.Address()) {
		if err != nil {
			return out, err
		}
		kn := k.Object(node-uint64(nNode.Offset), knode)
		// A klist node whose n_klist has bit 0 set is dead (klist_del'd
		// while still referenced): lib/klist.c.
		if nk, err := devMember(kn, "n_klist"); err != nil {
			return out, err
		} else if nk&1 != 0 {
			continue
		}
		dp, err := k.ContainerOf(kn.Address(), "struct device_private", "knode_class")
		if err != nil {
			return out, err
		}
		dev, err := devMember(dp, "device")
		if err != nil {
			return out, err
		}
		dv, err := k.ObjectOf(dev, "struct device")
		if err != nil {
			return out, err
		}
		if typ, err := devMember(dv, "type"); err != nil {
			return out, err
		} else if typ != diskType {
			continue
		}
		// Since 5.11 a disk's device is its whole-device block_device's
		// bd_device.
		bd, err := k.ContainerOf(dev, "struct block_device", "bd_device")
		if err != nil {
			return out, err
		}
		gd, err := devMember(bd, "bd_disk")
		if err != nil {
			return out, err
		}
		d, skip := k.diskIO(gd)
		if !skip {
			out = append(out, d)
		}
	}
	return out, nil
}

// blockSubsysPrivate finds the block class's struct subsys_private:
// block_class.p before 6.4, else the kobject named "block" in class_kset
// (its subsys.kobj).
func (k *Kernel) blockSubsysPrivate() (uint64, error) {
	bc, err := k.ObjectOf(0, "struct class")
	if err != nil {
		return 0, err
	}
	if _, err := bc.Member("p"); err == nil {
		a, err := k.SymbolAddr("block_class")
		if err != nil {
			return 0, err
		}
		v, _ := k.ObjectOf(a, "struct class")
		return devMember(v, "p")
	}
	a, err := k.SymbolAddr("class_kset")
	if err != nil {
		return 0, err
	}
	kset, err := k.ReadPointer(a)
	if err != nil {
		return 0, fmt.Errorf("class_kset: %w", err)
	}
	kv, err := k.ObjectOf(kset, "struct kset")
	if err != nil {
		return 0, err
	}
	head, err := kv.Member("list")
	if err != nil {
		return 0, err
	}
	for kobj, err := range k.ListEntries(head.Address(), "struct kobject", "entry") {
		if err != nil {
			return 0, err
		}
		nm, err := kobj.Member("name")
		if err != nil {
			return 0, err
		}
		if s, err := nm.CString(31); err == nil && s == "block" {
			sp, err := k.ContainerOf(kobj.Address(), "struct subsys_private", "subsys.kobj")
			if err != nil {
				return 0, err
			}
			return sp.Address(), nil
		}
	}
	return 0, errors.New("no kobject named block in class_kset")
}

// diskIO reads one gendisk's name, queue and in-flight counts; skip is
// set for the disks crash leaves out (names starting ram or loop).
func (k *Kernel) diskIO(gendisk uint64) (d DiskIO, skip bool) {
	d.Gendisk = gendisk
	gd, err := k.ObjectOf(gendisk, "struct gendisk")
	if err != nil {
		d.Err = err
		return d, false
	}
	if nm, err := gd.Member("disk_name"); err != nil {
		d.Err = err
		return d, false
	} else if d.Name, err = nm.CString(32); err != nil {
		d.Err = err
		return d, false
	}
	if strings.HasPrefix(d.Name, "ram") || strings.HasPrefix(d.Name, "loop") {
		return d, true
	}
	major, err1 := devMember(gd, "major")
	d.Major = int32(major)
	d.Queue, err = devMember(gd, "queue")
	if err = errors.Join(err1, err); err != nil {
		d.Err = err
		return d, false
	}
	q, err := k.ObjectOf(d.Queue, "struct request_queue")
	if err != nil {
		d.Err = err
		return d, false
	}
	if ops, err := devMember(q, "mq_ops"); err == nil && ops != 0 {
		d.MQ = true
	}
	if m, err := q.Member("in_flight"); err == nil {
		d.HasDriverInFlight = true
		if !d.MQ {
			// unsigned int, or unsigned int[2] (read, write) in some kernels.
			b, err := m.Bytes()
			if err != nil {
				d.Err = errors.Join(d.Err, err)
			}
			for i := 0; i+4 <= len(b) && i < 8; i += 4 {
				d.DriverInFlight += uint64(k.order.Uint32(b[i:]))
			}
		}
	}
	if d.MQ {
		d.Err = errors.Join(d.Err, k.mqInFlight(q, &d))
	} else {
		d.Err = errors.Join(d.Err, k.diskStatsInFlight(gd, &d))
	}
	return d, false
}

// diskStatsInFlight sums disk_stats.in_flight[2] over the CPUs, from the
// whole-device block_device's per-CPU bd_stats (gendisk.part0).
func (k *Kernel) diskStatsInFlight(gd Value, d *DiskIO) error {
	part0, err := devMember(gd, "part0")
	if err != nil {
		return err
	}
	bd, err := k.ObjectOf(part0, "struct block_device")
	if err != nil {
		return err
	}
	stats, err := devMember(bd, "bd_stats")
	if err != nil {
		return err
	}
	ds, err := k.ObjectOf(0, "struct disk_stats")
	if err != nil {
		return err
	}
	inf, err := ds.Member("in_flight")
	if err != nil {
		return err
	}
	n, err := k.NrCPUIDs()
	if err != nil {
		return err
	}
	for cpu := 0; cpu < n; cpu++ {
		a, err := k.PerCPUPtr(stats, cpu)
		if err != nil {
			return err
		}
		r, err1 := k.ReadPointer(a + inf.Address())
		w, err2 := k.ReadPointer(a + inf.Address() + uint64(k.ptrSize))
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("disk_stats of CPU %d: %w", cpu, err)
		}
		d.Read += r
		d.Write += w
	}
	return nil
}

// mqInFlight counts a blk-mq queue's requests in flight: for each
// hardware queue (request_queue.hctx_table, an xarray, since 5.19; else
// queue_hw_ctx[nr_hw_queues]), each set bit of its tags' reserved and
// normal sbitmaps names a request (tags.rqs[bit], the normal ones after
// the reserved) that counts when it is on this queue and its state is
// MQ_RQ_IN_FLIGHT (1); REQ_OP_* odd is a write (include/linux/blk_types.h).
func (k *Kernel) mqInFlight(q Value, d *DiskIO) error {
	var hctxs []uint64
	if tbl, err := q.Member("hctx_table"); err == nil {
		head, err := devMember(tbl, "xa_head")
		if err != nil {
			return err
		}
		if err := k.devXArray(head, 0, func(e uint64) { hctxs = append(hctxs, e) }); err != nil {
			return err
		}
	} else {
		n, err1 := devMember(q, "nr_hw_queues")
		arr, err2 := devMember(q, "queue_hw_ctx")
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		for i := uint64(0); i < n && i < 4096; i++ {
			h, err := k.ReadPointer(arr + i*uint64(k.ptrSize))
			if err != nil {
				return err
			}
			hctxs = append(hctxs, h)
		}
	}
	for _, h := range hctxs {
		hv, err := k.ObjectOf(h, "struct blk_mq_hw_ctx")
		if err != nil {
			return err
		}
		tags, err := devMember(hv, "tags")
		if err != nil {
			return err
		}
		tv, err := k.ObjectOf(tags, "struct blk_mq_tags")
		if err != nil {
			return err
		}
		nres, err := devMember(tv, "nr_reserved_tags")
		if err != nil {
			return err
		}
		rqs, err := devMember(tv, "rqs")
		if err != nil {
			return err
		}
		for _, set := range []struct {
			member   string
			base     uint64
			reserved bool
		}{{"breserved_tags", 0, true}, {"bitmap_tags", nres, false}} {
			if set.reserved && nres == 0 {
				continue
			}
			sbq, err := k.devSbitmapQueue(tv, set.member)
			if err != nil {
				return err
			}
			err = k.devSbitmapEach(sbq, func(bit uint64) error {
				rq, err := k.ReadPointer(rqs + (bit+set.base)*uint64(k.ptrSize))
				if err != nil || rq < 1<<63 {
					return err
				}
				rv, err := k.ObjectOf(rq, "struct request")
				if err != nil {
					return err
				}
				rqQ, err1 := devMember(rv, "q")
				state, err2 := devMember(rv, "state")
				flags, err3 := devMember(rv, "cmd_flags")
				if err := errors.Join(err1, err2, err3); err != nil {
					return err
				}
				if rqQ == d.Queue && uint32(state) == 1 {
					if flags&0xff&1 != 0 {
						d.Write++
					} else {
						d.Read++
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// devSbitmapQueue is the address of the struct sbitmap_queue member of
// blk_mq_tags: embedded since 5.16, a pointer before.
func (k *Kernel) devSbitmapQueue(tags Value, member string) (uint64, error) {
	m, err := tags.Member(member)
	if err != nil {
		return 0, err
	}
	if r := m.Type().Resolve(); r != nil && r.Kind == debuginfo.KindPointer {
		return m.Uint()
	}
	return m.Address(), nil
}

// devSbitmapEach calls fn with each set, not cleared, bit of the
// sbitmap of the sbitmap_queue at sbq (include/linux/sbitmap.h: depth
// bits in map_nr words of 1<<shift bits, word and cleared per word).
func (k *Kernel) devSbitmapEach(sbq uint64, fn func(bit uint64) error) error {
	qv, err := k.ObjectOf(sbq, "struct sbitmap_queue")
	if err != nil {
		return err
	}
	sb, err := qv.Member("sb")
	if err != nil {
		return err
	}
	depth, err1 := devMember(sb, "depth")
	shift, err2 := devMember(sb, "shift")
	mapNr, err3 := devMember(sb, "map_nr")
	mapAddr, err4 := devMember(sb, "map")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return err
	}
	if shift > 6 || mapNr > 1<<16 {
		return fmt.Errorf("sbitmap at %#x: shift %d, map_nr %d: not a bitmap", sb.Address(), shift, mapNr)
	}
	ts, err := k.types()
	if err != nil {
		return err
	}
	wt, err := ts.Struct("sbitmap_word")
	if err != nil {
		return err
	}
	for i := uint64(0); i < mapNr; i++ {
		w := k.Object(mapAddr+i*uint64(sizeOf(wt)), wt)
		word, err := devMember(w, "word")
		if err != nil {
			return err
		}
		if cleared, err := devMember(w, "cleared"); err == nil {
			word &^= cleared
		}
		bits := uint64(1) << shift
		if i == mapNr-1 {
			bits = depth - i<<shift
		}
		for b := uint64(0); b < bits && b < 64; b++ {
			if word&(1<<b) != 0 {
				if err := fn(i<<shift + b); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// devXArray calls fn with each entry of the xarray whose xa_head is e,
// in index order (include/linux/xarray.h: an internal entry, low bits
// 10, above 4096 is an xa_node; smaller ones are sibling and retry
// marks).
func (k *Kernel) devXArray(e uint64, depth int, fn func(uint64)) error {
	if e == 0 {
		return nil
	}
	if e&3 != 2 {
		fn(e)
		return nil
	}
	if e <= 4096 {
		return nil
	}
	if depth > 16 {
		return fmt.Errorf("xarray deeper than 16 levels at %#x", e)
	}
	node, err := k.ObjectOf(e-2, "struct xa_node")
	if err != nil {
		return err
	}
	slots, err := node.Member("slots")
	if err != nil {
		return err
	}
	n := 64
	if r := slots.Type().Resolve(); r != nil && r.Kind == debuginfo.KindArray && r.Len > 0 {
		n = int(r.Len)
	}
	for i := 0; i < n; i++ {
		s, err := k.ReadPointer(slots.Address() + uint64(i*k.ptrSize))
		if err != nil {
			return err
		}
		if err := k.devXArray(s, depth+1, fn); err != nil {
			return err
		}
	}
	return nil
}
