package lzo

import (
	"errors"
	"fmt"
)

// Errors returned by Decompress, wrapped with the input offset where the
// stream went wrong; test for them with errors.Is.
var (
	// ErrInputOverrun: the stream ends in the middle of an instruction.
	ErrInputOverrun = errors.New("lzo: input overrun")
	// ErrOutputOverrun: the stream decodes to more bytes than dst holds.
	ErrOutputOverrun = errors.New("lzo: output overrun")
	// ErrLookBehind: a back-reference points before the start of the output.
	ErrLookBehind = errors.New("lzo: look-behind overrun")
	// ErrInputNotConsumed: bytes follow the end-of-stream marker. The
	// output is complete; liblzo2 reports this as LZO_E_INPUT_NOT_CONSUMED.
	ErrInputNotConsumed = errors.New("lzo: input not consumed")
)

// decoder walks one LZO1X stream. The layout of every instruction is in
// the kernel's Documentation/staging/lzo.rst ("Byte sequences").
type decoder struct {
	src, dst []byte
	ip, op   int
}

func (d *decoder) fail(err error) error {
	return fmt.Errorf("%w at input offset %d (output offset %d)", err, d.ip, d.op)
}

// byte returns the next input byte.
func (d *decoder) next() (byte, error) {
	if d.ip >= len(d.src) {
		return 0, d.fail(ErrInputOverrun)
	}
	b := d.src[d.ip]
	d.ip++
	return b, nil
}

// le16 returns the next two input bytes as a little-endian value.
func (d *decoder) le16() (int, error) {
	if len(d.src)-d.ip < 2 {
		return 0, d.fail(ErrInputOverrun)
	}
	v := int(d.src[d.ip]) | int(d.src[d.ip+1])<<8
	d.ip += 2
	return v, nil
}

// length decodes a run length whose low bits were zero in the opcode:
// base plus 255 for every zero byte, plus the first non-zero byte. The
// result is bounded by 255 times the input length, so it cannot overflow.
func (d *decoder) length(base int) (int, error) {
	n := base
	for {
		b, err := d.next()
		if err != nil {
			return 0, err
		}
		if b != 0 {
			return n + int(b), nil
		}
		n += 255
	}
}

// literals copies n bytes from the input to the output.
func (d *decoder) literals(n int) error {
	if n > len(d.src)-d.ip {
		return d.fail(ErrInputOverrun)
	}
	if n > len(d.dst)-d.op {
		return d.fail(ErrOutputOverrun)
	}
	copy(d.dst[d.op:], d.src[d.ip:d.ip+n])
	d.ip += n
	d.op += n
	return nil
}

// match copies n bytes from dist bytes back in the output. The regions
// may overlap (dist < n repeats a pattern), so the copy goes forward.
func (d *decoder) match(dist, n int) error {
	if dist > d.op {
		return d.fail(ErrLookBehind)
	}
	if n > len(d.dst)-d.op {
		return d.fail(ErrOutputOverrun)
	}
	from := d.op - dist
	if dist >= n {
		copy(d.dst[d.op:d.op+n], d.dst[from:from+n])
	} else {
		for i := 0; i < n; i++ {
			d.dst[d.op+i] = d.dst[from+i]
		}
	}
	d.op += n
	return nil
}

// Decompress decodes the LZO1X block src into dst and returns the number
// of bytes written. It fails with an error wrapping one of the Err values
// when src is malformed or does not fit in dst; on ErrInputNotConsumed the
// n bytes written are the complete output.
func Decompress(dst, src []byte) (n int, err error) {
	d := decoder{src: src, dst: dst}
	// state is the number of literals the previous instruction copied
	// (0–3), or 4 after a literal run of four or more; it selects the
	// meaning of opcodes 0–15.
	state := 0

	if len(src) == 0 {
		return 0, d.fail(ErrInputOverrun)
	}
	// First byte: values above 17 are a literal run with nothing before
	// it; anything else is an ordinary instruction.
	if b := src[0]; b > 17 {
		d.ip++
		t := int(b) - 17
		if err := d.literals(t); err != nil {
			return d.op, err
		}
		state = min(t, 4)
	}

	for {
		b, err := d.next()
		if err != nil {
			return d.op, err
		}
		var dist, length, trailing int
		switch {
		case b < 16 && state == 0:
			// 0000LLLL: a run of four or more literals.
			length = int(b)
			if length == 0 {
				if length, err = d.length(15); err != nil {
					return d.op, err
				}
			}
			if err := d.literals(length + 3); err != nil {
				return d.op, err
			}
			state = 4
			continue
		case b < 16:
			// 0000DDSS + one byte: a short copy whose distance range
			// depends on whether literals or a literal run came before.
			h, err := d.next()
			if err != nil {
				return d.op, err
			}
			dist = int(h)<<2 + int(b>>2) + 1
			length = 2
			if state == 4 {
				dist += 2048
				length = 3
			}
			trailing = int(b & 3)
		case b < 32:
			// 0001HLLL + LE16: a copy 16–48 KiB back, or end of stream.
			length = int(b & 7)
			if length == 0 {
				if length, err = d.length(7); err != nil {
					return d.op, err
				}
			}
			length += 2
			v, err := d.le16()
			if err != nil {
				return d.op, err
			}
			dist = 16384 + int(b&8)<<11 + v>>2
			if dist == 16384 {
				if d.ip != len(src) {
					return d.op, d.fail(ErrInputNotConsumed)
				}
				return d.op, nil
			}
			trailing = v & 3
		case b < 64:
			// 001LLLLL + LE16: a copy up to 16 KiB back.
			length = int(b & 31)
			if length == 0 {
				if length, err = d.length(31); err != nil {
					return d.op, err
				}
			}
			length += 2
			v, err := d.le16()
			if err != nil {
				return d.op, err
			}
			dist = v>>2 + 1
			trailing = v & 3
		default:
			// 01LDDDSS or 1LLDDDSS + one byte: a copy of 3–8 bytes up
			// to 2 KiB back.
			h, err := d.next()
			if err != nil {
				return d.op, err
			}
			dist = int(h)<<3 + int(b>>2&7) + 1
			if b < 128 {
				length = 3 + int(b>>5&1)
			} else {
				length = 5 + int(b>>5&3)
			}
			trailing = int(b & 3)
		}
		if err := d.match(dist, length); err != nil {
			return d.op, err
		}
		if err := d.literals(trailing); err != nil {
			return d.op, err
		}
		state = trailing
	}
}
