package kernel

import "fmt"

// UTSName is struct new_utsname: what uname(2) reports.
type UTSName struct {
	Sysname, Nodename, Release, Version, Machine, Domainname string
}

// newUTSLen is __NEW_UTS_LEN + 1 (include/uapi/linux/utsname.h): the six
// fields of struct new_utsname are char[65], fixed since 2.6.
const newUTSLen = 65

// UTSName reads init_uts_ns.name, the initial UTS namespace's names (the
// hostname set in the root namespace, and the kernel's release and
// version). Only the symbol is needed: the layout is ABI.
func (k *Kernel) UTSName() (UTSName, error) {
	ns, err := k.SymbolAddr("init_uts_ns")
	if err != nil {
		return UTSName{}, err
	}
	off, ok := k.VMCoreInfo().Offset("uts_namespace", "name")
	if !ok && k.Types != nil {
		if t, err := k.Types.Struct("uts_namespace"); err == nil {
			if mp, err := lookupMember(t, "name"); err == nil {
				off, ok = uint64(mp.Offset), true
			}
		}
	}
	if !ok {
		return UTSName{}, fmt.Errorf("init_uts_ns: the offset of uts_namespace.name is in neither VMCOREINFO nor the types")
	}
	b := make([]byte, 6*newUTSLen)
	if err := k.Read(b, ns+off); err != nil {
		return UTSName{}, fmt.Errorf("init_uts_ns: %w", err)
	}
	f := func(i int) string {
		s := b[i*newUTSLen : (i+1)*newUTSLen]
		for j, c := range s {
			if c == 0 {
				return string(s[:j])
			}
		}
		return string(s)
	}
	return UTSName{f(0), f(1), f(2), f(3), f(4), f(5)}, nil
}
