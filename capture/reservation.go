package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Region is one /proc/iomem resource: [Start, End], End inclusive as the
// file prints it.
type Region struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

// Size is the region's length in bytes.
func (r Region) Size() uint64 { return r.End - r.Start + 1 }

// Reservation is the machine's crash-kernel state as /proc and /sys show
// it.
type Reservation struct {
	// Cmdline is /proc/cmdline.
	Cmdline string `json:"cmdline"`
	// SystemRAM is the RAM the kernel matched crashkernel= ranges
	// against: the "System RAM" of /proc/iomem, or MemTotal when iomem's
	// addresses are hidden.
	SystemRAM uint64 `json:"system_ram"`
	// Param is what crashkernel= asks for; ParamError says why it asks
	// for nothing (no parameter, or one the kernel refuses).
	Param      *Crashkernel `json:"crashkernel,omitempty"`
	ParamError string       `json:"crashkernel_error,omitempty"`
	// Regions are the "Crash kernel" resources of /proc/iomem (the main
	// one and, with ,high, the low one).
	Regions []Region `json:"regions,omitempty"`
	// Kexec: the kernel has kexec's sysfs files (CONFIG_KEXEC_CORE);
	// CrashSize is /sys/kernel/kexec_crash_size and Loaded
	// /sys/kernel/kexec_crash_loaded.
	Kexec     bool   `json:"kexec"`
	CrashSize uint64 `json:"crash_size"`
	Loaded    bool   `json:"loaded"`
	// Notes say what could not be read and what that means.
	Notes []string `json:"notes,omitempty"`
}

// Reserved is the size of the reservation: kexec_crash_size when the
// kernel has it, else the sum of the iomem regions.
func (r *Reservation) Reserved() uint64 {
	if r.Kexec {
		return r.CrashSize
	}
	var n uint64
	for _, g := range r.Regions {
		n += g.Size()
	}
	return n
}

// ReadReservation reads the reservation under root ("/" on the machine
// itself): proc/cmdline, proc/iomem, proc/meminfo and sys/kernel/kexec_*.
// Missing files are notes, not errors: a kernel without kexec has no
// kexec_crash_size, an unprivileged reader sees iomem addresses as zero.
func ReadReservation(root string) (*Reservation, error) {
	r := &Reservation{}
	b, err := os.ReadFile(filepath.Join(root, "proc/cmdline"))
	if err != nil {
		return nil, fmt.Errorf("reading the kernel command line: %w", err)
	}
	r.Cmdline = strings.TrimRight(string(b), "\n")

	iomem, err := os.Open(filepath.Join(root, "proc/iomem"))
	var ram uint64
	if err == nil {
		res, perr := ParseIOMem(iomem)
		iomem.Close()
		if perr != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(root, "proc/iomem"), perr)
		}
		hidden := len(res) > 0
		for _, x := range res {
			if x.End != 0 {
				hidden = false
			}
			switch {
			case x.Name == "Crash kernel":
				r.Regions = append(r.Regions, x.Region)
			case x.Name == "System RAM" && x.Depth == 0:
				ram += x.Size()
			}
		}
		if hidden {
			r.Regions, ram = nil, 0
			r.Notes = append(r.Notes, "/proc/iomem shows no addresses to this user: run as root to see the reservation's address")
		}
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("no /proc/iomem: %v", err))
	}
	if ram == 0 {
		mi, err := ReadMeminfo(root)
		if err != nil {
			return nil, err
		}
		ram = mi.MemTotal
	}
	r.SystemRAM = ram

	r.Param, err = ParseCrashkernel(r.Cmdline, ram)
	if err != nil {
		r.ParamError = err.Error()
	}

	size, serr := readSysUint(root, "sys/kernel/kexec_crash_size")
	loaded, lerr := readSysUint(root, "sys/kernel/kexec_crash_loaded")
	switch {
	case serr == nil && lerr == nil:
		r.Kexec, r.CrashSize, r.Loaded = true, size, loaded == 1
	case errors.Is(serr, fs.ErrNotExist) && errors.Is(lerr, fs.ErrNotExist):
		r.Notes = append(r.Notes, "no /sys/kernel/kexec_crash_size: this kernel is built without kexec (CONFIG_KEXEC_CORE)")
	case serr != nil:
		return nil, serr
	default:
		return nil, lerr
	}
	return r, nil
}

// readSysUint reads a sysfs file holding one decimal number.
func readSysUint(root, name string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/%s: want a number, got %q", name, strings.TrimSpace(string(b)))
	}
	return v, nil
}

// IOMemResource is one line of /proc/iomem; Depth is its nesting (two
// spaces of indentation per level, kernel/resource.c r_show).
type IOMemResource struct {
	Region
	Name  string
	Depth int
}

// ParseIOMem parses /proc/iomem ("  START-END : NAME" lines, hex).
func ParseIOMem(f io.Reader) ([]IOMemResource, error) {
	var out []IOMemResource
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		trimmed := strings.TrimLeft(line, " ")
		depth := (len(line) - len(trimmed)) / 2
		rng, name, ok := strings.Cut(trimmed, " : ")
		lo, hi, ok2 := strings.Cut(rng, "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("line %d: want START-END : NAME, got %q", n, line)
		}
		out = append(out, IOMemResource{Region: Region{start, end}, Name: name, Depth: depth})
	}
	return out, sc.Err()
}

// Meminfo holds the /proc/meminfo fields salvage uses, in bytes.
type Meminfo struct {
	MemTotal     uint64 `json:"mem_total"`
	MemAvailable uint64 `json:"mem_available"`
}

// ReadMeminfo reads root/proc/meminfo.
func ReadMeminfo(root string) (*Meminfo, error) {
	name := filepath.Join(root, "proc/meminfo")
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	m := &Meminfo{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: want a number, got %q", name, k, f[0])
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		switch k {
		case "MemTotal":
			m.MemTotal = n
		case "MemAvailable":
			m.MemAvailable = n
		}
	}
	if m.MemTotal == 0 {
		return nil, fmt.Errorf("%s: no MemTotal", name)
	}
	return m, nil
}
