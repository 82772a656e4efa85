package main

import "github.com/spf13/cobra"

func newLabCmd() *cobra.Command {
	return &cobra.Command{Use: "lab", Short: "Developer lab: real kernels, real crashes, reference outputs", Hidden: false}
}
