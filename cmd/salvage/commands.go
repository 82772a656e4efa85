package main

import "github.com/spf13/cobra"

// addFormatCommands adds the commands of the dump-format work: info,
// reassemble, analyze. Each helper adds its own line here.
func addFormatCommands(root *cobra.Command) {
	root.AddCommand(newInfoCmd())
	root.AddCommand(newAnalyzeCmd())
	root.AddCommand(newReassembleCmd())
	root.AddCommand(newDmesgCmd())
	root.AddCommand(newCollectCmd())
	root.AddCommand(newKdumpCmd())
}
