// Package kernel presents a dumped Linux kernel as typed objects: globals
// and per-CPU variables found by symbol and typed by the debug info, values
// read lazily from the dump through the architecture's translator, the
// kernel's linked structures (list_head, hlist, rb_tree), the loaded
// modules and their symbols, and checks that a vmlinux belongs to a dump.
//
//	k, err := kernel.Open(f, kernel.Options{Vmlinux: path}) // or {} for kallsyms + BTF
//	init, _ := k.Global("init_task")
//	for task, err := range k.Tasks() { pid, _ := task.Member("pid"); … }
//	rq, _ := k.PerCPU("runqueues", 1)
//	v, _ := k.ContainerOf(node, "struct task_struct", "tasks")
//	u, _ := k.UTSName()
//	mods, err := k.Modules() // and k.Symbols.Lookup("virtio_blk:virtblk_probe")
//
// Errors say where: a *ReadError carries the address and type read and
// wraps the translator's error and the *dump.PageError with the page's
// state; a *ModuleError names the struct module (address, name) that
// could not be read; a *MismatchError says how a vmlinux differs from
// the dump.
//
// It sits between debuginfo (symbols, types) and analyze (commands): it
// knows kernel data structures, never output formats.
package kernel
