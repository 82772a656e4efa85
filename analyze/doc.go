// Package analyze is salvage's crash-compatible analysis session: a table
// of commands (rd, help, quit, …) run against one opened dump, from -c
// arguments, an -i script or an interactive prompt.
//
// Command behaviour and output formats follow the crash utility
// (github.com/crash-utility/crash: cmdline.c for the session, memory.c's
// cmd_rd and display_memory for rd), checked against crash's own output.
package analyze
