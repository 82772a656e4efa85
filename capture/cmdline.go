package capture

import "strings"

// CmdlineArgs splits a kernel command line as the kernel does (lib/cmdline.c
// next_arg): blanks separate parameters except inside double quotes, and
// the quotes stay in the parameter's text.
func CmdlineArgs(s string) []string {
	var out []string
	i := 0
	for i < len(s) {
		for i < len(s) && isBlank(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		start, quoted := i, false
		for i < len(s) && (quoted || !isBlank(s[i])) {
			if s[i] == '"' {
				quoted = !quoted
			}
			i++
		}
		out = append(out, s[start:i])
	}
	return out
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// paramKey is a parameter's name: the text before '=', quotes removed.
func paramKey(p string) string {
	k, _, _ := strings.Cut(p, "=")
	return strings.Trim(k, `"`)
}

// droppedParams are parameters of the running kernel that must not reach
// the capture kernel: the reservation itself, boot-loader and initramfs
// choices of the production system, memory carve-outs the small capture
// kernel cannot afford, hibernation resume (which would restore the
// crashed system), CPU counts (replaced), and quiet (the capture's
// messages are wanted on the console).
var droppedParams = map[string]bool{
	"crashkernel": true, "BOOT_IMAGE": true, "initrd": true, "rdinit": true, "init": true,
	"elfcorehdr": true, "resume": true, "resume_offset": true, "noresume": true,
	"hugepages": true, "hugepagesz": true, "default_hugepagesz": true, "hugetlb_cma": true, "cma": true,
	"mem": true, "memmap": true, "log_buf_len": true, "trace_buf_size": true, "swiotlb": true, "slub_debug": true,
	"kmemleak": true, "nr_cpus": true, "maxcpus": true, "possible_cpus": true, "quiet": true, "panic": true,
}

// CaptureFriends are the parameters added for the capture kernel besides
// KDUMP_CMDLINE_APPEND (whose default is DefaultCmdlineAppend): memory
// cgroups, machine-check handling, NUMA, memory hot-plug, transparent huge
// pages, ACPI error injection and device dumps all cost memory or time the
// capture does not have; panic=10 reboots a capture kernel that itself
// panics instead of hanging.
const CaptureFriends = "cgroup_disable=memory mce=0 numa=off acpi_no_memhotplug transparent_hugepage=never hest_disable novmcoredd panic=10"

// CaptureCmdline derives the capture kernel's command line: base (the
// running kernel's /proc/cmdline, or KDUMP_CMDLINE when set) less the
// parameters in droppedParams and everything after "--" (arguments for the
// production system's init), then CaptureFriends not already given, then
// appendArgs (KDUMP_CMDLINE_APPEND).
func CaptureCmdline(base, appendArgs string) string {
	var out []string
	for _, p := range CmdlineArgs(base) {
		if p == "--" {
			break
		}
		if !droppedParams[paramKey(p)] {
			out = append(out, p)
		}
	}
	app := CmdlineArgs(appendArgs)
	given := map[string]bool{}
	for _, p := range app {
		given[paramKey(p)] = true
	}
	for _, p := range strings.Fields(CaptureFriends) {
		if !given[paramKey(p)] {
			out = append(out, p)
		}
	}
	out = append(out, app...)
	return strings.Join(out, " ")
}
