package intake

import (
	"cmp"
	"context"
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
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
)

const (
	samplesDir  = "../testdata/samples/events"
	certsDir    = "../testdata/samples/certs"
	testCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
)

// validFrom is the start of the test certificates' validity: before the
// clock of a testing/synctest bubble starts (2000-01-01), so that they are
// valid in a bubble and out of it.
func validFrom() time.Time {
	return time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)
}

// testPKI is a test root CA and an intermediate CA it issued, as SNS's
// certificates have (Amazon Root CA 1, then a server CA).
type testPKI struct {
	rootKey, interKey *rsa.PrivateKey
	root, inter       *x509.Certificate
	roots             *x509.CertPool // the root alone
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{rootKey: newKey(t), interKey: newKey(t), roots: x509.NewCertPool()}
	ca := func(cn string, serial int64) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: validFrom(), NotAfter: time.Now().AddDate(10, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
	}
	p.root = createCert(t, ca("intake test root", 1), nil, &p.rootKey.PublicKey, p.rootKey)
	p.inter = createCert(t, ca("intake test server CA", 2), p.root, &p.interKey.PublicKey, p.rootKey)
	p.roots.AddCert(p.root)
	return p
}

func newKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// createCert makes the certificate tmpl of pub, issued by parent (nil:
// self-signed) whose key is priv.
func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub any, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serial is a random certificate serial number.
func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pemOf(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// leafSpec is how a test signing certificate differs from a good one: by
// default it names sns.amazonaws.com (CN and SAN), is valid from
// validFrom to a day from now, is issued by the intermediate, and its file holds it
// and the intermediate.
type leafSpec struct {
	cn                  string   // "" is sns.amazonaws.com
	dnsNames            []string // nil is sns.amazonaws.com; empty, none
	notBefore, notAfter time.Time
	selfSigned          bool     // issued by its own key
	leafOnly            bool     // the file holds the leaf alone
	aia                 []string // the leaf's CA Issuers URLs
}

// signer is a test key pair with a signing certificate, and the roots that
// certificate chains to.
type signer struct {
	key     *rsa.PrivateKey
	certPEM []byte // the certificate file, as SNS serves it
	roots   *x509.CertPool
}

// signer makes a key and a signing certificate as spec says.
func (p *testPKI) signer(t testing.TB, spec leafSpec) *signer {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: cmp.Or(spec.cn, "sns.amazonaws.com")},
		DNSNames:  spec.dnsNames,
		NotBefore: cmp.Or(spec.notBefore, validFrom()), NotAfter: cmp.Or(spec.notAfter, time.Now().Add(24*time.Hour)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		IssuingCertificateURL: spec.aia,
	}
	if spec.dnsNames == nil {
		tmpl.DNSNames = []string{"sns.amazonaws.com"}
	}
	s := &signer{key: key, roots: p.roots}
	switch {
	case spec.selfSigned:
		s.certPEM = pemOf(createCert(t, tmpl, nil, &key.PublicKey, key))
	case spec.leafOnly:
		s.certPEM = pemOf(createCert(t, tmpl, p.inter, &key.PublicKey, p.interKey))
	default:
		s.certPEM = pemOf(createCert(t, tmpl, p.inter, &key.PublicKey, p.interKey), p.inter)
	}
	return s
}

// newSigner makes a signer whose certificate is valid from notBefore to
// notAfter.
func newSigner(t testing.TB, notBefore, notAfter time.Time) *signer {
	t.Helper()
	return newPKI(t).signer(t, leafSpec{notBefore: notBefore, notAfter: notAfter})
}

// selfSigned returns a PEM certificate for pub signed by priv.
func selfSigned(t testing.TB, priv crypto.Signer, pub any, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	return pemOf(createCert(t, tmpl, nil, pub, priv))
}

// validSigner makes a signer whose certificate is valid now.
func validSigner(t testing.TB) *signer {
	t.Helper()
	return newPKI(t).signer(t, leafSpec{})
}

// sign sets m's SignatureVersion and Signature.
func (s *signer) sign(t testing.TB, m *ses.SNSMessage, version string) {
	t.Helper()
	m.SignatureVersion = version
	str, err := StringToSign(m)
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	switch version {
	case "1":
		d := sha1.Sum([]byte(str))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, d[:])
	case "2":
		d := sha256.Sum256([]byte(str))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

// certDir writes the signer's certificate under the file name of
// testCertURL in a temporary folder.
func (s *signer) certDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "SimpleNotificationService-test.pem"), s.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func strp(s string) *string { return &s }

// testMessages returns one unsigned message of every type.
func testMessages() map[string]*ses.SNSMessage {
	return map[string]*ses.SNSMessage{
		"notification with subject": {
			Type: ses.SNSNotification, MessageID: "0b5c7a3e-1111-2222-3333-444455556666",
			TopicArn: testTopic,
			Message:  "{\"notificationType\":\"Bounce\",\n\"x\":\"line\\r\\n\"}\r\n", Timestamp: "2024-03-25T23:01:53.935Z",
			Subject: strp("Amazon SES Email Event Notification"), SigningCertURL: testCertURL,
			UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
		},
		"notification without subject": {
			Type: ses.SNSNotification, MessageID: "0b5c7a3e-1111-2222-3333-444455556667",
			TopicArn: testTopic,
			Message:  `{"notificationType":"Complaint"}`, Timestamp: "2024-03-25T23:01:54.000Z",
			SigningCertURL: testCertURL,
			UnsubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=y",
		},
		"subscription confirmation": {
			Type: ses.SNSSubscriptionConfirmation, MessageID: "7f46a153-88ff-4d95-91f5-188d2b695155",
			TopicArn: testTopic,
			Message:  "You have chosen to subscribe.\nVisit the SubscribeURL.", Timestamp: "2024-03-25T23:00:00.000Z",
			Token: "2336412f37fb", SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37fb",
			SigningCertURL: testCertURL,
		},
		"unsubscribe confirmation": {
			Type: ses.SNSUnsubscribeConfirmation, MessageID: "7f46a153-88ff-4d95-91f5-188d2b695156",
			TopicArn: testTopic,
			Message:  "You have chosen to deactivate subscription.", Timestamp: "2024-03-26T00:00:00.000Z",
			Token: "99aa", SubscribeURL: "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=99aa",
			SigningCertURL: testCertURL,
		},
	}
}

// failingClient is an HTTP client whose every request fails the test.
func failingClient(t *testing.T) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
		return nil, errors.New("no network in this test")
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// readSample parses the sample file whose name starts with prefix.
func readSample(t *testing.T, prefix string) *ses.SNSMessage {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(samplesDir, prefix+"_*.json"))
	if len(matches) != 1 {
		t.Fatalf("sample %s_*.json: %d files in %s", prefix, len(matches), samplesDir)
	}
	body, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := ses.ParseSNS(body)
	if err != nil {
		t.Fatalf("%s: %v", matches[0], err)
	}
	return m
}

func clone(m *ses.SNSMessage) *ses.SNSMessage {
	c := *m
	if m.Subject != nil {
		c.Subject = strp(*m.Subject)
	}
	return &c
}

// tamperings returns every single-field change of a signed message of m's
// type that must make verification fail.
func tamperings(m *ses.SNSMessage) map[string]func(*ses.SNSMessage) {
	t := map[string]func(*ses.SNSMessage){
		"Message":   func(m *ses.SNSMessage) { m.Message += "x" },
		"MessageId": func(m *ses.SNSMessage) { m.MessageID += "x" },
		"Timestamp": func(m *ses.SNSMessage) { m.Timestamp += "x" },
		"TopicArn":  func(m *ses.SNSMessage) { m.TopicArn += "x" },
		"Type":      func(m *ses.SNSMessage) { m.Type += "x" },
		"Signature": func(m *ses.SNSMessage) {
			first := "A"
			if m.Signature[0] == 'A' {
				first = "B"
			}
			m.Signature = first + m.Signature[1:]
		},
		"Signature appended": func(m *ses.SNSMessage) { m.Signature += "AAAA" },
		"Signature empty":    func(m *ses.SNSMessage) { m.Signature = "" },
		"SigningCertURL":     func(m *ses.SNSMessage) { m.SigningCertURL += "x" },
		"SignatureVersion": func(m *ses.SNSMessage) {
			if m.SignatureVersion == "1" {
				m.SignatureVersion = "2"
			} else {
				m.SignatureVersion = "1"
			}
		},
		"SignatureVersion 3": func(m *ses.SNSMessage) { m.SignatureVersion = "3" },
	}
	switch m.Type {
	case ses.SNSNotification:
		if m.Subject != nil {
			t["Subject"] = func(m *ses.SNSMessage) { *m.Subject += "x" }
			t["Subject removed"] = func(m *ses.SNSMessage) { m.Subject = nil }
			t["Subject emptied"] = func(m *ses.SNSMessage) { *m.Subject = "" }
		} else {
			t["Subject added"] = func(m *ses.SNSMessage) { m.Subject = strp("x") }
			t["Subject added empty"] = func(m *ses.SNSMessage) { m.Subject = strp("") }
		}
		t["Type to SubscriptionConfirmation"] = func(m *ses.SNSMessage) { m.Type = ses.SNSSubscriptionConfirmation }
	default:
		t["SubscribeURL"] = func(m *ses.SNSMessage) { m.SubscribeURL += "x" }
		t["Token"] = func(m *ses.SNSMessage) { m.Token += "x" }
		other := ses.SNSUnsubscribeConfirmation
		if m.Type == other {
			other = ses.SNSSubscriptionConfirmation
		}
		t["Type to "+other] = func(m *ses.SNSMessage) { m.Type = other }
		t["Type to Notification"] = func(m *ses.SNSMessage) { m.Type = ses.SNSNotification }
	}
	return t
}

// harmless returns changes to fields SNS does not sign, which must not make
// verification fail.
func harmless(m *ses.SNSMessage) map[string]func(*ses.SNSMessage) {
	t := map[string]func(*ses.SNSMessage){
		"UnsubscribeURL": func(m *ses.SNSMessage) { m.UnsubscribeURL += "x" },
	}
	switch m.Type {
	case ses.SNSNotification:
		t["Token"] = func(m *ses.SNSMessage) { m.Token += "x" }
		t["SubscribeURL"] = func(m *ses.SNSMessage) { m.SubscribeURL += "x" }
	default:
		t["Subject added"] = func(m *ses.SNSMessage) { m.Subject = strp("x") }
	}
	return t
}

// checkTamperings verifies m, then every tampering of it (refused) and
// every harmless change (accepted).
func checkTamperings(t *testing.T, v *Verifier, m *ses.SNSMessage) {
	t.Helper()
	if err := v.Verify(context.Background(), m); err != nil {
		t.Fatalf("untouched message: %v", err)
	}
	for name, change := range tamperings(m) {
		c := clone(m)
		change(c)
		if err := v.Verify(context.Background(), c); err == nil {
			t.Errorf("tampered %s: verified", name)
		}
	}
	for name, change := range harmless(m) {
		c := clone(m)
		change(c)
		if err := v.Verify(context.Background(), c); err != nil {
			t.Errorf("unsigned field %s changed: %v", name, err)
		}
	}
	if err := v.Verify(context.Background(), m); err != nil {
		t.Fatalf("message changed by the test: %v", err)
	}
}

func TestVerifyRealSamples(t *testing.T) {
	for _, tc := range []struct{ prefix, typ, version string }{
		{"18", ses.SNSNotification, "1"},
		{"22", ses.SNSSubscriptionConfirmation, "1"},
		{"31", ses.SNSNotification, "1"},
		{"32", ses.SNSNotification, "2"},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			m := readSample(t, tc.prefix)
			if m.Type != tc.typ || m.SignatureVersion != tc.version {
				t.Fatalf("sample %s is %s SigV%s, want %s SigV%s", tc.prefix, m.Type, m.SignatureVersion, tc.typ, tc.version)
			}
			v := NewVerifier(VerifierOptions{CertDir: certsDir, HTTPClient: failingClient(t)})
			checkTamperings(t, v, m)
		})
	}
}

func TestVerifyRealSampleSpoofedHost(t *testing.T) {
	const cert = "/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
	for _, tc := range []struct{ host, want string }{
		{"sns.us-east-2.amazonaws.com.evil.example", `host is not sns.us-east-2.amazonaws.com, the SNS host of the topic's region`},
		{"sns.us-east-1.amazonaws.com", `host is not sns.us-east-2.amazonaws.com, the SNS host of the topic's region`},
		{"sns.s3-accelerate.amazonaws.com", `host is not sns.us-east-2.amazonaws.com, the SNS host of the topic's region`},
		{"sns.us-east-2.amazonaws.com.cn", `host is not sns.us-east-2.amazonaws.com, the SNS host of the topic's region`},
	} {
		m := readSample(t, "31")
		m.SigningCertURL = "https://" + tc.host + cert
		v := NewVerifier(VerifierOptions{CertDir: certsDir, HTTPClient: failingClient(t)})
		err := v.Verify(context.Background(), m)
		want := `sns signature: SigningCertURL "https://` + tc.host + cert + `": ` + tc.want
		if err == nil || err.Error() != want {
			t.Errorf("got %v\nwant %s", err, want)
		}
	}
}

func TestVerifyGeneratedAllTypesBothVersions(t *testing.T) {
	s := validSigner(t)
	v := NewVerifier(VerifierOptions{CertDir: s.certDir(t), HTTPClient: failingClient(t)})
	for name, m := range testMessages() {
		for _, version := range []string{"1", "2"} {
			t.Run(name+"/SigV"+version, func(t *testing.T) {
				m := clone(m)
				s.sign(t, m, version)
				checkTamperings(t, v, m)
			})
		}
	}
}

func TestVerifyThroughJSON(t *testing.T) {
	// A message signed, encoded as SNS would, and parsed back verifies:
	// decoded values (real newlines, \r\n) are what is signed.
	s := validSigner(t)
	v := NewVerifier(VerifierOptions{CertDir: s.certDir(t), HTTPClient: failingClient(t)})
	m := testMessages()["notification with subject"]
	s.sign(t, m, "2")
	body, err := json.Marshal(map[string]any{
		"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Subject": *m.Subject,
		"Message": m.Message, "Timestamp": m.Timestamp, "SignatureVersion": m.SignatureVersion,
		"Signature": m.Signature, "SigningCertURL": m.SigningCertURL, "UnsubscribeURL": m.UnsubscribeURL,
		"MessageAttributes": map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ses.ParseSNS(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(context.Background(), got); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyOtherKey(t *testing.T) {
	// A message signed by another key, or naming another certificate file
	// from the folder, is refused.
	s, other := validSigner(t), validSigner(t)
	dir := s.certDir(t)
	if err := os.WriteFile(filepath.Join(dir, "SimpleNotificationService-other.pem"), other.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{CertDir: dir, HTTPClient: failingClient(t)})
	m := testMessages()["notification without subject"]
	other.sign(t, m, "1")
	err := v.Verify(context.Background(), m)
	want := "sns signature: does not verify (SignatureVersion 1, type Notification)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-other.pem"
	if err := v.Verify(context.Background(), m); err != nil {
		t.Fatalf("with its own certificate: %v", err)
	}
	m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-missing.pem"
	if err := v.Verify(context.Background(), m); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing certificate file: got %v", err)
	}
}

func TestVerifyLocalCertExpiredAccepted(t *testing.T) {
	s := newSigner(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	v := NewVerifier(VerifierOptions{CertDir: s.certDir(t), HTTPClient: failingClient(t)})
	m := testMessages()["subscription confirmation"]
	s.sign(t, m, "1")
	if err := v.Verify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// testTopic is the topic of the test messages: its region's SNS host is
// sns.us-east-1.amazonaws.com.
const testTopic = "arn:aws:sns:us-east-1:123456789012:ses-feedback"

// spoofedCertURLs are refused for testTopic by checkCertURL and by Verify
// without a fetch.
func spoofedCertURLs() []string {
	return []string{
		"",
		"http://sns.us-east-1.amazonaws.com/x.pem",
		"ftp://sns.us-east-1.amazonaws.com/x.pem",
		"//sns.us-east-1.amazonaws.com/x.pem",
		"https:sns.us-east-1.amazonaws.com/x.pem",
		"https:///x.pem",
		"https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
		"https://sns.us-east-1.amazonaws.com.cn.evil.example/x.pem",
		"https://sns.us-east-1.amazonaws.com./x.pem",
		"https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
		"https://evil.example/?sns.us-east-1.amazonaws.com/x.pem",
		"https://evil.example#sns.us-east-1.amazonaws.com/x.pem",
		"https://user@sns.us-east-1.amazonaws.com/x.pem",
		"https://user:pass@sns.us-east-1.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
		"https://sns.us-east-1.amazonaws.com:8443/x.pem",
		"https://sns.us-east-1.amazonaws.com:443/x.pem",
		"https://sns.us-east-1.amazonaws.com:/x.pem",
		"https://sns.us-east-1.amazonaws.com/x.txt",
		"https://sns.us-east-1.amazonaws.com/x.pem.txt",
		"https://sns.us-east-1.amazonaws.com/",
		"https://sns.us-east-1.amazonaws.com",
		"https://sns.us-east-1.amazonaws.com/.pem",
		"https://sns.us-east-1.amazonaws.com/a/../x.pem",
		"https://sns.us-east-1.amazonaws.com/./x.pem",
		"https://sns.us-east-1.amazonaws.com//x.pem",
		"https://s3.amazonaws.com/x.pem",
		"https://s3.us-east-1.amazonaws.com/x.pem",
		"https://sns.amazonaws.com/x.pem",
		"https://sns..amazonaws.com/x.pem",
		"https://sns.ab.amazonaws.com/x.pem",
		"https://sns.us_east_1.amazonaws.com/x.pem",
		"https://sns.us.east.1.amazonaws.com/x.pem",
		"https://sns-us-east-1.amazonaws.com/x.pem",
		"https://xsns.us-east-1.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.co/x.pem",
		"https://sns.us-east-1.amazonaws.com.cn.cn/x.pem",
		"https://sns.us-east-1.amazonaws.com/x.pem?",
		"https://sns.us-east-1.amazonaws.com/x.pem?a=b",
		"https://sns.us-east-1.amazonaws.com/x.pem#",
		"https://sns.us-east-1.amazonaws.com/x.pem#frag",
		"https://sns.us-east-1.amazonaws.com/%2e%2e/x.pem",
		"https://sns.us-east-1.amazonaws.com/x%2epem",
		"https://sns.us-east-1.amazonaws.com/x.pem%00",
		"https://sns.us-east-1.amazonaws.com/x.%70em",
		"https://sns%2eus-east-1.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com\\@evil.example/x.pem",
		"https://evil.example\\sns.us-east-1.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com/a\\x.pem",
		"https://sns.us-east-1.amazonaws.com/x .pem",
		"https://sns.us-east-1.amazonaws.com/x.pem\n",
		" https://sns.us-east-1.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com\u3002evil.example/x.pem",
		"https://[::1]/x.pem",
		"https://127.0.0.1/x.pem",
		// SNS hosts of another region than the topic's (us-east-1), or a
		// host whose region is no region.
		"https://sns.us-east-2.amazonaws.com/x.pem",
		"https://sns.us-east-1.amazonaws.com.cn/x.pem",
		"https://sns.cn-north-1.amazonaws.com.cn/x.pem",
		"https://sns.s3-accelerate.amazonaws.com/x.pem",
		"https://sns.us-east-1a.amazonaws.com/x.pem",
	}
}

func TestCheckCertURL(t *testing.T) {
	for _, tc := range []struct{ raw, topic string }{
		{"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem", testTopic},
		{"https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem", "arn:aws-us-gov:sns:us-gov-west-1:123456789012:t"},
		{"https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem", "arn:aws-cn:sns:cn-north-1:123456789012:t"},
		{"https://sns.eu-central-1.amazonaws.com/x.pem", "arn:aws:sns:eu-central-1:938667925736:mailcoach"},
		{"https://sns.us-east-1.amazonaws.com/a/b/x.pem", testTopic},
		// Decision: host and scheme compare case-insensitively, as DNS and
		// RFC 3986 do; the file name stays case-sensitive.
		{"https://SNS.US-EAST-1.AMAZONAWS.COM/x.pem", testTopic},
		{"HTTPS://sns.us-east-1.amazonaws.com/x.pem", testTopic},
	} {
		if err := checkCertURL(tc.raw, tc.topic); err != nil {
			t.Errorf("checkCertURL(%q, %q) = %v, want nil", tc.raw, tc.topic, err)
		}
	}
	for _, raw := range spoofedCertURLs() {
		if err := checkCertURL(raw, testTopic); err == nil {
			t.Errorf("checkCertURL(%q) = nil, want an error", raw)
		}
	}
}

func TestCheckCertURLErrors(t *testing.T) {
	for _, tc := range []struct{ raw, topic, want string }{
		{"", testTopic, "SigningCertURL: empty"},
		{"http://sns.us-east-1.amazonaws.com/x.pem", testTopic, `SigningCertURL "http://sns.us-east-1.amazonaws.com/x.pem": not https`},
		{"https://user@sns.us-east-1.amazonaws.com/x.pem", testTopic, `SigningCertURL "https://user@sns.us-east-1.amazonaws.com/x.pem": user info not allowed`},
		{"https://sns.us-east-1.amazonaws.com:8443/x.pem", testTopic, `SigningCertURL "https://sns.us-east-1.amazonaws.com:8443/x.pem": port not allowed`},
		{"https://sns.us-east-1.amazonaws.com/x.txt", testTopic, `SigningCertURL "https://sns.us-east-1.amazonaws.com/x.txt": path does not end in a .pem file name`},
		{"https://sns.us-east-1.amazonaws.com/x.pem?a", testTopic, `SigningCertURL "https://sns.us-east-1.amazonaws.com/x.pem?a": query not allowed`},
		{"https://sns.us-east-1.amazonaws.com/x.pem#a", testTopic, `SigningCertURL "https://sns.us-east-1.amazonaws.com/x.pem#a": fragment not allowed`},
		{"https://sns.us-east-1.amazonaws.com/%2e%2e/x.pem", testTopic, `SigningCertURL "https://sns.us-east-1.amazonaws.com/%2e%2e/x.pem": bad path`},
		{"https://evil.example\\sns.us-east-1.amazonaws.com/x.pem", testTopic, `SigningCertURL "https://evil.example\\sns.us-east-1.amazonaws.com/x.pem": forbidden character '\\'`},
		{"https://sns.us-east-2.amazonaws.com/x.pem", testTopic,
			`SigningCertURL "https://sns.us-east-2.amazonaws.com/x.pem": host is not sns.us-east-1.amazonaws.com, the SNS host of the topic's region`},
		{"https://sns.s3-accelerate.amazonaws.com/x.pem", "arn:aws:sns:s3-accelerate:123456789012:t",
			`SigningCertURL "https://sns.s3-accelerate.amazonaws.com/x.pem": TopicArn "arn:aws:sns:s3-accelerate:123456789012:t": "s3-accelerate" is not a region`},
		{"https://sns.cn-north-1.amazonaws.com/x.pem", "arn:aws-cn:sns:cn-north-1:123456789012:t",
			`SigningCertURL "https://sns.cn-north-1.amazonaws.com/x.pem": host is not sns.cn-north-1.amazonaws.com.cn, the SNS host of the topic's region`},
		{"https://sns.cn-north-1.amazonaws.com.cn/x.pem", "arn:aws:sns:cn-north-1:123456789012:t",
			`SigningCertURL "https://sns.cn-north-1.amazonaws.com.cn/x.pem": TopicArn "arn:aws:sns:cn-north-1:123456789012:t": region cn-north-1 is in partition aws-cn, not aws`},
		{"https://sns.us-east-1.amazonaws.com/x.pem", "arn:aws-iso:sns:us-east-1:123456789012:t",
			`SigningCertURL "https://sns.us-east-1.amazonaws.com/x.pem": TopicArn "arn:aws-iso:sns:us-east-1:123456789012:t": region us-east-1 is in partition aws, not aws-iso`},
		{"https://sns.us-east-1.amazonaws.com/x.pem", "arn:aws:s3:us-east-1:123456789012:t",
			`SigningCertURL "https://sns.us-east-1.amazonaws.com/x.pem": TopicArn "arn:aws:s3:us-east-1:123456789012:t" is not arn:PARTITION:sns:REGION:ACCOUNT:NAME`},
		{"https://sns.us-east-1.amazonaws.com/x.pem", "arn:aws:sns:us-east-1:t",
			`SigningCertURL "https://sns.us-east-1.amazonaws.com/x.pem": TopicArn "arn:aws:sns:us-east-1:t" is not arn:PARTITION:sns:REGION:ACCOUNT:NAME`},
	} {
		err := checkCertURL(tc.raw, tc.topic)
		if err == nil || err.Error() != tc.want {
			t.Errorf("checkCertURL(%q, %q)\n got %v\nwant %s", tc.raw, tc.topic, err, tc.want)
		}
	}
}

func TestIsRegion(t *testing.T) {
	// The pattern of the regions AWS has named so far.
	re := regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$`)
	for _, s := range []string{
		"us-east-1", "eu-central-1", "ap-southeast-5", "us-gov-west-1", "us-iso-east-1", "us-isob-east-1", "eu-isoe-west-1",
		"cn-north-1", "cn-northwest-1", "il-central-1", "mx-central-12", "xx-gov-1", "us-gov-1",
		"", "us", "us-east", "us-east-", "us-east-1a", "s3-accelerate", "usa-east-1", "u-east-1", "US-EAST-1", "us-east-01x",
		"us--east-1", "us-gov-west-1-1", "us-govx-west-1", "us-iso1-east-1", "us-east-1-", "-us-east-1", "us_east_1", "us-east-1.",
		"us-east-1\n", "us-eäst-1", "us-gov-west-1a", "us-isob-", "us-gov--1",
	} {
		if got, want := isRegion(s), re.MatchString(s); got != want {
			t.Errorf("isRegion(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestVerifySpoofedCertURLNoFetch(t *testing.T) {
	s := validSigner(t)
	var calls atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		t.Errorf("fetched %s", r.URL)
		return nil, errors.New("no network in this test")
	})}
	v := NewVerifier(VerifierOptions{HTTPClient: client, Roots: s.roots})
	for _, raw := range spoofedCertURLs() {
		for name, m := range testMessages() {
			m.SigningCertURL = raw
			s.sign(t, m, "2")
			if err := v.Verify(context.Background(), m); err == nil {
				t.Errorf("%s with SigningCertURL %q: verified", name, raw)
			}
		}
	}
	// A topic whose region is no region names a host that passes the
	// shape of an SNS host: an S3 bucket's.
	for name, m := range testMessages() {
		m.TopicArn = "arn:aws:sns:s3-accelerate:123456789012:t"
		m.SigningCertURL = "https://sns.s3-accelerate.amazonaws.com/x.pem"
		s.sign(t, m, "2")
		if err := v.Verify(context.Background(), m); err == nil {
			t.Errorf("%s of a topic in s3-accelerate: verified", name)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d requests made", n)
	}
}

func TestCheckSNSURL(t *testing.T) {
	for _, tc := range []struct{ raw, topic string }{
		{"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:032756942992:dev-relay-2022-04&Token=2336", testTopic},
		{"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn%3Aaws%3Asns", testTopic},
		{"https://sns.cn-north-1.amazonaws.com.cn/", "arn:aws-cn:sns:cn-north-1:123456789012:t"},
		{"https://sns.us-east-1.amazonaws.com", testTopic},
	} {
		if err := checkSNSURL(tc.raw, tc.topic); err != nil {
			t.Errorf("checkSNSURL(%q, %q) = %v, want nil", tc.raw, tc.topic, err)
		}
	}
	for _, raw := range []string{
		"",
		"http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
		"https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription",
		"https://evil.example/?https://sns.us-east-1.amazonaws.com/",
		"https://user@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
		"https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription",
		"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription#x",
		"https://sns.us-east-1.amazonaws.com\\@evil.example/",
		"https://s3.amazonaws.com/?Action=ConfirmSubscription",
		"https://127.0.0.1/?Action=ConfirmSubscription",
		"https:sns.us-east-1.amazonaws.com/",
		"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
		"https://sns.s3-accelerate.amazonaws.com/?Action=ConfirmSubscription",
	} {
		if err := checkSNSURL(raw, testTopic); err == nil {
			t.Errorf("checkSNSURL(%q) = nil, want an error", raw)
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	s := validSigner(t)
	v := NewVerifier(VerifierOptions{CertDir: s.certDir(t), HTTPClient: failingClient(t)})
	base := testMessages()["notification without subject"]
	s.sign(t, base, "1")
	for _, tc := range []struct {
		name   string
		change func(*ses.SNSMessage)
		want   string
	}{
		{"version 3", func(m *ses.SNSMessage) { m.SignatureVersion = "3" }, `sns signature: unsupported SignatureVersion "3"`},
		{"version empty", func(m *ses.SNSMessage) { m.SignatureVersion = "" }, `sns signature: unsupported SignatureVersion ""`},
		{"unknown type", func(m *ses.SNSMessage) { m.Type = "Other" }, `sns signature: sns message: unknown Type "Other"`},
		{"signature not base64", func(m *ses.SNSMessage) { m.Signature = "!!" }, "sns signature: Signature is not base64"},
		{"signature empty", func(m *ses.SNSMessage) { m.Signature = "" }, "sns signature: Signature is not base64"},
		{"signature short", func(m *ses.SNSMessage) { m.Signature = "AAAA" }, "sns signature: does not verify (SignatureVersion 1, type Notification)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := clone(base)
			tc.change(m)
			err := v.Verify(context.Background(), m)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	if err := v.Verify(context.Background(), nil); err == nil {
		t.Fatal("nil message verified")
	}
}

func TestCheckFields(t *testing.T) {
	const rest = `"Type":"Notification","MessageId":"m","TopicArn":"arn","Message":"a\r\nb","Timestamp":"t",` +
		`"SignatureVersion":"1","Signature":"c2ln","SigningCertURL":"https://sns.us-east-1.amazonaws.com/x.pem"`
	for _, tc := range []struct {
		name, body string
		want       string // error text; "" for success
	}{
		{"notification", `{` + rest + `}`, ""},
		{"subject null", `{"Subject":null,` + rest + `}`, ""},
		{"unknown fields ignored", `{"MessageAttributes":{"a":{"Type":"String","Value":"1"}},"Extra":[1,null],` + rest + `}`, ""},
		{"confirmation", `{"Token":"t","SubscribeURL":"https://sns.us-east-1.amazonaws.com/",` + strings.Replace(rest, "Notification", "SubscriptionConfirmation", 1) + `}`, ""},
		{"message empty", `{` + strings.Replace(rest, `"a\r\nb"`, `""`, 1) + `}`, ""},
		{"message null", `{` + strings.Replace(rest, `"a\r\nb"`, `null`, 1) + `}`, "sns message: missing Message"},
		{"missing", `{"Type":"Notification","Message":"x"}`,
			"sns message: missing MessageId, TopicArn, Timestamp, SignatureVersion, Signature, SigningCertURL"},
		{"missing type", `{}`,
			"sns message: missing Type, MessageId, TopicArn, Message, Timestamp, SignatureVersion, Signature, SigningCertURL"},
		{"confirmation missing token", `{` + strings.Replace(rest, "Notification", "SubscriptionConfirmation", 1) + `}`,
			"sns message: missing Token, SubscribeURL"},
		{"unsubscribe missing token", `{"SubscribeURL":"https://sns.us-east-1.amazonaws.com/",` + strings.Replace(rest, "Notification", "UnsubscribeConfirmation", 1) + `}`,
			"sns message: missing Token"},
		{"notification needs no token", `{"Token":null,` + rest + `}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ses.ParseSNS([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckFields(m)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestStringToSign(t *testing.T) {
	m := &ses.SNSMessage{Type: ses.SNSNotification, MessageID: "id", TopicArn: "arn", Message: "a\nb", Timestamp: "ts", Token: "tok", SubscribeURL: "s"}
	got, _ := StringToSign(m)
	if want := "Message\na\nb\nMessageId\nid\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"; got != want {
		t.Errorf("notification without subject:\n%q\nwant\n%q", got, want)
	}
	m.Subject = strp("")
	got, _ = StringToSign(m)
	if want := "Message\na\nb\nMessageId\nid\nSubject\n\nTimestamp\nts\nTopicArn\narn\nType\nNotification\n"; got != want {
		t.Errorf("notification with empty subject:\n%q\nwant\n%q", got, want)
	}
	m.Type = ses.SNSUnsubscribeConfirmation
	got, _ = StringToSign(m)
	if want := "Message\na\nb\nMessageId\nid\nSubscribeURL\ns\nTimestamp\nts\nToken\ntok\nTopicArn\narn\nType\nUnsubscribeConfirmation\n"; got != want {
		t.Errorf("unsubscribe confirmation:\n%q\nwant\n%q", got, want)
	}
	m.Type = "notification"
	if _, err := StringToSign(m); err == nil || err.Error() != `sns message: unknown Type "notification"` {
		t.Errorf("lowercase type: %v", err)
	}
}

func FuzzParseAndVerify(f *testing.F) {
	s := validSigner(f)
	dir := s.certDir(f)
	if entries, err := os.ReadDir(certsDir); err == nil {
		for _, e := range entries {
			if data, err := os.ReadFile(filepath.Join(certsDir, e.Name())); err == nil {
				os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600)
			}
		}
	}
	if files, err := filepath.Glob(filepath.Join(samplesDir, "*.json")); err == nil {
		for _, file := range files {
			if body, err := os.ReadFile(file); err == nil {
				f.Add(body)
			}
		}
	}
	for _, m := range testMessages() {
		s.sign(f, m, "2")
		fields := map[string]any{
			"Type": m.Type, "MessageId": m.MessageID, "TopicArn": m.TopicArn, "Message": m.Message,
			"Timestamp": m.Timestamp, "SignatureVersion": m.SignatureVersion, "Signature": m.Signature,
			"SigningCertURL": m.SigningCertURL, "Subject": m.Subject,
		}
		if m.Type != ses.SNSNotification {
			fields["Token"], fields["SubscribeURL"] = m.Token, m.SubscribeURL
		}
		body, err := json.Marshal(fields)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"Subject":null}`))
	f.Add([]byte(`{"Type":"Notification","Signature":"","SigningCertURL":"https://sns.us-east-1.amazonaws.com/x.pem"}`))

	v := NewVerifier(VerifierOptions{CertDir: dir, HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		panic("fetch during fuzzing")
	})}})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ses.ParseSNS(body)
		if err != nil {
			return
		}
		checkOracle(t, body, m)
		if CheckFields(m) != nil {
			return
		}
		StringToSign(m)
		checkSNSURL(m.SubscribeURL, m.TopicArn)
		checkSNSURL(m.UnsubscribeURL, m.TopicArn)
		checkCertURL(m.SigningCertURL, m.TopicArn)
		v.Verify(context.Background(), m)
	})
}

// checkOracle checks that encoding/json, an independent reader, reads
// from a body ParseSNS accepted exactly the values ParseSNS read for
// SNS's keys as SNS spells them: the values the signature is checked over
// and the router acts on.
func checkOracle(t *testing.T, body []byte, m *ses.SNSMessage) {
	t.Helper()
	var o map[string]json.RawMessage
	if err := json.Unmarshal(body, &o); err != nil {
		t.Fatalf("ParseSNS accepts what encoding/json refuses: %v", err)
	}
	read := func(keys ...string) (string, bool) {
		for _, k := range keys {
			raw, ok := o[k]
			if !ok {
				continue
			}
			var v *string
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("ParseSNS accepts %s: %s", k, raw)
			}
			if v != nil {
				return *v, true
			}
		}
		return "", false
	}
	subject, hasSubject := read("Subject")
	for _, f := range []struct {
		keys []string
		got  string
	}{
		{[]string{"Type"}, m.Type}, {[]string{"MessageId"}, m.MessageID}, {[]string{"TopicArn"}, m.TopicArn},
		{[]string{"Timestamp"}, m.Timestamp}, {[]string{"Message"}, m.Message}, {[]string{"SignatureVersion"}, m.SignatureVersion},
		{[]string{"Signature"}, m.Signature}, {[]string{"SigningCertURL", "SigningCertUrl"}, m.SigningCertURL},
		{[]string{"SubscribeURL"}, m.SubscribeURL}, {[]string{"UnsubscribeURL", "UnsubscribeUrl"}, m.UnsubscribeURL},
		{[]string{"Token"}, m.Token},
	} {
		want, ok := read(f.keys...)
		if f.got != want || m.Has(f.keys[0]) != ok {
			t.Fatalf("ParseSNS read %s %q (present %v), encoding/json %q (present %v)", f.keys[0], f.got, m.Has(f.keys[0]), want, ok)
		}
	}
	if (m.Subject != nil) != hasSubject || (m.Subject != nil && *m.Subject != subject) {
		t.Fatalf("ParseSNS read Subject %v, encoding/json %q (present %v)", m.Subject, subject, hasSubject)
	}
}

// TestParseSNSOracle runs checkOracle on bodies that differ in the ways
// a forger tries: keys in other letter cases, nulls, escapes.
func TestParseSNSOracle(t *testing.T) {
	for _, body := range []string{
		`{"Type":"Notification","Message":"a","Subject":null}`,
		`{"Type":"Notification","Message":"a\u0041\n","Subject":"s","SigningCertUrl":"u","UnsubscribeUrl":"v"}`,
		`{"type":"Notification","MESSAGE":"b"}`,
		`{"Type":"Notification","Message":null,"Token":"t","MessageAttributes":{"Type":{"Type":"String","Value":"x"}}}`,
	} {
		m, err := ses.ParseSNS([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		checkOracle(t, []byte(body), m)
	}
}

func TestCheckTopicArn(t *testing.T) {
	for _, arn := range []string{
		testTopic,
		"arn:aws:sns:eu-central-1:938667925736:mailcoach",
		"arn:aws-cn:sns:cn-northwest-1:123456789012:t",
		"arn:aws-us-gov:sns:us-gov-east-1:123456789012:t.fifo",
	} {
		if err := CheckTopicArn(arn); err != nil {
			t.Errorf("CheckTopicArn(%q) = %v", arn, err)
		}
	}
	for arn, want := range map[string]string{
		"":                                     `TopicArn "" is not arn:PARTITION:sns:REGION:ACCOUNT:NAME`,
		"arn:aws:sqs:us-east-1:123456789012:q": `TopicArn "arn:aws:sqs:us-east-1:123456789012:q" is not arn:PARTITION:sns:REGION:ACCOUNT:NAME`,
		"arn:aws:sns:local:000000000000:t":     `TopicArn "arn:aws:sns:local:000000000000:t": "local" is not a region`,
		"arn:aws:sns:us-gov-west-1:1:t":        `TopicArn "arn:aws:sns:us-gov-west-1:1:t": region us-gov-west-1 is in partition aws-us-gov, not aws`,
		"arn:aws-cn:sns:us-east-1:1:t":         `TopicArn "arn:aws-cn:sns:us-east-1:1:t": region us-east-1 is in partition aws, not aws-cn`,
	} {
		if err := CheckTopicArn(arn); err == nil || err.Error() != want {
			t.Errorf("CheckTopicArn(%q)\n got %v\nwant %s", arn, err, want)
		}
	}
}
