package main

import "github.com/spf13/cobra"

// addKdumpCaptureCommands adds the capture side of `salvage kdump`:
// initramfs, savecore, test.
func addKdumpCaptureCommands(kdump *cobra.Command, root *string) {}

// captureInitMain runs salvage as PID 1 of the capture initramfs.
func captureInitMain() error { return nil }
