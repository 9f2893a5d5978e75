package intake

// What the external tests of this package reach inside for.
const (
	DefaultBodyTimeout = defaultBodyTimeout
	DefaultMaxBody     = defaultMaxBody
	FailureMemory      = failureMemory
	IdleTimeout        = idleTimeout
	TypeHeader         = typeHeader
)
