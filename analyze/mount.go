package analyze

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"salvage/kernel"
)

func init() { register(mountCommand) }

func mountCommand() *Command {
	return &Command{
		Name:    "mount",
		Summary: "list the mounted file systems",
		Usage:   "[-n PID|TASK] [MOUNT|VFSMOUNT|SUPERBLOCK|TYPE|DEVNAME|DIRNAME]...",
		Help: `Lists the mounts of a mount namespace as crash's mount does: the struct
mount, its super_block, the file system type, the device name and the
mountpoint's path. The namespace is init's (the lowest PID from 1), or
the one of the task -n names. Operands select the mounts whose line
holds one of them: an address (of the struct mount, its struct vfsmount
or its super_block), a file system type, a device name or a mountpoint.
(crash 8.0.6 answers any operand on kernels without super_block.s_files,
which went in 2.6.36's successors, with an error; salvage filters.)

Examples:
  mount
  mount -n 414
  mount /mnt/disk
  mount ext4
`,
		MaxArgs: -1,
		Options: []Option{{Name: "n", Arg: "PID|TASK", Help: "list the mounts of this task's mount namespace"}},
		Run:     runMount,
	}
}

// mountJSON is one mount as mount --json shows it.
type mountJSON struct {
	Mount      uint64 `json:"mount"`
	SuperBlock uint64 `json:"super_block"`
	Type       string `json:"type"`
	DevName    string `json:"devname"`
	DirName    string `json:"dirname"`
	Error      string `json:"error,omitempty"`
}

func runMount(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return err
	}
	var ns *kernel.TaskInfo
	if arg, ok := ctx.Opts.Value("n"); ok {
		t, found := lookupTask(tasks, arg)
		if !found {
			return fmt.Errorf("invalid task or pid value: %s", arg)
		}
		ns = &t
	} else if ns, err = namespaceTask(tasks); err != nil {
		return err
	}
	mounts, err := k.Mounts(ns.Task)
	if err != nil {
		return err
	}
	if len(ctx.Args) > 0 {
		var sel []kernel.Mount
		for _, m := range mounts {
			for _, a := range ctx.Args {
				if mountMatches(m, a) {
					sel = append(sel, m)
					break
				}
			}
		}
		if len(sel) == 0 {
			return fmt.Errorf("no mount matches %s", strings.Join(ctx.Args, " "))
		}
		mounts = sel
	}
	var firstErr error
	nerr := 0
	for _, m := range mounts {
		if m.Err != nil {
			nerr++
			if firstErr == nil {
				firstErr = fmt.Errorf("mount %#x: %w", m.Addr, m.Err)
			}
		}
	}
	if nerr > 1 {
		firstErr = fmt.Errorf("%w (and %d more mounts could not be read)", firstErr, nerr-1)
	}
	if ctx.JSON {
		out := []mountJSON{}
		for _, m := range mounts {
			j := mountJSON{Mount: m.Addr, SuperBlock: m.SuperBlock, Type: m.Type, DevName: m.DevName, DirName: m.DirName}
			if m.Err != nil {
				j.Error = m.Err.Error()
			}
			out = append(out, j)
		}
		if err := writeJSON(ctx, out); err != nil {
			return err
		}
		return firstErr
	}
	writeMounts(ctx.Out, mounts)
	return firstErr
}

// mountHeader is crash's (filesys.c, show_mounts): MOUNT and SUPERBLK
// centred over 16 columns, TYPE over "rootfs", DEVNAME over 9.
const mountHeader = "     MOUNT           SUPERBLK     TYPE   DEVNAME   DIRNAME\n"

// writeMounts prints mounts as crash's show_mounts does. The type and
// device name columns are joined and trailing blanks beyond 17
// characters dropped while two remain, so long names shift the line
// rather than widen every column.
func writeMounts(w io.Writer, mounts []kernel.Mount) {
	fmt.Fprint(w, mountHeader)
	for _, m := range mounts {
		if m.SuperBlock == 0 {
			// The cursors of /proc/PID/mounts readers sit on the
			// list with no super_block; crash skips them.
			continue
		}
		typ := "unknown "
		if m.Type != "" {
			typ = fmt.Sprintf("%-6s ", m.Type)
		}
		dev := m.DevName
		if dev == "" {
			dev = "(unknown)"
		}
		s := typ + fmt.Sprintf("%-9s ", dev)
		for len(s) > 17 && s[len(s)-2] == ' ' {
			s = s[:len(s)-1]
		}
		dir := m.DirName
		if m.DirErr != nil {
			// A partial path would name the wrong directory.
			dir = "(unknown)"
		}
		fmt.Fprintf(w, "%16x %16x %s%-10s\n", m.Addr, m.SuperBlock, s, dir)
	}
}

// namespaceTask is the task whose mount namespace crash shows by
// default: the one with the lowest PID from 1 up (init).
func namespaceTask(tasks []kernel.TaskInfo) (*kernel.TaskInfo, error) {
	var ns *kernel.TaskInfo
	for i := range tasks {
		t := &tasks[i]
		if t.PID >= 1 && (ns == nil || t.PID < ns.PID) {
			ns = t
		}
	}
	if ns == nil {
		return nil, errors.New("no task with a PID of 1 or more to find the mount namespace from")
	}
	return ns, nil
}

// mountMatches reports whether operand a names mount m: one of its
// columns (a path with or without a trailing slash), or the address of
// the struct mount, its struct vfsmount or its super_block, with or
// without 0x.
func mountMatches(m kernel.Mount, a string) bool {
	trim := func(p string) string {
		if len(p) > 1 {
			return strings.TrimSuffix(p, "/")
		}
		return p
	}
	for _, col := range []string{m.Type, m.DevName, m.DirName} {
		if col != "" && trim(col) == trim(a) {
			return true
		}
	}
	if isHex(strings.TrimPrefix(a, "0x")) {
		if x, err := parseHex("address", a); err == nil {
			return x == m.Addr || x == m.VFSMount || x == m.SuperBlock
		}
	}
	return false
}
