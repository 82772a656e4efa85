package analyze

import (
	"strings"
	"unicode/utf8"
)

// OptionValue is one option as given: its name and, for options that take
// one, its argument.
type OptionValue struct {
	Name, Value string
}

// Options are a command's parsed options in command-line order. Order
// matters the way it does in crash: of "-8 -64", the last size wins.
type Options []OptionValue

// Has reports whether option name was given.
func (o Options) Has(name string) bool {
	_, ok := o.Value(name)
	return ok
}

// Value returns the argument of the last occurrence of option name.
func (o Options) Value(name string) (string, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].Name == name {
			return o[i].Value, true
		}
	}
	return "", false
}

// Last returns whichever of names was given last, or "" if none was.
func (o Options) Last(names ...string) string {
	for i := len(o) - 1; i >= 0; i-- {
		for _, n := range names {
			if o[i].Name == n {
				return n
			}
		}
	}
	return ""
}

// parseOptions splits args into options and operands the way crash's
// getopt(3) calls do: options may come anywhere (GNU getopt permutes),
// "--" ends them, option letters combine ("-ap"), an argument follows its
// option directly ("-o8") or as the next word ("-o 8"), and numeric
// options are whole digit runs ("-64"). A lone "-" is an operand.
func parseOptions(spec []Option, args []string) (Options, []string, error) {
	var opts Options
	var operands []string
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			operands = append(operands, args[i+1:]...)
			break
		}
		if len(w) < 2 || w[0] != '-' {
			operands = append(operands, w)
			continue
		}
		rest := w[1:]
		for rest != "" {
			name := optionName(rest)
			o := findOption(spec, name)
			if o == nil {
				if name == "-" {
					return nil, nil, usagef("invalid option %s", w)
				}
				return nil, nil, usagef("invalid option -%s", name)
			}
			rest = rest[len(name):]
			if o.Arg == "" {
				opts = append(opts, OptionValue{Name: name})
				continue
			}
			if rest == "" {
				if i+1 >= len(args) {
					return nil, nil, usagef("option -%s needs an argument (%s)", name, o.Arg)
				}
				i++
				rest = args[i]
			}
			opts = append(opts, OptionValue{Name: name, Value: rest})
			rest = ""
		}
	}
	return opts, operands, nil
}

// optionName is the option at the start of s: a run of digits, or one
// character.
func optionName(s string) string {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n > 0 {
		return s[:n]
	}
	_, size := utf8.DecodeRuneInString(s)
	return s[:size]
}

func findOption(spec []Option, name string) *Option {
	for i := range spec {
		if spec[i].Name == name {
			return &spec[i]
		}
	}
	return nil
}

// optionsUsage renders spec for help: one line per option.
func optionsUsage(spec []Option) string {
	var b strings.Builder
	width := 0
	for _, o := range spec {
		if n := len(optionLabel(o)); n > width {
			width = n
		}
	}
	for _, o := range spec {
		l := optionLabel(o)
		b.WriteString("  " + l + strings.Repeat(" ", width-len(l)) + "  " + o.Help + "\n")
	}
	return b.String()
}

func optionLabel(o Option) string {
	if o.Arg == "" {
		return "-" + o.Name
	}
	return "-" + o.Name + " " + o.Arg
}
