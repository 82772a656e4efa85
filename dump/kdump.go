package dump

import "io"

// openKdump reads a kdump-compressed file. (Owned by the kdump work; stub.)
func openKdump(r io.ReaderAt, size int64, name string) (*File, error) {
	return nil, &FormatError{File: name, Off: -1, Msg: "kdump-compressed: not implemented yet"}
}

// openFlattened reads a makedumpfile flattened stream. (stub)
func openFlattened(r io.ReaderAt, size int64, name string) (*File, error) {
	return nil, &FormatError{File: name, Off: -1, Msg: "flattened: not implemented yet"}
}

// openSplit opens the parts of a split dump together. (stub)
func openSplit(paths []string) (*File, error) {
	return nil, &FormatError{File: paths[0], Off: -1, Msg: "split dumps: not implemented yet"}
}
