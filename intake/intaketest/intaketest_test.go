package intaketest_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/intake/intaketest"
)

const topic = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// serving is a client whose every GET gets data.
func serving(data []byte) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(data)), Request: r}, nil
	})}
}

func TestSignerMessagesVerify(t *testing.T) {
	sg := intaketest.NewSigner(t)
	subject := "Amazon SES Email Event Notification"
	v2 := &ses.SNSMessage{Type: ses.SNSNotification, MessageID: "v2", TopicArn: topic, Message: "{}",
		Subject: &subject, Timestamp: "2024-05-02T10:00:01.250Z", SignatureVersion: "2"}
	sg.Sign(t, v2)
	verifiers := map[string]*intake.Verifier{
		"CertDir": intake.NewVerifier(intake.VerifierOptions{CertDir: sg.CertDir}),
		"fetched": intake.NewVerifier(intake.VerifierOptions{HTTPClient: serving(sg.CertPEM()), Roots: sg.Roots()}),
	}
	for _, m := range []*ses.SNSMessage{
		sg.Notification(t, topic, "n1", `{"notificationType":"Bounce"}`),
		v2,
		sg.Confirmation(t, ses.SNSSubscriptionConfirmation, topic, "s1", "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"),
		sg.Confirmation(t, ses.SNSUnsubscribeConfirmation, topic, "u1", "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=u"),
	} {
		if want := "https://sns.eu-west-1.amazonaws.com/" + intaketest.CertName; m.SigningCertURL != want {
			t.Errorf("%s: SigningCertURL %s, want %s", m.MessageID, m.SigningCertURL, want)
		}
		parsed, err := ses.ParseSNS(intaketest.Body(m))
		if err != nil {
			t.Fatalf("%s: %v", m.MessageID, err)
		}
		if err := intake.CheckFields(parsed); err != nil {
			t.Errorf("%s: %v", m.MessageID, err)
		}
		for name, v := range verifiers {
			if err := v.Verify(context.Background(), parsed); err != nil {
				t.Errorf("%s, certificate %s: %v", m.MessageID, name, err)
			}
		}
	}
	// The root is the test's own: the system does not trust it.
	system := intake.NewVerifier(intake.VerifierOptions{HTTPClient: serving(sg.CertPEM())})
	if err := system.Verify(context.Background(), v2); err == nil || !strings.Contains(err.Error(), "does not chain to a trusted root") {
		t.Errorf("with the system's roots: %v", err)
	}
}

func TestBodyWith(t *testing.T) {
	sg := intaketest.NewSigner(t)
	m := sg.Notification(t, topic, "n1", "{}")
	want, err := ses.ParseSNS(intaketest.Body(m))
	if err != nil {
		t.Fatal(err)
	}
	body := intaketest.BodyWith(m, map[string]jsontext.Value{"Records": jsontext.Value(`[{"Sns":{}}]`), "detail": jsontext.Value(`{}`)})
	if !bytes.HasSuffix(body, []byte(`,"Records":[{"Sns":{}}],"detail":{}}`)) {
		t.Errorf("extra keys not added last, in order: %s", body)
	}
	got, err := ses.ParseSNS(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with extra keys read as\n%+v\nwant\n%+v", got, want)
	}
	if _, err := ses.ParseSNS(intaketest.BodyWith(m, map[string]jsontext.Value{"message": jsontext.Value(`"x"`)})); err == nil {
		t.Error("a body with message beside Message is read")
	}
}

func TestCertURL(t *testing.T) {
	for topic, want := range map[string]string{
		"arn:aws:sns:us-east-1:1:t":            "https://sns.us-east-1.amazonaws.com/" + intaketest.CertName,
		"arn:aws-cn:sns:cn-north-1:1:t":        "https://sns.cn-north-1.amazonaws.com.cn/" + intaketest.CertName,
		"arn:aws-us-gov:sns:us-gov-west-1:1:t": "https://sns.us-gov-west-1.amazonaws.com/" + intaketest.CertName,
		"not an ARN":                           "https://sns.us-east-1.amazonaws.com/" + intaketest.CertName,
	} {
		if got := intaketest.CertURL(topic); got != want {
			t.Errorf("CertURL(%q) = %s, want %s", topic, got, want)
		}
	}
}
