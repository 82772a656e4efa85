package lab

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sort"
)

// guestFS holds what goes into the guest besides Debian's binaries: its
// /init, the workload program's source and the crash-trigger module's source.
//
//go:embed guest/init.sh guest/workload/main.go guest/module/salvage_lab.c guest/module/Kbuild
var guestFS embed.FS

func guestFile(name string) []byte {
	b, err := guestFS.ReadFile("guest/" + name)
	if err != nil {
		panic(err) // embedded at build time: cannot be missing
	}
	return b
}

// guestHash is a digest of every embedded guest file, part of the keys of
// everything built from them.
func guestHash() string {
	h := sha256.New()
	var names []string
	fs.WalkDir(guestFS, "guest", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := guestFS.ReadFile(n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
