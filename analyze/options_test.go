package analyze

import (
	"reflect"
	"strings"
	"testing"
)

var testSpec = []Option{
	{Name: "p"}, {Name: "a"}, {Name: "8"}, {Name: "16"}, {Name: "32"}, {Name: "64"},
	{Name: "o", Arg: "OFFSET"}, {Name: "e", Arg: "END"},
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		args     string
		opts     Options
		operands []string
		err      string
	}{
		{args: "", opts: nil, operands: nil},
		{args: "-p 1000 8", opts: Options{{Name: "p"}}, operands: []string{"1000", "8"}},
		{args: "-64 -p 1000", opts: Options{{Name: "64"}, {Name: "p"}}, operands: []string{"1000"}},
		// getopt permutes: options after operands count.
		{args: "-p 1000 -32 7", opts: Options{{Name: "p"}, {Name: "32"}}, operands: []string{"1000", "7"}},
		// combined forms
		{args: "-8p 1000", opts: Options{{Name: "8"}, {Name: "p"}}, operands: []string{"1000"}},
		{args: "-p64a 1000", opts: Options{{Name: "p"}, {Name: "64"}, {Name: "a"}}, operands: []string{"1000"}},
		{args: "-ap16 1000", opts: Options{{Name: "a"}, {Name: "p"}, {Name: "16"}}, operands: []string{"1000"}},
		// arguments, attached or not
		{args: "-o 8 -p 1000", opts: Options{{Name: "o", Value: "8"}, {Name: "p"}}, operands: []string{"1000"}},
		{args: "-o8 1000", opts: Options{{Name: "o", Value: "8"}}, operands: []string{"1000"}},
		{args: "-po8 1000", opts: Options{{Name: "p"}, {Name: "o", Value: "8"}}, operands: []string{"1000"}},
		{args: "-e -p 1000", opts: Options{{Name: "e", Value: "-p"}}, operands: []string{"1000"}},
		// -- ends options; - alone is an operand
		{args: "-p -- -5", opts: Options{{Name: "p"}}, operands: []string{"-5"}},
		{args: "- -p", opts: Options{{Name: "p"}}, operands: []string{"-"}},
		// errors
		{args: "-z 1000", err: "invalid option -z"},
		{args: "-p -1", err: "invalid option -1"},
		{args: "-80", err: "invalid option -80"},
		{args: "-pz", err: "invalid option -z"},
		{args: "--foo", err: "invalid option --foo"},
		{args: "-p 1000 -o", err: "option -o needs an argument (OFFSET)"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			opts, operands, err := parseOptions(testSpec, strings.Fields(tt.args))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				if _, ok := err.(*UsageError); !ok {
					t.Errorf("error is %T, want *UsageError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(opts, tt.opts) || !reflect.DeepEqual(operands, tt.operands) {
				t.Errorf("got %v %q, want %v %q", opts, operands, tt.opts, tt.operands)
			}
		})
	}
}

func TestOptionsLast(t *testing.T) {
	o := Options{{Name: "8"}, {Name: "p"}, {Name: "64"}, {Name: "o", Value: "1"}, {Name: "o", Value: "2"}}
	if got := o.Last("8", "16", "32", "64"); got != "64" {
		t.Errorf("Last = %q, want 64", got)
	}
	if got := o.Last("a"); got != "" {
		t.Errorf("Last(a) = %q, want none", got)
	}
	if v, ok := o.Value("o"); !ok || v != "2" {
		t.Errorf("Value(o) = %q %v, want the last, 2", v, ok)
	}
	if o.Has("x") || !o.Has("p") {
		t.Errorf("Has is wrong")
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
		err  bool
	}{
		{line: "", want: nil},
		{line: "  rd   -p\t1000  ", want: []string{"rd", "-p", "1000"}},
		{line: `help "rd"`, want: []string{"help", "rd"}},
		{line: `echo 'a b' "c d" e\ f`, want: []string{"echo", "a b", "c d", "e f"}},
		{line: `x '' y`, want: []string{"x", "", "y"}},
		{line: `x 'a\b'`, want: []string{"x", `a\b`}},
		{line: `x "unterminated`, err: true},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.line)
		if (err != nil) != tt.err {
			t.Errorf("splitWords(%q) error = %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	tests := []struct {
		s      string
		hex    uint64
		hexErr bool
		num    uint64
		numErr bool
	}{
		{s: "10", hex: 0x10, num: 10},
		{s: "010", hex: 0x10, num: 10},
		{s: "0x10", hex: 0x10, num: 0x10},
		{s: "0X1f", hex: 0x1f, num: 0x1f},
		{s: "abc", hex: 0xabc, num: 0xabc},
		{s: "ffffffffffffffff", hex: 1<<64 - 1, num: 1<<64 - 1},
		{s: "1ffffffffffffffff", hexErr: true, numErr: true},
		{s: "99999999999999999999", hexErr: true, numErr: true},
		{s: "zzz", hexErr: true, numErr: true},
		{s: "0x", hexErr: true, numErr: true},
		{s: "", hexErr: true, numErr: true},
		{s: "-1", hexErr: true, numErr: true},
	}
	for _, tt := range tests {
		h, err := parseHex("address", tt.s)
		if (err != nil) != tt.hexErr || (err == nil && h != tt.hex) {
			t.Errorf("parseHex(%q) = %#x, %v", tt.s, h, err)
		}
		n, err := parseNumber("count", tt.s)
		if (err != nil) != tt.numErr || (err == nil && n != tt.num) {
			t.Errorf("parseNumber(%q) = %d, %v", tt.s, n, err)
		}
	}
}
