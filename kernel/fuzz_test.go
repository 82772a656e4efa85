package kernel

import (
	"strings"
	"testing"
)

// FuzzParseBanner: any text parses or is refused; a parsed banner's
// parts come from the text.
func FuzzParseBanner(f *testing.F) {
	f.Add("Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\n")
	f.Add("Linux version 6.12.48+deb12-cloud-amd64 ((( #1")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBanner(s)
		if err != nil {
			return
		}
		for _, part := range []string{b.Release, b.Builder, b.Compiler, b.Build, b.DebianVersion} {
			if !strings.Contains(s, part) {
				t.Fatalf("part %q not in %q", part, s)
			}
		}
	})
}
