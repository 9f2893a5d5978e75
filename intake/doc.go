// Package intake receives SES notifications over SNS's HTTPS delivery: it
// verifies SNS signatures and certificate URLs before anything in a message
// is trusted, and serves the HTTP endpoint that hands verified notifications
// to the router.
//
// Verification follows SNS: the string to sign depends on the message type,
// SignatureVersion "1" is SHA1withRSA and "2" is SHA256withRSA, and the
// signing certificate must come from an https URL on an SNS host
// (sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn). The URL is
// checked before any fetch; fetched certificates are size-limited, must be
// currently valid, and are cached by URL. A local certificate folder can
// replace fetching for offline use and tests.
package intake
