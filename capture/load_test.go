package capture

import (
	"errors"
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
	other := errors.New("other")
	if ExplainKexecError(other, p, "") != other {
		t.Error("a non-errno error is changed")
	}
}
