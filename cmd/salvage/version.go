package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at link time by the Makefile (-X main.version=…).
var version = "dev"

// builtinCodecs lists the page codecs compiled into every build: all of
// them, always (pure Go, no build tags).
var builtinCodecs = []string{"zlib", "lzo", "snappy", "zstd"}

// dumpArches lists the architectures whose dumps salvage reads.
var dumpArches = []string{"x86_64", "arm64"}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, Go version, built-in codecs and dump architectures",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version
			if v == "dev" {
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" && len(s.Value) >= 12 {
							v = "dev-" + s.Value[:12]
						}
					}
				}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "salvage %s\n", v)
			fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(w, "codecs: %s\n", strings.Join(builtinCodecs, " "))
			fmt.Fprintf(w, "dump architectures: %s\n", strings.Join(dumpArches, " "))
			return nil
		},
	}
}
