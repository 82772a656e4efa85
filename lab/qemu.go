package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// vm is one QEMU run of the lab guest.
type vm struct {
	cmd     *exec.Cmd
	console string // serial console log
	qmpPath string
	done    chan error
}

// vmConfig is what a run boots.
type vmConfig struct {
	Kernel, Initrd, Append, Disk string
	MemMiB, CPUs                 int
	Dir                          string // where the console log and QMP socket go
	CPUModel                     string // -cpu; "" for QEMU's default
}

func startVM(c vmConfig) (*vm, error) {
	v := &vm{console: filepath.Join(c.Dir, "console.log"), qmpPath: filepath.Join(c.Dir, "qmp.sock"), done: make(chan error, 1)}
	os.Remove(v.qmpPath)
	args := []string{
		"-accel", "tcg", "-m", fmt.Sprint(c.MemMiB), "-smp", fmt.Sprint(c.CPUs),
		"-nodefaults", "-no-reboot", "-display", "none", "-device", "vmcoreinfo",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Append,
		"-serial", "file:" + v.console,
		"-qmp", "unix:" + v.qmpPath + ",server=on,wait=off",
		"-drive", "file=" + c.Disk + ",format=raw,if=virtio",
	}
	if c.CPUModel != "" {
		args = append(args, "-cpu", c.CPUModel)
	}
	v.cmd = exec.Command("qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	v.cmd.Stderr = &stderr
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting qemu-system-x86_64: %w", err)
	}
	go func() {
		err := v.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("qemu: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		v.done <- err
	}()
	return v, nil
}

// wait waits for QEMU to exit, killing it after the timeout.
func (v *vm) wait(timeout time.Duration) error {
	select {
	case err := <-v.done:
		return err
	case <-time.After(timeout):
		v.cmd.Process.Kill()
		<-v.done
		return fmt.Errorf("the guest did not finish within %v; console tail:\n%s", timeout, v.consoleTail(30))
	}
}

func (v *vm) kill() {
	if v.cmd.ProcessState == nil {
		v.cmd.Process.Kill()
	}
}

// waitConsole waits until the console log holds the marker.
func (v *vm) waitConsole(marker string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(v.console)
		if bytes.Contains(b, []byte(marker)) {
			return nil
		}
		if bytes.Contains(b, []byte("LAB: FAIL")) {
			return fmt.Errorf("the guest failed; console tail:\n%s", v.consoleTail(30))
		}
		select {
		case err := <-v.done:
			v.done <- err
			return fmt.Errorf("the guest stopped before %q (%v); console tail:\n%s", marker, err, v.consoleTail(30))
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("no %q on the console within %v; console tail:\n%s", marker, timeout, v.consoleTail(30))
}

func (v *vm) consoleTail(n int) string {
	b, _ := os.ReadFile(v.console)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// qmp is a minimal QEMU Machine Protocol client.
type qmp struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialQMP(path string) (*qmp, error) {
	var conn net.Conn
	var err error
	for i := 0; i < 50; i++ {
		if conn, err = net.Dial("unix", path); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", path, err)
	}
	q := &qmp{conn: conn, r: bufio.NewReader(conn)}
	if _, err := q.read(); err != nil { // the greeting
		return nil, err
	}
	if err := q.do(context.Background(), "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *qmp) read() (map[string]json.RawMessage, error) {
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("QMP: %w", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("QMP: %w", err)
		}
		if _, ev := m["event"]; !ev {
			return m, nil
		}
	}
}

func (q *qmp) do(ctx context.Context, command string, args map[string]any) error {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetDeadline(dl)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return err
	}
	m, err := q.read()
	if err != nil {
		return err
	}
	if e, ok := m["error"]; ok {
		return fmt.Errorf("QMP %s: %s", command, e)
	}
	return nil
}

func (q *qmp) close() { q.conn.Close() }
