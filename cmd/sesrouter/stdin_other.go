//go:build !linux

package main

import "os"

// stoppable returns f (standard input) as it is: outside Linux, a read
// in progress from a pipe or a terminal is not stopped by Close, and
// route stops reading at a signal once that read returns.
func stoppable(f *os.File) (stdin *os.File, restore func()) { return f, func() {} }
