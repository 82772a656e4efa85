package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"salvage/capture"
)

// addKdumpRemoteCommands adds the remote-target commands of `salvage
// kdump`: propagate.
func addKdumpRemoteCommands(kdump *cobra.Command, root *string) {
	kdump.AddCommand(newKdumpPropagateCmd(root))
}

func newKdumpPropagateCmd(root *string) *cobra.Command {
	var accept string
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "propagate",
		Short: "Set up the ssh dump target: key, host key, authorized_keys (as kdump-config propagate)",
		Long: `propagate prepares the ssh target of kdump.conf (ssh user@host) for the
capture kernel: it makes the key (sshkey, default /root/.ssh/kdump_id_rsa;
ed25519) when there is none, connects once with your own credentials (the
ssh agent at SSH_AUTH_SOCK, ~/.ssh/id_ed25519, id_ecdsa, id_rsa, then a
password on a terminal), shows the target's host key and records it in
/etc/salvage/known_hosts only when you confirm it (or when it is the one
--accept-host-key gives, for scripts), appends the public key to the
target's ~/.ssh/authorized_keys unless it is there, then logs in with the
key alone and creates the dump directory. Run it again after changing the
target; rebuild the capture initramfs after (salvage kdump load does).

Examples:
  salvage kdump propagate
  salvage kdump propagate --accept-host-key SHA256:q0mHf1w3V0zQ…
  salvage kdump propagate --json`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		set, err := capture.LoadSettings(*root, kdumpCollectorCheck)
		if err != nil {
			return err
		}
		if len(set.Errors) > 0 {
			return fmt.Errorf("the configuration has errors:\n  %s", strings.Join(set.Errors, "\n  "))
		}
		t := set.Conf.Target
		if t.Kind != "ssh" {
			return fmt.Errorf("propagate: the dump target is %q, not ssh: set `ssh user@host` in %s (or SSH= in %s)", t, capture.ConfPath, capture.KdumpToolsPath)
		}
		key := set.Conf.SSHKey
		if key == "" {
			key = capture.DefaultSSHKey
		}
		home, _ := os.UserHomeDir()
		operator, done := capture.OperatorAuth(home)
		defer done()
		out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
		opt := capture.PropagateOptions{
			Target: t.Host, DumpPath: set.CoreDir,
			KeyFile: filepath.Join(*root, key), KnownHosts: filepath.Join(*root, capture.KnownHostsPath),
			Operator: operator, AcceptHostKey: accept,
			Logf: func(f string, a ...any) { fmt.Fprintf(errw, f+"\n", a...) },
		}
		if accept != "" && !strings.HasPrefix(accept, "SHA256:") {
			return fmt.Errorf("--accept-host-key %q: give the SHA256:… fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the target)", accept)
		}
		if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			in := bufio.NewReader(f)
			opt.Confirm = func(host, typ, fp string) (bool, error) {
				fmt.Fprintf(errw, "The host key of %s is not recorded in %s.\n%s key fingerprint is %s.\nRecord it and continue (yes/no)? ", host, opt.KnownHosts, typ, fp)
				l, err := in.ReadString('\n')
				if err != nil && err != io.EOF {
					return false, err
				}
				return strings.TrimSpace(strings.ToLower(l)) == "yes", nil
			}
			opt.Password = func() (string, error) {
				fmt.Fprintf(errw, "%s's password: ", t.Host)
				b, err := term.ReadPassword(int(f.Fd()))
				fmt.Fprintln(errw)
				return string(b), err
			}
		}
		res, err := capture.Propagate(context.Background(), opt)
		if err != nil {
			return err
		}
		if jsonOut {
			return writeKdumpJSON(out, res)
		}
		writePropagate(out, res)
		return nil
	}
	cmd.Flags().StringVar(&accept, "accept-host-key", "", "record the target's host key without asking when its fingerprint is this (SHA256:…)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print as JSON")
	return cmd
}

// writePropagate prints what propagate did, a line a step.
func writePropagate(w io.Writer, r *capture.PropagateResult) {
	did := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	fmt.Fprintf(w, "key:             %s (%s)\n", r.KeyFile, did(r.KeyCreated, "created", "existing"))
	fmt.Fprintf(w, "host key:        %s (%s %s)\n", r.HostKey, did(r.HostKeyRecorded, "recorded in", "already in"), r.KnownHosts)
	fmt.Fprintf(w, "authorized_keys: %s on %s\n", did(r.KeyAuthorized, "key added", "key already present"), r.Target)
	fmt.Fprintf(w, "key-only login:  ok, dump directory %s\n", r.Store)
}
