package intake

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
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
			for i := range 2 { // a refused certificate is remembered: not fetched again
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
				m    *ses.SNSMessage
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

// certServer is a loopback TLS server that every request of its client
// reaches, whatever the URL's host.
type certServer struct {
	srv    *httptest.Server
	client *http.Client
	hits   atomic.Int32
}

func newCertServer(t *testing.T, h http.HandlerFunc) *certServer {
	t.Helper()
	cs := &certServer{}
	cs.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(cs.srv.Close)
	tr := cs.srv.Client().Transport.(*http.Transport).Clone()
	addr := cs.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	// httptest's certificate is for example.com; the pool trusts only it.
	tr.TLSClientConfig.ServerName = "example.com"
	cs.client = &http.Client{Transport: tr}
	return cs
}

func TestVerifyFetch(t *testing.T) {
	p := newPKI(t)
	s := p.signer(t, leafSpec{})
	expired := p.signer(t, leafSpec{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	notYet := p.signer(t, leafSpec{notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := selfSigned(t, ecKey, &ecKey.PublicKey, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	const maxSize = 8 << 10

	cs := newCertServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, "/SimpleNotificationService-") {
		case "test.pem", "second.pem":
			w.Write(s.certPEM)
		case "big.pem":
			w.Write(s.certPEM)
			w.Write([]byte(strings.Repeat("A", maxSize)))
		case "exact.pem":
			w.Write(s.certPEM)
			w.Write([]byte(strings.Repeat("\n", maxSize-len(s.certPEM))))
		case "missing.pem":
			http.NotFound(w, r)
		case "expired.pem":
			w.Write(expired.certPEM)
		case "notyet.pem":
			w.Write(notYet.certPEM)
		case "ecdsa.pem":
			w.Write(ecPEM)
		case "garbage.pem":
			w.Write([]byte("not a certificate"))
		case "redirect.pem":
			http.Redirect(w, r, "/SimpleNotificationService-test.pem", http.StatusFound)
		default:
			t.Errorf("unexpected path %s", r.URL.Path)
		}
	})
	v := NewVerifier(VerifierOptions{HTTPClient: cs.client, Roots: s.roots, MaxCertSize: maxSize})
	ctx := context.Background()

	t.Run("verifies and caches", func(t *testing.T) {
		m := testMessages()["notification with subject"]
		s.sign(t, m, "1")
		before := cs.hits.Load()
		if err := v.Verify(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(ctx, m); err != nil {
			t.Fatal(err)
		}
		if n := cs.hits.Load() - before; n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		tampered := clone(m)
		tampered.Message += "x"
		if err := v.Verify(ctx, tampered); err == nil {
			t.Fatal("tampered message verified with the cached certificate")
		}
		if n := cs.hits.Load() - before; n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})

	t.Run("exactly MaxCertSize", func(t *testing.T) {
		m := testMessages()["unsubscribe confirmation"]
		m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-exact.pem"
		s.sign(t, m, "2")
		if err := v.Verify(ctx, m); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		file, want string
		transient  bool
	}{
		{"big.pem", "sns signature: certificate https://sns.us-east-1.amazonaws.com/SimpleNotificationService-big.pem: larger than 8192 bytes", false},
		{"missing.pem", "sns signature: signing certificate unavailable: https://sns.us-east-1.amazonaws.com/SimpleNotificationService-missing.pem: HTTP status 404", true},
		{"expired.pem", "sns signature: certificate https://sns.us-east-1.amazonaws.com/SimpleNotificationService-expired.pem: not valid now", false},
		{"notyet.pem", "sns signature: certificate https://sns.us-east-1.amazonaws.com/SimpleNotificationService-notyet.pem: not valid now", false},
		{"ecdsa.pem", "sns signature: certificate https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ecdsa.pem: public key is *ecdsa.PublicKey, not RSA", false},
		{"garbage.pem", "sns signature: certificate https://sns.us-east-1.amazonaws.com/SimpleNotificationService-garbage.pem: no PEM CERTIFICATE block", false},
		{"redirect.pem", "sns signature: signing certificate unavailable: https://sns.us-east-1.amazonaws.com/SimpleNotificationService-redirect.pem: redirect not followed", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m := testMessages()["notification without subject"]
			m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-" + tc.file
			s.sign(t, m, "2")
			for i := range 2 { // a failure is remembered: only the first attempt fetches
				before := cs.hits.Load()
				err := v.Verify(ctx, m)
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("attempt %d:\n got %v\nwant %s…", i, err, tc.want)
				}
				if errors.Is(err, ErrCertUnavailable) != tc.transient {
					t.Errorf("errors.Is(err, ErrCertUnavailable) = %v", !tc.transient)
				}
				if n, want := cs.hits.Load()-before, 1-i; n != int32(want) {
					t.Errorf("attempt %d: %d requests, want %d", i, n, want)
				}
			}
		})
	}

	t.Run("cached certificate that expires", func(t *testing.T) {
		v := NewVerifier(VerifierOptions{HTTPClient: cs.client, Roots: s.roots})
		m := testMessages()["subscription confirmation"]
		m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-second.pem"
		s.sign(t, m, "1")
		if err := v.Verify(ctx, m); err != nil {
			t.Fatal(err)
		}
		v.now = func() time.Time { return time.Now().Add(48 * time.Hour) }
		if err := v.Verify(ctx, m); err == nil || !strings.Contains(err.Error(), "not valid now") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestVerifyConcurrentFetchOnce(t *testing.T) {
	s := validSigner(t)
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var hits atomic.Int32
		v := NewVerifier(VerifierOptions{Roots: s.roots, HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			<-release
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(s.certPEM)), Request: r}, nil
		})}})
		msgs := testMessages()
		for _, m := range msgs {
			s.sign(t, m, "2")
		}
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				for _, m := range msgs {
					if i%2 == 1 {
						m = clone(m)
						m.Message += "x"
						if err := v.Verify(context.Background(), m); err == nil {
							t.Error("tampered message verified")
						}
						continue
					}
					if err := v.Verify(context.Background(), m); err != nil {
						t.Error(err)
					}
				}
			})
		}
		synctest.Wait() // one fetch under way, every Verify waiting for it
		close(release)
		wg.Wait()
		if n := hits.Load(); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
	})
}

func TestVerifyFetchTimeouts(t *testing.T) {
	// A certificate server that never answers: a caller's context ends
	// its wait at its own deadline, the fetch ends at FetchTimeout, on
	// the bubble's fake clock; the failure is then remembered for
	// failureMemory.
	s := validSigner(t)
	synctest.Test(t, func(t *testing.T) {
		var hits atomic.Int32
		v := NewVerifier(VerifierOptions{Roots: s.roots, HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			<-r.Context().Done()
			return nil, r.Context().Err()
		})}})
		m := testMessages()["notification without subject"]
		s.sign(t, m, "1")
		const want = "sns signature: signing certificate unavailable: " + testCertURL + ": context deadline exceeded"

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := v.Verify(ctx, m)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrCertUnavailable) {
			t.Fatalf("got %v", err)
		}
		if took := time.Since(start); took != time.Second {
			t.Errorf("took %v, want the caller's 1s", took)
		}
		// The fetch goes on, to its own end, for other callers: one that
		// comes now joins it.
		err = v.Verify(context.Background(), m)
		if err == nil || err.Error() != want || !errors.Is(err, ErrCertUnavailable) {
			t.Fatalf("got %v\nwant %s", err, want)
		}
		if took := time.Since(start); took != DefaultFetchTimeout {
			t.Errorf("the joined fetch ended after %v, want DefaultFetchTimeout", took)
		}
		// Within the minute, the failure is remembered.
		end := time.Now()
		time.Sleep(failureMemory - time.Nanosecond)
		err = v.Verify(context.Background(), m)
		if err == nil || !strings.HasPrefix(err.Error(), want+" (not fetched again before ") || !errors.Is(err, ErrCertUnavailable) {
			t.Fatalf("remembered: got %v\nwant %s (not fetched again before …)", err, want)
		}
		if time.Since(end) != failureMemory-time.Nanosecond {
			t.Errorf("a remembered failure took time")
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("%d requests, want 1 (a fetch under way is joined, its failure remembered)", n)
		}
		// After it, the certificate is fetched again.
		time.Sleep(time.Nanosecond)
		if err = v.Verify(context.Background(), m); err == nil || err.Error() != want {
			t.Fatalf("after failureMemory: got %v\nwant %s", err, want)
		}
		if n := hits.Load(); n != 2 {
			t.Errorf("%d requests, want 2: fetched again after failureMemory", n)
		}
	})
}

func TestVerifyCacheBounded(t *testing.T) {
	s := validSigner(t)
	cs := newCertServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write(s.certPEM) })
	v := NewVerifier(VerifierOptions{HTTPClient: cs.client, Roots: s.roots})
	m := testMessages()["notification without subject"]
	for i := range certCacheSize + 10 {
		m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-" + big.NewInt(int64(i)).String() + ".pem"
		s.sign(t, m, "1")
		if err := v.Verify(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.cache) != certCacheSize || len(v.order) != certCacheSize {
		t.Fatalf("cache holds %d (%d keys), want %d", len(v.cache), len(v.order), certCacheSize)
	}
}

func TestVerifyFetchPanics(t *testing.T) {
	// A panic in the fetch's own goroutine (here, the client's) is that
	// fetch's failure, which may be passing: it is not the process's end,
	// and every caller waiting on the fetch gets it.
	s := validSigner(t)
	v := NewVerifier(VerifierOptions{Roots: s.roots, HTTPClient: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		panic("a bug of the client")
	})}})
	m := testMessages()["notification without subject"]
	s.sign(t, m, "2")
	err := v.Verify(context.Background(), m)
	if err == nil || !errors.Is(err, ErrCertUnavailable) || !strings.Contains(err.Error(), "certificate fetch panicked: a bug of the client") {
		t.Fatalf("got %v, want the panic as an unavailable certificate", err)
	}
	if p, ok := errors.AsType[*panicError](err); !ok || !strings.Contains(string(p.stack), "TestVerifyFetchPanics") {
		t.Errorf("no stack of the panic in %v", err)
	}
}

func TestVerifyFailuresBounded(t *testing.T) {
	// Each certificate URL that fails is remembered, up to a bound.
	s := validSigner(t)
	mt := &memTransport{}
	v := NewVerifier(VerifierOptions{HTTPClient: &http.Client{Transport: mt}, Roots: s.roots})
	m := testMessages()["notification without subject"]
	s.sign(t, m, "1") // the fetch fails before the signature is looked at
	for i := range failedSize + 10 {
		m.SigningCertURL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-" + strconv.Itoa(i) + ".pem"
		if err := v.Verify(context.Background(), m); !errors.Is(err, ErrCertUnavailable) {
			t.Fatalf("%s: got %v, want a 404", m.SigningCertURL, err)
		}
	}
	if len(v.failed) != failedSize {
		t.Fatalf("%d failures remembered, want %d", len(v.failed), failedSize)
	}
	if n := len(mt.requests()); n != failedSize+10 {
		t.Errorf("%d fetches, want one per URL", n)
	}
}
