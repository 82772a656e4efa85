//go:build !(linux && amd64)

package capture

import "errors"

var errNoKexec = errors.New("loading a capture kernel is implemented for linux/amd64 only")

// Load is implemented on linux/amd64 only.
func Load(root string, p *LoadPlan) error { return errNoKexec }

// Unload is implemented on linux/amd64 only.
func Unload(root string) error { return errNoKexec }
