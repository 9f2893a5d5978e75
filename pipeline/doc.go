// Package pipeline is the application: what happens to an input, the same
// in every mode. It loads a rules file with its destinations (LoadFrom),
// handles one item (route it, claim it against duplicates in input order
// with package pipeline/dedup, carry out its actions, fold notifies into
// the digests of package pipeline/storm, count what failed in one place,
// log one line), and runs items through that: the ordered, bounded,
// concurrent Runner, the one handling path of route and sweep
// (Route, Sweep) and of a Lambda invocation (Invoke); the batch Windows of
// serve. It makes the one view of a handled item (View) that route's
// output (package pipeline/output) and the log line print, and writes the
// Embedded Metric Format lines of Lambda.
//
// cmd/sesrouter only reads flags and the environment, builds the clients,
// and maps what the pipeline says onto exit codes, HTTP answers and
// Lambda responses.
package pipeline
