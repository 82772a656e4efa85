package analyze

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"salvage/kernel"
)

func init() { register(irqCommand) }

func irqCommand() *Command {
	return &Command{
		Name:    "irq",
		Summary: "list the interrupt descriptors and their handlers",
		Usage:   "[IRQ] ...",
		Help: `Lists every IRQ number below nr_irqs as crash's irq does: the IRQ, its
descriptor (struct irq_desc), the handler (struct irqaction) and the name
the driver gave request_irq. An IRQ without a descriptor, or a descriptor
without a handler, shows "(unused)"; a line shared by several handlers
lists each on a line of its own below the first. Given IRQ numbers
(decimal), shows those alone, in the order given.

Examples:
  irq
  irq 24 25
  irq --json
  irq | grep -v unused
`,
		MaxArgs: -1,
		Run:     runIRQ,
	}
}

// irqJSON is one IRQ that has a descriptor, as irq --json shows it.
type irqJSON struct {
	IRQ     int             `json:"irq"`
	Desc    uint64          `json:"irq_desc"`
	Actions []irqActionJSON `json:"actions"`
	Error   string          `json:"error,omitempty"`
}

// irqActionJSON is one handler of an IRQ.
type irqActionJSON struct {
	Action uint64 `json:"irqaction"`
	Name   string `json:"name"`
}

// irqTableJSON is irq --json: nr_irqs and the IRQs with a descriptor.
type irqTableJSON struct {
	NrIRQs int       `json:"nr_irqs"`
	IRQs   []irqJSON `json:"irqs"`
}

func runIRQ(ctx *Context) error {
	k, err := ctx.Session.Kernel()
	if err != nil {
		return err
	}
	// A tree that could not be walked in full still lists the IRQs found;
	// its error and those of IRQs whose actions could not be read follow
	// the table.
	nr, irqs, treeErr := k.IRQs()
	if nr == 0 {
		return treeErr
	}
	// crash checks each operand as it comes to it: the rows before a bad
	// one are printed, then the error.
	var want []int
	var badArg error
	for _, a := range ctx.Args {
		n, err := strconv.Atoi(a)
		switch {
		case err != nil || n < 0:
			badArg = fmt.Errorf("%s: not an IRQ number (decimal)", a)
		case n >= nr:
			badArg = fmt.Errorf("invalid IRQ value: %d  (%d max)", n, nr-1)
		}
		if badArg != nil {
			break
		}
		want = append(want, n)
	}
	if len(ctx.Args) == 0 {
		for i := 0; i < nr; i++ {
			want = append(want, i)
		}
	}
	if ctx.JSON {
		if badArg != nil {
			return badArg
		}
		if treeErr != nil {
			return treeErr
		}
		sel := map[int]bool{}
		for _, n := range want {
			sel[n] = true
		}
		out := irqTableJSON{NrIRQs: nr, IRQs: []irqJSON{}}
		for _, q := range irqs {
			if !sel[q.IRQ] {
				continue
			}
			j := irqJSON{IRQ: q.IRQ, Desc: q.Desc, Actions: []irqActionJSON{}}
			for _, a := range q.Actions {
				j.Actions = append(j.Actions, irqActionJSON{Action: a.Addr, Name: a.Name})
			}
			if q.Err != nil {
				j.Error = q.Err.Error()
			}
			out.IRQs = append(out.IRQs, j)
		}
		return writeJSON(ctx, out)
	}
	if len(want) > 0 {
		writeIRQTable(ctx.Out, want, irqs)
	}
	if badArg != nil {
		return badArg
	}
	return irqErrors(want, irqs, treeErr)
}

// irqErrors joins, on one line, the tree's error and those of the shown
// IRQs whose actions could not all be read.
func irqErrors(want []int, irqs []kernel.IRQ, treeErr error) error {
	var msgs []string
	if treeErr != nil {
		msgs = append(msgs, treeErr.Error())
	}
	shown := map[int]bool{}
	for _, n := range want {
		shown[n] = true
	}
	for _, q := range irqs {
		if q.Err != nil && shown[q.IRQ] {
			msgs = append(msgs, q.Err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("incomplete: %s", strings.Join(msgs, "; "))
}

// writeIRQTable prints crash's irq table (kernel.c generic_dump_irq, its
// irq_desc_format_v2): the IRQ centred in four columns (an odd padding to
// the left), the descriptor and the action centred in sixteen, every
// further action of a shared line on a line of its own under the first.
func writeIRQTable(w io.Writer, want []int, irqs []kernel.IRQ) {
	const col = 16 // crash's VADDR_PRLEN on x86_64
	fmt.Fprintf(w, " IRQ  %s  %s  NAME\n", center(col, "IRQ_DESC/_DATA", false), center(col, "IRQACTION", false))
	byIRQ := make(map[int]int, len(irqs))
	for i, q := range irqs {
		byIRQ[q.IRQ] = i
	}
	unused := center(col, "(unused)", false)
	for _, irq := range want {
		var b strings.Builder
		b.WriteString(center(4, strconv.Itoa(irq), true))
		b.WriteString("  ")
		i, ok := byIRQ[irq]
		if !ok {
			b.WriteString(unused + "  " + unused + "  \n")
			w.Write([]byte(b.String()))
			continue
		}
		q := irqs[i]
		b.WriteString(center(col, fmt.Sprintf("%x", q.Desc), false))
		b.WriteString("  ")
		if len(q.Actions) == 0 {
			b.WriteString(unused + "  ")
		}
		for n, a := range q.Actions {
			if n > 0 {
				b.WriteString("\n" + strings.Repeat(" ", 4+2+col+2))
			}
			b.WriteString(center(col, fmt.Sprintf("%x", a.Addr), false) + "  ")
			if a.NameOK {
				b.WriteString(`"` + a.Name + `"`)
			}
		}
		b.WriteString("\n")
		w.Write([]byte(b.String()))
	}
}
