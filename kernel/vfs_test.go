package kernel

import (
	"strings"
	"testing"

	"salvage/debuginfo"
)

// vfsTestTypes are the VFS structures with the members the path walk
// reads, at made-up offsets (the walk takes every offset from the
// types).
func vfsTestTypes() fakeTypes {
	ulong := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned long", Size: 8}
	u32 := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned int", Size: 4}
	u16 := &debuginfo.Type{Kind: debuginfo.KindInt, Name: "unsigned short", Size: 2}
	vp := &debuginfo.Type{Kind: debuginfo.KindPointer, Size: 8}
	st := func(name string, size int64, ms ...debuginfo.Member) *debuginfo.Type {
		return &debuginfo.Type{Kind: debuginfo.KindStruct, Name: name, Size: size, Members: ms}
	}
	qstr := st("qstr", 16, debuginfo.Member{Name: "hash", Type: u32}, debuginfo.Member{Name: "len", Type: u32, Offset: 4}, debuginfo.Member{Name: "name", Type: vp, Offset: 8})
	path := st("path", 16, debuginfo.Member{Name: "mnt", Type: vp}, debuginfo.Member{Name: "dentry", Type: vp, Offset: 8})
	vfsmount := st("vfsmount", 24, debuginfo.Member{Name: "mnt_root", Type: vp}, debuginfo.Member{Name: "mnt_sb", Type: vp, Offset: 8}, debuginfo.Member{Name: "mnt_flags", Type: u32, Offset: 16})
	return fakeTypes{
		"struct qstr": qstr,
		"struct dentry": st("dentry", 128, debuginfo.Member{Name: "d_parent", Type: vp, Offset: 8}, debuginfo.Member{Name: "d_name", Type: qstr, Offset: 16},
			debuginfo.Member{Name: "d_inode", Type: vp, Offset: 32}, debuginfo.Member{Name: "d_iname", Type: &debuginfo.Type{Kind: debuginfo.KindArray, Elem: u16, Len: 16, Size: 32}, Offset: 40}),
		"struct vfsmount": vfsmount,
		"struct mount": st("mount", 128, debuginfo.Member{Name: "mnt_parent", Type: vp, Offset: 16}, debuginfo.Member{Name: "mnt_mountpoint", Type: vp, Offset: 24},
			debuginfo.Member{Name: "mnt", Type: vfsmount, Offset: 32}, debuginfo.Member{Name: "mnt_devname", Type: vp, Offset: 64}, debuginfo.Member{Name: "mnt_list", Type: vp, Offset: 72}),
		"struct super_block":      st("super_block", 64, debuginfo.Member{Name: "s_type", Type: vp, Offset: 40}),
		"struct file_system_type": st("file_system_type", 64, debuginfo.Member{Name: "name", Type: vp}),
		"struct inode":            st("inode", 64, debuginfo.Member{Name: "i_mode", Type: u16}, debuginfo.Member{Name: "i_op", Type: vp, Offset: 24}, debuginfo.Member{Name: "i_fop", Type: vp, Offset: 32}, debuginfo.Member{Name: "i_sb", Type: vp, Offset: 40}),
		"struct file":             st("file", 64, debuginfo.Member{Name: "f_path", Type: path, Offset: 16}),
		"struct mnt_namespace":    st("mnt_namespace", 64, debuginfo.Member{Name: "root", Type: vp, Offset: 8}, debuginfo.Member{Name: "list", Type: vp, Offset: 16}, debuginfo.Member{Name: "mounts", Type: u32, Offset: 32}),
		"struct task_struct":      st("task_struct", 64, debuginfo.Member{Name: "fs", Type: vp}),
		"unsigned long":           ulong,
	}
}

const (
	vfsBase   = 0xffff888001000000
	vfsNames  = 0xffff888001010000 // the names, one per 64 bytes
	rootMnt   = vfsBase + 0x1000   // rootfs: its own parent
	diskMnt   = vfsBase + 0x1100   // ext4 on /mnt/disk
	sockMnt   = vfsBase + 0x1200   // sockfs: its own parent, mounted nowhere
	rRoot     = vfsBase + 0x2000   // rootfs "/"
	rMnt      = vfsBase + 0x2080   // rootfs "/mnt"
	rDisk     = vfsBase + 0x2100   // rootfs "/mnt/disk"
	dRoot     = vfsBase + 0x2180   // ext4 "/"
	dWork     = vfsBase + 0x2200   // ext4 "/work"
	dFile     = vfsBase + 0x2280   // ext4 "/work/f.txt"
	sTCP      = vfsBase + 0x2300   // a socket's dentry "TCP"
	sRoot     = vfsBase + 0x2380   // sockfs "/"
	missingNm = 0xffff888009000000 // a name on a page the dump lacks
)

func vfsKernel(t *testing.T) (*Kernel, fakeVM) {
	vm := fakeVM{}
	n := 0
	dentry := func(d, parent uint64, name string) {
		a := uint64(vfsNames) + uint64(n)*64
		n++
		vm.write(a, append([]byte(name), 0))
		vm.put64(d+8, parent)
		vm.write(d+16+4, []byte{byte(len(name)), 0, 0, 0})
		vm.put64(d+16+8, a)
	}
	dentry(rRoot, rRoot, "/")
	dentry(rMnt, rRoot, "mnt")
	dentry(rDisk, rMnt, "disk")
	dentry(dRoot, dRoot, "/")
	dentry(dWork, dRoot, "work")
	dentry(dFile, dWork, "f.txt")
	dentry(sTCP, sTCP, "TCP")
	dentry(sRoot, sRoot, "/")
	mount := func(m, parent, mountpoint, root uint64) {
		vm.put64(m+16, parent)
		vm.put64(m+24, mountpoint)
		vm.put64(m+32, root)
	}
	mount(rootMnt, rootMnt, rRoot, rRoot)
	mount(diskMnt, rootMnt, rDisk, dRoot)
	mount(sockMnt, sockMnt, sRoot, sRoot)
	k, err := New(nil, fakeSyms{}, vfsTestTypes(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return k, vm
}

// TestDentryPath follows crash's get_pathname: up the dentries, then
// across mounts to the mount that is its own parent.
func TestDentryPath(t *testing.T) {
	k, vm := vfsKernel(t)
	for _, c := range []struct {
		dentry, mnt uint64
		want        string
	}{
		{dFile, diskMnt + 32, "/mnt/disk/work/f.txt"},
		{dWork, diskMnt + 32, "/mnt/disk/work"},
		{dRoot, diskMnt + 32, "/mnt/disk"},
		{rDisk, rootMnt + 32, "/mnt/disk"},
		{rRoot, rootMnt + 32, "/"},
		{dFile, 0, "/work/f.txt"}, // no mount: the file system's own path
		{sTCP, sockMnt + 32, "TCP"},
	} {
		got, err := k.DentryPath(c.dentry, c.mnt)
		if err != nil || got != c.want {
			t.Errorf("DentryPath(%#x, %#x) = %q, %v; want %q", c.dentry, c.mnt, got, err, c.want)
		}
	}

	// A name the dump lacks: an error naming the dentry, and the part
	// of the path read below it.
	vm.put64(dWork+16+8, missingNm)
	got, err := k.DentryPath(dFile, diskMnt+32)
	if err == nil || !strings.Contains(err.Error(), "dentry 0xffff888001002200") || got != "f.txt" {
		t.Errorf("missing name: %q, %v", got, err)
	}

	// Two dentries that are each other's parent never reach a root.
	vm.put64(dWork+16+8, vfsNames+4*64)
	vm.put64(dWork+8, dFile)
	if _, err := k.DentryPath(dFile, diskMnt+32); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a dentry loop: %v, want an error", err)
	}
}
