// Package actions carries out what the engine decided: it turns a Plan
// into Results. For now it holds the dry run, which performs nothing and
// reports what would be done; the Slack and SES actions come next and
// share the same Result.
package actions
