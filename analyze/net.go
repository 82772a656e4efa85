package analyze

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

func init() { register(netCommand) }

func netCommand() *Command {
	return &Command{
		Name:    "net",
		Summary: "list the network devices and their IP addresses",
		Help: `Lists the network devices of the initial network namespace (PID 0's) as
crash's net does: each struct net_device in the order of the namespace's
dev_base_head list, its name, then its IPv4 addresses (in_device's
ifa_list) and IPv6 addresses (inet6_dev's addr_list), comma-separated.

Examples:
  net
  net --json
`,
		Run: runNet,
	}
}

// netDeviceJSON is one device as net --json shows it.
type netDeviceJSON struct {
	NetDevice uint64   `json:"net_device"`
	Name      string   `json:"name"`
	IPv4      []string `json:"ipv4"`
	IPv6      []string `json:"ipv6"`
	Error     string   `json:"error,omitempty"`
}

func runNet(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	ns, err := k.NetNamespace()
	if err != nil {
		return fmt.Errorf("cannot determine the network namespace: %w", err)
	}
	devs, listErr := k.NetDevices(ns)
	if listErr != nil && len(devs) == 0 {
		return listErr
	}
	if ctx.JSON {
		out := []netDeviceJSON{}
		for _, d := range devs {
			j := netDeviceJSON{NetDevice: d.Addr, Name: d.Name, IPv4: []string{}, IPv6: []string{}, Error: devErrString(d.Err)}
			for _, a := range d.IPv4 {
				j.IPv4 = append(j.IPv4, a.String())
			}
			for _, a := range d.IPv6 {
				j.IPv6 = append(j.IPv6, inet6String(a))
			}
			out = append(out, j)
		}
		if err := writeJSON(ctx, out); err != nil {
			return err
		}
		return listErr
	}
	// crash's layout (net.c show_net_devices_v3): the header's
	// NET_DEVICE centred over 16 hex digits, the name in 10 columns.
	fmt.Fprintf(ctx.Out, "%s  NAME       IP ADDRESS(ES)\n", center(16, "NET_DEVICE", false))
	for _, d := range devs {
		var addrs []string
		for _, a := range d.IPv4 {
			addrs = append(addrs, a.String())
		}
		for _, a := range d.IPv6 {
			addrs = append(addrs, inet6String(a))
		}
		fmt.Fprintf(ctx.Out, "%016x  %-10s %s\n", d.Addr, d.Name, strings.Join(addrs, ", "))
		if d.Err != nil {
			fmt.Fprintf(ctx.Out, "net: %s: %v\n", d.Name, d.Err)
		}
	}
	return listErr
}

// inet6String formats an IPv6 address as glibc's inet_ntop does, which
// crash prints with: lower-case hex groups without leading zeros, the
// first longest run of two or more zero groups as "::", and the last 32
// bits dotted after ::ffff: (IPv4-mapped) or :: with six zero groups
// (IPv4-compatible). Go's netip differs on the last case.
func inet6String(a netip.Addr) string {
	b := a.As16()
	var w [8]uint16
	for i := range w {
		w[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	best, bestLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > bestLen {
			best, bestLen = i, j-i
		}
		i = j
	}
	if bestLen < 2 {
		best = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if best >= 0 && i >= best && i < best+bestLen {
			if i == best {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && best == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			fmt.Fprintf(&sb, "%d.%d.%d.%d", b[12], b[13], b[14], b[15])
			break
		}
		sb.WriteString(strconv.FormatUint(uint64(w[i]), 16))
	}
	if best >= 0 && best+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}
