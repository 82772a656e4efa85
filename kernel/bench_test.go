package kernel

import (
	"testing"

	"salvage/lab/corpus"
)

// BenchmarkTaskList walks init_task.tasks of a lab dump and reads each
// task's pid: the core of ps.
func BenchmarkTaskList(b *testing.B) {
	m := corpus.Require(b)
	k := openTypedKernel(b, m, m.Dumps[0])
	init, err := k.Global("init_task")
	if err != nil {
		b.Fatal(err)
	}
	head, _ := init.Member("tasks")
	for b.Loop() {
		n := 0
		for v, err := range k.ListEntries(head.Address(), "struct task_struct", "tasks") {
			if err != nil {
				b.Fatal(err)
			}
			p, err := v.Member("pid")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Int(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(n), "tasks")
	}
}
