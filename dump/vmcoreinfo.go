package dump

// VMCoreInfo is the kernel's VMCOREINFO note, parsed into typed lookups.
// (Owned by the ELF/notes work; stub.)
type VMCoreInfo struct {
	Raw string
}
