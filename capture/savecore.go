package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"salvage/collect"
	"salvage/dump"
)

// SavecoreOptions say where savecore finds a dump and where it saves it.
type SavecoreOptions struct {
	// Raw is the raw target's device (or an image of it); "" means
	// /proc/vmcore, when running in a kdump kernel.
	Raw string
	// Vmcore is the dump to save without Raw (default /proc/vmcore).
	Vmcore string
	// Store is where the dump goes, in the local layout.
	Store Store
	// Collector options, for /proc/vmcore.
	Options  collect.Options
	Dmesg    DmesgFunc
	NumDumps int
	// KeepHeader leaves the raw device's header in place (the dump will
	// be found again).
	KeepHeader bool
	Now        time.Time
	Logf       func(string, ...any)
}

// Savecore saves a dump left for after the reboot: the flattened stream a
// raw target's capture wrote to a block device, reassembled into the local
// layout (dump.STAMP as an ordinary kdump file, dmesg.STAMP from the log
// the capture wrote beside it), after which the device's header is cleared
// so that the same dump is not saved twice; or, in a kdump kernel,
// /proc/vmcore collected as the capture kernel would.
func Savecore(ctx context.Context, o SavecoreOptions) (*Saved, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Raw == "" {
		v := o.Vmcore
		if v == "" {
			v = "/proc/vmcore"
		}
		if _, err := os.Stat(v); err != nil {
			return nil, fmt.Errorf("no raw device given and no %s: this is not a kdump kernel (give --raw DEVICE)", v)
		}
		src, err := dump.Open(v)
		if err != nil {
			return nil, err
		}
		defer src.Close()
		return SaveDump(ctx, o.Store, src, o.Options, o.Dmesg, o.Now, o.NumDumps, o.Logf)
	}
	flag := os.O_RDWR
	if o.KeepHeader {
		flag = os.O_RDONLY
	}
	dev, err := os.OpenFile(o.Raw, flag, 0)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	h, err := ReadRawHeader(dev, o.Raw)
	if err != nil {
		return nil, err
	}
	size, err := dev.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	streamLen := int64(h.StreamLen)
	if !h.Complete {
		// The capture stopped before it finished: take the stream as far
		// as it goes; the reader marks the dump incomplete.
		streamLen = size - int64(h.StreamOff)
		o.Logf("%s: the capture did not finish: saving what it wrote", o.Raw)
	}
	if int64(h.StreamOff)+streamLen > size {
		return nil, fmt.Errorf("%s: the header says the stream ends at %d, past the device's end (%d)", o.Raw, int64(h.StreamOff)+streamLen, size)
	}
	o.Logf("%s: %s", o.Raw, h)
	flat, err := dump.IndexFlattened(io.NewSectionReader(dev, int64(h.StreamOff), streamLen), streamLen, o.Raw)
	if err != nil {
		return nil, err
	}
	stamp, err := time.Parse(StampLayout, h.Stamp)
	if err != nil {
		return nil, err
	}
	s := o.Store
	dir, err := NewDumpDir(s, stamp)
	if err != nil {
		return nil, err
	}
	sv := &Saved{Store: s.String(), Dir: dir}
	if h.DmesgLen > 0 {
		name := DmesgFile(dir)
		err := writeStoreFile(s, name, func(w io.Writer) error {
			_, err := io.Copy(w, io.NewSectionReader(dev, int64(h.DmesgOff), int64(h.DmesgLen)))
			return err
		})
		if err != nil {
			o.Logf("saving the kernel log: %v", err)
		} else {
			sv.Dmesg = name
		}
	}
	name := DumpFile(dir)
	tmp := name + IncompleteSuffix
	f, err := s.Create(tmp)
	if err != nil {
		return sv, err
	}
	n, err := flat.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	sv.Bytes = flat.Size()
	if err != nil {
		sv.Dump, sv.Incomplete = tmp, true
		return sv, fmt.Errorf("%s: %w (after %d bytes)", tmp, err, n)
	}
	if !h.Complete || !flat.Complete {
		sv.Dump, sv.Incomplete = tmp, true
		o.Logf("saved an incomplete dump to %s/%s", s, tmp)
	} else {
		if err := s.Rename(tmp, name); err != nil {
			return sv, err
		}
		sv.Dump = name
		o.Logf("saved the dump to %s/%s (%d bytes)", s, name, sv.Bytes)
	}
	if sv.Pruned, err = PruneDumps(s, o.NumDumps, dir); err != nil {
		o.Logf("pruning old dumps: %v", err)
	}
	if !o.KeepHeader {
		if err := ClearRawHeader(dev); err != nil {
			return sv, fmt.Errorf("%s: clearing the header: %w (the dump is saved; it will be found again)", o.Raw, err)
		}
		if err := dev.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
			return sv, fmt.Errorf("%s: %w", o.Raw, err)
		}
	}
	return sv, nil
}
