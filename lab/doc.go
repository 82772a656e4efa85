// Package lab is salvage's QEMU lab: it fetches real Debian kernels, boots
// them under QEMU (TCG), crashes them in real ways (a live dump by QEMU, a
// sysrq panic captured by kdump, an oops, a hung task), keeps the dumps the
// reference tools made, and records what Debian's crash (and drgn) say
// about each dump. Everything is cached under corpus.Dir(), keyed by what
// made it, and listed in manifest.json (package lab/corpus).
package lab
