// Package intaketest is for tests: a [Signer] holds a test RSA key and a
// self-signed certificate written to a temporary certificate folder (for
// intake.VerifierOptions.CertDir), and signs SNS messages as SNS does, so
// that tests can post messages that verify, and tamper with them.
//
// Nothing here is meant for production code.
package intaketest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/intake"
)

// CertName is the file name of the Signer's certificate in its folder.
const CertName = "SimpleNotificationService-test.pem"

// CertURL is the SigningCertURL of the Signer's messages: an SNS URL
// whose last element is CertName.
const CertURL = "https://sns.us-east-1.amazonaws.com/" + CertName

// Signer signs SNS messages with a test key. It is safe for concurrent
// use.
type Signer struct {
	// CertDir is the folder holding the certificate, named CertName.
	CertDir string
	key     *rsa.PrivateKey
}

// NewSigner makes a key pair and a self-signed certificate in a temporary
// folder removed by t.Cleanup.
func NewSigner(t testing.TB) *Signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CertName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Signer{CertDir: dir, key: key}
}

// Sign sets m's SigningCertURL to CertURL (when empty) and SignatureVersion
// to "1" (when empty), then its Signature over intake.StringToSign.
func (s *Signer) Sign(t testing.TB, m *intake.Message) {
	t.Helper()
	if m.SigningCertURL == "" {
		m.SigningCertURL = CertURL
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

// Notification returns a signed Notification of topic carrying message,
// with the given MessageId.
func (s *Signer) Notification(t testing.TB, topic, id, message string) *intake.Message {
	t.Helper()
	m := &intake.Message{
		Type: intake.TypeNotification, MessageID: id, TopicArn: topic, Message: message,
		Timestamp:      time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + topic + ":sub",
	}
	s.Sign(t, m)
	return m
}

// Confirmation returns a signed SubscriptionConfirmation (or, with typ,
// another confirmation type) of topic whose SubscribeURL is subscribeURL.
func (s *Signer) Confirmation(t testing.TB, typ, topic, id, subscribeURL string) *intake.Message {
	t.Helper()
	m := &intake.Message{
		Type: typ, MessageID: id, TopicArn: topic, Token: "token-" + id,
		Message:      "You have chosen to subscribe to the topic " + topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		SubscribeURL: subscribeURL,
		Timestamp:    time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	s.Sign(t, m)
	return m
}

// Body is m in SNS's HTTP body layout (keys as SNS spells them; Subject,
// Token, SubscribeURL and UnsubscribeURL only when set).
func Body(m *intake.Message) []byte {
	var b bytes.Buffer
	b.WriteString("{")
	n := 0
	add := func(k, v string, always bool) {
		if v == "" && !always {
			return
		}
		if n > 0 {
			b.WriteString(",")
		}
		n++
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(v)
		b.Write(kj)
		b.WriteString(":")
		b.Write(vj)
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
	b.WriteString("}")
	return b.Bytes()
}
