//go:build linux && amd64

package capture

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Load loads p into the crash reservation with kexec_file_load(2) and
// KEXEC_FILE_ON_CRASH: the kernel itself parses, checks (and under
// lockdown verifies) the bzImage, and places it, the initramfs and its
// boot parameters in the reservation.
func Load(root string, p *LoadPlan) error {
	k, err := os.Open(filepath.Join(root, p.Kernel))
	if err != nil {
		return err
	}
	defer k.Close()
	i, err := os.Open(filepath.Join(root, p.Initrd))
	if err != nil {
		return err
	}
	defer i.Close()
	err = unix.KexecFileLoad(int(k.Fd()), int(i.Fd()), p.Cmdline, unix.KEXEC_FILE_ON_CRASH)
	if err != nil {
		return ExplainKexecError(err, p, lockdownState(root))
	}
	return nil
}

// Unload removes the loaded capture kernel (KEXEC_FILE_UNLOAD).
func Unload(root string) error {
	err := unix.KexecFileLoad(-1, -1, "", unix.KEXEC_FILE_UNLOAD|unix.KEXEC_FILE_ON_CRASH)
	if err != nil {
		return ExplainKexecError(err, &LoadPlan{}, lockdownState(root))
	}
	return nil
}

func lockdownState(root string) string {
	b, _ := os.ReadFile(filepath.Join(root, "sys/kernel/security/lockdown"))
	return string(b)
}
