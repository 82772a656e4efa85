// Package lzo decompresses and compresses LZO1X blocks, the "lzo" page
// codec of kdump-compressed dumps (makedumpfile -l and QEMU's
// dump-guest-memory -l compress each page with liblzo2's
// lzo1x_1_compress; salvage collect -l with Compress, whose output any
// LZO1X decompressor reads).
//
// The decoder is "safe" in liblzo2's sense: it never reads past the input
// or writes past the output buffer, and it rejects back-references before
// the start of the output, whatever the input. The stream format is
// described in the Linux kernel's Documentation/staging/lzo.rst; the
// LZO-RLE extension (bitstream version 1, used only by zram) is not
// supported.
package lzo
