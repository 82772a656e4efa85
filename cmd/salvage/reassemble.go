package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"salvage/dump"
)

func newReassembleCmd() *cobra.Command {
	var force, partial bool
	cmd := &cobra.Command{
		Use:   "reassemble IN OUT",
		Short: "Turn a makedumpfile flattened stream (-F) into an ordinary dump file",
		Long: `Reassemble reads a flattened stream, as makedumpfile -F or QEMU's
dump-guest-memory write it, and writes the dump file it carries
(kdump-compressed or ELF) to OUT, like makedumpfile -R. OUT is written
atomically: to OUT.tmp in the same directory, then renamed.

salvage reads flattened streams directly, so reassembling is only needed
for tools that do not.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := reassemble(args[0], args[1], force, partial)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bytes of dump data written\n", args[1], n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite OUT if it exists")
	cmd.Flags().BoolVar(&partial, "partial", false, "write a stream that was cut short (no end marker) as far as it goes")
	return cmd
}

// reassemble writes the dump in the flattened stream in to out and returns
// the number of data bytes written.
func reassemble(in, out string, force, partial bool) (int64, error) {
	src, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return 0, err
	}
	if ost, err := os.Stat(out); err == nil {
		if os.SameFile(st, ost) {
			return 0, fmt.Errorf("%s and %s are the same file", in, out)
		}
		if !force {
			return 0, fmt.Errorf("%s exists (use --force to overwrite it)", out)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}

	var head [16]byte
	if n, _ := src.ReadAt(head[:], 0); n < len(head) || !bytes.HasPrefix(head[:], []byte("makedumpfile")) {
		return 0, fmt.Errorf("%s is not a makedumpfile flattened stream (no \"makedumpfile\" signature); nothing to reassemble", in)
	}
	flat, err := dump.IndexFlattened(src, st.Size(), in)
	if err != nil {
		return 0, err
	}
	if !flat.Complete && !partial {
		return 0, fmt.Errorf("%s: the flattened stream was cut short (no end marker after %d records); use --partial to write what arrived", in, flat.Records)
	}
	var inner [8]byte
	if n, _ := flat.ReadAt(inner[:], 0); n < len(inner) || !bytes.HasPrefix(inner[:], []byte("\x7fELF")) && !bytes.HasPrefix(inner[:], []byte("KDUMP   ")) {
		return 0, fmt.Errorf("%s: the reassembled data is neither a kdump-compressed file nor an ELF core (it starts %q)", in, inner[:])
	}

	tmp := out + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	fail := func(err error) (int64, error) {
		dst.Close()
		os.Remove(tmp)
		return 0, err
	}
	n, err := flat.WriteTo(dst)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", tmp, err))
	}
	// The last record may end before a trailing hole; the size is the
	// end of the last record either way, and Truncate makes it exact.
	if err := dst.Truncate(flat.Size()); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync()
		d.Close()
	}
	return n, nil
}
