package pipeline

// Sweep is a request to sweep the suppression list.
type Sweep struct {
	Reason string
	Since  string
}

// SweepRequest reports whether payload asks for a sweep.
func SweepRequest(payload []byte) (Sweep, bool) { return Sweep{}, false }
