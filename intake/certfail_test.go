package intake_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

func TestServerCertificateFailureRemembered(t *testing.T) {
	// The reproduction: an unsigned request naming an allowed topic and a
	// certificate URL of the attacker's choosing on the SNS host. Its
	// fetch fails (404): 503, logged as a warning. The same URL again
	// within a minute is not fetched again; after the minute, it is.
	synctest.Test(t, func(t *testing.T) {
		ts := startTestServer(t, intake.VerifierOptions{}, nil, []string{testTopic}, intake.ServerOptions{MaxAge: time.Hour})
		ts.out.status = http.StatusNotFound
		const certURL = "https://sns.us-east-1.amazonaws.com/attacker/chosen.pem"
		unsigned := func(id string) []byte {
			return intaketest.Body(&ses.SNSMessage{Type: ses.SNSNotification, MessageID: id, TopicArn: testTopic, Message: "{}",
				Timestamp: intaketest.Timestamp(time.Now()), SignatureVersion: "1", Signature: "Zm9yZ2Vk", SigningCertURL: certURL})
		}
		for i, tc := range []struct {
			after   time.Duration // since the previous request
			fetches int           // in all, after the request
		}{{0, 1}, {0, 1}, {intake.FailureMemory - time.Nanosecond, 1}, {time.Nanosecond, 2}} {
			time.Sleep(tc.after)
			if code := ts.post(t, "", unsigned(fmt.Sprint(i))); code != http.StatusServiceUnavailable {
				t.Errorf("request %d: status %d, want 503\n%s", i, code, ts.logs)
			}
			if got := ts.out.requests(); len(got) != tc.fetches || got[0] != certURL {
				t.Errorf("request %d: fetches %q, want %d of %s", i, got, tc.fetches, certURL)
			}
		}
		logs := ts.logs.String()
		if strings.Contains(logs, `"level":"ERROR"`) || strings.Count(logs, `"level":"WARN","msg":"signing certificate unavailable"`) != 4 {
			t.Errorf("log\n%s\nwant 4 warnings, no error", logs)
		}
		if len(ts.handledIDs()) != 0 {
			t.Errorf("handled %v", ts.handledIDs())
		}
	})
}
