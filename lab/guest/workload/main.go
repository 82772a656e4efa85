// Command workload runs inside the lab guest before a crash so that the
// dump is not trivial: threads, anonymous and page-cache memory, open
// files, pipes, a tmpfs file, and TCP sockets on loopback. It signals
// readiness by creating a file, then sleeps until the machine dies.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "/tmp/work", "directory for page-cache files")
	tmpfs := flag.String("tmpfs", "", "tmpfs mount to fill")
	ready := flag.String("ready", "", "file to create when ready")
	anonMB := flag.Int("anon-mb", 192, "anonymous memory to hold, MiB")
	cacheMB := flag.Int("cache-mb", 96, "page-cache file size, MiB")
	threads := flag.Int("threads", 48, "OS threads blocked in read(2)")
	parked := flag.Int("parked", 0, "more OS threads, parked in futex(2): a machine with thousands of tasks")
	flag.Parse()
	if err := run(*dir, *tmpfs, *ready, *anonMB, *cacheMB, *threads, *parked); err != nil {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
	select {}
}

var keep []any // everything the workload holds on to

func run(dir, tmpfs, ready string, anonMB, cacheMB, threads, parked int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Anonymous memory with a recognisable pattern.
	anon := make([]byte, anonMB<<20)
	for i := 0; i < len(anon); i += 4096 {
		copy(anon[i:], fmt.Sprintf("salvage-anon page %d", i/4096))
	}
	keep = append(keep, anon)

	// Page cache: write a file and read it back.
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	cache := filepath.Join(dir, "cache.dat")
	f, err := os.Create(cache)
	if err != nil {
		return err
	}
	for i := 0; i < cacheMB; i++ {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	f.Close()
	if _, err := os.ReadFile(cache); err != nil {
		return err
	}
	if tmpfs != "" {
		if err := os.WriteFile(filepath.Join(tmpfs, "shm.dat"), make([]byte, 16<<20), 0o600); err != nil {
			return err
		}
	}

	// Open files, some of them kept open.
	for i := 0; i < 32; i++ {
		p := filepath.Join(dir, fmt.Sprintf("open-%02d.txt", i))
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "salvage lab file %d\n", i)
		keep = append(keep, f)
	}

	// TCP: a listener and a connected pair on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:7777")
	if err != nil {
		return err
	}
	keep = append(keep, ln)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			keep = append(keep, c)
		}
	}()
	c, err := net.Dial("tcp", "127.0.0.1:7777")
	if err != nil {
		return err
	}
	keep = append(keep, c)

	// Threads: each locked to its own OS thread, blocked reading a pipe.
	for i := 0; i < threads; i++ {
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			return err
		}
		go func(fd int) {
			runtime.LockOSThread()
			var b [1]byte
			syscall.Read(fd, b[:])
		}(p[0])
	}
	// Parked threads cost no file descriptors: each waits on a channel
	// that is never written, its OS thread asleep in the kernel.
	if parked > 0 {
		debug.SetMaxThreads(parked + 1000)
		never := make(chan struct{})
		started := make(chan struct{}, parked)
		for i := 0; i < parked; i++ {
			go func() {
				runtime.LockOSThread()
				started <- struct{}{}
				<-never
			}()
		}
		for i := 0; i < parked; i++ {
			<-started
		}
	}
	time.Sleep(time.Second)
	if ready != "" {
		return os.WriteFile(ready, []byte(fmt.Sprintln(os.Getpid())), 0o644)
	}
	return nil
}
