// Package capture arms a machine for kdump: it parses crashkernel= as the
// kernel does (kernel/crash_reserve.c, formerly kernel/crash_core.c), reads
// the current reservation from /proc and /sys, reads kdump.conf and Debian's
// /etc/default/kdump-tools, estimates the reservation a capture needs and
// derives the capture kernel's command line.
//
// Everything reads from a root directory (normally "/") so that tests run
// the same code on fixture trees under testdata/ and on the machine itself.
package capture
