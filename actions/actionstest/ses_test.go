package actionstest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/aws/smithy-go"
	"github.com/sesrouter/sesrouter/actions/actionstest"
)

func getSuppressed(ctx context.Context, c *sesv2.Client, address string) (*sesv2.GetSuppressedDestinationOutput, error) {
	return c.GetSuppressedDestination(ctx, &sesv2.GetSuppressedDestinationInput{EmailAddress: aws.String(address)})
}

func TestSESGet(t *testing.T) {
	fake := actionstest.NewSES(t)
	client := fake.Client(t)
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 12, 30, 45, 123_000_000, time.UTC)
	fake.Suppress("bounced@example.com", "BOUNCE", at)

	out, err := getSuppressed(ctx, client, "bounced@example.com")
	if err != nil {
		t.Fatalf("GetSuppressedDestination: %v", err)
	}
	d := out.SuppressedDestination
	if aws.ToString(d.EmailAddress) != "bounced@example.com" || d.Reason != types.SuppressionListReasonBounce ||
		d.LastUpdateTime == nil || !d.LastUpdateTime.Equal(at) {
		t.Errorf("got %+v (LastUpdateTime %v), want BOUNCE at %v", d, d.LastUpdateTime, at)
	}
	if d.Attributes == nil || aws.ToString(d.Attributes.MessageId) == "" || aws.ToString(d.Attributes.FeedbackId) == "" {
		t.Errorf("attributes = %+v", d.Attributes)
	}

	_, err = getSuppressed(ctx, client, "nobody@example.com")
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("got %T %v, want *types.NotFoundException", err, err)
	}
	if want := "Email address nobody@example.com does not exist on your suppression list."; nf.ErrorMessage() != want || nf.ErrorCode() != "NotFoundException" {
		t.Errorf("got code %q message %q", nf.ErrorCode(), nf.ErrorMessage())
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 404 {
		t.Errorf("HTTP status not 404 in %v", err)
	}

	calls := fake.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %+v", calls)
	}
	if c := calls[1]; c.Op != actionstest.OpGetSuppressedDestination || c.Address != "nobody@example.com" ||
		c.Status != 404 || c.ErrorType != "NotFoundException" || c.Path != "/v2/email/suppression/addresses/nobody%40example.com" {
		t.Errorf("call = %+v", c)
	}
	if c := fake.Counts(); c.Requests != 2 || c.Succeeded != 1 || c.ClientErrors != 1 {
		t.Errorf("counts = %+v", c)
	}
}

// Addresses travel as one escaped path segment.
func TestSESAddressEscaping(t *testing.T) {
	fake := actionstest.NewSES(t)
	client := fake.Client(t)
	for _, addr := range []string{"a+tag@example.com", "o'neil@example.com", "we/ird%@example.com", "sp ace@example.com"} {
		t.Run(addr, func(t *testing.T) {
			fake.Suppress(addr, "COMPLAINT", time.Unix(1700000000, 0))
			out, err := getSuppressed(context.Background(), client, addr)
			if err != nil || aws.ToString(out.SuppressedDestination.EmailAddress) != addr {
				t.Fatalf("got %v, %v", out, err)
			}
			calls := fake.Calls()
			last := calls[len(calls)-1]
			if last.Address != addr {
				t.Errorf("fake saw %q (path %s)", last.Address, last.Path)
			}
			t.Logf("%s -> %s", addr, last.Path)
		})
	}
}

func TestSESDeleteAndPut(t *testing.T) {
	fake := actionstest.NewSES(t)
	client := fake.Client(t)
	ctx := context.Background()
	fake.Suppress("x@example.com", "BOUNCE", time.Now())

	if _, err := client.DeleteSuppressedDestination(ctx, &sesv2.DeleteSuppressedDestinationInput{EmailAddress: aws.String("x@example.com")}); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := fake.Suppressed("x@example.com"); ok {
		t.Error("still suppressed after Delete")
	}
	var nf *types.NotFoundException
	if _, err := getSuppressed(ctx, client, "x@example.com"); !errors.As(err, &nf) {
		t.Errorf("Get after Delete: got %v, want NotFoundException", err)
	}
	if _, err := client.DeleteSuppressedDestination(ctx, &sesv2.DeleteSuppressedDestinationInput{EmailAddress: aws.String("x@example.com")}); !errors.As(err, &nf) {
		t.Errorf("second Delete: got %v, want NotFoundException", err)
	}

	for _, reason := range []types.SuppressionListReason{types.SuppressionListReasonBounce, types.SuppressionListReasonComplaint} {
		addr := strings.ToLower(string(reason)) + "@example.com"
		if _, err := client.PutSuppressedDestination(ctx, &sesv2.PutSuppressedDestinationInput{EmailAddress: aws.String(addr), Reason: reason}); err != nil {
			t.Fatalf("Put %s: %v", reason, err)
		}
		if got, ok := fake.Suppressed(addr); !ok || got != string(reason) {
			t.Errorf("Suppressed(%s) = %q, %v", addr, got, ok)
		}
		out, err := getSuppressed(ctx, client, addr)
		if err != nil || out.SuppressedDestination.Reason != reason || time.Since(*out.SuppressedDestination.LastUpdateTime) > time.Minute {
			t.Errorf("Get after Put: %+v, %v", out, err)
		}
	}

	_, err := client.PutSuppressedDestination(ctx, &sesv2.PutSuppressedDestinationInput{EmailAddress: aws.String("y@example.com"), Reason: "SPAM"})
	var br *types.BadRequestException
	if !errors.As(err, &br) || !strings.Contains(br.ErrorMessage(), "[BOUNCE, COMPLAINT]") {
		t.Errorf("Put SPAM: got %T %v, want *types.BadRequestException", err, err)
	}
	if _, ok := fake.Suppressed("y@example.com"); ok {
		t.Error("a bad Put suppressed the address")
	}
	calls := fake.Calls()
	if c := calls[len(calls)-1]; c.Op != actionstest.OpPutSuppressedDestination || c.Address != "y@example.com" || c.Reason != "SPAM" || c.Status != 400 {
		t.Errorf("call = %+v", c)
	}
}

func TestSESFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    []actionstest.Fault
		wantCode  string // "" for success
		wantCalls int
	}{
		{"throttled once", []actionstest.Fault{actionstest.Fault429()}, "", 2},
		{"throttled thrice", []actionstest.Fault{actionstest.Fault429(), actionstest.Fault429(), actionstest.Fault429()}, "TooManyRequestsException", 3},
		{"internal failure once", []actionstest.Fault{actionstest.Fault500()}, "", 2},
		{"unavailable thrice", []actionstest.Fault{actionstest.Fault503(), actionstest.Fault503(), actionstest.Fault503()}, "ServiceUnavailable", 3},
		{"access denied", []actionstest.Fault{actionstest.FaultAccessDenied()}, "AccessDeniedException", 1},
		{"dropped once", []actionstest.Fault{actionstest.FaultDrop()}, "", 2},
		{"slow", []actionstest.Fault{actionstest.FaultSlow(10 * time.Millisecond)}, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := actionstest.NewSES(t)
			fake.Suppress("x@example.com", "BOUNCE", time.Now())
			fake.Script(tt.faults...)
			// DELETE: net/http never replays it on its own, so every
			// attempt the fake sees is the SDK's.
			_, err := fake.Client(t).DeleteSuppressedDestination(context.Background(),
				&sesv2.DeleteSuppressedDestinationInput{EmailAddress: aws.String("x@example.com")})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("got %v, want success after retries", err)
				}
			} else {
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode {
					t.Fatalf("got %T %v, want API error %s", err, err, tt.wantCode)
				}
			}
			if c := fake.Counts(); c.Requests != tt.wantCalls || len(fake.Calls()) != tt.wantCalls {
				t.Errorf("fake saw %d requests (%+v), want %d", c.Requests, fake.Calls(), tt.wantCalls)
			}
			if _, ok := fake.Suppressed("x@example.com"); ok == (tt.wantCode == "") {
				t.Errorf("Suppressed = %v after %v", ok, err)
			}
		})
	}
}

// The SDK maps modeled errors to their types and the rest to
// smithy.GenericAPIError; the retryer retries TooManyRequestsException.
func TestSESErrorTypes(t *testing.T) {
	fake := actionstest.NewSES(t)
	client := fake.Client(t, func(o *sesv2.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()

	fake.Script(actionstest.Fault429())
	_, err := getSuppressed(ctx, client, "x@example.com")
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) {
		t.Errorf("429: got %T %v, want *types.TooManyRequestsException", err, err)
	}
	if !retry.NewStandard().IsErrorRetryable(err) {
		t.Errorf("the standard retryer does not retry %v", err)
	}

	fake.Script(actionstest.FaultAccessDenied())
	_, err = getSuppressed(ctx, client, "x@example.com")
	var ge *smithy.GenericAPIError
	if !errors.As(err, &ge) || ge.ErrorCode() != "AccessDeniedException" || !strings.Contains(ge.ErrorMessage(), "ses:GetSuppressedDestination") {
		t.Errorf("403: got %T %v, want a smithy.GenericAPIError AccessDeniedException", err, err)
	}
	if retry.NewStandard().IsErrorRetryable(err) {
		t.Errorf("the standard retryer retries %v", err)
	}

	fake.Script(actionstest.Fault500())
	_, err = getSuppressed(ctx, client, "x@example.com")
	if !errors.As(err, &ge) || ge.ErrorCode() != "InternalFailure" {
		t.Errorf("500: got %T %v, want a smithy.GenericAPIError InternalFailure", err, err)
	}
}

func TestSESAuthentication(t *testing.T) {
	fake := actionstest.NewSES(t)
	tests := []struct {
		name string
		opt  func(*sesv2.Options)
		want string
	}{
		{"wrong key", func(o *sesv2.Options) {
			o.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: "x"}, nil
			}))
		}, "UnrecognizedClientException"},
		{"wrong region", func(o *sesv2.Options) { o.Region = "eu-west-1" }, "InvalidSignatureException"},
		{"anonymous", func(o *sesv2.Options) { o.Credentials = aws.AnonymousCredentials{} }, "MissingAuthenticationTokenException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := getSuppressed(context.Background(), fake.Client(t, tt.opt), "x@example.com")
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

// sesrouter builds its client with aws-sdk-go-v2/config; AWS_ENDPOINT_URL_SESV2
// points it at the fake.
func TestSESThroughConfig(t *testing.T) {
	fake := actionstest.NewSES(t)
	fake.Setenv(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	if cfg.Region != actionstest.SESRegion {
		t.Errorf("region %q", cfg.Region)
	}
	client := sesv2.NewFromConfig(cfg)
	if _, err := client.PutSuppressedDestination(ctx, &sesv2.PutSuppressedDestinationInput{
		EmailAddress: aws.String("cfg@example.com"), Reason: types.SuppressionListReasonComplaint}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	// The default retryer (real backoff, at most 1 s here) retries a
	// throttle too.
	fake.Script(actionstest.Fault429())
	out, err := getSuppressed(ctx, client, "cfg@example.com")
	if err != nil || out.SuppressedDestination.Reason != types.SuppressionListReasonComplaint {
		t.Fatalf("Get: %+v, %v", out, err)
	}
	if c := fake.Counts(); c.Requests != 3 || c.Throttled != 1 || c.Succeeded != 2 {
		t.Errorf("counts = %+v", c)
	}
}

func TestSESFailRandomly(t *testing.T) {
	run := func(t *testing.T, seed int64) []string {
		fake := actionstest.NewSES(t)
		fake.FailRandomly(0.3, seed)
		client := fake.Client(t, func(o *sesv2.Options) { o.RetryMaxAttempts = 1 })
		var got []string
		for i := range 200 {
			_, err := client.PutSuppressedDestination(context.Background(), &sesv2.PutSuppressedDestinationInput{
				EmailAddress: aws.String(fmt.Sprintf("r%d@example.com", i)), Reason: types.SuppressionListReasonBounce})
			var ae smithy.APIError
			switch {
			case err == nil:
				got = append(got, "ok")
			case errors.As(err, &ae):
				got = append(got, ae.ErrorCode())
			default:
				t.Fatalf("Put %d: %v", i, err)
			}
		}
		c := fake.Counts()
		if c.Requests != 200 || c.Succeeded+c.Throttled+c.ServerErrors != 200 || c.Faults != c.Throttled+c.ServerErrors {
			t.Errorf("counts = %+v", c)
		}
		if failed := c.Faults; failed < 40 || failed > 80 {
			t.Errorf("%d of 200 failed at p=0.3", failed)
		}
		return got
	}
	a, b := run(t, 9), run(t, 9)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Error("same seed, different outcomes")
	}
	if c := run(t, 10); strings.Join(a, ",") == strings.Join(c, ",") {
		t.Error("different seeds, same outcomes")
	}
}

// With retries, 30% transient failures are absorbed: every operation of a
// concurrent burst ends in success or a counted, retryable error.
func TestSESConcurrentRetries(t *testing.T) {
	fake := actionstest.NewSES(t)
	fake.FailRandomly(0.3, 1, actionstest.Fault429(), actionstest.Fault500(), actionstest.Fault503(), actionstest.FaultDrop())
	client := fake.Client(t)
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = client.PutSuppressedDestination(context.Background(), &sesv2.PutSuppressedDestinationInput{
				EmailAddress: aws.String(fmt.Sprintf("c%d@example.com", i)), Reason: types.SuppressionListReasonBounce})
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			if _, found := fake.Suppressed(fmt.Sprintf("c%d@example.com", i)); !found {
				t.Errorf("Put %d succeeded but the address is not suppressed", i)
			}
		}
	}
	c := fake.Counts()
	if ok < 180 || c.Succeeded != ok {
		t.Errorf("%d of 200 succeeded; counts %+v", ok, c)
	}
	if c.Requests != c.Succeeded+c.Throttled+c.ServerErrors+c.Dropped {
		t.Errorf("counts do not add up: %+v", c)
	}
	if got := len(fake.Calls()); got != c.Requests {
		t.Errorf("%d calls recorded, %d requests", got, c.Requests)
	}
}

func TestSESScriptRejectsSlackFaults(t *testing.T) {
	fake := actionstest.NewSES(t)
	defer func() {
		if recover() == nil {
			t.Error("Script(FaultChannelNotFound()) did not panic")
		}
	}()
	fake.Script(actionstest.FaultChannelNotFound())
}

func TestSESUnknownOperation(t *testing.T) {
	fake := actionstest.NewSES(t)
	resp, err := http.Get(fake.URL() + "/v2/email/identities")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-ErrorType") != "UnknownOperationException" {
		t.Errorf("got %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
}

// A GET dropped on a reused connection is replayed by net/http itself,
// below the SDK's retryer: the call succeeds even with one attempt.
func TestSESDroppedGetIsReplayedByNetHTTP(t *testing.T) {
	fake := actionstest.NewSES(t)
	fake.Suppress("x@example.com", "BOUNCE", time.Now())
	client := fake.Client(t, func(o *sesv2.Options) { o.RetryMaxAttempts = 1 })
	if _, err := getSuppressed(context.Background(), client, "x@example.com"); err != nil {
		t.Fatal(err) // leaves an idle connection to reuse
	}
	fake.Script(actionstest.FaultDrop())
	if _, err := getSuppressed(context.Background(), client, "x@example.com"); err != nil {
		t.Fatalf("dropped GET: %v", err)
	}
	if c := fake.Counts(); c.Requests != 3 || c.Dropped != 1 {
		t.Errorf("counts = %+v", c)
	}
}
