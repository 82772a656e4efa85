package capture

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// InitrdDir is where salvage keeps the capture initramfs it builds.
const InitrdDir = "/var/lib/salvage"

// Settings is the configuration in effect: kdump.conf, with Debian's
// kdump-tools variables filling what kdump.conf leaves unset.
type Settings struct {
	Conf  *KdumpConf  `json:"kdump_conf"`
	Tools *KdumpTools `json:"kdump_tools"`
	// ConfFile and ToolsFile are the files read ("" when absent).
	ConfFile  string `json:"conf_file,omitempty"`
	ToolsFile string `json:"tools_file,omitempty"`
	// CoreDir is where dumps go: kdump.conf's path, else KDUMP_COREDIR.
	CoreDir string `json:"core_dir"`
	// Collector is the core_collector argv: kdump.conf's, else
	// makedumpfile with MAKEDUMP_ARGS, else the default.
	Collector []string `json:"core_collector"`
	// Errors are the configuration's mistakes (the capture would refuse
	// to arm with them); Warnings what is read but ignored.
	Errors   []string `json:"errors,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// LoadSettings reads ROOT/etc/salvage/kdump.conf and
// ROOT/etc/default/kdump-tools; a missing file means its defaults.
func LoadSettings(root string, check CollectorCheck) (*Settings, error) {
	return LoadSettingsConf(root, "", check)
}

// LoadSettingsConf is LoadSettings with kdump.conf read from confFile (a
// path on this machine, not under root; "" for ROOT/etc/salvage/kdump.conf),
// which must then exist.
func LoadSettingsConf(root, confFile string, check CollectorCheck) (*Settings, error) {
	s := &Settings{Conf: DefaultKdumpConf(), Tools: DefaultKdumpTools()}
	// Without Debian's file salvage is on: installing it arms the machine.
	s.Tools.UseKdump = true
	var cerr, terr error
	name, open := ConfPath, filepath.Join(root, ConfPath)
	if confFile != "" {
		name, open = confFile, confFile
	}
	if f, err := os.Open(open); err == nil {
		s.ConfFile = name
		s.Conf, cerr = ParseKdumpConf(name, f, check)
		f.Close()
	} else if confFile != "" || !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if f, err := os.Open(filepath.Join(root, KdumpToolsPath)); err == nil {
		s.ToolsFile = KdumpToolsPath
		s.Tools, terr = ParseKdumpTools(KdumpToolsPath, f)
		f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range []error{cerr, terr} {
		if e != nil {
			s.Errors = append(s.Errors, strings.Split(e.Error(), "\n")...)
		}
	}
	s.Warnings = append(append(s.Warnings, s.Conf.Warnings...), s.Tools.Warnings...)

	s.CoreDir = s.Conf.Path
	if _, set := s.Conf.Set["path"]; !set {
		s.CoreDir = s.Tools.CoreDir
	}
	s.Collector = s.Conf.CoreCollector
	if _, set := s.Conf.Set["core_collector"]; !set && s.Tools.MakedumpArgs != nil {
		s.Collector = append([]string{"makedumpfile"}, s.Tools.MakedumpArgs...)
		if err := checkCollector(s.Collector, check); err != nil {
			s.Errors = append(s.Errors, fmt.Sprintf("%s:%d: MAKEDUMP_ARGS: %v", KdumpToolsPath, s.Tools.Line["MAKEDUMP_ARGS"], err))
		}
	}
	if s.Conf.Target.Kind == "local" {
		switch {
		case s.Tools.SSH != "":
			s.Conf.Target = Target{Kind: "ssh", Host: s.Tools.SSH}
		case s.Tools.NFS != "":
			s.Conf.Target = Target{Kind: "nfs", Host: s.Tools.NFS}
		}
	}
	if s.Conf.SSHKey == "" {
		s.Conf.SSHKey = s.Tools.SSHKey
	}
	return s, nil
}

// Sysctls are the settings that decide whether a fault becomes a panic
// (and so a dump), as kdump-config show lists them.
var Sysctls = []string{"kernel.panic", "kernel.panic_on_oops", "kernel.panic_on_warn", "kernel.hung_task_panic",
	"kernel.softlockup_panic", "kernel.hardlockup_panic", "kernel.unknown_nmi_panic", "kernel.panic_on_unrecovered_nmi",
	"kernel.panic_on_io_nmi", "kernel.panic_on_rcu_stall", "kernel.sysrq", "vm.panic_on_oom"}

// Sysctl is one setting's value and what KDUMP_SYSCTL asks for it.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Want  string `json:"want,omitempty"`
}

// Show is what `salvage kdump show` prints: what `kdump-config show`
// prints, with the capture command line salvage would load.
type Show struct {
	DumpMode  string   `json:"dump_mode"`
	UseKdump  bool     `json:"use_kdump"`
	CoreDir   string   `json:"core_dir"`
	Target    string   `json:"target"`
	Collector []string `json:"core_collector"`
	Sysctls   []Sysctl `json:"sysctl"`
	Release   string   `json:"release"`
	Kernel    string   `json:"kernel"`
	Initrd    string   `json:"initrd"`
	// InitrdState says whether salvage's own capture initramfs (the
	// default initrd) is built and up to date; "" for KDUMP_INITRD's.
	InitrdState string `json:"initrd_state,omitempty"`
	Cmdline     string `json:"capture_cmdline"`
	Ready       bool   `json:"ready"`
	State       string `json:"state"`
	// Reasons say why the machine is not ready, with what to do.
	Reasons     []string     `json:"reasons,omitempty"`
	Reservation *Reservation `json:"reservation"`
	Settings    *Settings    `json:"settings"`
}

// ReadShow gathers Show from the machine under root.
func ReadShow(root string, check CollectorCheck) (*Show, error) {
	set, err := LoadSettings(root, check)
	if err != nil {
		return nil, err
	}
	res, err := ReadReservation(root)
	if err != nil {
		return nil, err
	}
	s := &Show{DumpMode: "kdump", UseKdump: set.Tools.UseKdump, CoreDir: set.CoreDir, Collector: set.Collector,
		Target: set.Conf.Target.String(), Reservation: res, Settings: set}
	if b, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/osrelease")); err == nil {
		s.Release = strings.TrimSpace(string(b))
	}
	want := map[string]string{}
	for _, kv := range set.Tools.Sysctl {
		k, v, _ := strings.Cut(kv, "=")
		want[k] = v
	}
	for _, name := range Sysctls {
		b, err := os.ReadFile(filepath.Join(root, "proc/sys", strings.ReplaceAll(name, ".", "/")))
		if err != nil {
			continue
		}
		s.Sysctls = append(s.Sysctls, Sysctl{Name: name, Value: strings.TrimSpace(string(b)), Want: want[name]})
	}
	s.Kernel = set.Tools.Kernel
	if s.Kernel == "" && s.Release != "" {
		s.Kernel = "/boot/vmlinuz-" + s.Release
	}
	s.Initrd = set.Tools.Initrd
	if s.Initrd == "" && s.Release != "" {
		s.Initrd = InitrdPath(s.Release)
		s.InitrdState = initrdState(root, s.Release, check)
	}
	base := res.Cmdline
	if set.Tools.Cmdline != "" {
		base = set.Tools.Cmdline
	}
	s.Cmdline = CaptureCmdline(base, set.Tools.CmdlineAppend)
	s.Reasons = notReady(s, res, set)
	s.Ready = len(s.Reasons) == 0
	s.State = "ready to kdump"
	if !s.Ready {
		s.State = "not ready to kdump"
	}
	return s, nil
}

// initrdState says whether the capture initramfs salvage builds for
// release is there and matches the configuration, modules and salvage of
// now (the key of BuildInitramfs).
func initrdState(root, release string, check CollectorCheck) string {
	out := filepath.Join(root, InitrdPath(release))
	if _, err := os.Stat(out); err != nil {
		return "not built: `salvage kdump load` builds it"
	}
	if _, err := os.Stat(out + KeySuffix); err != nil {
		return "not built by salvage (no " + InitrdPath(release) + KeySuffix + ")"
	}
	_, fresh, err := InitramfsKey(InitramfsOptions{Root: root, Release: release, Output: out, Check: check})
	switch {
	case err != nil:
		return "cannot tell whether it is up to date: " + err.Error()
	case !fresh:
		return "stale: `salvage kdump load` rebuilds it"
	}
	return "up to date"
}

// notReady lists what stands between the machine and a dump, most
// fundamental first.
func notReady(s *Show, r *Reservation, set *Settings) []string {
	var why []string
	if !set.Tools.UseKdump {
		why = append(why, fmt.Sprintf("kdump is off: USE_KDUMP=0 in %s", KdumpToolsPath))
	}
	for _, e := range set.Errors {
		why = append(why, "configuration: "+e)
	}
	if !r.Kexec {
		return append(why, "this kernel has no kexec (no /sys/kernel/kexec_crash_loaded): boot a kernel built with CONFIG_KEXEC_FILE and CONFIG_CRASH_DUMP")
	}
	switch {
	case r.Param == nil && r.ParamError == ErrNoCrashkernel.Error():
		return append(why, "no crashkernel= on the kernel command line: `salvage kdump estimate` says how much to reserve and how")
	case r.ParamError != "":
		return append(why, "the kernel reserved nothing: "+r.ParamError+"; `salvage kdump estimate` recommends a size")
	case r.Reserved() == 0:
		msg := fmt.Sprintf("%s asked for %s, but the kernel reserved nothing", strings.Join(r.Param.Params, " "), FormatSize(r.Param.Size))
		if r.Param.Size >= r.SystemRAM {
			msg += fmt.Sprintf(": that is more than the RAM (%s)", FormatSize(r.SystemRAM))
		} else {
			msg += " (see `dmesg | grep crashkernel`)"
		}
		return append(why, msg+"; `salvage kdump estimate` recommends a size")
	}
	if !r.Loaded {
		why = append(why, "no capture kernel is loaded: run `salvage kdump load`")
	}
	return why
}

// WriteShow prints s in kdump-config show's layout.
func WriteShow(w io.Writer, s *Show) {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	r := s.Reservation
	fmt.Fprintf(w, "DUMP_MODE:              %s\n", s.DumpMode)
	fmt.Fprintf(w, "USE_KDUMP:              %d\n", b(s.UseKdump))
	fmt.Fprintf(w, "KDUMP_COREDIR:          %s\n", s.CoreDir)
	fmt.Fprintf(w, "target:                 %s\n", s.Target)
	fmt.Fprintf(w, "core_collector:         %s\n", strings.Join(s.Collector, " "))
	for _, x := range s.Sysctls {
		line := fmt.Sprintf("%s = %s", x.Name, x.Value)
		if x.Want != "" && x.Want != x.Value {
			line += fmt.Sprintf(" (KDUMP_SYSCTL sets %s)", x.Want)
		}
		fmt.Fprintf(w, "sysctl:                 %s\n", line)
	}
	switch {
	case len(r.Regions) > 0:
		for _, g := range r.Regions {
			fmt.Fprintf(w, "crashkernel addr:       0x%x\n", g.Start)
			fmt.Fprintf(w, "   crashkernel size:    0x%x (%s)\n", g.Size(), FormatSize(g.Size()))
		}
	case r.Reserved() > 0:
		fmt.Fprintf(w, "crashkernel addr:       (hidden from this user)\n")
		fmt.Fprintf(w, "   crashkernel size:    0x%x (%s)\n", r.Reserved(), FormatSize(r.Reserved()))
	default:
		fmt.Fprintf(w, "crashkernel addr:       none\n")
	}
	fmt.Fprintf(w, "kdump kernel:           %s\n", s.Kernel)
	if s.InitrdState != "" {
		fmt.Fprintf(w, "kdump initrd:           %s (%s)\n", s.Initrd, s.InitrdState)
	} else {
		fmt.Fprintf(w, "kdump initrd:           %s\n", s.Initrd)
	}
	fmt.Fprintf(w, "current state:          %s\n", s.State)
	for _, x := range s.Reasons {
		fmt.Fprintf(w, "   %s\n", x)
	}
	fmt.Fprintf(w, "\ncapture command line:\n  %s\n", s.Cmdline)
	for _, x := range s.Settings.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}

// WriteStatus prints the one-line state and, when not ready, why.
func WriteStatus(w io.Writer, s *Show) {
	fmt.Fprintf(w, "current state:          %s\n", s.State)
	for _, x := range s.Reasons {
		fmt.Fprintf(w, "   %s\n", x)
	}
}
