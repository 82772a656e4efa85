package kernel

import (
	"errors"
	"fmt"

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
