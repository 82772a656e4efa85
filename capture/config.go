package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// ConfPath is where salvage reads its kdump.conf.
const ConfPath = "/etc/salvage/kdump.conf"

// ConfigError is a mistake in a configuration file: where it is, what is
// wrong and how to fix it.
type ConfigError struct {
	File string
	Line int
	Msg  string
	Fix  string
}

// Error prints "FILE:LINE: what is wrong: the fix".
func (e *ConfigError) Error() string {
	s := fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	if e.Fix != "" {
		s += ": " + e.Fix
	}
	return s
}

// Target is where the capture kernel saves the dump.
type Target struct {
	// Kind is "local" (Path on the root filesystem, the default), "fs"
	// (Path on the filesystem Device of type FSType), "raw" (the
	// flattened dump written to the block device Device), "ssh" (to Host,
	// user@host, over SFTP) or "nfs" (Host is server:/export).
	Kind   string `json:"kind"`
	FSType string `json:"fstype,omitempty"`
	Device string `json:"device,omitempty"`
	Host   string `json:"host,omitempty"`
	// Line is the configuration line that set it (0: the default).
	Line int `json:"-"`
}

// String prints the target as its kdump.conf line would name it.
func (t Target) String() string {
	switch t.Kind {
	case "fs":
		return t.FSType + " " + t.Device
	case "raw":
		return "raw " + t.Device
	case "ssh", "nfs":
		return t.Kind + " " + t.Host
	}
	return "local"
}

// KdumpConf is kdump.conf (kexec-tools' format, kdump.conf(5)), as far as
// salvage implements it.
type KdumpConf struct {
	Target Target `json:"target"`
	// Path is the directory dumps go to, on the target (default
	// /var/crash).
	Path          string   `json:"path"`
	SSHKey        string   `json:"sshkey,omitempty"`
	CoreCollector []string `json:"core_collector"`
	KdumpPre      []string `json:"kdump_pre,omitempty"`
	KdumpPost     []string `json:"kdump_post,omitempty"`
	ExtraBins     []string `json:"extra_bins,omitempty"`
	ExtraModules  []string `json:"extra_modules,omitempty"`
	// FailureAction is what the capture kernel does when saving fails:
	// reboot, halt, poweroff, shell or dump_to_rootfs. FinalAction is what
	// it does after: reboot, halt or poweroff.
	FailureAction  string `json:"failure_action"`
	FinalAction    string `json:"final_action"`
	ForceRebuild   bool   `json:"force_rebuild,omitempty"`
	ForceNoRebuild bool   `json:"force_no_rebuild,omitempty"`
	// Set records the directives the file gave (for merging with
	// Debian's defaults).
	Set map[string]int `json:"-"`
	// Warnings are directives read but not acted on.
	Warnings []string `json:"warnings,omitempty"`
}

// DefaultCollector is the core_collector when none is configured
// (kdump.conf's default: lzo-compressed, dump level 31).
var DefaultCollector = []string{"makedumpfile", "-l", "--message-level", "7", "-d", "31"}

// DefaultKdumpConf is the configuration with no file.
func DefaultKdumpConf() *KdumpConf {
	return &KdumpConf{Target: Target{Kind: "local"}, Path: "/var/crash",
		CoreCollector: append([]string(nil), DefaultCollector...), FailureAction: "reboot", FinalAction: "reboot",
		Set: map[string]int{}}
}

// CollectorCheck validates a core_collector's arguments (those after
// "makedumpfile" or "salvage collect") against the collector's flags; the
// command wires it to `salvage collect`'s own flag set.
type CollectorCheck func(args []string) error

var (
	fsTypes       = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "minix": true, "vfat": true, "virtiofs": true}
	failureAction = []string{"reboot", "halt", "poweroff", "shell", "dump_to_rootfs"}
	finalAction   = []string{"reboot", "halt", "poweroff"}
	// Directives of kexec-tools that salvage reads and ignores.
	unsupported = map[string]string{
		"dracut_args":            "salvage builds its own initramfs without dracut",
		"fence_kdump_args":       "fence_kdump is not supported",
		"fence_kdump_nodes":      "fence_kdump is not supported",
		"auto_reset_crashkernel": "use `salvage kdump estimate` to size crashkernel=",
		"options":                "module options are not supported; pass them on KDUMP_CMDLINE_APPEND as module.param=value",
		"link_delay":             "the network is waited for as long as the target needs",
		"disk_timeout":           "devices are waited for as long as the target needs",
		"net":                    "removed from kdump.conf: use ssh or nfs",
		"blacklist":              "removed from kdump.conf: use KDUMP_CMDLINE_APPEND=module_blacklist=NAME",
	}
	directives = []string{"path", "core_collector", "raw", "ssh", "sshkey", "nfs", "<fstype>", "kdump_pre", "kdump_post",
		"extra_bins", "extra_modules", "failure_action", "default", "final_action", "force_rebuild", "force_no_rebuild"}
	deviceRe = regexp.MustCompile(`^(/dev/\S+|(LABEL|UUID|PARTUUID|PARTLABEL)=\S+)$`)
	sshRe    = regexp.MustCompile(`^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:\[\]_-]+$`)
	nfsRe    = regexp.MustCompile(`^[A-Za-z0-9.:\[\]_-]+:/\S*$`)
)

// ParseKdumpConf reads kdump.conf from r; file names it in errors. All
// errors are returned together (errors.Join of *ConfigError), with the
// configuration as far as it could be read. check may be nil (no
// validation of core_collector's flags).
func ParseKdumpConf(file string, r io.Reader, check CollectorCheck) (*KdumpConf, error) {
	c := DefaultKdumpConf()
	var errs []error
	fail := func(line int, fix, format string, a ...any) {
		errs = append(errs, &ConfigError{File: file, Line: line, Msg: fmt.Sprintf(format, a...), Fix: fix})
	}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		if line == "" {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, val = line[:i], strings.TrimSpace(line[i:])
		}
		if why, ok := unsupported[key]; ok {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: %s is ignored: %s", file, n, key, why))
			continue
		}
		known := fsTypes[key]
		for _, d := range directives {
			known = known || d == key
		}
		if !known {
			fail(n, "directives are "+strings.Join(directives, ", "), "unknown directive %q", key)
			continue
		}
		if val == "" {
			fail(n, "give it a value, or delete the line", "%s has no value", key)
			continue
		}
		if prev, dup := c.Set[key]; dup && key != "extra_bins" && key != "extra_modules" {
			fail(n, "keep one of them", "%s given twice (also on line %d)", key, prev)
			continue
		}
		c.Set[key] = n
		setTarget := func(t Target) {
			if c.Target.Line != 0 {
				fail(n, "keep one of raw, ssh, nfs and <fstype> <device>", "a second dump target %q (line %d has %q)", t, c.Target.Line, c.Target)
				return
			}
			t.Line = n
			c.Target = t
		}
		switch {
		case key == "path":
			if !path.IsAbs(val) {
				fail(n, "write it from the root of the target, like /var/crash", "path %q is not absolute", val)
			}
			c.Path = path.Clean(val)
		case key == "raw":
			if !deviceRe.MatchString(val) {
				fail(n, "give /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL=", "raw %q is not a block device", val)
			}
			setTarget(Target{Kind: "raw", Device: val})
		case key == "ssh":
			if !sshRe.MatchString(val) {
				fail(n, "write it as user@host", "ssh %q is not user@host", val)
			}
			setTarget(Target{Kind: "ssh", Host: val})
		case key == "nfs":
			if !nfsRe.MatchString(val) {
				fail(n, "write it as server:/export/path", "nfs %q is not server:/path", val)
			}
			setTarget(Target{Kind: "nfs", Host: val})
		case fsTypes[key]:
			if key != "virtiofs" && !deviceRe.MatchString(val) {
				fail(n, "give /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL=", "%s %q is not a block device", key, val)
			}
			setTarget(Target{Kind: "fs", FSType: key, Device: val})
		case key == "sshkey":
			if !path.IsAbs(val) {
				fail(n, "give the private key's absolute path, like /root/.ssh/kdump_id_rsa", "sshkey %q is not absolute", val)
			}
			c.SSHKey = val
		case key == "core_collector":
			argv, err := SplitWords(val)
			if err != nil {
				fail(n, "close the quote", "core_collector: %v", err)
				continue
			}
			if err := checkCollector(argv, check); err != nil {
				fail(n, "use makedumpfile or salvage collect with makedumpfile's flags, e.g. core_collector makedumpfile -l -d 31", "core_collector: %v", err)
				continue
			}
			c.CoreCollector = argv
		case key == "kdump_pre" || key == "kdump_post":
			argv, err := SplitWords(val)
			if err != nil {
				fail(n, "close the quote", "%s: %v", key, err)
				continue
			}
			if !path.IsAbs(argv[0]) {
				fail(n, "give the program's absolute path", "%s %q is not an absolute path", key, argv[0])
			}
			if key == "kdump_pre" {
				c.KdumpPre = argv
			} else {
				c.KdumpPost = argv
			}
		case key == "extra_bins":
			for _, b := range strings.Fields(val) {
				if !path.IsAbs(b) {
					fail(n, "give each program's absolute path", "extra_bins %q is not an absolute path", b)
				}
				c.ExtraBins = append(c.ExtraBins, b)
			}
		case key == "extra_modules":
			for _, m := range strings.Fields(val) {
				if strings.ContainsAny(m, "/.") {
					fail(n, "give module names, like virtio_blk", "extra_modules %q is not a module name", m)
				}
				c.ExtraModules = append(c.ExtraModules, m)
			}
		case key == "failure_action" || key == "default":
			if key == "default" {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: default is the old name of failure_action", file, n))
			}
			if other, ok := c.Set[map[string]string{"default": "failure_action", "failure_action": "default"}[key]]; ok {
				fail(n, "keep failure_action", "failure_action and default both given (line %d)", other)
				continue
			}
			if !oneOf(val, failureAction) {
				fail(n, "use "+orList(failureAction), "unknown %s %q", key, val)
				continue
			}
			c.FailureAction = val
		case key == "final_action":
			if !oneOf(val, finalAction) {
				fail(n, "use "+orList(finalAction), "unknown final_action %q", val)
				continue
			}
			c.FinalAction = val
		case key == "force_rebuild" || key == "force_no_rebuild":
			b, err := strconv.ParseBool(val)
			if err != nil || (val != "0" && val != "1") {
				fail(n, "use 0 or 1", "%s %q is not 0 or 1", key, val)
				continue
			}
			if key == "force_rebuild" {
				c.ForceRebuild = b
			} else {
				c.ForceNoRebuild = b
			}
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	if c.ForceRebuild && c.ForceNoRebuild {
		fail(c.Set["force_no_rebuild"], "set only one of them", "force_rebuild and force_no_rebuild are both 1")
	}
	if c.SSHKey != "" && c.Target.Kind != "ssh" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: sshkey is used only with an ssh target", file, c.Set["sshkey"]))
	}
	if c.FailureAction == "dump_to_rootfs" && c.Target.Kind == "local" {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s:%d: failure_action dump_to_rootfs: the target is already the root filesystem", file, c.Set["failure_action"]+c.Set["default"]))
	}
	return c, errors.Join(errs...)
}

// checkCollector accepts "makedumpfile FLAGS" and "salvage collect FLAGS":
// salvage runs its own collector, so other programs (cp, scp) are refused,
// and the capture supplies SOURCE and DEST.
func checkCollector(argv []string, check CollectorCheck) error {
	var flags []string
	switch {
	case len(argv) == 0:
		return errors.New("empty")
	case path.Base(argv[0]) == "makedumpfile":
		flags = argv[1:]
	case path.Base(argv[0]) == "salvage" && len(argv) > 1 && argv[1] == "collect":
		flags = argv[2:]
	default:
		return fmt.Errorf("%q: salvage collects with its own makedumpfile", argv[0])
	}
	if check == nil {
		return nil
	}
	return check(flags)
}

// stripComment drops a "#" comment (at the start of a word, outside
// quotes) and surrounding blanks.
func stripComment(s string) string {
	var q byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.TrimSpace(s)
}

// SplitWords splits a command into argv as a shell would split a simple
// command, without running one: blanks separate words, '…' is literal,
// "…" keeps blanks and takes \" \\ \$ \` escapes, a backslash outside
// quotes escapes the next character. Expansions ($, `, globs) are not
// performed; $ and ` are refused so nothing is silently taken literally.
func SplitWords(s string) ([]string, error) {
	var out []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += 1 + j
			inWord = true
		case c == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated \" in %q", s)
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				} else if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("%q: no shell expansion here (%c)", s, s[i])
				}
				w.WriteByte(s[i])
			}
		case c == '\\':
			if i+1 < len(s) {
				i++
				w.WriteByte(s[i])
			}
			inWord = true
		case c == '$' || c == '`' || c == ';' || c == '|' || c == '&' || c == '<' || c == '>':
			return nil, fmt.Errorf("%q: no shell syntax here (%c)", s, c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	if len(out) == 0 {
		return nil, errors.New("empty command")
	}
	return out, nil
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func orList(s []string) string {
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
