package amd64

import (
	"encoding/binary"
	"errors"

	"salvage/arch"
)

// maxPrologue is how many bytes of a function's start prologueFrame reads.
const maxPrologue = 64

// prologueFrame works out a function's frame from its first instructions,
// for code the ORC table does not describe: the pushes and the stack
// adjustment (sub $n,%rsp) before the body. It knows only the
// instructions compilers put in x86_64 kernel prologues — the ftrace call
// (or the nop it is patched to), endbr64 (or its sealed nop), pushes, register moves and
// immediate loads — and gives up at anything else. size is the bytes
// between the stack pointer in the body and the return address; bpSave
// is rbp's slot below the return address (0 when rbp is not pushed).
func prologueFrame(code []byte) (size int, bpSave int, ok bool) {
	pushes := 0
	for i := 0; i < len(code); {
		c := code[i:]
		switch {
		case len(c) >= 5 && c[0] == 0xe8: // call __fentry__
			i += 5
		case len(c) >= 5 && c[0] == 0x0f && c[1] == 0x1f && c[2] == 0x44 && c[3] == 0 && c[4] == 0: // nop5
			i += 5
		case len(c) >= 4 && c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa: // endbr64
			i += 4
		case len(c) >= 4 && c[0] == 0x66 && c[1] == 0x0f && c[2] == 0x1f && c[3] == 0: // nopw (%rax)
			// The endbr64 of a function never called indirectly, sealed
			// at boot (CONFIG_X86_KERNEL_IBT, apply_seal_endbr: 6.2+,
			// in arch/x86/kernel/alternative.c).
			i += 4
		case c[0] >= 0x50 && c[0] <= 0x57: // push %rax…%rdi
			pushes++
			if c[0] == 0x55 {
				bpSave = pushes
			}
			i++
		case len(c) >= 2 && c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57: // push %r8…%r15
			pushes++
			i += 2
		case len(c) >= 3 && c[0] == 0x48 && c[1] == 0x89 && c[2] == 0xe5: // mov %rsp,%rbp
			i += 3
		case len(c) >= 4 && c[0] == 0x48 && c[1] == 0x83 && c[2] == 0xec: // sub $imm8,%rsp
			return pushes*8 + int(int8(c[3])), bpSave, true
		case len(c) >= 7 && c[0] == 0x48 && c[1] == 0x81 && c[2] == 0xec: // sub $imm32,%rsp
			return pushes*8 + int(int32(binary.LittleEndian.Uint32(c[3:]))), bpSave, true
		case len(c) >= 5 && c[0] >= 0xb8 && c[0] <= 0xbf: // mov $imm32,%e?x
			i += 5
		case len(c) >= 6 && c[0] == 0x41 && c[1] >= 0xb8 && c[1] <= 0xbf:
			i += 6
		case len(c) >= 2 && (c[0] == 0x31 || c[0] == 0x89 || c[0] == 0x8b || c[0] == 0x85) && c[1]>>6 == 3: // reg,reg ops
			i += 2
		case len(c) >= 3 && (c[0] == 0x48 || c[0] == 0x49 || c[0] == 0x4c || c[0] == 0x4d) &&
			(c[1] == 0x31 || c[1] == 0x89 || c[1] == 0x8b || c[1] == 0x85) && c[2]>>6 == 3:
			i += 3
		default:
			return pushes * 8, bpSave, pushes > 0
		}
	}
	return pushes * 8, bpSave, pushes > 0
}

// prologueStep unwinds one call frame with prologueFrame's answer.
func (u *Unwinder) prologueStep(s *walkState, lookup uint64, mem arch.UnwindMemory) (*walkState, error) {
	start, ok := mem.FuncStart(lookup)
	if !ok || lookup-start < 1 || lookup-start > 1<<20 {
		return nil, errors.New("no function start")
	}
	n := lookup - start
	if n > maxPrologue {
		n = maxPrologue
	}
	code := make([]byte, 0, n)
	for a := start; a < start+n; a += 8 {
		w, err := mem.ReadWord(a)
		if err != nil {
			return nil, err
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], w)
		code = append(code, b[:]...)
	}
	code = code[:n]
	size, bpSave, ok := prologueFrame(code)
	if !ok || size < 0 || size > 1<<14 {
		return nil, errors.New("no prologue")
	}
	cfa := s.sp + uint64(size) + 8
	ret, err := mem.ReadWord(cfa - 8)
	if err != nil {
		return nil, err
	}
	next := &walkState{pc: ret, sp: cfa, shownSP: cfa - 8, bp: s.bp}
	if bpSave > 0 {
		if bp, err := mem.ReadWord(cfa - 8 - uint64(8*bpSave)); err == nil {
			next.bp = bp
		}
	}
	return next, nil
}
