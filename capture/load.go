package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// LoadPlan is what `salvage kdump load` hands to kexec_file_load.
type LoadPlan struct {
	Kernel     string `json:"kernel"`
	KernelSize int64  `json:"kernel_size"`
	Initrd     string `json:"initrd,omitempty"`
	InitrdSize int64  `json:"initrd_size,omitempty"`
	Cmdline    string `json:"cmdline"`
	// Reserved is the crashkernel reservation the image goes into.
	Reserved uint64   `json:"reserved"`
	Regions  []Region `json:"regions,omitempty"`
	// Loaded: a capture kernel is loaded already (load replaces it).
	Loaded bool `json:"loaded"`
	// Sysctl are the KDUMP_SYSCTL settings load applies (name=value),
	// those already in effect left out.
	Sysctl []string `json:"sysctl,omitempty"`
}

// ApplySysctls writes each name=value to ROOT/proc/sys, as kdump-config
// does with KDUMP_SYSCTL when it loads.
func ApplySysctls(root string, settings []string) error {
	for _, kv := range settings {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != "" || strings.Contains(k, "..") {
			return fmt.Errorf("KDUMP_SYSCTL: %q is not name=value", kv)
		}
		name := filepath.Join(root, "proc/sys", strings.ReplaceAll(k, ".", "/"))
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
		_, err = f.WriteString(v + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// PlanLoad checks that s's machine can take a capture kernel and returns
// what would be loaded. kernel and initrd override the configured ones
// (paths on the machine; root is prefixed to read them).
func PlanLoad(root string, s *Show, kernel, initrd string) (*LoadPlan, error) {
	r := s.Reservation
	if len(s.Settings.Errors) > 0 {
		return nil, fmt.Errorf("the configuration has mistakes:\n  %s", strings.Join(s.Settings.Errors, "\n  "))
	}
	if !r.Kexec {
		return nil, errors.New("this kernel has no kexec (no /sys/kernel/kexec_crash_loaded): boot a kernel built with CONFIG_KEXEC_FILE and CONFIG_CRASH_DUMP")
	}
	if r.Reserved() == 0 {
		why := "no crashkernel= on the kernel command line"
		if r.Param != nil || r.ParamError != ErrNoCrashkernel.Error() {
			why = "the kernel reserved nothing for crashkernel="
			if r.Param != nil && len(r.Param.Params) > 0 {
				why = "the kernel reserved nothing for " + strings.Join(r.Param.Params, " ")
			}
			if r.ParamError != "" {
				why += " (" + r.ParamError + ")"
			}
		}
		return nil, fmt.Errorf("cannot load a capture kernel: %s; `salvage kdump estimate` says how much to reserve and how", why)
	}
	p := &LoadPlan{Kernel: s.Kernel, Initrd: s.Initrd, Cmdline: s.Cmdline, Reserved: r.Reserved(), Regions: r.Regions, Loaded: r.Loaded}
	if kernel != "" {
		p.Kernel = kernel
	}
	if initrd != "" {
		p.Initrd = initrd
	}
	initSize, err := BzImageInitSize(filepath.Join(root, p.Kernel))
	if err != nil {
		return nil, fmt.Errorf("capture kernel: %w", err)
	}
	st, err := os.Stat(filepath.Join(root, p.Kernel))
	if err != nil {
		return nil, fmt.Errorf("capture kernel: %w", err)
	}
	p.KernelSize = st.Size()
	st, err = os.Stat(filepath.Join(root, p.Initrd))
	if err != nil {
		return nil, fmt.Errorf("capture initramfs: %w (give --initrd)", err)
	}
	p.InitrdSize = st.Size()
	// At a crash the bzImage decompresses itself inside the reservation,
	// so it needs its init_size there, beside the initramfs.
	if need := max(initSize, uint64(p.KernelSize)) + uint64(p.InitrdSize); need >= p.Reserved {
		return nil, fmt.Errorf("the kernel (init_size %s) and initramfs (%s) do not fit in the reservation (%s): `salvage kdump estimate` recommends a size",
			FormatSize(roundUp(initSize, 1<<20)), FormatSize(roundUp(uint64(p.InitrdSize), 1<<10)), FormatSize(p.Reserved))
	}
	for _, x := range s.Sysctls {
		if x.Want != "" && x.Want != x.Value {
			p.Sysctl = append(p.Sysctl, x.Name+"="+x.Want)
		}
	}
	listed := map[string]bool{}
	for _, x := range s.Sysctls {
		listed[x.Name] = true
	}
	for _, kv := range s.Settings.Tools.Sysctl {
		if k, _, _ := strings.Cut(kv, "="); !listed[k] {
			p.Sysctl = append(p.Sysctl, kv)
		}
	}
	return p, nil
}

// Linux's errno values of signature failures (include/uapi/asm-generic/
// errno.h), named here because syscall lacks them on other systems.
const (
	eBadMsg      = syscall.Errno(74)
	eNoKey       = syscall.Errno(126)
	eKeyRejected = syscall.Errno(129)
)

// ExplainKexecError turns kexec_file_load's errno into what to do about
// it (kernel/kexec_file.c, security/lockdown).
func ExplainKexecError(err error, p *LoadPlan, lockdown string) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err
	}
	var msg string
	switch errno {
	case syscall.EPERM:
		msg = "not permitted: loading needs root (CAP_SYS_BOOT)"
		if lockdown != "" && !strings.Contains(lockdown, "[none]") {
			msg = "not permitted: the kernel is locked down (" + strings.TrimSpace(lockdown) + "), so it loads only kernels signed with a key it trusts — use the distribution's signed kernel"
		}
	case eKeyRejected, eBadMsg, eNoKey:
		msg = "the kernel's signature was refused (Secure Boot or CONFIG_KEXEC_SIG_FORCE): use a kernel signed with a trusted key"
	case syscall.ENOMEM, syscall.EADDRNOTAVAIL:
		// kexec_locate_mem_hole finds no room in crashk_res: the lab's
		// 6.1 kernel answers EADDRNOTAVAIL with no reservation at all.
		msg = fmt.Sprintf("the capture kernel and initramfs do not fit in the %s reservation: `salvage kdump estimate` recommends a size", FormatSize(p.Reserved))
		if p.Reserved == 0 {
			msg = "there is no crashkernel reservation: `salvage kdump estimate` says how much to reserve"
		}
	case syscall.EINVAL:
		msg = "the kernel refused the image or command line"
		if p.Reserved == 0 {
			msg = "there is no crashkernel reservation: `salvage kdump estimate` says how much to reserve"
		}
	case syscall.ENOEXEC:
		msg = p.Kernel + " is not a kernel this kernel can load (an x86 bzImage is needed)"
	case syscall.EBUSY:
		msg = "another kexec load is in progress; try again"
	case syscall.ENOSYS:
		msg = "this kernel has no kexec_file_load (CONFIG_KEXEC_FILE)"
	default:
		msg = errno.Error()
	}
	return fmt.Errorf("kexec_file_load: %s (%s)", msg, errnoName(errno))
}

func errnoName(e syscall.Errno) string {
	for name, v := range map[string]syscall.Errno{"EPERM": syscall.EPERM, "ENOMEM": syscall.ENOMEM, "EINVAL": syscall.EINVAL,
		"ENOEXEC": syscall.ENOEXEC, "EBUSY": syscall.EBUSY, "ENOSYS": syscall.ENOSYS, "EKEYREJECTED": eKeyRejected,
		"EBADMSG": eBadMsg, "ENOKEY": eNoKey, "EADDRNOTAVAIL": syscall.EADDRNOTAVAIL} {
		if v == e {
			return name
		}
	}
	return fmt.Sprintf("errno %d", int(e))
}

// WritePlan prints what load would do.
func WritePlan(w interface{ Write([]byte) (int, error) }, p *LoadPlan) {
	fmt.Fprintf(w, "kernel:        %s (%d bytes)\n", p.Kernel, p.KernelSize)
	fmt.Fprintf(w, "initrd:        %s (%d bytes)\n", p.Initrd, p.InitrdSize)
	fmt.Fprintf(w, "command line:  %s\n", p.Cmdline)
	for _, g := range p.Regions {
		fmt.Fprintf(w, "into:          0x%x-0x%x (%s)\n", g.Start, g.End, FormatSize(g.Size()))
	}
	if len(p.Regions) == 0 {
		fmt.Fprintf(w, "into:          the %s reservation\n", FormatSize(p.Reserved))
	}
	for _, x := range p.Sysctl {
		fmt.Fprintf(w, "sysctl:        %s\n", x)
	}
	if p.Loaded {
		fmt.Fprintf(w, "replacing the capture kernel loaded now\n")
	}
}
