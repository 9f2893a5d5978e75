// Package actionstest is for tests: it holds loopback fakes of the two
// services sesrouter's actions talk to, so that tests and benchmarks exercise
// the real slack-go and aws-sdk-go-v2 sesv2 clients at the wire instead of
// mocking them: serialization, error mapping and retries run for real.
//
//   - [Slack] speaks Slack's Web API (chat.postMessage, auth.test) and
//     incoming webhooks, checks the token and channel, enforces Slack's Block
//     Kit limits ([CheckBlocks]) and records every accepted message ([Post]).
//   - [SES] speaks the SES v2 REST JSON protocol for the account suppression
//     list (GetSuppressedDestination, DeleteSuppressedDestination,
//     PutSuppressedDestination), with X-Amzn-ErrorType errors the SDK maps to
//     its modeled types, and records every call ([Call]).
//
// Both listen on 127.0.0.1 only; [NewSlackInMemory] and [NewSESInMemory]
// serve them on in-memory connections instead, reached through their
// HTTPClient methods, so that a testing/synctest bubble can hold them and
// run its fake clock. They are closed by t.Cleanup, are safe for
// concurrent use and can fail on purpose: [Slack.Script] and [SES.Script]
// queue faults for the next requests, [Slack.FailRandomly] and
// [SES.FailRandomly] fail a fraction of requests, deterministically for a
// given seed and arrival order. See [Fault].
//
// Nothing here is meant for production code.
package actionstest
