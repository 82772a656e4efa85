package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flatStream builds a flattened stream of the given records (offset,
// data) with or without the end marker.
func flatStream(t *testing.T, end bool, recs ...any) []byte {
	t.Helper()
	b := make([]byte, 4096)
	copy(b, "makedumpfile")
	binary.BigEndian.PutUint64(b[16:], 1)
	binary.BigEndian.PutUint64(b[24:], 1)
	for i := 0; i < len(recs); i += 2 {
		off, data := recs[i].(int), recs[i+1].([]byte)
		var h [16]byte
		binary.BigEndian.PutUint64(h[0:], uint64(off))
		binary.BigEndian.PutUint64(h[8:], uint64(len(data)))
		b = append(append(b, h[:]...), data...)
	}
	if end {
		b = append(b, bytes.Repeat([]byte{0xff}, 16)...)
	}
	return b
}

func TestReassemble(t *testing.T) {
	head := append([]byte("KDUMP   "), bytes.Repeat([]byte{1}, 100)...)
	// Records out of order, with a hole and an overwrite (the later wins).
	stream := flatStream(t, true, 8192, []byte("third"), 0, head, 8192, []byte("THIRD"), 5000, []byte("second"))
	want := make([]byte, 8197)
	copy(want, head)
	copy(want[5000:], "second")
	copy(want[8192:], "THIRD")

	dir := t.TempDir()
	in := filepath.Join(dir, "in.flat")
	out := filepath.Join(dir, "out.vmcore")
	cut := filepath.Join(dir, "cut.flat")
	notFlat := filepath.Join(dir, "plain.vmcore")
	os.WriteFile(in, stream, 0o644)
	os.WriteFile(cut, flatStream(t, false, 0, head, 5000, []byte("second")), 0o644)
	os.WriteFile(notFlat, head, 0o644)

	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    []byte
	}{
		{"reassemble", []string{in, out}, "", want},
		{"exists", []string{in, out}, "exists (use --force", nil},
		{"force", []string{"--force", in, out}, "", want},
		{"same file", []string{"--force", in, in}, "same file", nil},
		{"not flattened", []string{notFlat, out + "2"}, "not a makedumpfile flattened stream", nil},
		{"cut short", []string{cut, out + "3"}, "cut short", nil},
		{"cut short, partial", []string{"--partial", cut, out + "4"}, "", want[:5006]},
		{"missing input", []string{in + ".nope", out + "5"}, "no such file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRootCmd()
			var stdout bytes.Buffer
			cmd.SetOut(&stdout)
			cmd.SetArgs(append([]string{"reassemble"}, tt.args...))
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			target := tt.args[len(tt.args)-1]
			got, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("reassembled file differs (%d bytes, want %d)", len(got), len(tt.want))
			}
			if st, _ := os.Stat(target); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
			if _, err := os.Stat(target + ".tmp"); err == nil {
				t.Error("temporary file left behind")
			}
		})
	}
}
