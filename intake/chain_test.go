package intake

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesrouter/sesrouter/engine"
)

// memTransport answers requests from memory: files[URL] with 200, or
// 404; it records the URLs asked for. No request leaves the process.
type memTransport struct {
	mu    sync.Mutex
	files map[string][]byte
	asked []string
}

func (mt *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	mt.asked = append(mt.asked, r.URL.String())
	data, ok := mt.files[r.URL.String()]
	status := http.StatusOK
	if !ok {
		status = http.StatusNotFound
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{},
		Body: io.NopCloser(strings.NewReader(string(data))), Request: r}, nil
}

func (mt *memTransport) requests() []string {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return slices.Clone(mt.asked)
}

func TestVerifyFetchedCertificateChain(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	const aia = "http://crt.test.amazontrust.com/test.cer"
	const prefix = "sns signature: certificate " + testCertURL + ": "
	for _, tc := range []struct {
		name   string
		signer *signer
		files  map[string][]byte // besides the certificate
		want   string            // the error's start; "" for success
		asked  []string          // besides the certificate
	}{
		{"leaf and intermediate", p.signer(t, leafSpec{}), nil, "", nil},
		{"leaf alone, its issuer at its CA Issuers URL", p.signer(t, leafSpec{leafOnly: true, aia: []string{aia}}),
			map[string][]byte{aia: p.inter.Raw}, "", []string{aia}},
		{"issuer in PEM", p.signer(t, leafSpec{leafOnly: true, aia: []string{aia}}),
			map[string][]byte{aia: pemOf(p.inter)}, "", []string{aia}},
		{"named in a SAN only", p.signer(t, leafSpec{cn: "Amazon"}), nil, "", nil},
		{"named in the CN only", p.signer(t, leafSpec{dnsNames: []string{}}), nil, "", nil},
		{"leaf alone, no CA Issuers URL", p.signer(t, leafSpec{leafOnly: true}), nil,
			prefix + "does not chain to a trusted root: x509: certificate signed by unknown authority", nil},
		{"CA Issuers URL not on amazontrust.com", p.signer(t, leafSpec{leafOnly: true, aia: []string{"http://crt.evil.example/test.cer"}}),
			map[string][]byte{"http://crt.evil.example/test.cer": p.inter.Raw},
			prefix + "does not chain to a trusted root: x509: certificate signed by unknown authority", nil},
		{"CA Issuers URL that fails", p.signer(t, leafSpec{leafOnly: true, aia: []string{aia}}), nil,
			"sns signature: signing certificate unavailable: " + aia + ": HTTP status 404", []string{aia}},
		{"CA Issuers URL serving garbage", p.signer(t, leafSpec{leafOnly: true, aia: []string{aia}}),
			map[string][]byte{aia: []byte("not a certificate")}, "sns signature: certificate " + aia + ": ", []string{aia}},
		{"CA Issuers URL serving another root's intermediate", p.signer(t, leafSpec{leafOnly: true, aia: []string{aia}}),
			map[string][]byte{aia: other.inter.Raw}, prefix + "does not chain to a trusted root: x509: certificate signed by unknown authority", []string{aia}},
		{"self-signed", p.signer(t, leafSpec{selfSigned: true}), nil,
			prefix + "does not chain to a trusted root: x509: certificate signed by unknown authority", nil},
		{"self-signed, naming itself as issuer", p.signer(t, leafSpec{selfSigned: true, aia: []string{aia}}),
			map[string][]byte{aia: p.inter.Raw}, prefix + "does not chain to a trusted root: x509: certificate signed by unknown authority", []string{aia}},
		{"another root's", other.signer(t, leafSpec{}), nil,
			prefix + "does not chain to a trusted root: x509: certificate signed by unknown authority", nil},
		{"not naming sns.amazonaws.com", p.signer(t, leafSpec{cn: "sns.evil.example", dnsNames: []string{"sns.evil.example", "*.amazonaws.com"}}), nil,
			prefix + `does not name sns.amazonaws.com (CN "sns.evil.example", DNS names [sns.evil.example *.amazonaws.com])`, nil},
		{"naming it in another field", p.signer(t, leafSpec{cn: "sns.amazonaws.com.evil.example", dnsNames: []string{"evil.example"}}), nil,
			prefix + `does not name sns.amazonaws.com (CN "sns.amazonaws.com.evil.example", DNS names [evil.example])`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mt := &memTransport{files: map[string][]byte{testCertURL: tc.signer.certPEM}}
			for u, data := range tc.files {
				mt.files[u] = data
			}
			v := NewVerifier(VerifierOptions{HTTPClient: &http.Client{Transport: mt}, Roots: p.roots})
			m := testMessages()["notification with subject"]
			tc.signer.sign(t, m, "2")
			for i := range 2 { // a refused certificate is not cached
				err := v.Verify(context.Background(), m)
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("attempt %d: %v", i, err)
				case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
					t.Fatalf("attempt %d:\n got %v\nwant %s…", i, err, tc.want)
				}
			}
			asked := []string{testCertURL}
			asked = append(asked, tc.asked...)
			if tc.want != "" {
				asked = append(asked, asked...) // fetched again
			}
			if got := mt.requests(); !slices.Equal(got, asked) {
				t.Errorf("requests %q, want %q", got, asked)
			}
		})
	}
}

func TestVerifySystemRoots(t *testing.T) {
	// Without Roots, the system's roots are the ones: they do not hold the
	// test root.
	s := validSigner(t)
	mt := &memTransport{files: map[string][]byte{testCertURL: s.certPEM}}
	v := NewVerifier(VerifierOptions{HTTPClient: &http.Client{Transport: mt}})
	m := testMessages()["notification without subject"]
	s.sign(t, m, "1")
	err := v.Verify(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "does not chain to a trusted root") || errors.Is(err, ErrCertUnavailable) {
		t.Fatalf("got %v", err)
	}
}

func TestVerifyLocalCertificateNames(t *testing.T) {
	// A certificate of CertDir is the operator's: its chain and dates are
	// not checked, but it must be an SNS signing certificate.
	p := newPKI(t)
	for _, tc := range []struct {
		name string
		s    *signer
		want string
	}{
		{"self-signed and expired", p.signer(t, leafSpec{selfSigned: true, notAfter: validFrom().Add(time.Hour)}), ""},
		{"another root's", newPKI(t).signer(t, leafSpec{}), ""},
		{"not naming sns.amazonaws.com", p.signer(t, leafSpec{cn: "evil.example", dnsNames: []string{}}),
			`sns signature: certificate SimpleNotificationService-test.pem: does not name sns.amazonaws.com (CN "evil.example", DNS names [])`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "SimpleNotificationService-test.pem"), tc.s.certPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			v := NewVerifier(VerifierOptions{CertDir: dir, HTTPClient: failingClient(t), Roots: p.roots})
			m := testMessages()["subscription confirmation"]
			tc.s.sign(t, m, "1")
			err := v.Verify(context.Background(), m)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestVerifyMinSignatureVersion(t *testing.T) {
	s := validSigner(t)
	v1, v2 := testMessages()["notification with subject"], testMessages()["notification with subject"]
	s.sign(t, v1, "1")
	s.sign(t, v2, "2")
	for _, tc := range []struct {
		min    int
		v1, v2 string // errors; "" for success
	}{
		{0, "", ""},
		{1, "", ""},
		{2, "sns signature: SignatureVersion 1 (SHA1withRSA) refused: the minimum is 2", ""},
	} {
		t.Run(strconv.Itoa(tc.min), func(t *testing.T) {
			mt := &memTransport{files: map[string][]byte{testCertURL: s.certPEM}}
			v := NewVerifier(VerifierOptions{HTTPClient: &http.Client{Transport: mt}, Roots: s.roots, MinSignatureVersion: tc.min})
			for _, c := range []struct {
				m    *engine.SNSMessage
				want string
			}{{v1, tc.v1}, {v2, tc.v2}} {
				err := v.Verify(context.Background(), c.m)
				if c.want == "" && err != nil || c.want != "" && (err == nil || err.Error() != c.want) {
					t.Errorf("SignatureVersion %s: got %v\nwant %q", c.m.SignatureVersion, err, c.want)
				}
			}
			if tc.v1 != "" && len(mt.requests()) > 1 {
				t.Errorf("requests %q: the refused message fetched a certificate", mt.requests())
			}
		})
	}
	for _, bad := range []int{-1, 3} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MinSignatureVersion %d: no panic", bad)
				}
			}()
			NewVerifier(VerifierOptions{MinSignatureVersion: bad})
		}()
	}
}
