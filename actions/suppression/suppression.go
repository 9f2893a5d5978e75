package suppression

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	"github.com/sesrouter/sesrouter/actions"
	"github.com/sesrouter/sesrouter/engine/rules"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/internal/words"
)

// SESClient is the part of the SES v2 API that sesrouter calls, with the
// SDK's own signatures: *sesv2.Client satisfies it.
type SESClient interface {
	GetSuppressedDestination(ctx context.Context, in *sesv2.GetSuppressedDestinationInput, optFns ...func(*sesv2.Options)) (*sesv2.GetSuppressedDestinationOutput, error)
	DeleteSuppressedDestination(ctx context.Context, in *sesv2.DeleteSuppressedDestinationInput, optFns ...func(*sesv2.Options)) (*sesv2.DeleteSuppressedDestinationOutput, error)
	PutSuppressedDestination(ctx context.Context, in *sesv2.PutSuppressedDestinationInput, optFns ...func(*sesv2.Options)) (*sesv2.PutSuppressedDestinationOutput, error)
}

var _ SESClient = (*sesv2.Client)(nil)

// SuppressionList carries out unsuppress and suppress on the SES account
// suppression list, for exactly recipient.address, the address the rules
// saw. Throttling (TooManyRequestsException) is left to the SDK's
// retryer, which the client is built with.
type SuppressionList struct {
	Client SESClient
}

var _ actions.Suppressor = (*SuppressionList)(nil)

// ErrNotMailbox is wrapped by the error of an SES action for a recipient
// that holds no valid mailbox: no call is made.
var ErrNotMailbox = errors.New("no SES action")

// Unsuppress takes r off the suppression list. It first reads the entry,
// for the reason and date shown in Slack; an address that is not on the
// list is the outcome not-suppressed, not an error.
func (s *SuppressionList) Unsuppress(ctx context.Context, r *ses.Recipient) actions.SESOutcome {
	out := actions.SESOutcome{Action: rules.ActionUnsuppress}
	if r.Invalid != "" {
		return invalid(out, r)
	}
	addr := aws.String(r.Address)
	got, err := s.Client.GetSuppressedDestination(ctx, &sesv2.GetSuppressedDestinationInput{EmailAddress: addr})
	switch {
	case isNotFound(err):
		out.Outcome = actions.OutcomeNotSuppressed
		return out
	case err != nil:
		return failed(out, "GetSuppressedDestination", err)
	}
	if d := got.SuppressedDestination; d != nil {
		out.Reason = string(d.Reason)
		if d.LastUpdateTime != nil {
			out.ListedAt = d.LastUpdateTime.UTC()
		}
	}
	return remove(ctx, s.Client, out, r.Address)
}

// remove deletes address from the suppression list: an address taken off
// meanwhile is the outcome not-suppressed, not an error.
func remove(ctx context.Context, c SESClient, out actions.SESOutcome, address string) actions.SESOutcome {
	_, err := c.DeleteSuppressedDestination(ctx, &sesv2.DeleteSuppressedDestinationInput{EmailAddress: aws.String(address)})
	switch {
	case isNotFound(err):
		out.Outcome = actions.OutcomeNotSuppressed
	case err != nil:
		return failed(out, "DeleteSuppressedDestination", err)
	default:
		out.Outcome = actions.OutcomeRemoved
	}
	return out
}

// Suppress puts r on the suppression list, with the reason the event
// gives: BOUNCE for a Bounce, COMPLAINT for a Complaint. Other event types
// have no reason SES accepts, so suppress fails for them.
func (s *SuppressionList) Suppress(ctx context.Context, r *ses.Recipient, eventType string) actions.SESOutcome {
	out := actions.SESOutcome{Action: rules.ActionSuppress}
	if r.Invalid != "" {
		return invalid(out, r)
	}
	reason, err := suppressReason(eventType)
	if err != nil {
		out.Outcome, out.Err = actions.OutcomeFailed, err
		return out
	}
	_, err = s.Client.PutSuppressedDestination(ctx, &sesv2.PutSuppressedDestinationInput{
		EmailAddress: aws.String(r.Address), Reason: reason,
	})
	if err != nil {
		return failed(out, "PutSuppressedDestination", err)
	}
	out.Outcome, out.Reason = actions.OutcomeAdded, string(reason)
	return out
}

// suppressReason is the reason SES takes for an event type.
func suppressReason(eventType string) (types.SuppressionListReason, error) {
	switch eventType {
	case ses.TypeBounce:
		return types.SuppressionListReasonBounce, nil
	case ses.TypeComplaint:
		return types.SuppressionListReasonComplaint, nil
	}
	return "", errors.New("suppress needs a Bounce or a Complaint (SES takes reason BOUNCE or COMPLAINT), not a " + eventType)
}

// invalid is the outcome of an SES action for a recipient that holds no
// valid mailbox.
func invalid(out actions.SESOutcome, r *ses.Recipient) actions.SESOutcome {
	out.Outcome, out.Err = actions.OutcomeFailed, fmt.Errorf("%w: %s", ErrNotMailbox, r.Invalid)
	return out
}

func isNotFound(err error) bool {
	var nf *types.NotFoundException
	return errors.As(err, &nf)
}

// SESError is a failed SES call: the operation, and SES's error code and
// message when SES answered (else the SDK's error, in Err).
type SESError struct {
	Op, Code, Message string
	Err               error
}

// Error is the whole story, for logs.
func (e *SESError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("SES %s: %s: %s", e.Op, e.Code, e.Message)
	}
	return fmt.Sprintf("SES %s: %v", e.Op, e.Err)
}

// Unwrap returns the SDK's error.
func (e *SESError) Unwrap() error { return e.Err }

// Short says it in one short line, for a Slack message: the operation
// and SES's code, or the innermost cause of a failure to call SES at all
// (missing credentials, a network error).
func (e *SESError) Short() string {
	if e.Code != "" {
		return "SES " + e.Op + ": " + e.Code
	}
	cause := e.Err
	for {
		next := errors.Unwrap(cause)
		if next == nil {
			break
		}
		cause = next
	}
	return "SES " + e.Op + ": " + words.FirstLine(cause.Error(), 120)
}

// failed fills out a failure of an SES call.
func failed(out actions.SESOutcome, op string, err error) actions.SESOutcome {
	out.Outcome = actions.OutcomeFailed
	e := &SESError{Op: op, Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code, e.Message = api.ErrorCode(), api.ErrorMessage()
	}
	out.Err = e
	return out
}

// SESLister is the part of the SES v2 API a sweep reads the suppression
// list with: *sesv2.Client satisfies it.
type SESLister interface {
	ListSuppressedDestinations(ctx context.Context, in *sesv2.ListSuppressedDestinationsInput, optFns ...func(*sesv2.Options)) (*sesv2.ListSuppressedDestinationsOutput, error)
}

var _ SESLister = (*sesv2.Client)(nil)

// SweepSES carries out a sweep's SES actions on the suppression list it
// is reading: unsuppress deletes the entry (known to be there, so it is
// not read first), each call waiting its turn on pacer (nil: none);
// suppress has nothing to do (the address is on the list).
func SweepSES(client SESClient, pacer *pace.Pacer) actions.Suppressor {
	return sweepSES{client, pacer}
}

type sweepSES struct {
	client SESClient
	pacer  *pace.Pacer
}

// Unsuppress implements Suppressor.
func (s sweepSES) Unsuppress(ctx context.Context, r *ses.Recipient) actions.SESOutcome {
	out := actions.SESOutcome{Action: rules.ActionUnsuppress}
	if r.Invalid != "" {
		return invalid(out, r)
	}
	if err := s.pacer.Wait(ctx); err != nil {
		return failed(out, "DeleteSuppressedDestination", err)
	}
	return remove(ctx, s.client, out, r.Address)
}

// Suppress implements Suppressor: a sweep never suppresses.
func (sweepSES) Suppress(context.Context, *ses.Recipient, string) actions.SESOutcome {
	return actions.SESOutcome{Action: rules.ActionSuppress, Outcome: actions.OutcomeFailed, Err: errors.New("a sweep does not suppress")}
}

// dryRunSES performs nothing: every SES action is OutcomeDryRun, but for
// a recipient that would fail anyway.
type dryRunSES struct{}

// DryRun returns a Suppressor that performs nothing.
func DryRun() actions.Suppressor { return dryRunSES{} }

// Unsuppress implements Suppressor.
func (dryRunSES) Unsuppress(_ context.Context, r *ses.Recipient) actions.SESOutcome {
	return dryOutcome(rules.ActionUnsuppress, r, "")
}

// Suppress implements Suppressor.
func (dryRunSES) Suppress(_ context.Context, r *ses.Recipient, eventType string) actions.SESOutcome {
	return dryOutcome(rules.ActionSuppress, r, eventType)
}

func dryOutcome(a rules.ActionKind, r *ses.Recipient, eventType string) actions.SESOutcome {
	out := actions.SESOutcome{Action: a, Outcome: actions.OutcomeDryRun}
	if r.Invalid != "" {
		return invalid(out, r)
	}
	if a == rules.ActionSuppress {
		if _, err := suppressReason(eventType); err != nil {
			out.Outcome, out.Err = actions.OutcomeFailed, err
		}
	}
	return out
}
