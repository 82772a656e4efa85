// Package lab is salvage's QEMU lab: it fetches real Debian kernels, boots
// them under QEMU (TCG), crashes them in real ways (a live dump by QEMU, a
// sysrq panic captured by kdump, an oops, a hung task), keeps the dumps the
// reference tools made, and records what Debian's crash (and drgn) say
// about each dump. Everything is cached under corpus.Dir(), keyed by what
// made it, and listed in manifest.json (package lab/corpus).
//
// Two kernel generations can be crashed (Options.Kernels): bookworm's 6.1
// cloud kernel every way (the default), and bookworm-security's 6.12 a few
// ways, whose filtered dumps
// sid's makedumpfile makes on the host (bookworm's cannot filter 6.12:
// its own -d 31 dumps are kept as documented rejections). Options.Kernels
// or $SALVAGE_LAB_KERNELS ("6.1,6.12") choose which.
package lab
