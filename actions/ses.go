package actions

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	"github.com/sesrouter/sesrouter/engine"
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
// suppression list. Throttling (TooManyRequestsException) is left to the
// SDK's retryer, which the client is built with.
type SuppressionList struct {
	Client SESClient
}

// Unsuppress takes address off the suppression list. It first reads the
// entry, for the reason and date shown in Slack; an address that is not on
// the list is the outcome not-suppressed, not an error.
func (s *SuppressionList) Unsuppress(ctx context.Context, address string) SESOutcome {
	out := SESOutcome{Action: engine.ActionUnsuppress}
	addr := engine.BareAddress(address)
	got, err := s.Client.GetSuppressedDestination(ctx, &sesv2.GetSuppressedDestinationInput{EmailAddress: aws.String(addr)})
	switch {
	case isNotFound(err):
		out.Outcome = OutcomeNotSuppressed
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
	_, err = s.Client.DeleteSuppressedDestination(ctx, &sesv2.DeleteSuppressedDestinationInput{EmailAddress: aws.String(addr)})
	switch {
	case isNotFound(err): // taken off between the two calls
		out.Outcome = OutcomeNotSuppressed
	case err != nil:
		return failed(out, "DeleteSuppressedDestination", err)
	default:
		out.Outcome = OutcomeRemoved
	}
	return out
}

// Suppress puts address on the suppression list, with the reason the
// event gives: BOUNCE for a Bounce, COMPLAINT for a Complaint. Other event
// types have no reason SES accepts, so suppress fails for them.
func (s *SuppressionList) Suppress(ctx context.Context, address, eventType string) SESOutcome {
	out := SESOutcome{Action: engine.ActionSuppress}
	var reason types.SuppressionListReason
	switch eventType {
	case engine.TypeBounce:
		reason = types.SuppressionListReasonBounce
	case engine.TypeComplaint:
		reason = types.SuppressionListReasonComplaint
	default:
		out.Outcome, out.Error = OutcomeFailed, "suppress needs a Bounce or a Complaint (SES takes reason BOUNCE or COMPLAINT), not a "+eventType
		return out
	}
	_, err := s.Client.PutSuppressedDestination(ctx, &sesv2.PutSuppressedDestinationInput{
		EmailAddress: aws.String(engine.BareAddress(address)), Reason: reason,
	})
	if err != nil {
		return failed(out, "PutSuppressedDestination", err)
	}
	out.Outcome, out.Reason = OutcomeAdded, string(reason)
	return out
}

func isNotFound(err error) bool {
	var nf *types.NotFoundException
	return errors.As(err, &nf)
}

// failed fills out a failure with a short reason: the operation, SES's
// error code and message.
func failed(out SESOutcome, op string, err error) SESOutcome {
	out.Outcome = OutcomeFailed
	var api smithy.APIError
	if errors.As(err, &api) {
		out.Error = fmt.Sprintf("SES %s: %s: %s", op, api.ErrorCode(), api.ErrorMessage())
	} else {
		out.Error = fmt.Sprintf("SES %s: %v", op, err)
	}
	return out
}
