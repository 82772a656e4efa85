package capture

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// fakeCheck stands in for `salvage collect`'s flag set (the command's own
// test uses the real one): it knows a few makedumpfile flags.
func fakeCheck(args []string) error {
	for _, a := range args {
		if strings.HasPrefix(a, "-") && !oneOf(a, []string{"-l", "-c", "-d", "--message-level", "-F", "-E"}) {
			return fmt.Errorf("unknown flag %s", a)
		}
	}
	return nil
}

func TestParseKdumpConfGood(t *testing.T) {
	f, err := os.Open("testdata/conf/good.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ParseKdumpConf("good.conf", f, fakeCheck)
	if err != nil {
		t.Fatal(err)
	}
	c.Set = nil
	c.Target.Line = 0
	want := &KdumpConf{
		Target:        Target{Kind: "fs", FSType: "ext4", Device: "LABEL=crash"},
		Path:          "/dumps",
		CoreCollector: []string{"makedumpfile", "-l", "--message-level", "7", "-d", "31"},
		KdumpPre:      []string{"/usr/local/bin/pre-hook", "--note", "before the dump"},
		KdumpPost:     []string{"/usr/local/bin/post-hook"},
		ExtraBins:     []string{"/usr/bin/ethtool", "/usr/sbin/ip"},
		ExtraModules:  []string{"virtio_blk", "ext4", "crc32c_generic"},
		FailureAction: "shell", FinalAction: "poweroff", ForceRebuild: true,
		Warnings: []string{"good.conf:13: dracut_args is ignored: salvage builds its own initramfs without dracut"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseKdumpConfBad(t *testing.T) {
	f, err := os.Open("testdata/conf/bad.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = ParseKdumpConf("bad.conf", f, fakeCheck)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`bad.conf:1: path "var/crash" is not absolute: write it from the root of the target, like /var/crash`,
		`bad.conf:3: a second dump target "nfs backup:/export/crash" (line 2 has "ssh root@backup"): keep one of raw, ssh, nfs and <fstype> <device>`,
		`bad.conf:4: core_collector: "cp": salvage collects with its own makedumpfile: use makedumpfile or salvage collect with makedumpfile's flags, e.g. core_collector makedumpfile -l -d 31`,
		`bad.conf:5: core_collector given twice (also on line 4): keep one of them`,
		`bad.conf:6: unknown failure_action "rebot": use reboot, halt, poweroff, shell or dump_to_rootfs`,
		`bad.conf:7: unknown final_action "shell": use reboot, halt or poweroff`,
		`bad.conf:8: force_rebuild "yes" is not 0 or 1: use 0 or 1`,
		`bad.conf:9: unknown directive "unknown_thing": directives are path, core_collector, raw, ssh, sshkey, nfs, <fstype>, kdump_pre, kdump_post, extra_bins, extra_modules, failure_action, default, final_action, force_rebuild, force_no_rebuild`,
		`bad.conf:10: raw "/tmp/file" is not a block device: give /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL=`,
		`bad.conf:10: a second dump target "raw /tmp/file" (line 2 has "ssh root@backup"): keep one of raw, ssh, nfs and <fstype> <device>`,
		`bad.conf:11: kdump_pre "relative/hook" is not an absolute path: give the program's absolute path`,
		`bad.conf:12: extra_modules has no value: give it a value, or delete the line`,
	}
	got := strings.Split(err.Error(), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 1 {
		t.Errorf("errors.As: %v", ce)
	}
}

func TestParseKdumpConfCases(t *testing.T) {
	for _, c := range []struct{ text, err, warn string }{
		{"", "", ""},
		{"# only a comment\n\n   \n", "", ""},
		{"ssh kdump@10.0.0.1\nsshkey /root/.ssh/kdump_id_rsa", "", ""},
		{"sshkey /root/.ssh/k", "", "sshkey is used only with an ssh target"},
		{"nfs server:/export/crash", "", ""},
		{"nfs server", `nfs "server" is not server:/path`, ""},
		{"xfs UUID=1234-abcd", "", ""},
		{"virtiofs myfs", "", ""},
		{"ext4 sda1", `ext4 "sda1" is not a block device`, ""},
		{"raw /dev/vdb", "", ""},
		{"ssh not a host", `ssh "not a host" is not user@host`, ""},
		{"default poweroff", "", "default is the old name of failure_action"},
		{"default poweroff\nfailure_action halt", "failure_action and default both given (line 1)", "old name"},
		{"failure_action dump_to_rootfs", "", "the target is already the root filesystem"},
		{"force_rebuild 1\nforce_no_rebuild 1", "force_rebuild and force_no_rebuild are both 1", ""},
		{"core_collector makedumpfile -l -d 31 -q", `core_collector: unknown flag -q`, ""},
		{`core_collector makedumpfile -l "-d 31`, `core_collector: unterminated "`, ""},
		{`core_collector makedumpfile -d $LEVEL`, `no shell syntax here ($)`, ""},
		{"core_collector salvage collect -l -d 31", "", ""},
		{"core_collector salvage info", `"salvage": salvage collects with its own makedumpfile`, ""},
		{"fence_kdump_nodes node1", "", "fence_kdump_nodes is ignored: fence_kdump is not supported"},
		{"path /var/crash#not-a-comment", "", ""},
		{"extra_modules ../evil.ko", `extra_modules "../evil.ko" is not a module name`, ""},
	} {
		conf, err := ParseKdumpConf("k.conf", strings.NewReader(c.text), fakeCheck)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v; want %q", c.text, err, c.err)
		}
		if w := strings.Join(conf.Warnings, "\n"); (w == "") != (c.warn == "") || !strings.Contains(w, c.warn) {
			t.Errorf("%q: warnings %q; want %q", c.text, w, c.warn)
		}
	}
	c, _ := ParseKdumpConf("k.conf", strings.NewReader("path /var/crash#x"), nil)
	if c.Path != "/var/crash#x" {
		t.Errorf("path %q: a # inside a word is no comment", c.Path)
	}
	c, _ = ParseKdumpConf("k.conf", strings.NewReader(""), nil)
	if c.Target.Kind != "local" || c.Path != "/var/crash" || c.FailureAction != "reboot" || c.FinalAction != "reboot" ||
		!reflect.DeepEqual(c.CoreCollector, DefaultCollector) {
		t.Errorf("defaults: %+v", c)
	}
}

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"makedumpfile -l -d 31", []string{"makedumpfile", "-l", "-d", "31"}, ""},
		{`a 'b c' "d e" f\ g`, []string{"a", "b c", "d e", "f g"}, ""},
		{`"a\"b" 'x"y' "\$HOME"`, []string{`a"b`, `x"y`, "$HOME"}, ""},
		{`a''b ""`, []string{"ab", ""}, ""},
		{"  spaced\tout  ", []string{"spaced", "out"}, ""},
		{"", nil, "empty command"},
		{"a 'b", nil, "unterminated '"},
		{`a "b`, nil, `unterminated "`},
		{"a | b", nil, "no shell syntax"},
		{"a; b", nil, "no shell syntax"},
		{"a `b`", nil, "no shell syntax"},
		{`"$x"`, nil, "no shell expansion"},
	} {
		got, err := SplitWords(c.in)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q, %q", c.in, got, err, c.want, c.err)
		}
	}
}

func TestParseKdumpTools(t *testing.T) {
	f, err := os.Open("testdata/conf/kdump-tools")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := ParseKdumpTools("kdump-tools", f)
	if err != nil {
		t.Fatal(err)
	}
	if !k.UseKdump || k.CoreDir != "/var/crash" || k.Kernel != "/var/lib/kdump/vmlinuz" || k.Initrd != "/var/lib/kdump/initrd.img" ||
		!reflect.DeepEqual(k.MakedumpArgs, []string{"-c", "-d", "31"}) || k.NumDumps != 3 ||
		!reflect.DeepEqual(k.Sysctl, []string{"kernel.panic_on_oops=1", "kernel.hung_task_panic=1"}) ||
		k.CmdlineAppend != "reset_devices nr_cpus=1   irqpoll" || k.SSHKey != "/srv/keys/id_rsa" || k.NFS != "" || k.HostTag != "hostname" {
		t.Errorf("got %+v", k)
	}
	if k.Line["SSH_KEY"] != 12 || k.Line["KDUMP_CMDLINE_APPEND"] != 10 || k.Line["HOSTTAG"] != 14 {
		t.Errorf("lines %v", k.Line)
	}
	if !reflect.DeepEqual(k.Warnings, []string{"kdump-tools:7: BASE is not a kdump-tools variable; ignored"}) {
		t.Errorf("warnings %q", k.Warnings)
	}
}

func TestParseKdumpToolsCases(t *testing.T) {
	for _, c := range []struct{ text, err string }{
		{"", ""},
		{"USE_KDUMP=0 KDUMP_NUM_DUMPS=2; HOSTTAG=ip", ""},
		{"export USE_KDUMP\nUSE_KDUMP=1", ""},
		{`KDUMP_COREDIR="/a b"`, ""},
		{"A='x'\"y\"z", ""},
		{"USE_KDUMP=yes", `k:1: USE_KDUMP="yes": use 0 or 1`},
		{"\n\nrm -rf /", `k:3: "rm" is a command, not NAME=value`},
		{"USE_KDUMP=1 echo hi", `"echo" is a command`},
		{`"USE_KDUMP=1"`, `"USE_KDUMP=1" is a command`},
		{"KDUMP_COREDIR=$(mktemp -d)", "k:1: command substitution $(…)"},
		{"KDUMP_COREDIR=`pwd`", "shell syntax (`)"},
		{`KDUMP_COREDIR="$(pwd)"`, "command substitution $(…)"},
		{"KDUMP_COREDIR=${X:-/var}", "only $NAME and ${NAME}"},
		{`KDUMP_COREDIR="/var`, `unterminated "`},
		{"KDUMP_COREDIR='/var", `unterminated '`},
		{"KDUMP_COREDIR=var/crash", `KDUMP_COREDIR="var/crash" is not absolute`},
		{"KDUMP_NUM_DUMPS=-1", `KDUMP_NUM_DUMPS="-1"`},
		{"HOSTTAG=mac", `HOSTTAG="mac": use hostname or ip`},
		{"KDUMP_SYSCTL=kernel.panic", `KDUMP_SYSCTL: "kernel.panic" is not name=value`},
		{"SSH=a@b\nNFS=b:/c", "k:2: both SSH and NFS are set"},
		{"[ -f /x ] && USE_KDUMP=1", "shell syntax (&)"},
		{"[ -f /x ]", `"[" is a command`},
		{"USE_KDUMP=1 > /tmp/x", "shell syntax (>)"},
		{"MAKEDUMP_ARGS='-d $X'", "no shell syntax here ($)"},
	} {
		_, err := ParseKdumpTools("k", strings.NewReader(c.text))
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v; want %q", c.text, err, c.err)
		}
	}
	k, _ := ParseKdumpTools("k", strings.NewReader("X=a\nY=\"$X b\" Z=${X}c W=$ V='$X'"))
	if k.Vars["Y"] != "a b" || k.Vars["Z"] != "ac" || k.Vars["W"] != "$" || k.Vars["V"] != "$X" {
		t.Errorf("expansion: %q", k.Vars)
	}
	k, _ = ParseKdumpTools("k", strings.NewReader(""))
	if k.UseKdump || k.CoreDir != "/var/crash" || k.CmdlineAppend != DefaultCmdlineAppend || !k.DumpDmesg {
		t.Errorf("defaults: %+v", k)
	}
}

// FuzzParseConfig: any text gives a configuration or a located error,
// never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"testdata/conf/good.conf", "testdata/conf/bad.conf", "testdata/conf/kdump-tools"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseKdumpConf("f", strings.NewReader(s), fakeCheck)
		if c == nil {
			t.Fatal("nil configuration")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f:") {
			t.Fatalf("error without a place: %v", err)
		}
		k, err := ParseKdumpTools("f", strings.NewReader(s))
		if k == nil {
			t.Fatal("nil kdump-tools")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "f:") {
			t.Fatalf("error without a place: %v", err)
		}
	})
}
