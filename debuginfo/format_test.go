package debuginfo

import "testing"

func TestTypeName(t *testing.T) {
	char := &Type{Kind: KindInt, Name: "char", Size: 1, Encoding: EncChar}
	task := &Type{Kind: KindStruct, Name: "task_struct", Size: 9856}
	work := &Type{Kind: KindStruct, Name: "work_struct", Size: 32}
	fn := &Type{Kind: KindFunc, Params: []Param{{Type: &Type{Kind: KindPointer, Size: 8, Elem: work}}}}
	tests := []struct {
		t    *Type
		name string
		want string
	}{
		{char, "", "char"},
		{&Type{Kind: KindArray, Elem: char, Len: 16}, "comm", "char comm[16]"},
		{&Type{Kind: KindArray, Elem: char, Len: 16}, "", "char [16]"},
		{&Type{Kind: KindPointer, Elem: task, Size: 8}, "", "struct task_struct *"},
		{&Type{Kind: KindPointer, Elem: task, Size: 8}, "parent", "struct task_struct *parent"},
		{&Type{Kind: KindPointer, Elem: fn, Size: 8}, "func", "void (*func)(struct work_struct *)"},
		{&Type{Kind: KindPointer, Elem: &Type{Kind: KindPointer, Elem: char, Size: 8}, Size: 8}, "argv", "char **argv"},
		{&Type{Kind: KindPointer, Elem: &Type{Kind: KindInt, Name: "char", Qual: QualConst}, Size: 8}, "s", "const char *s"},
		{&Type{Kind: KindArray, Elem: &Type{Kind: KindPointer, Elem: task, Size: 8}, Len: 2}, "t", "struct task_struct *t[2]"},
		{&Type{Kind: KindArray, Elem: char, Len: -1}, "data", "char data[]"},
	}
	for _, tc := range tests {
		if got := Declare(tc.t, tc.name); got != tc.want {
			t.Errorf("Declare(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
