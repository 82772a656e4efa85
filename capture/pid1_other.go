//go:build !linux

package capture

import (
	"errors"

	"salvage/collect"
)

// InitMain runs only on Linux.
func InitMain(collector func(argv []string) (collect.Options, error), dmesg DmesgFunc) error {
	return errors.New("the capture kernel's init runs on Linux only")
}

// ErrNotCaptureInit is returned by InitMain when the image is not a
// capture initramfs.
var ErrNotCaptureInit = errNoCaptureConfig
