// Package actions carries out what the engine decided: it turns a Plan
// into Results. It owns what a destination is (its settings, read from
// the rules file), Slack notifiers with their pacing and retries, the SES
// suppression list, the log action, de-duplication (Seen), and storms:
// each destination's storm state (Storm) and the digests of a batch
// (Batch). A dry run is a Dispatcher made of parts that only render.
package actions
