//go:build !unix

package ses

import "time"

// cpuTime returns the wall-clock time where the CPU time of the process
// is not at hand.
func cpuTime() time.Duration {
	return time.Duration(time.Now().UnixNano())
}
