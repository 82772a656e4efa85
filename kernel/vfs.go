package kernel

import (
	"errors"
	"fmt"
	"strings"
)

// This file models the VFS objects crash's files and mount commands
// show: paths of dentries across mounts (fs/d_path.c's d_path), a
// namespace's mounts (struct mnt_namespace, fs/mount.h) and a task's open
// files (struct files_struct and fdtable, include/linux/fdtable.h). The
// member offsets come from the kernel's own types (DWARF or BTF), so the
// same code reads every layout; differences between kernels are found by
// which members exist.

// layoutReader resolves member offsets, keeping the first failure so a
// caller checks once after gathering a layout.
type layoutReader struct {
	k   *Kernel
	err error
}

// off is the offset of member path in the struct spelled typ; -1 (and
// the error kept) when it is missing.
func (r *layoutReader) off(typ, path string) int64 {
	o, err := lookupMemberErr(r.k, typ, path)
	if err != nil {
		if r.err == nil {
			r.err = fmt.Errorf("%s.%s: %w", typ, path, err)
		}
		return -1
	}
	return o
}

// has reports whether struct typ has member path.
func (r *layoutReader) has(typ, path string) bool {
	_, err := lookupMemberErr(r.k, typ, path)
	return err == nil
}

// size is the byte size of member path of typ (0 when missing).
func (r *layoutReader) size(typ, path string) int64 {
	ts, err := r.k.types()
	if err != nil {
		return 0
	}
	t, err := ts.Named(typ)
	if err != nil {
		return 0
	}
	mp, err := lookupMember(t, path)
	if err != nil {
		return 0
	}
	return sizeOf(mp.Type)
}

// vfsLayout holds the offsets the path, mount and file walks read.
type vfsLayout struct {
	// struct dentry
	dName, dNameLen, dNameName, dParent, dInode int64
	// struct mount and the struct vfsmount embedded in it
	mntMnt, mntParent, mntMountpoint, mntDevname, mntList, mntNode int64
	vfsSB                                                          int64
	// struct super_block, struct file_system_type
	sbType, fstName int64
	// struct inode
	iMode, iModeSize, iOp, iFop int64
	// struct file
	fDentry, fMnt int64
	// struct mnt_namespace: root and list (before 6.8), or the rb-tree
	// of mounts (6.8+: nr_mounts, mounts, mount.mnt_node)
	nsRoot, nsList, nsMounts int64
	nsTree                   bool
}

// vfsLayout gathers the offsets; it costs a few type lookups, so each
// command's walk gathers it once and passes it down.
func (k *Kernel) vfsLayout() (*vfsLayout, error) {
	r := &layoutReader{k: k}
	l := &vfsLayout{}
	l.dName = r.off("struct dentry", "d_name")
	l.dNameLen = r.off("struct qstr", "len")
	l.dNameName = r.off("struct qstr", "name")
	l.dParent = r.off("struct dentry", "d_parent")
	l.dInode = r.off("struct dentry", "d_inode")
	l.mntMnt = r.off("struct mount", "mnt")
	l.mntParent = r.off("struct mount", "mnt_parent")
	l.mntMountpoint = r.off("struct mount", "mnt_mountpoint")
	l.mntDevname = r.off("struct mount", "mnt_devname")
	l.vfsSB = r.off("struct vfsmount", "mnt_sb")
	l.sbType = r.off("struct super_block", "s_type")
	l.fstName = r.off("struct file_system_type", "name")
	l.iMode = r.off("struct inode", "i_mode")
	l.iModeSize = r.size("struct inode", "i_mode")
	l.iOp = r.off("struct inode", "i_op")
	l.iFop = r.off("struct inode", "i_fop")
	l.fDentry = r.off("struct file", "f_path.dentry")
	l.fMnt = r.off("struct file", "f_path.mnt")
	if r.has("struct mnt_namespace", "nr_mounts") && r.has("struct mount", "mnt_node") {
		// 6.8+: the namespace's mounts are an rb-tree by mnt_id.
		l.nsTree = true
		l.nsMounts = r.off("struct mnt_namespace", "mounts")
		l.mntNode = r.off("struct mount", "mnt_node")
	} else {
		l.nsRoot = r.off("struct mnt_namespace", "root")
		l.nsList = r.off("struct mnt_namespace", "list")
		l.mntList = r.off("struct mount", "mnt_list")
	}
	if r.err != nil {
		return nil, r.err
	}
	return l, nil
}

// maxPathDepth bounds a path walk: a corrupted dentry chain must end in
// an error, not a hang.
const maxPathDepth = 4096

// DentryPath is the path of dentry as crash's get_pathname builds it: the
// names up the d_parent chain to the file system's root, then, from the
// mount that vfsmnt (a struct vfsmount, the mnt member of a struct mount;
// 0 for none) designates, up through each mount's mountpoint until the
// mount that is its own parent. Pseudo file systems (sockets, pipes,
// anonymous inodes) are mounted nowhere, so their files' paths are their
// dentries' names: "TCP", "[eventpoll]", "" for a pipe.
func (k *Kernel) DentryPath(dentry, vfsmnt uint64) (string, error) {
	l, err := k.vfsLayout()
	if err != nil {
		return "", err
	}
	return k.dentryPath(l, dentry, vfsmnt)
}

func (k *Kernel) dentryPath(l *vfsLayout, dentry, vfsmnt uint64) (string, error) {
	path := ""
	parent := dentry
	for n := 0; ; n++ {
		if n > maxPathDepth {
			return path, fmt.Errorf("path of dentry %#x: longer than %d components", dentry, maxPathDepth)
		}
		cur := parent
		name, ok, err := k.dentryName(l, cur)
		if err != nil {
			return path, err
		}
		if !ok {
			break
		}
		if cur != dentry {
			if (len(name) > 1 || name != "/") && !strings.HasPrefix(path, "/") {
				path = name + "/" + path
			} else {
				path = name + path
			}
		} else {
			path = name
		}
		parent, err = k.ReadPointer(cur + uint64(l.dParent))
		if err != nil {
			return path, fmt.Errorf("dentry %#x: d_parent: %w", cur, err)
		}
		if cur == parent && vfsmnt != 0 {
			// The root of a mounted file system: continue from the
			// dentry it is mounted on, in the parent mount.
			if strings.HasPrefix(path, "//") {
				path = path[1:]
			}
			mnt := vfsmnt - uint64(l.mntMnt)
			parent, err = k.ReadPointer(mnt + uint64(l.mntMountpoint))
			if err != nil {
				return path, fmt.Errorf("mount %#x: mnt_mountpoint: %w", mnt, err)
			}
			mntParent, err := k.ReadPointer(mnt + uint64(l.mntParent))
			if err != nil {
				return path, fmt.Errorf("mount %#x: mnt_parent: %w", mnt, err)
			}
			if mnt == mntParent {
				break
			}
			vfsmnt = mntParent + uint64(l.mntMnt)
			continue
		}
		if cur == parent || parent == 0 {
			break
		}
	}
	if path != "/" && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}
	return path, nil
}

// dentryName reads a dentry's d_name; ok is false for an empty or
// unnamed dentry, or a name whose length disagrees with d_name.len (as
// crash's get_pathname_component stops there).
func (k *Kernel) dentryName(l *vfsLayout, dentry uint64) (string, bool, error) {
	n, err := k.ReadUint(dentry+uint64(l.dName+l.dNameLen), 4)
	if err != nil {
		return "", false, fmt.Errorf("dentry %#x: d_name: %w", dentry, err)
	}
	if n == 0 {
		return "", false, nil
	}
	p, err := k.ReadPointer(dentry + uint64(l.dName+l.dNameName))
	if err != nil {
		return "", false, fmt.Errorf("dentry %#x: d_name.name: %w", dentry, err)
	}
	if p == 0 {
		return "", false, nil
	}
	s, err := k.ReadCString(p, 4096)
	if err != nil {
		return "", false, fmt.Errorf("dentry %#x: name at %#x: %w", dentry, p, err)
	}
	if uint64(len(s)) != n {
		return "", false, nil
	}
	return s, true, nil
}

// Mount is one mounted file system as crash's mount shows it.
type Mount struct {
	Addr       uint64 // struct mount
	VFSMount   uint64 // its struct vfsmount (struct mount.mnt)
	SuperBlock uint64
	Type       string // file_system_type.name
	DevName    string
	DirName    string // the mountpoint's path
	// DirErr is set when the path could not be read to its end (DirName
	// then holds the part read, from the mountpoint up).
	DirErr error
	Err    error // what could not be read of this mount, DirErr included
}

// Mounts lists the mounts of the mount namespace of the task at task
// (crash uses PID 1's): from the namespace's root mount along
// mnt_namespace.list (before 6.8), or in order of the rb-tree of mounts
// (6.8+).
func (k *Kernel) Mounts(task uint64) ([]Mount, error) {
	l, err := k.vfsLayout()
	if err != nil {
		return nil, err
	}
	t, err := k.ObjectOf(task, "struct task_struct")
	if err != nil {
		return nil, err
	}
	nsv, err := t.Member("nsproxy->mnt_ns")
	if err != nil {
		return nil, fmt.Errorf("task %#x: mount namespace: %w", task, err)
	}
	ns, err := nsv.Uint()
	if err != nil || ns == 0 {
		return nil, fmt.Errorf("task %#x: cannot read nsproxy->mnt_ns: %v", task, err)
	}
	var addrs []uint64
	if l.nsTree {
		for node, err := range k.RBNodes(ns + uint64(l.nsMounts)) {
			if err != nil {
				return nil, fmt.Errorf("mounts of namespace %#x: %w", ns, err)
			}
			addrs = append(addrs, node-uint64(l.mntNode))
		}
	} else {
		root, err := k.ReadPointer(ns + uint64(l.nsRoot))
		if err != nil {
			return nil, fmt.Errorf("mnt_namespace %#x: root: %w", ns, err)
		}
		// crash's list walk starts at the root mount's mnt_list and
		// stops at the namespace's list head.
		head := ns + uint64(l.nsList)
		node := root + uint64(l.mntList)
		seen := map[uint64]bool{}
		for node != head {
			if node == 0 || seen[node] || len(seen) > maxListLen {
				return nil, fmt.Errorf("mounts of namespace %#x: list broken at %#x", ns, node)
			}
			seen[node] = true
			addrs = append(addrs, node-uint64(l.mntList))
			node, err = k.ReadPointer(node)
			if err != nil {
				return nil, fmt.Errorf("mounts of namespace %#x: %w", ns, err)
			}
		}
	}
	var out []Mount
	for _, a := range addrs {
		out = append(out, k.readMount(l, a))
	}
	return out, nil
}

func (k *Kernel) readMount(l *vfsLayout, a uint64) Mount {
	m := Mount{Addr: a, VFSMount: a + uint64(l.mntMnt)}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.SuperBlock, err = k.ReadPointer(a + uint64(l.mntMnt+l.vfsSB))
	note(err)
	if m.SuperBlock != 0 {
		typ, err := k.ReadPointer(m.SuperBlock + uint64(l.sbType))
		note(err)
		if typ != 0 {
			if p, err := k.ReadPointer(typ + uint64(l.fstName)); err == nil && p != 0 {
				m.Type, err = k.ReadCString(p, 256)
				note(err)
			} else {
				note(err)
			}
		}
	}
	if p, err := k.ReadPointer(a + uint64(l.mntDevname)); err == nil && p != 0 {
		m.DevName, err = k.ReadCString(p, 4096)
		note(err)
	} else {
		note(err)
	}
	mp, err := k.ReadPointer(a + uint64(l.mntMountpoint))
	note(err)
	parent, err := k.ReadPointer(a + uint64(l.mntParent))
	note(err)
	if err == nil {
		m.DirName, m.DirErr = k.dentryPath(l, mp, parent+uint64(l.mntMnt))
		note(m.DirErr)
	}
	m.Err = errors.Join(errs...)
	return m
}

// OpenFile is one open file descriptor of a task.
type OpenFile struct {
	FD     int
	File   uint64 // struct file
	Dentry uint64
	Inode  uint64
	// Type is crash's name for the inode's kind: "REG", "DIR", "CHR",
	// "BLK", "LNK", "FIFO", "PIPE", "SOCK" or "UNKN"; "?" when the file
	// has no dentry or inode.
	Type string
	Path string
	// PathErr is set when the path could not be read to its end (Path
	// then holds the part read).
	PathErr error
	Err     error // what could not be read of this file, PathErr included
}

// TaskFiles is what crash's files shows of a task: its root and working
// directories and its open files.
type TaskFiles struct {
	HasFS      bool // the task has an fs_struct (ROOT and CWD)
	Root, Cwd  string
	HasFDTable bool // the task has a files_struct and fdtable
	Files      []OpenFile
}

// TaskFiles reads the fs_struct and the fdtable of the task at task.
func (k *Kernel) TaskFiles(task uint64) (*TaskFiles, error) {
	l, err := k.vfsLayout()
	if err != nil {
		return nil, err
	}
	t, err := k.ObjectOf(task, "struct task_struct")
	if err != nil {
		return nil, err
	}
	res := &TaskFiles{}
	fsv, err := t.Member("fs")
	if err != nil {
		return nil, err
	}
	if fs, err := fsv.Uint(); err != nil {
		return nil, fmt.Errorf("task %#x: fs: %w", task, err)
	} else if fs != 0 {
		res.HasFS = true
		fso, _ := fsv.Deref()
		for _, p := range []struct {
			member string
			dst    *string
		}{{"root", &res.Root}, {"pwd", &res.Cwd}} {
			dv, err := fso.Member(p.member + ".dentry")
			if err != nil {
				return nil, err
			}
			mv, err := fso.Member(p.member + ".mnt")
			if err != nil {
				return nil, err
			}
			d, err := dv.Uint()
			if err != nil {
				return nil, fmt.Errorf("fs_struct %#x: %s: %w", fs, p.member, err)
			}
			m, err := mv.Uint()
			if err != nil {
				return nil, fmt.Errorf("fs_struct %#x: %s: %w", fs, p.member, err)
			}
			if d != 0 {
				if *p.dst, err = k.dentryPath(l, d, m); err != nil {
					return nil, fmt.Errorf("fs_struct %#x: %s: %w", fs, p.member, err)
				}
			}
		}
	}
	fv, err := t.Member("files")
	if err != nil {
		return nil, err
	}
	files, err := fv.Uint()
	if err != nil {
		return nil, fmt.Errorf("task %#x: files: %w", task, err)
	}
	if files == 0 {
		return res, nil
	}
	fdtv, err := fv.Member("fdt")
	if err != nil {
		return nil, err
	}
	fdt, err := fdtv.Uint()
	if err != nil {
		return nil, fmt.Errorf("files_struct %#x: fdt: %w", files, err)
	}
	if fdt == 0 {
		return res, nil
	}
	fdto, _ := fdtv.Deref()
	readField := func(name string) (uint64, error) {
		v, err := fdto.Member(name)
		if err == nil {
			var x uint64
			x, err = v.Uint()
			if err == nil {
				return x, nil
			}
		}
		return 0, fmt.Errorf("fdtable %#x: %s: %w", fdt, name, err)
	}
	maxFDs, err := readField("max_fds")
	if err != nil {
		return nil, err
	}
	openFDs, err := readField("open_fds")
	if err != nil {
		return nil, err
	}
	fdArr, err := readField("fd")
	if err != nil {
		return nil, err
	}
	if maxFDs == 0 || openFDs == 0 || fdArr == 0 {
		return res, nil
	}
	if maxFDs > 1<<24 {
		return nil, fmt.Errorf("fdtable %#x: max_fds %d is not believable", fdt, maxFDs)
	}
	res.HasFDTable = true
	bits := make([]byte, (maxFDs+7)/8)
	if err := k.Read(bits, openFDs); err != nil {
		return nil, fmt.Errorf("fdtable %#x: open_fds bitmap at %#x: %w", fdt, openFDs, err)
	}
	for fd := 0; fd < int(maxFDs); fd++ {
		if bits[fd/8]&(1<<(fd%8)) == 0 {
			continue
		}
		file, err := k.ReadPointer(fdArr + uint64(fd)*8)
		if err != nil {
			res.Files = append(res.Files, OpenFile{FD: fd, Type: "?", Err: fmt.Errorf("fd %d: file pointer at %#x: %w", fd, fdArr+uint64(fd)*8, err)})
			continue
		}
		if file == 0 {
			continue
		}
		res.Files = append(res.Files, k.readOpenFile(l, fd, file))
	}
	return res, nil
}

func (k *Kernel) readOpenFile(l *vfsLayout, fd int, file uint64) OpenFile {
	of := OpenFile{FD: fd, File: file, Type: "?"}
	var err error
	if of.Dentry, err = k.ReadPointer(file + uint64(l.fDentry)); err != nil {
		of.Err = fmt.Errorf("file %#x: f_path.dentry: %w", file, err)
		return of
	}
	if of.Dentry == 0 {
		return of
	}
	if of.Inode, err = k.ReadPointer(of.Dentry + uint64(l.dInode)); err != nil {
		of.Err = fmt.Errorf("dentry %#x: d_inode: %w", of.Dentry, err)
		return of
	}
	if of.Inode == 0 {
		return of
	}
	mnt, err := k.ReadPointer(file + uint64(l.fMnt))
	if err != nil {
		of.Err = fmt.Errorf("file %#x: f_path.mnt: %w", file, err)
		return of
	}
	mnt = k.rootVFSMount(l, mnt)
	of.Path, of.PathErr = k.dentryPath(l, of.Dentry, mnt)
	of.Err = of.PathErr
	if strings.HasPrefix(of.Path, "/pts/") && k.mountDevName(l, mnt) == "devpts" {
		of.Path = "/dev" + of.Path
	}
	mode, err := k.ReadUint(of.Inode+uint64(l.iMode), int(l.iModeSize))
	if err != nil {
		of.Err = errors.Join(of.Err, fmt.Errorf("inode %#x: i_mode: %w", of.Inode, err))
		return of
	}
	of.Type = k.inodeType(l, of.Inode, uint32(mode), &of.Path)
	return of
}

// mountDevName is the mnt_devname of the mount whose vfsmount is at
// vfsmnt ("" when unreadable).
func (k *Kernel) mountDevName(l *vfsLayout, vfsmnt uint64) string {
	p, err := k.ReadPointer(vfsmnt - uint64(l.mntMnt) + uint64(l.mntDevname))
	if err != nil || p == 0 {
		return ""
	}
	s, _ := k.ReadCString(p, 4096)
	return s
}

// rootVFSMount is crash's get_root_vfsmount: a file on a devtmpfs (or
// udev) mount mounted on another of the same is named from the parent
// mount, as crash does.
func (k *Kernel) rootVFSMount(l *vfsLayout, vfsmnt uint64) uint64 {
	dev := k.mountDevName(l, vfsmnt)
	if dev != "udev" && dev != "devtmpfs" {
		return vfsmnt
	}
	parent, err := k.ReadPointer(vfsmnt - uint64(l.mntMnt) + uint64(l.mntParent))
	if err != nil {
		return vfsmnt
	}
	if k.mountDevName(l, parent+uint64(l.mntMnt)) == dev {
		return parent
	}
	return vfsmnt
}

// File type bits of i_mode (include/uapi/linux/stat.h).
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// inodeType is crash's inode_type: the kind of file, a FIFO being a
// "PIPE" (and nameless) when its inode operations are the kernel's pipe
// operations (pipe_inode_operations or rdwr_pipe_fops, kernels before
// 2.6.x); a socket named "/" is nameless.
func (k *Kernel) inodeType(l *vfsLayout, inode uint64, mode uint32, path *string) string {
	switch mode & sIFMT {
	case sIFREG:
		return "REG"
	case sIFLNK:
		return "LNK"
	case sIFDIR:
		return "DIR"
	case sIFCHR:
		return "CHR"
	case sIFBLK:
		return "BLK"
	case sIFIFO:
		if a, err := k.SymbolAddr("pipe_inode_operations"); err == nil {
			if op, err := k.ReadPointer(inode + uint64(l.iOp)); err == nil && op == a {
				*path = ""
				return "PIPE"
			}
		} else if a, err := k.SymbolAddr("rdwr_pipe_fops"); err == nil {
			if op, err := k.ReadPointer(inode + uint64(l.iFop)); err == nil && op == a {
				*path = ""
				return "PIPE"
			}
		}
		return "FIFO"
	case sIFSOCK:
		if *path == "/" {
			*path = ""
		}
		return "SOCK"
	}
	return "UNKN"
}

// DentryInfo is what crash's files -d shows of a dentry.
type DentryInfo struct {
	Dentry, Inode, SuperBlock uint64
	// Type is the inode's kind as in OpenFile.Type, "N/A" without an
	// inode.
	Type string
	Path string
}

// DentryInfo reads a dentry, its inode and super_block, and names it as
// crash's display_dentry_info does: through the last mount of init's
// (namespace task's) mount namespace on the dentry's super_block, else
// through the pipe or socket pseudo-mount (pipe_mnt, sock_mnt) when the
// super_block is theirs, else not at all.
func (k *Kernel) DentryInfo(dentry, nsTask uint64) (DentryInfo, error) {
	l, err := k.vfsLayout()
	if err != nil {
		return DentryInfo{}, err
	}
	r := &layoutReader{k: k}
	iSB := r.off("struct inode", "i_sb")
	dSB := r.off("struct dentry", "d_sb")
	if r.err != nil {
		return DentryInfo{}, r.err
	}
	di := DentryInfo{Dentry: dentry, Type: "N/A"}
	if di.Inode, err = k.ReadPointer(dentry + uint64(l.dInode)); err != nil {
		return di, fmt.Errorf("dentry %#x: d_inode: %w", dentry, err)
	}
	if di.Inode != 0 {
		di.SuperBlock, err = k.ReadPointer(di.Inode + uint64(iSB))
	} else {
		di.SuperBlock, err = k.ReadPointer(dentry + uint64(dSB))
	}
	if err != nil {
		return di, fmt.Errorf("dentry %#x: super_block: %w", dentry, err)
	}
	if di.SuperBlock != 0 {
		mounts, err := k.Mounts(nsTask)
		if err != nil {
			return di, err
		}
		found := false
		for _, m := range mounts {
			if m.SuperBlock == di.SuperBlock {
				if di.Path, err = k.dentryPath(l, dentry, m.Addr+uint64(l.mntMnt)); err != nil {
					return di, err
				}
				found = true
			}
		}
		for _, sym := range []string{"pipe_mnt", "sock_mnt"} {
			if found {
				break
			}
			a, err := k.SymbolAddr(sym)
			if err != nil {
				continue
			}
			vfs, err := k.ReadPointer(a)
			if err != nil || vfs == 0 {
				continue
			}
			if sb, err := k.ReadPointer(vfs + uint64(l.vfsSB)); err == nil && sb == di.SuperBlock {
				if di.Path, err = k.dentryPath(l, dentry, vfs); err != nil {
					return di, err
				}
				found = true
			}
		}
	}
	if di.Inode != 0 {
		mode, err := k.ReadUint(di.Inode+uint64(l.iMode), int(l.iModeSize))
		if err != nil {
			return di, fmt.Errorf("inode %#x: i_mode: %w", di.Inode, err)
		}
		di.Type = k.inodeType(l, di.Inode, uint32(mode), &di.Path)
	}
	return di, nil
}

// InodePages is an inode's page cache as crash's files -c counts it:
// the inode's address_space (i_mapping) and its nrpages.
func (k *Kernel) InodePages(inode uint64) (mapping, nrpages uint64, err error) {
	r := &layoutReader{k: k}
	iMapping := r.off("struct inode", "i_mapping")
	nr := r.off("struct address_space", "nrpages")
	if r.err != nil {
		return 0, 0, r.err
	}
	if mapping, err = k.ReadPointer(inode + uint64(iMapping)); err != nil {
		return 0, 0, fmt.Errorf("inode %#x: i_mapping: %w", inode, err)
	}
	if mapping == 0 {
		return 0, 0, nil
	}
	if nrpages, err = k.ReadPointer(mapping + uint64(nr)); err != nil {
		return mapping, 0, fmt.Errorf("address_space %#x: nrpages: %w", mapping, err)
	}
	return mapping, nrpages, nil
}
