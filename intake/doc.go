// Package intake is the SNS HTTP(S) endpoint of sesrouter: it decides
// whether an SNS message is genuine, and hands over only what was verified.
//
// It does not read the envelope itself: ses.ParseSNS is the one reader
// of an SNS message, and [ServerOptions.Handle] receives the verified
// *engine.SNSMessage, never the request body. Intake owns the rest: the
// fields SNS always sends ([CheckFields]), the string it signs
// ([StringToSign]), the URL rules ([checkCertURL], [checkSNSURL]: https on
// the SNS host of the topic's region, checked before any fetch), the
// signing certificates ([Verifier]: fetched, chained to the roots, named
// sns.amazonaws.com and cached, or read from an operator's folder), and
// the HTTP server around them ([Server]: topic allow-list, replay window,
// subscription confirmation, bounded reading and concurrency, status
// codes).
package intake
