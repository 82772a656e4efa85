package capture

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestExplainKexecError(t *testing.T) {
	p := &LoadPlan{Kernel: "/boot/vmlinuz", Reserved: 256 << 20}
	for _, c := range []struct {
		err      error
		lockdown string
		want     string
	}{
		{syscall.EPERM, "", "not permitted: loading needs root (CAP_SYS_BOOT) (EPERM)"},
		{syscall.EPERM, "none [integrity] confidentiality\n", "the kernel is locked down (none [integrity] confidentiality), so it loads only kernels signed"},
		{syscall.EPERM, "[none] integrity confidentiality\n", "needs root"},
		{eKeyRejected, "", "signature was refused (Secure Boot or CONFIG_KEXEC_SIG_FORCE): use a kernel signed with a trusted key (EKEYREJECTED)"},
		{eBadMsg, "", "(EBADMSG)"},
		{syscall.ENOMEM, "", "do not fit in the 256M reservation: `salvage kdump estimate` recommends a size (ENOMEM)"},
		{syscall.EINVAL, "", "the kernel refused the image or command line (EINVAL)"},
		{syscall.EADDRNOTAVAIL, "", "do not fit in the 256M reservation: `salvage kdump estimate` recommends a size (EADDRNOTAVAIL)"},
		{syscall.ENOEXEC, "", "/boot/vmlinuz is not a kernel this kernel can load"},
		{syscall.EBUSY, "", "another kexec load is in progress"},
		{syscall.ENOSYS, "", "no kexec_file_load (CONFIG_KEXEC_FILE) (ENOSYS)"},
		{syscall.Errno(200), "", "(errno 200)"},
	} {
		got := ExplainKexecError(c.err, p, c.lockdown)
		if !strings.HasPrefix(got.Error(), "kexec_file_load: ") || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%v: %v; want %q", c.err, got, c.want)
		}
	}
	if got := ExplainKexecError(syscall.EINVAL, &LoadPlan{}, ""); !strings.Contains(got.Error(), "there is no crashkernel reservation") {
		t.Errorf("EINVAL without a reservation: %v", got)
	}
	if got := ExplainKexecError(syscall.EADDRNOTAVAIL, &LoadPlan{}, ""); !strings.Contains(got.Error(), "there is no crashkernel reservation") {
		t.Errorf("EADDRNOTAVAIL without a reservation: %v", got)
	}
	other := errors.New("other")
	if ExplainKexecError(other, p, "") != other {
		t.Error("a non-errno error is changed")
	}
}

func TestApplySysctls(t *testing.T) {
	root := t.TempDir()
	write(t, root, "proc/sys/kernel/panic_on_oops", "0\n")
	write(t, root, "proc/sys/kernel/hung_task_panic", "0\n")
	if err := ApplySysctls(root, []string{"kernel.panic_on_oops=1", "kernel.hung_task_panic=1"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"panic_on_oops", "hung_task_panic"} {
		if b, _ := os.ReadFile(filepath.Join(root, "proc/sys/kernel", n)); string(b) != "1\n" {
			t.Errorf("%s = %q", n, b)
		}
	}
	for _, c := range []struct{ kv, err string }{
		{"kernel.nosuch=1", "sysctl kernel.nosuch: open"},
		{"kernel.panic", `"kernel.panic" is not name=value`},
		{"../../etc/passwd=x", "is not name=value"},
		{"=1", "is not name=value"},
	} {
		if err := ApplySysctls(root, []string{c.kv}); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: %v; want %q", c.kv, err, c.err)
		}
	}
}
