// Package engine is the pure core of sesrouter: the SES event model, the
// decoding of every envelope SES feedback arrives in (SNS, SQS, EventBridge,
// SNS HTTP bodies, bare SES JSON), the strict loader of the rules file, the
// compiled rule expressions and the Router that turns a Notification into a
// Plan.
//
// Nothing in this package talks to the network, to AWS or to Slack: Route
// decides, and the actions package (or a dry run) carries the plan out.
package engine
