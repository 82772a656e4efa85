package capture

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// KdumpToolsPath is Debian's kdump-tools configuration, a shell fragment.
const KdumpToolsPath = "/etc/default/kdump-tools"

// KdumpTools are the variables of Debian's /etc/default/kdump-tools
// (kdump-tools' kdump-config reads the same names). Unset variables keep
// kdump-tools' defaults.
type KdumpTools struct {
	UseKdump         bool     `json:"use_kdump"`
	CoreDir          string   `json:"kdump_coredir"`
	MakedumpArgs     []string `json:"makedump_args,omitempty"`
	Kernel           string   `json:"kdump_kernel,omitempty"`
	Initrd           string   `json:"kdump_initrd,omitempty"`
	Cmdline          string   `json:"kdump_cmdline,omitempty"`
	CmdlineAppend    string   `json:"kdump_cmdline_append"`
	NumDumps         int      `json:"kdump_num_dumps"`
	DumpDmesg        bool     `json:"kdump_dump_dmesg"`
	Sysctl           []string `json:"kdump_sysctl,omitempty"`
	SSH, SSHKey, NFS string   `json:",omitempty"`
	HostTag          string   `json:"hosttag,omitempty"`
	FailCmd          string   `json:"kdump_fail_cmd,omitempty"`
	// Vars are all assignments, after expansion.
	Vars map[string]string `json:"-"`
	// Line is where each variable was set.
	Line     map[string]int `json:"-"`
	Warnings []string       `json:"warnings,omitempty"`
}

// DefaultCmdlineAppend is what kdump-tools appends to the capture kernel's
// command line (its default KDUMP_CMDLINE_APPEND, less the systemd unit
// salvage does not use): one CPU, devices reset, interrupts polled.
const DefaultCmdlineAppend = "reset_devices nr_cpus=1 irqpoll nousb"

// DefaultKdumpTools are kdump-tools' defaults.
func DefaultKdumpTools() *KdumpTools {
	return &KdumpTools{CoreDir: "/var/crash", CmdlineAppend: DefaultCmdlineAppend, DumpDmesg: true,
		Vars: map[string]string{}, Line: map[string]int{}}
}

var kdumpToolsVars = map[string]bool{
	"USE_KDUMP": true, "KDUMP_COREDIR": true, "MAKEDUMP_ARGS": true, "KDUMP_KERNEL": true, "KDUMP_INITRD": true,
	"KDUMP_CMDLINE": true, "KDUMP_CMDLINE_APPEND": true, "KDUMP_NUM_DUMPS": true, "KDUMP_DUMP_DMESG": true,
	"KDUMP_SYSCTL": true, "SSH": true, "SSH_KEY": true, "NFS": true, "HOSTTAG": true, "KDUMP_FAIL_CMD": true,
	// read by kdump-tools, not used by salvage
	"DEBUG_KERNEL": true, "KDUMP_KEXEC_ARGS": true, "NFS_TIMEO": true, "NFS_RETRANS": true, "KDUMP_COMPRESSION": true,
}

var shellName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseKdumpTools reads /etc/default/kdump-tools without running a shell:
// the file may hold only assignments (NAME=value, optionally after
// export), comments and blank lines; values take shell quoting and $NAME
// or ${NAME} of variables set earlier in the file. Anything else — a
// command, $(…), `…` — is an error naming the line, because kdump-tools
// would run it and salvage will not.
func ParseKdumpTools(file string, r io.Reader) (*KdumpTools, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	k := DefaultKdumpTools()
	p := &shellParser{s: string(b), line: 1, file: file, vars: k.Vars}
	for {
		words, line, err := p.statement()
		if err != nil {
			return k, err
		}
		if words == nil {
			break
		}
		export := len(words) > 0 && words[0].text == "export" && !words[0].hasEq
		if export {
			words = words[1:]
		}
		// All words must be assignments (a command after assignments
		// would be run by the shell).
		for _, w := range words {
			name, val, ok := strings.Cut(w.text, "=")
			if export && !ok && shellName.MatchString(name) {
				continue // export NAME: nothing to set
			}
			if !ok || !w.hasEq || !shellName.MatchString(name) {
				return k, &ConfigError{File: file, Line: line, Msg: fmt.Sprintf("%q is a command, not NAME=value", w.text),
					Fix: "salvage reads this file without a shell: keep only assignments"}
			}
			k.Vars[name] = val
			k.Line[name] = line
		}
	}
	for name, val := range k.Vars {
		line := k.Line[name]
		bad := func(msg, fix string) error { return &ConfigError{File: file, Line: line, Msg: msg, Fix: fix} }
		switch name {
		case "USE_KDUMP", "KDUMP_DUMP_DMESG":
			if val != "0" && val != "1" {
				return k, bad(fmt.Sprintf("%s=%q", name, val), "use 0 or 1")
			}
			if name == "USE_KDUMP" {
				k.UseKdump = val == "1"
			} else {
				k.DumpDmesg = val == "1"
			}
		case "KDUMP_COREDIR":
			if !strings.HasPrefix(val, "/") {
				return k, bad(fmt.Sprintf("KDUMP_COREDIR=%q is not absolute", val), "give a directory like /var/crash")
			}
			k.CoreDir = val
		case "MAKEDUMP_ARGS":
			args, err := SplitWords(val)
			if err != nil && strings.TrimSpace(val) != "" {
				return k, bad("MAKEDUMP_ARGS: "+err.Error(), "give makedumpfile's flags, like \"-c -d 31\"")
			}
			k.MakedumpArgs = args
		case "KDUMP_KERNEL":
			k.Kernel = val
		case "KDUMP_INITRD":
			k.Initrd = val
		case "KDUMP_CMDLINE":
			k.Cmdline = val
		case "KDUMP_CMDLINE_APPEND":
			k.CmdlineAppend = val
		case "KDUMP_NUM_DUMPS":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return k, bad(fmt.Sprintf("KDUMP_NUM_DUMPS=%q", val), "give how many dumps to keep, 0 for all")
			}
			k.NumDumps = n
		case "KDUMP_SYSCTL":
			k.Sysctl = strings.Fields(val)
			for _, s := range k.Sysctl {
				if !strings.Contains(s, "=") {
					return k, bad(fmt.Sprintf("KDUMP_SYSCTL: %q is not name=value", s), "like \"kernel.panic_on_oops=1\"")
				}
			}
		case "SSH":
			k.SSH = val
		case "SSH_KEY":
			k.SSHKey = val
		case "NFS":
			k.NFS = val
		case "HOSTTAG":
			if val != "hostname" && val != "ip" && val != "" {
				return k, bad(fmt.Sprintf("HOSTTAG=%q", val), "use hostname or ip")
			}
			k.HostTag = val
		case "KDUMP_FAIL_CMD":
			k.FailCmd = val
			k.Warnings = append(k.Warnings, fmt.Sprintf("%s:%d: KDUMP_FAIL_CMD is ignored: salvage runs no shell; use failure_action in %s", file, line, ConfPath))
		default:
			if !kdumpToolsVars[name] {
				k.Warnings = append(k.Warnings, fmt.Sprintf("%s:%d: %s is not a kdump-tools variable; ignored", file, line, name))
			}
		}
	}
	if k.SSH != "" && k.NFS != "" {
		return k, &ConfigError{File: file, Line: k.Line["NFS"], Msg: "both SSH and NFS are set", Fix: "keep one"}
	}
	return k, nil
}

// shellWord is one word of a statement; hasEq says an unquoted '=' made
// it an assignment (NAME="a b" is one, "NAME=a" is not).
type shellWord struct {
	text  string
	hasEq bool
}

// shellParser reads a POSIX shell fragment's simple statements.
type shellParser struct {
	s    string
	i    int
	line int
	file string
	vars map[string]string
}

func (p *shellParser) errf(format string, a ...any) error {
	return &ConfigError{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, a...),
		Fix: "salvage reads this file without a shell: use plain NAME=value assignments"}
}

// statement returns the next statement's words (nil at the end; empty for
// a blank line) and the line it starts on.
func (p *shellParser) statement() ([]shellWord, int, error) {
	for p.i < len(p.s) && (p.s[p.i] == '\n' || p.s[p.i] == ';' || p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		if p.s[p.i] == '\n' {
			p.line++
		}
		p.i++
	}
	if p.i >= len(p.s) {
		return nil, p.line, nil
	}
	start := p.line
	words := []shellWord{}
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\n' || c == ';':
			return words, start, nil
		case c == ' ' || c == '\t':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			w, err := p.word()
			if err != nil {
				return nil, start, err
			}
			words = append(words, w)
		}
	}
	return words, start, nil
}

func (p *shellParser) word() (shellWord, error) {
	var b strings.Builder
	var w shellWord
	quotedYet := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case ' ', '\t', '\n', ';':
			w.text = b.String()
			return w, nil
		case '|', '&', '<', '>', '(', ')', '`':
			return w, p.errf("%q: shell syntax (%c)", lineAt(p.s, p.i), c)
		case '=':
			if !quotedYet && !w.hasEq && shellName.MatchString(b.String()) {
				w.hasEq = true
			}
			b.WriteByte(c)
			p.i++
		case '\\':
			p.i++
			if p.i < len(p.s) {
				if p.s[p.i] == '\n' {
					p.line++
				} else {
					b.WriteByte(p.s[p.i])
				}
				p.i++
			}
		case '\'':
			j := strings.IndexByte(p.s[p.i+1:], '\'')
			if j < 0 {
				return w, p.errf("unterminated '")
			}
			v := p.s[p.i+1 : p.i+1+j]
			p.line += strings.Count(v, "\n")
			b.WriteString(v)
			p.i += j + 2
			quotedYet = true
		case '"':
			quotedYet = true
			p.i++
			for {
				if p.i >= len(p.s) {
					return w, p.errf("unterminated \"")
				}
				d := p.s[p.i]
				if d == '"' {
					p.i++
					break
				}
				switch d {
				case '\\':
					if p.i+1 < len(p.s) && strings.IndexByte("$`\"\\\n", p.s[p.i+1]) >= 0 {
						p.i++
						if p.s[p.i] == '\n' {
							p.line++
							p.i++
							continue
						}
					}
					b.WriteByte(p.s[p.i])
					p.i++
				case '`':
					return w, p.errf("command substitution `…` in %q", lineAt(p.s, p.i))
				case '$':
					if err := p.expand(&b); err != nil {
						return w, err
					}
				default:
					if d == '\n' {
						p.line++
					}
					b.WriteByte(d)
					p.i++
				}
			}
		case '$':
			if err := p.expand(&b); err != nil {
				return w, err
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	w.text = b.String()
	return w, nil
}

// expand reads $NAME or ${NAME} at p.i; other expansions are refused.
func (p *shellParser) expand(b *strings.Builder) error {
	rest := p.s[p.i+1:]
	var name string
	switch {
	case strings.HasPrefix(rest, "{"):
		end := strings.IndexByte(rest, '}')
		if end < 0 || !shellName.MatchString(rest[1:end]) {
			return p.errf("%q: only $NAME and ${NAME} are expanded", lineAt(p.s, p.i))
		}
		name = rest[1:end]
		p.i += end + 2
	case strings.HasPrefix(rest, "("):
		return p.errf("command substitution $(…) in %q", lineAt(p.s, p.i))
	default:
		n := 0
		for n < len(rest) && (rest[n] == '_' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= 'a' && rest[n] <= 'z' || n > 0 && rest[n] >= '0' && rest[n] <= '9') {
			n++
		}
		if n == 0 {
			b.WriteByte('$') // a lone $ is literal
			p.i++
			return nil
		}
		name = rest[:n]
		p.i += n + 1
	}
	b.WriteString(p.vars[name])
	return nil
}

func lineAt(s string, i int) string {
	a := strings.LastIndexByte(s[:i], '\n') + 1
	e := strings.IndexByte(s[i:], '\n')
	if e < 0 {
		return s[a:]
	}
	return s[a : i+e]
}
