package debuginfo

import (
	"errors"
	"fmt"
)

// WellKnownVar is the C type of a kernel global variable that the
// analyzer reads, for debug info that lacks it: vmlinux BTF describes
// only per-CPU variables (and a few others), so without a debug vmlinux
// the type of init_task or prb comes from here.
type WellKnownVar struct {
	Name string
	// Type is the C spelling, as DWARF declares it in 6.1 (x86_64);
	// "[]" stands for a length that depends on the configuration
	// (NR_CPUS, MAX_NUMNODES).
	Type string
	// Use says what the analyzer reads it for.
	Use string
	// Absent, when set, says which kernels lack the variable and what
	// they have instead: the analyzer finds out from the debug info or
	// kallsyms which one a dump has, never from the version.
	Absent string
}

// WellKnownVars lists the globals the analyzer needs. Each type is the
// one the kernel has declared since at least 5.x; the lab test checks
// them against the DWARF of the lab's kernel.
var WellKnownVars = []WellKnownVar{
	{"init_task", "struct task_struct", "the task list (ps, foreach)", ""},
	{"runqueues", "struct rq", "per-CPU run queues (runq, the current task of each CPU)", ""},
	{"current_task", "struct task_struct *", "per-CPU current task (x86_64)", "6.2+: pcpu_hot.current_task"},
	{"pcpu_hot", "struct pcpu_hot", "per-CPU current task, IRQ stack (x86_64)", "before 6.2: current_task, hardirq_stack_ptr"},
	{"jiffies", "volatile unsigned long", "uptime (sys)", ""},
	{"jiffies_64", "u64", "uptime (sys)", ""},
	{"mem_section", "struct mem_section **", "SPARSEMEM_EXTREME page tables of struct page", ""},
	{"prb", "struct printk_ringbuffer *", "the kernel log (log)", ""},
	{"printk_rb_static", "struct printk_ringbuffer", "the kernel log before the dynamic buffer", ""},
	{"clear_seq", "struct latched_seq", "log: first record not cleared", ""},
	{"modules", "struct list_head", "loaded modules (mod)", ""},
	{"mod_tree", "struct mod_tree_root", "module address ranges", ""},
	{"init_uts_ns", "struct uts_namespace", "release, version, node name (sys)", ""},
	{"linux_banner", "const char []", "the kernel's version banner", ""},
	{"saved_command_line", "char *", "the kernel command line", ""},
	{"init_mm", "struct mm_struct", "the kernel's page tables", ""},
	{"init_top_pgt", "pgd_t []", "the kernel's top-level page table (x86_64)", ""},
	{"node_data", "pg_data_t *[]", "NUMA nodes (kmem, zones)", ""},
	{"node_states", "nodemask_t []", "online and memory nodes", ""},
	{"vmap_area_list", "struct list_head", "vmalloc areas (kmem -v)", "6.9+: per-node lists in vmap_nodes"},
	{"vmap_area_root", "struct rb_root", "vmalloc areas by address", "6.9+: per-node trees in vmap_nodes"},
	{"vmap_nodes", "struct vmap_node *", "vmalloc areas, per node (kmem -v)", "before 6.9: vmap_area_list"},
	{"nr_vmap_nodes", "unsigned int", "number of vmap_nodes", "before 6.9: vmap_area_list"},
	{"page_offset_base", "unsigned long", "start of the direct map (KASLR)", ""},
	{"vmalloc_base", "unsigned long", "start of vmalloc space (KASLR)", ""},
	{"vmemmap_base", "unsigned long", "start of the struct page array (KASLR)", ""},
	{"phys_base", "unsigned long", "physical load offset of the kernel", ""},
	{"high_memory", "void *", "end of the direct map", ""},
	{"max_pfn", "unsigned long", "highest page frame", ""},
	{"_totalram_pages", "atomic_long_t", "total RAM (kmem -i, sys)", ""},
	{"vm_node_stat", "atomic_long_t []", "memory counters (kmem -i)", ""},
	{"vm_zone_stat", "atomic_long_t []", "memory counters (kmem -i)", ""},
	{"nr_swapfiles", "unsigned int", "swap devices (kmem -i, swap)", ""},
	{"swap_info", "struct swap_info_struct *[]", "swap devices", ""},
	{"slab_caches", "struct list_head", "slab caches (kmem -s)", ""},
	{"nr_cpu_ids", "unsigned int", "number of possible CPU ids", ""},
	{"__per_cpu_offset", "unsigned long []", "per-CPU area of each CPU", ""},
	{"__cpu_online_mask", "struct cpumask", "online CPUs (cpu_online_mask)", ""},
	{"__cpu_possible_mask", "struct cpumask", "possible CPUs", ""},
	{"__cpu_present_mask", "struct cpumask", "present CPUs", ""},
	{"__cpu_active_mask", "struct cpumask", "active CPUs", ""},
	{"init_pid_ns", "struct pid_namespace", "PIDs (ps, pid lookup)", ""},
	{"pid_max", "int", "PID range", ""},
	{"nr_threads", "int", "number of tasks (sys)", ""},
	{"total_forks", "unsigned long", "forks since boot", ""},
	{"avenrun", "unsigned long []", "load average (sys)", ""},
	{"tainted_mask", "unsigned long", "taint flags (sys)", ""},
	{"panic_cpu", "atomic_t", "the CPU that panicked", ""},
	{"crashing_cpu", "int", "the CPU that crashed (kdump)", ""},
	{"system_state", "enum system_states", "boot, running, halt…", ""},
	{"super_blocks", "struct list_head", "mounted file systems (mount)", ""},
	{"init_fs", "struct fs_struct", "root and cwd of init", ""},
	{"init_files", "struct files_struct", "files of init", ""},
	{"init_net", "struct net", "the initial network namespace (net)", ""},
	{"irq_desc_tree", "struct xarray", "interrupt descriptors (irq; SPARSE_IRQ)", "6.5+: the maple tree sparse_irqs"},
	{"sparse_irqs", "struct maple_tree", "interrupt descriptors (irq; SPARSE_IRQ)", "before 6.5: the xarray irq_desc_tree"},
	{"nr_irqs", "int", "number of interrupts (irq)", ""},
	{"sys_call_table", "const sys_call_ptr_t []", "system calls (sys -c)", ""},
	{"boot_cpu_data", "struct cpuinfo_x86", "the boot CPU's model (sys)", ""},
	{"init_cred", "struct cred", "credentials of init", ""},
}

var wellKnownByName = func() map[string]string {
	m := make(map[string]string, len(WellKnownVars))
	for _, v := range WellKnownVars {
		m[v.Name] = v.Type
	}
	return m
}()

// WithWellKnownVars wraps t so that Var falls back to WellKnownVars for
// globals t has no type for. Errors say which globals lacked a type.
func WithWellKnownVars(t Types) Types {
	return &wellKnownTypes{Types: t}
}

type wellKnownTypes struct {
	Types
}

func (w *wellKnownTypes) Var(name string) (*Type, error) {
	ty, err := w.Types.Var(name)
	var nf *NotFoundError
	if err == nil || !errors.As(err, &nf) {
		return ty, err
	}
	spelling, ok := wellKnownByName[name]
	if !ok {
		return nil, &NotFoundError{
			What:   "variable " + name + " (neither in the debug info nor among the well-known globals)",
			Source: w.Types.Source(),
		}
	}
	ty, err = w.Types.Named(spelling)
	if err != nil {
		return nil, fmt.Errorf("variable %s: %s has no type for it, and its well-known type %q: %w", name, w.Types.Source(), spelling, err)
	}
	return ty, nil
}
