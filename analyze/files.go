package analyze

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"salvage/kernel"
)

func init() { register(filesCommand) }

func filesCommand() *Command {
	return &Command{
		Name:    "files",
		Summary: "show a task's root and working directories and its open files",
		Usage:   "[-c] [PID|TASK]... | -d DENTRY",
		Help: `Shows, as crash's files does, a task's root and current working
directories and its open files: for each file descriptor the struct file,
its dentry and inode, the kind of file (REG, DIR, CHR, BLK, LNK, FIFO,
SOCK, UNKN) and its path, followed across mounts. Sockets, pipes and
anonymous inodes show their names ("TCP", "[eventpoll]"), or none. Without
an argument, shows the current task (the panic task unless set chose
another); a PID shows every task with that PID. -c shows, instead of the
file and dentry, each inode's address_space and how many pages of it
are in the page cache. -d shows one dentry: its inode, super_block, kind
and path.

Examples:
  files
  files 1
  files ffff8b917e904800
  files -c 1
  files -d ffff8b9142079480
`,
		Options: []Option{
			{Name: "d", Arg: "DENTRY", Help: "show a dentry's inode, super_block, kind and path"},
			{Name: "c", Help: "show each file's inode, address_space and number of cached pages"},
		},
		MaxArgs: -1,
		Run:     runFiles,
	}
}

// filesJSON is one task's files as files --json shows them.
type filesJSON struct {
	PID     int64          `json:"pid"`
	Task    uint64         `json:"task"`
	CPU     int            `json:"cpu"`
	Command string         `json:"command"`
	Root    *string        `json:"root,omitempty"`
	Cwd     *string        `json:"cwd,omitempty"`
	Files   []openFileJSON `json:"files"`
}

type openFileJSON struct {
	FD     int    `json:"fd"`
	File   uint64 `json:"file"`
	Dentry uint64 `json:"dentry"`
	Inode  uint64 `json:"inode"`
	Type   string `json:"type"`
	Path   string `json:"path"`
	// With -c: the inode's address_space and its cached pages.
	Mapping *uint64 `json:"i_mapping,omitempty"`
	NrPages *uint64 `json:"nrpages,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// taskOperand is one task a PID|TASK command shows, and whether it was
// named by PID (crash then ends its block with a blank line in files).
type taskOperand struct {
	task  kernel.TaskInfo
	byPID bool
	arg   int // which operand named it
}

// taskOperands resolves a command's PID|TASK operands as crash's
// str_to_context does: a decimal number is a PID (every task with it:
// PID 0 is each CPU's idle task), else a task_struct address. Without
// operands, the current task. Operands that name no task are returned
// as invalid, for the command to report after the others.
func taskOperands(ctx *Context) (ops []taskOperand, invalid []string, err error) {
	s := ctx.Session
	if len(ctx.Args) == 0 {
		t, err := s.CurrentTask()
		if err != nil {
			return nil, nil, err
		}
		return []taskOperand{{task: t}}, nil, nil
	}
	k, err := s.Kernel()
	if err != nil {
		return nil, nil, err
	}
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return nil, nil, err
	}
	for ai, arg := range ctx.Args {
		found := false
		if isDecimal(arg) {
			if pid, err := strconv.ParseInt(arg, 10, 64); err == nil {
				for _, t := range tasks {
					if t.PID == pid {
						ops = append(ops, taskOperand{task: t, byPID: true, arg: ai})
						found = true
					}
				}
			}
		}
		if !found {
			if t, ok := lookupTask(tasks, arg); ok {
				ops = append(ops, taskOperand{task: t, arg: ai})
				found = true
			}
		}
		if !found {
			invalid = append(invalid, arg)
		}
	}
	return ops, invalid, nil
}

// invalidTasks is the error for operands that named no task.
func invalidTasks(invalid []string) error {
	if len(invalid) == 0 {
		return nil
	}
	return fmt.Errorf("invalid task or pid value: %s", strings.Join(invalid, ", "))
}

func runFiles(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	if arg, ok := ctx.Opts.Value("d"); ok {
		if len(ctx.Args) > 0 {
			return usagef("-d takes a dentry address, not a task")
		}
		return runFilesDentry(ctx, k, arg)
	}
	ops, invalid, err := taskOperands(ctx)
	if err != nil {
		return err
	}
	var js []filesJSON
	var firstErr error
	nerr := 0
	for _, op := range ops {
		t := op.task
		tf, err := k.TaskFiles(t.Task)
		if err != nil {
			return fmt.Errorf("files of PID %d (task %#x): %w", t.PID, t.Task, err)
		}
		var pages map[int][2]uint64 // fd → i_mapping, nrpages (-c)
		if ctx.Opts.Has("c") {
			pages = map[int][2]uint64{}
			for i, f := range tf.Files {
				if f.Inode == 0 {
					continue
				}
				mapping, nr, err := k.InodePages(f.Inode)
				if err != nil && f.Err == nil {
					tf.Files[i].Err = err
				}
				pages[f.FD] = [2]uint64{mapping, nr}
			}
		}
		for _, f := range tf.Files {
			if f.Err != nil {
				nerr++
				if firstErr == nil {
					firstErr = fmt.Errorf("PID %d fd %d: %w", t.PID, f.FD, f.Err)
				}
			}
		}
		if ctx.JSON {
			j := filesJSON{PID: t.PID, Task: t.Task, CPU: t.CPU, Command: t.Comm, Files: []openFileJSON{}}
			if tf.HasFS {
				j.Root, j.Cwd = &tf.Root, &tf.Cwd
			}
			for _, f := range tf.Files {
				oj := openFileJSON{FD: f.FD, File: f.File, Dentry: f.Dentry, Inode: f.Inode, Type: f.Type, Path: f.Path}
				if p, ok := pages[f.FD]; ok {
					oj.Mapping, oj.NrPages = &p[0], &p[1]
				}
				if f.Err != nil {
					oj.Error = f.Err.Error()
				}
				j.Files = append(j.Files, oj)
			}
			js = append(js, j)
			continue
		}
		// crash's header starts with a blank line from the second
		// operand on (each task a PID names ends with one, too).
		if op.arg > 0 {
			fmt.Fprintln(ctx.Out)
		}
		writeTaskHeader(ctx.Out, &t, 0)
		writeFiles(ctx.Out, tf, pages)
		if op.byPID {
			fmt.Fprintln(ctx.Out)
		}
	}
	if ctx.JSON {
		if js == nil {
			js = []filesJSON{}
		}
		if err := writeJSON(ctx, js); err != nil {
			return err
		}
	}
	if err := invalidTasks(invalid); err != nil {
		return err
	}
	if firstErr != nil {
		if nerr > 1 {
			return fmt.Errorf("%w (and %d more files could not be read)", firstErr, nerr-1)
		}
		return firstErr
	}
	return nil
}

// filesHeader is crash's header of the open files table (filesys.c,
// open_files_dump): FD, then FILE, DENTRY and INODE centred over 16
// columns.
const filesHeader = " FD       FILE            DENTRY           INODE       TYPE PATH\n"

// filesPagesHeader is crash's header with -c (PRINT_NRPAGES,
// open_files_dump): INODE and I_MAPPING centred over 16 columns.
const filesPagesHeader = " FD      INODE          I_MAPPING     NRPAGES TYPE PATH\n"

// writeFiles prints one task's files as crash's open_files_dump does;
// pages (files -c) replaces the file and dentry by the inode's
// address_space and its page count.
func writeFiles(w io.Writer, tf *kernel.TaskFiles, pages map[int][2]uint64) {
	if tf.HasFS {
		fmt.Fprintf(w, "ROOT: %s    CWD: %s\n", tf.Root, tf.Cwd)
	}
	if !tf.HasFDTable || len(tf.Files) == 0 {
		fmt.Fprintln(w, "No open files")
		return
	}
	if pages != nil {
		fmt.Fprint(w, filesPagesHeader)
	} else {
		fmt.Fprint(w, filesHeader)
	}
	for _, f := range tf.Files {
		switch {
		case f.Dentry == 0:
			// crash's DUMP_EMPTY_FILE line: the dentry zero-filled,
			// "?" for what cannot be known.
			fmt.Fprintf(w, "%3d %16x %016x %s ?    ?\n", f.FD, f.File, f.Dentry, center(16, "?", false))
		case f.Inode == 0:
			fmt.Fprintf(w, "%3d %16x %16x %016x ?    ?\n", f.FD, f.File, f.Dentry, f.Inode)
		default:
			path := f.Path
			if f.PathErr != nil {
				// A partial path would name the wrong file.
				path = "(unknown)"
			}
			if p, ok := pages[f.FD]; ok {
				fmt.Fprintf(w, "%3d %16x %16x %7d %-4s %s\n", f.FD, f.Inode, p[0], p[1], f.Type, path)
				continue
			}
			fmt.Fprintf(w, "%3d %16x %16x %16x %-4s %s\n", f.FD, f.File, f.Dentry, f.Inode, f.Type, path)
		}
	}
}

// dentryJSON is files -d --json.
type dentryJSON struct {
	Dentry     uint64 `json:"dentry"`
	Inode      uint64 `json:"inode"`
	SuperBlock uint64 `json:"super_block"`
	Type       string `json:"type"`
	Path       string `json:"path"`
}

// runFilesDentry is files -d: crash's display_dentry_info, the path
// found through init's mounts.
func runFilesDentry(ctx *Context, k *kernel.Kernel, arg string) error {
	dentry, err := parseHex("dentry", arg)
	if err != nil {
		return err
	}
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return err
	}
	ns, err := namespaceTask(tasks)
	if err != nil {
		return err
	}
	di, err := k.DentryInfo(dentry, ns.Task)
	if err != nil {
		return err
	}
	if ctx.JSON {
		return writeJSON(ctx, dentryJSON{Dentry: di.Dentry, Inode: di.Inode, SuperBlock: di.SuperBlock, Type: di.Type, Path: di.Path})
	}
	fmt.Fprintf(ctx.Out, "%s %s %s TYPE PATH\n", center(16, "DENTRY", false), center(16, "INODE", false), center(16, "SUPERBLK", false))
	fmt.Fprintf(ctx.Out, "%16x %16x %s %-4s %s\n", di.Dentry, di.Inode, center(16, fmt.Sprintf("%x", di.SuperBlock), false), di.Type, di.Path)
	return nil
}
