package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newDmesgCmd is a placeholder until the command lands.
func newDmesgCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "dmesg",
		Short:  "not implemented yet",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("dmesg: not implemented yet") },
	}
}
