package main

import "github.com/spf13/cobra"

// addKdumpRemoteCommands adds the remote-target commands of `salvage
// kdump`: propagate.
func addKdumpRemoteCommands(kdump *cobra.Command, root *string) {}
