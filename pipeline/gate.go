package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/sesrouter/sesrouter/engine/ses"
)

// SNSVerifier checks the signature of an SNS message; *intake.Verifier,
// the verifier of serve, is one.
type SNSVerifier interface {
	Verify(ctx context.Context, m *ses.SNSMessage) error
}

// Gate decides, for each item of a Lambda invocation, whether the
// function may act on it, before the item is routed or claimed against
// duplicates (a forged copy never hides the genuine one):
//
//   - An SNS envelope (a Lambda SNS record, an SQS body, an SNS HTTP body
//     given to the function) must be of one of Topics, when there are
//     any, and its signature must verify with Verifier, over the very
//     message whose Message is acted on. A Lambda SNS record that says
//     SignatureVersion 1 is also tried as 2: SNS writes 1 in Lambda
//     records whatever the topic signs with.
//   - An SQS record must come from one of Queues, when there are any.
//     Its body may be unsigned (the bare SES JSON of raw message
//     delivery, an EventBridge event) only then: such a body proves
//     nothing of itself, so it is trusted for the queue's sake, whose
//     policy lets only the wired sources send.
//   - An EventBridge event, directly or in an SQS body, must be of the
//     function's own account (the account of the invoked function's ARN).
//   - Anything else given to the function directly (bare SES JSON) is
//     refused: nothing the template wires sends it.
//
// An item refused is never acted on nor delivered again: it is logged
// and counted. An item whose certificate could not be fetched (Retryable
// says so) is not acted on either, but fails, so that it is delivered
// again; within one invocation, a certificate URL that could not be
// fetched is not tried again. Items that hold no notification are let
// through: nothing is done with them.
type Gate struct {
	// Verifier checks SNS signatures; nil acts on SNS envelopes
	// unverified (SESROUTER_VERIFY_SNS=off).
	Verifier SNSVerifier
	// Retryable reports whether an error of Verifier says that the
	// certificate could not be obtained, for a reason that may pass: the
	// item is then delivered again rather than refused. Nil: none is.
	Retryable func(error) bool
	// Topics are the SNS topics whose envelopes are accepted; none: any.
	Topics []string
	// Queues are the SQS queues whose records are accepted, unsigned
	// bodies included; none: any queue, signed bodies only.
	Queues []string
}

// admission is a Gate at work for one invocation.
type admission struct {
	g   *Gate
	ctx context.Context
	// account is the invoked function's account; empty when unknown.
	account string
	// unavailable are the certificate URLs that could not be fetched in
	// this invocation, with why.
	unavailable map[string]error
}

// admit returns the check of each item of the invocation of ctx: nil for
// no Gate. refused is why the item must never be acted on; unverified why
// it cannot be now (it is delivered again). A panic while checking is an
// unverified item, never an admitted one.
func (g *Gate) admit(ctx context.Context) func(ses.Item) (refused, unverified error) {
	if g == nil {
		return nil
	}
	a := &admission{g: g, ctx: ctx, account: invokedAccount(ctx), unavailable: map[string]error{}}
	return func(it ses.Item) (refused, unverified error) {
		defer func() {
			if p := recover(); p != nil {
				refused, unverified = nil, fmt.Errorf("panic while checking the input: %v", p)
			}
		}()
		return a.check(&it)
	}
}

// invokedAccount is the account of the invoked function's ARN
// (arn:aws:lambda:REGION:ACCOUNT:function:NAME), empty when ctx is not a
// Lambda invocation's.
func invokedAccount(ctx context.Context) string {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return ""
	}
	parts := strings.Split(lc.InvokedFunctionArn, ":")
	if len(parts) < 6 || parts[0] != "arn" || parts[2] != "lambda" {
		return ""
	}
	return parts[4]
}

// check decides on one item; see Gate.
func (a *admission) check(it *ses.Item) (refused, unverified error) {
	if it.Notification == nil {
		return nil, nil // skipped or unreadable: nothing is done with it
	}
	o := &it.Origin
	if it.Envelope == ses.EnvelopeSQS && len(a.g.Queues) > 0 && !slices.Contains(a.g.Queues, o.Queue) {
		return fmt.Errorf("SQS record of queue %s, which is not one of SESROUTER_QUEUES", orNone(o.Queue)), nil
	}
	if o.SNS != nil {
		return a.verify(o.SNS, it.Envelope == ses.EnvelopeSNS)
	}
	switch it.Envelope {
	case ses.EnvelopeSQS:
		if len(a.g.Queues) == 0 {
			return errors.New("SQS body that is not an SNS envelope (bare SES JSON, an EventBridge event) carries no signature: " +
				"it is accepted only from a queue named in SESROUTER_QUEUES"), nil
		}
	case ses.EnvelopeEventBridge:
	default:
		return fmt.Errorf("%s input given to the function directly carries no signature and is no event SNS, SQS or EventBridge sends", it.Envelope), nil
	}
	if o.EventBridge && (a.account == "" || o.Account != a.account) {
		return fmt.Errorf("EventBridge event of account %s, not of this function's account %s", orNone(o.Account), orNone(a.account)), nil
	}
	return nil, nil
}

// verify checks an SNS message's topic and signature. lambdaRecord says
// that it is a Lambda SNS record, whose SignatureVersion says 1 even when
// SNS signed with SHA256: the version is not signed, so 2 is tried too.
func (a *admission) verify(m *ses.SNSMessage, lambdaRecord bool) (refused, unverified error) {
	if len(a.g.Topics) > 0 && !slices.Contains(a.g.Topics, m.TopicArn) {
		return fmt.Errorf("SNS topic %s is not one of SESROUTER_TOPICS", orNone(m.TopicArn)), nil
	}
	v := a.g.Verifier
	if v == nil {
		return nil, nil
	}
	if err, ok := a.unavailable[m.SigningCertURL]; ok {
		return nil, err
	}
	err := v.Verify(a.ctx, m)
	if err != nil && lambdaRecord && m.SignatureVersion == "1" && !a.retryable(err) {
		as2 := *m
		as2.SignatureVersion = "2"
		if v.Verify(a.ctx, &as2) == nil {
			err = nil
		}
	}
	switch {
	case err == nil:
		return nil, nil
	case a.retryable(err):
		a.unavailable[m.SigningCertURL] = err
		return nil, err
	}
	return err, nil
}

func (a *admission) retryable(err error) bool {
	return a.g.Retryable != nil && a.g.Retryable(err)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
