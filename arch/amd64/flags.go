package amd64

import "strings"

// Page-table entry flag bits (Intel SDM vol. 3, tables 4-15 to 4-20),
// named as the kernel's _PAGE_BIT_* (arch/x86/include/asm/pgtable_types.h)
// and as crash prints them in vtop.
var entryFlags = []struct {
	bit  uint
	name string
}{
	{0, "PRESENT"},
	{1, "RW"},
	{2, "USER"},
	{3, "PWT"},
	{4, "PCD"},
	{5, "ACCESSED"},
	{6, "DIRTY"},
	{7, "PSE"}, // PAT in a 4K PTE; crash and the kernel's dumps call it PSE
	{8, "GLOBAL"},
	{63, "NX"},
}

// FlagNames spells an entry's flags as "PRESENT|RW|ACCESSED|…", for vtop.
func FlagNames(entry uint64) string {
	var s []string
	for _, f := range entryFlags {
		if entry&(1<<f.bit) != 0 {
			s = append(s, f.name)
		}
	}
	return strings.Join(s, "|")
}
