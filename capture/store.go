package capture

import "io"

// File is a file created in a Store: written at offsets (the collector
// fills in a kdump-compressed file's bitmaps after its pages) or in order.
// Close makes the data durable before it returns.
type File interface {
	io.Writer
	io.WriterAt
	io.Closer
	// Name names the file for messages.
	Name() string
}

// Store is a dump target seen as a directory tree, the way the capture
// kernel writes a dump into it: a local or mounted file system, an NFS
// mount, or an SFTP session on an ssh target. Names are slash-separated
// and relative to the configured dump path (kdump.conf's `path`).
//
// Local and NFS stores are dirStore values; the ssh target is an SFTP
// store. A raw block device is not a Store: it takes one flattened
// stream (see the raw target).
type Store interface {
	// String names the store for messages, e.g. "ssh root@10.0.2.2:/var/crash".
	String() string
	// MkdirAll creates dir and its parents, mode 0700.
	MkdirAll(dir string) error
	// Create creates or truncates name, mode 0600. Close makes the data
	// durable (fsync locally; the server's fsync extension over SFTP when
	// it has one) before it returns. collect.CollectTo writes a dump into it.
	Create(name string) (File, error)
	// Rename renames atomically, replacing nothing: it fails when newname
	// exists.
	Rename(oldname, newname string) error
	// ReadDir lists the names in dir (not . and ..), sorted.
	ReadDir(dir string) ([]string, error)
	// RemoveAll removes name and everything below it.
	RemoveAll(name string) error
	// Close releases the store (unmounts, ends the session).
	Close() error
}
