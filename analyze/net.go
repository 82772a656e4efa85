package analyze

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"salvage/kernel"
)

func init() { register(netCommand) }

func netCommand() *Command {
	return &Command{
		Name:    "net",
		Summary: "list the network devices and their IP addresses, or the ARP cache",
		Usage:   "[-a] [-n [PID|TASK]] [-s [PID|TASK]…] [-N ADDR]",
		Help: `Lists the network devices of the initial network namespace (PID 0's) as
crash's net does: each struct net_device in the order of the namespace's
dev_base_head list, its name, then its IPv4 addresses (in_device's
ifa_list) and IPv6 addresses (inet6_dev's addr_list), comma-separated.
-n lists those of the current task's namespace, or of the task PID or
TASK. -a shows the ARP cache (arp_tbl's neighbours: address, IP address,
hardware type and address, device, NUD state). -N translates an IPv4
address given as a decimal or hexadecimal number (as the kernel stores
it) into dotted notation. -s lists the open sockets of the current task,
or of each PID or TASK: fd, struct socket, struct sock, family and type,
and for INET and INET6 the source and destination addresses and ports.

Examples:
  net
  net -n 1
  net -a
  net -s 1
  net -N 0x0100007f
  net --json
`,
		Options: []Option{
			{Name: "a", Help: "display the ARP cache"},
			{Name: "n", Help: "the network namespace of the current task, or of the PID|TASK operand"},
			{Name: "s", Help: "the open sockets of the current task, or of each PID|TASK operand"},
			{Name: "N", Arg: "ADDR", Help: "translate an IPv4 address held in a number into dotted notation"},
		},
		MaxArgs: -1,
		Run:     runNet,
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
	if v, ok := ctx.Opts.Value("N"); ok {
		return runNetN(ctx, v)
	}
	if ctx.Opts.Has("s") {
		return runNetSockets(ctx, k)
	}
	if len(ctx.Args) > 1 {
		return usagef("-n takes one PID or task")
	}
	if ctx.Opts.Has("a") {
		if err := runNetARP(ctx, k); err != nil || !ctx.Opts.Has("n") {
			return err
		}
	}
	if len(ctx.Args) > 0 && !ctx.Opts.Has("n") {
		return usagef("a PID or task goes with -n")
	}
	var ns kernel.Value
	if ctx.Opts.Has("n") {
		var t kernel.TaskInfo
		if len(ctx.Args) == 0 {
			if t, err = ctx.Session.CurrentTask(); err != nil {
				return err
			}
		} else {
			tasks, err := k.TaskTable()
			if err != nil && len(tasks) == 0 {
				return err
			}
			var ok bool
			if t, ok = lookupTask(tasks, ctx.Args[0]); !ok {
				return fmt.Errorf("invalid task or pid value: %s", ctx.Args[0])
			}
		}
		if ns, err = k.TaskNetNamespace(t.Task); err != nil {
			return fmt.Errorf("cannot determine the network namespace of PID %d: %w", t.PID, err)
		}
	} else if ns, err = k.NetNamespace(); err != nil {
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

// runNetN is net -N: the number as the kernel holds an IPv4 address (in
// network order in memory, so its low byte first), dotted. Like crash,
// digits alone are decimal, anything else hexadecimal.
func runNetN(ctx *Context, arg string) error {
	var v uint64
	var err error
	if isDecimal(arg) {
		v, err = strconv.ParseUint(arg, 10, 64)
	} else {
		v, err = strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(arg, "0x"), "0X"), 16, 64)
	}
	if err != nil {
		return fmt.Errorf("not a valid number: %s", arg)
	}
	a := netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	if ctx.JSON {
		return writeJSON(ctx, map[string]string{"address": a.String()})
	}
	fmt.Fprintln(ctx.Out, a)
	return nil
}

// neighbourJSON is one ARP cache entry as net -a --json shows it.
type neighbourJSON struct {
	Neighbour uint64 `json:"neighbour"`
	IP        string `json:"ip"`
	HWType    string `json:"hw_type"`
	HWAddress string `json:"hw_address"`
	Device    string `json:"device"`
	State     string `json:"state"`
	Error     string `json:"error,omitempty"`
}

// arpHWTypes are the ARPHRD_* (include/uapi/linux/if_arp.h) names crash
// shows; any other type is UNKNOWN.
var arpHWTypes = map[uint16]string{0: "NETROM", 1: "ETHER", 2: "EETHER", 3: "AX25", 4: "PRONET", 5: "CHAOS",
	6: "IEEE802", 7: "ARCNET", 8: "APPLETLK", 15: "DLCI", 23: "METRICOM"}

// nudStateNames are the NUD_* flags (include/uapi/linux/neighbour.h), in
// crash's order.
var nudStateNames = []struct {
	bit  uint8
	name string
}{{0x01, "INCOMPLETE"}, {0x02, "REACHABLE"}, {0x04, "STALE"}, {0x08, "DELAY"},
	{0x10, "PROBE"}, {0x20, "FAILED"}, {0x40, "NOARP"}, {0x80, "PERMANENT"}}

// nudState is a nud_state as crash prints it: its flags joined by "|".
func nudState(s uint8) string {
	var names []string
	for _, f := range nudStateNames {
		if s&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, "|")
}

// runNetARP is net -a, crash's dump_arp: the header once there is an
// entry, then one line per neighbour.
func runNetARP(ctx *Context, k *kernel.Kernel) error {
	ns, listErr := k.ARPNeighbours()
	if listErr != nil && len(ns) == 0 {
		return listErr
	}
	if ctx.JSON {
		out := []neighbourJSON{}
		for _, n := range ns {
			out = append(out, neighbourJSON{Neighbour: n.Addr, IP: n.IP.String(), HWType: arpHWType(n),
				HWAddress: strings.TrimSpace(arpHWAddr(n)), Device: n.DevName, State: nudState(n.State), Error: devErrString(n.Err)})
		}
		if err := writeJSON(ctx, out); err != nil {
			return err
		}
		return listErr
	}
	for i, n := range ns {
		if i == 0 {
			fmt.Fprintln(ctx.Out, "NEIGHBOUR        IP ADDRESS      HW TYPE    HW ADDRESS         DEVICE  STATE")
		}
		fmt.Fprintln(ctx.Out, arpLine(n))
		if n.Err != nil {
			fmt.Fprintf(ctx.Out, "net: neighbour %x: %v\n", n.Addr, n.Err)
		}
	}
	return listErr
}

// arpHWType is the neighbour's device type as crash names it.
func arpHWType(n kernel.Neighbour) string {
	if t, ok := arpHWTypes[n.DevType]; ok {
		return t
	}
	return "UNKNOWN"
}

// arpHWAddr is the hardware address as crash prints it, each byte
// followed by a separator: ":" between an Ethernet address's bytes, else
// a space.
func arpHWAddr(n kernel.Neighbour) string {
	var sb strings.Builder
	for i, b := range n.HA {
		sep := " "
		if n.DevType == 1 && i < len(n.HA)-1 {
			sep = ":"
		}
		fmt.Fprintf(&sb, "%02x%s", b, sep)
	}
	return sb.String()
}

// arpLine is one net -a line (crash's print_neighbour_q).
func arpLine(n kernel.Neighbour) string {
	ip := "(unknown)"
	if n.IP.IsValid() {
		ip = n.IP.String()
	}
	return fmt.Sprintf("%-16x %-16s%-10s %s %-6s  %s", n.Addr, ip, arpHWType(n), arpHWAddr(n), n.DevName, nudState(n.State))
}

// socketJSON is one socket as net -s --json shows it.
type socketJSON struct {
	PID    int64  `json:"pid"`
	Task   uint64 `json:"task"`
	FD     int    `json:"fd"`
	Socket uint64 `json:"socket"`
	Sock   uint64 `json:"sock"`
	Family string `json:"family"`
	Type   string `json:"type"`
	Source string `json:"source,omitempty"`
	Dest   string `json:"destination,omitempty"`
	Error  string `json:"error,omitempty"`
}

// socketFamilies are the AF_* names crash shows (include/linux/socket.h).
var socketFamilies = map[uint16]string{0: "UNSPEC", 1: "UNIX", 2: "INET", 3: "AX25", 4: "IPX", 5: "APPLETALK",
	6: "NETROM", 7: "BRIDGE", 8: "ATMPVC", 9: "X25", 10: "INET6", 11: "ROSE", 12: "DECnet", 13: "NETBEUI",
	14: "SECURITY/KEY", 16: "NETLINK/ROUTE", 17: "PACKET", 18: "ASH", 19: "ECONET", 20: "ATMSVC", 22: "SNA",
	23: "IRDA", 24: "PPPOX"}

// socketTypes are the SOCK_* names crash shows; its DGRAM has a space.
var socketTypes = map[uint16]string{1: "STREAM", 2: "DGRAM ", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 10: "PACKET"}

// socketInfo is crash's get_sock_info text: FAMILY:TYPE, then the INET
// addresses as " SRC-PORT DST-PORT", or the INET6 ones as 8 groups of
// hex each, the destination centred under the source's width.
func socketInfo(s kernel.Socket) string {
	fam, ok := socketFamilies[s.Family]
	if !ok {
		fam = strconv.Itoa(int(s.Family))
	}
	typ, ok := socketTypes[s.Type]
	if !ok {
		typ = strconv.Itoa(int(s.Type))
	}
	out := fam + ":" + typ + " "
	switch s.Family {
	case 2:
		out += fmt.Sprintf(" %s-%d %s-%d", s.Src, s.SrcPort, s.Dst, s.DstPort)
	case 10:
		six := func(a netip.Addr, port uint16) string {
			b := a.As16()
			var g []string
			for i := 0; i < 16; i += 2 {
				g = append(g, strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
			}
			return strings.Join(g, ":") + "-" + strconv.Itoa(int(port))
		}
		src := six(s.Src, s.SrcPort)
		out += fmt.Sprintf("%12s ", src) + center(len(src), six(s.Dst, s.DstPort), false)
	}
	return out
}

// runNetSockets is net -s (crash's dump_sockets): a task header, then
// the task's sockets or "No open sockets.", for the current task or each
// PID|TASK operand.
func runNetSockets(ctx *Context, k *kernel.Kernel) error {
	if ctx.Opts.Has("n") || ctx.Opts.Has("a") {
		return usagef("-s goes without -n and -a")
	}
	tasks, err := k.TaskTable()
	if err != nil && len(tasks) == 0 {
		return err
	}
	var sel []kernel.TaskInfo
	if len(ctx.Args) == 0 {
		t, err := ctx.Session.CurrentTask()
		if err != nil {
			return err
		}
		sel = append(sel, t)
	}
	for _, a := range ctx.Args {
		t, ok := lookupTask(tasks, a)
		if !ok {
			return fmt.Errorf("invalid task or pid value: %s", a)
		}
		sel = append(sel, t)
	}
	out := []socketJSON{}
	for i, t := range sel {
		socks, err := k.TaskSockets(t.Task)
		if err != nil && len(socks) == 0 {
			return fmt.Errorf("sockets of PID %d: %w", t.PID, err)
		}
		if ctx.JSON {
			for _, s := range socks {
				j := socketJSON{PID: t.PID, Task: t.Task, FD: s.FD, Socket: s.Socket, Sock: s.Sock,
					Family: strings.TrimSpace(socketFamilies[s.Family]), Type: strings.TrimSpace(socketTypes[s.Type]), Error: devErrString(s.Err)}
				if s.Src.IsValid() {
					j.Source = netip.AddrPortFrom(s.Src, s.SrcPort).String()
					j.Dest = netip.AddrPortFrom(s.Dst, s.DstPort).String()
				}
				out = append(out, j)
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(ctx.Out)
		}
		writeTaskHeader(ctx.Out, &t, 0)
		if len(socks) == 0 {
			fmt.Fprintln(ctx.Out, "No open sockets.")
			continue
		}
		fmt.Fprintln(ctx.Out, "FD      SOCKET            SOCK       FAMILY:TYPE SOURCE-PORT DESTINATION-PORT")
		for _, s := range socks {
			if s.Err != nil && s.Sock == 0 {
				fmt.Fprintf(ctx.Out, "%2d %16x: %v\n", s.FD, s.Socket, s.Err)
				continue
			}
			fmt.Fprintf(ctx.Out, "%2d %16x %16x %s\n", s.FD, s.Socket, s.Sock, socketInfo(s))
			if s.Err != nil {
				fmt.Fprintf(ctx.Out, "net: fd %d: %v\n", s.FD, s.Err)
			}
		}
	}
	if ctx.JSON {
		return writeJSON(ctx, out)
	}
	return nil
}
