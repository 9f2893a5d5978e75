// Package intaketest is for tests: a [Signer] holds a test RSA key and its
// signing certificate, issued by a test root CA, and signs SNS messages as
// SNS does, so that tests can post messages that verify, and tamper with
// them. The certificate is in a temporary folder (for
// intake.VerifierOptions.CertDir), and also in memory ([Signer.CertPEM])
// for a verifier that fetches it and chain-checks it against
// [Signer.Roots] (intake.VerifierOptions.Roots).
//
// Nothing here is meant for production code.
package intaketest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/sesrouter/sesrouter/engine/ses"
	"github.com/sesrouter/sesrouter/intake"
)

// CertName is the file name of the Signer's certificate in its folder.
const CertName = "SimpleNotificationService-test.pem"

// CertURL returns the SigningCertURL of the Signer's messages of topic: the
// certificate URL on the SNS host of the topic's region (us-east-1 when
// the topic names none), whose last element is CertName.
func CertURL(topic string) string {
	region := "us-east-1"
	if parts := strings.Split(topic, ":"); len(parts) == 6 && parts[3] != "" {
		region = parts[3]
	}
	host := "sns." + region + ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		host += ".cn"
	}
	return "https://" + host + "/" + CertName
}

// Signer signs SNS messages with a test key. It is safe for concurrent
// use.
type Signer struct {
	// CertDir is the folder holding the certificate, named CertName.
	CertDir string
	key     *rsa.PrivateKey
	certPEM []byte
	roots   *x509.CertPool
}

// NewSigner makes a test root CA and a key pair whose certificate the root
// issued, named sns.amazonaws.com as SNS's are (CN and DNS SAN), and
// writes the certificate in a temporary folder removed by t.Cleanup. The
// certificates are valid from 1999-12-31, before the clock of a
// testing/synctest bubble starts, to 2100, so that a Signer works inside a
// bubble and out of it.
func NewSigner(t testing.TB) *Signer {
	t.Helper()
	from, to := time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	rootKey, key := newKey(t), newKey(t)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intaketest root"},
		NotBefore: from, NotAfter: to,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		DNSNames:  []string{"sns.amazonaws.com"},
		NotBefore: from, NotAfter: to,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CertName), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &Signer{CertDir: dir, key: key, certPEM: certPEM, roots: roots}
}

func newKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// CertPEM is the certificate file SNS would serve at the SigningCertURL
// of the Signer's messages.
func (s *Signer) CertPEM() []byte {
	return slices.Clone(s.certPEM)
}

// Roots is a pool holding the Signer's root CA alone, for
// intake.VerifierOptions.Roots.
func (s *Signer) Roots() *x509.CertPool {
	return s.roots.Clone()
}

// Sign sets m's SigningCertURL to CertURL(m.TopicArn) (when empty) and
// SignatureVersion to "1" (when empty), then its Signature over
// intake.StringToSign.
func (s *Signer) Sign(t testing.TB, m *ses.SNSMessage) {
	t.Helper()
	if m.SigningCertURL == "" {
		m.SigningCertURL = CertURL(m.TopicArn)
	}
	if m.SignatureVersion == "" {
		m.SignatureVersion = "1"
	}
	str, err := intake.StringToSign(m)
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	if m.SignatureVersion == "2" {
		d := sha256.Sum256([]byte(str))
		sig, err = rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, d[:])
	} else {
		d := sha1.Sum([]byte(str))
		sig, err = rsa.SignPKCS1v15(nil, s.key, crypto.SHA1, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

// Timestamp formats t as SNS writes a Timestamp:
// 2024-05-02T10:00:01.250Z.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Notification returns a signed Notification of topic carrying message,
// with the given MessageId, stamped with the current time (the bubble's,
// inside a testing/synctest bubble).
func (s *Signer) Notification(t testing.TB, topic, id, message string) *ses.SNSMessage {
	t.Helper()
	m := &ses.SNSMessage{
		Type: ses.SNSNotification, MessageID: id, TopicArn: topic, Message: message,
		Timestamp:      Timestamp(time.Now()),
		UnsubscribeURL: strings.TrimSuffix(CertURL(topic), CertName) + "?Action=Unsubscribe&SubscriptionArn=" + topic + ":sub",
	}
	s.Sign(t, m)
	return m
}

// Confirmation returns a signed SubscriptionConfirmation (or, with typ,
// another confirmation type) of topic whose SubscribeURL is subscribeURL.
func (s *Signer) Confirmation(t testing.TB, typ, topic, id, subscribeURL string) *ses.SNSMessage {
	t.Helper()
	m := &ses.SNSMessage{
		Type: typ, MessageID: id, TopicArn: topic, Token: "token-" + id,
		Message:      "You have chosen to subscribe to the topic " + topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: subscribeURL,
		Timestamp:    Timestamp(time.Now()),
	}
	s.Sign(t, m)
	return m
}

// Body is m in SNS's HTTP body layout (keys as SNS spells them; Subject,
// Token, SubscribeURL and UnsubscribeURL only when set).
func Body(m *ses.SNSMessage) []byte {
	return BodyWith(m, nil)
}

// BodyWith is Body with the members of extra added after SNS's own, in the
// order of their keys, whatever they are: keys SNS never sends, or SNS's
// own keys again (in any letter case), as a forger would add them. The
// values are written as they are.
func BodyWith(m *ses.SNSMessage, extra map[string]jsontext.Value) []byte {
	b := []byte("{")
	member := func(k string, v []byte) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendQuote(b, k)
		b = append(b, ':')
		b = append(b, v...)
	}
	add := func(k, v string, always bool) {
		if v == "" && !always {
			return
		}
		member(k, appendQuote(nil, v))
	}
	add("Type", m.Type, true)
	add("MessageId", m.MessageID, true)
	add("Token", m.Token, false)
	add("TopicArn", m.TopicArn, true)
	if m.Subject != nil {
		add("Subject", *m.Subject, true)
	}
	add("Message", m.Message, true)
	add("SubscribeURL", m.SubscribeURL, false)
	add("Timestamp", m.Timestamp, true)
	add("SignatureVersion", m.SignatureVersion, true)
	add("Signature", m.Signature, true)
	add("SigningCertURL", m.SigningCertURL, true)
	add("UnsubscribeURL", m.UnsubscribeURL, false)
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		member(k, extra[k])
	}
	return append(b, '}')
}

// appendQuote appends s as a JSON string, invalid UTF-8 replaced by
// U+FFFD.
func appendQuote(dst []byte, s string) []byte {
	b, _ := jsontext.AppendQuote(dst, s)
	return b
}
