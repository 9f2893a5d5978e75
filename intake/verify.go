package intake

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/engine/ses"
)

// ErrCertUnavailable is wrapped by Verify's error when the signing
// certificate could not be obtained for a reason that may be transient (a
// network error, a timeout, a status other than 200): the message itself was
// not shown to be forged, so the sender may retry.
var ErrCertUnavailable = errors.New("signing certificate unavailable")

// Defaults for VerifierOptions.
const (
	DefaultFetchTimeout = 5 * time.Second
	defaultMaxCertSize  = 64 << 10
	// certCacheSize bounds the number of fetched certificates kept.
	certCacheSize = 64
	// failureMemory is how long a certificate URL whose fetch failed is
	// not fetched again: Verify fails at once the same way meanwhile.
	// Anyone can name a certificate URL that fails; each is fetched
	// once a minute at most.
	failureMemory = time.Minute
	// failedSize bounds the number of failed URLs remembered.
	failedSize = 1024
)

// snsCertName is the name SNS's signing certificates bear, whatever the
// region.
const snsCertName = "sns.amazonaws.com"

// VerifierOptions configures a Verifier. The zero value fetches
// certificates with the defaults.
type VerifierOptions struct {
	// CertDir, when set, is a folder certificates are read from (file name =
	// last path element of SigningCertURL) instead of being fetched. They
	// are the operator's: used even when expired, not chain-checked, but
	// they must name sns.amazonaws.com.
	CertDir string
	// HTTPClient fetches certificates; nil means a client with FetchTimeout.
	// Redirects are never followed, whichever client is given.
	HTTPClient *http.Client
	// FetchTimeout bounds one fetch; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MaxCertSize bounds a certificate file; 0 means defaultMaxCertSize.
	MaxCertSize int64
	// Roots are the roots a fetched certificate must chain to; nil means
	// the system's.
	Roots *x509.CertPool
	// MinSignatureVersion is the lowest SignatureVersion accepted: 0 or 1
	// accept "1" (SHA1withRSA) and "2" (SHA256withRSA); 2 refuses "1".
	MinSignatureVersion int
}

// Verifier verifies SNS message signatures, with certificates from a folder
// or fetched and cached. It is safe for concurrent use.
type Verifier struct {
	certDir string
	client  *http.Client
	timeout time.Duration
	maxSize int64
	roots   *x509.CertPool
	minVer  int
	now     func() time.Time

	mu       sync.Mutex
	cache    map[string]*x509.Certificate // fetched, by URL
	order    []string                     // cache keys, oldest first
	inflight map[string]*fetchCall
	failed   map[string]failedFetch // by URL, until failureMemory has passed
}

// failedFetch is a fetch that failed, remembered until a time.
type failedFetch struct {
	err   error
	until time.Time
}

// fetchCall is one fetch in progress that concurrent Verify calls for the
// same URL wait on.
type fetchCall struct {
	done chan struct{}
	cert *x509.Certificate
	err  error
}

// NewVerifier returns a Verifier configured by o. It panics when
// o.MinSignatureVersion is not 0, 1 or 2: that is a programming error.
func NewVerifier(o VerifierOptions) *Verifier {
	if o.MinSignatureVersion < 0 || o.MinSignatureVersion > 2 {
		panic(fmt.Sprintf("intake.NewVerifier: MinSignatureVersion %d is not 0, 1 or 2", o.MinSignatureVersion))
	}
	v := &Verifier{
		certDir:  o.CertDir,
		timeout:  o.FetchTimeout,
		maxSize:  o.MaxCertSize,
		roots:    o.Roots,
		minVer:   o.MinSignatureVersion,
		now:      time.Now,
		cache:    map[string]*x509.Certificate{},
		inflight: map[string]*fetchCall{},
		failed:   map[string]failedFetch{},
	}
	if v.timeout <= 0 {
		v.timeout = DefaultFetchTimeout
	}
	if v.maxSize <= 0 {
		v.maxSize = defaultMaxCertSize
	}
	var c http.Client
	if o.HTTPClient != nil {
		c = *o.HTTPClient
	} else {
		c.Timeout = v.timeout
	}
	c.CheckRedirect = refuseRedirect
	v.client = &c
	return v
}

// Verify checks m's SignatureVersion ("1": SHA1withRSA, unless
// MinSignatureVersion is 2; "2": SHA256withRSA), its SigningCertURL
// (checkCertURL against m's TopicArn, before any fetch), and the signature
// over StringToSign with the certificate's RSA key. Every certificate must name sns.amazonaws.com (in
// its CN or a DNS SAN). One fetched over the network must also be valid
// now and chain to Roots (with the intermediates of its file, else with
// the issuer at its CA Issuers URL on amazontrust.com: SNS serves the leaf
// alone); it is cached by URL (a bounded cache), and a URL whose fetch
// failed is not fetched again for failureMemory. A certificate from CertDir
// is the operator's: its chain and dates are not checked. The error says
// why verification failed; it wraps ErrCertUnavailable when the
// certificate could not be obtained for a possibly transient reason.
func (v *Verifier) Verify(ctx context.Context, m *ses.SNSMessage) error {
	if m == nil {
		return errors.New("sns signature: no message")
	}
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		if v.minVer > 1 {
			return fmt.Errorf("sns signature: SignatureVersion 1 (SHA1withRSA) refused: the minimum is %d", v.minVer)
		}
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return fmt.Errorf("sns signature: unsupported SignatureVersion %q", m.SignatureVersion)
	}
	if err := checkCertURL(m.SigningCertURL, m.TopicArn); err != nil {
		return fmt.Errorf("sns signature: %w", err)
	}
	s, err := StringToSign(m)
	if err != nil {
		return fmt.Errorf("sns signature: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return errors.New("sns signature: Signature is not base64")
	}
	cert, err := v.certificate(ctx, m.SigningCertURL)
	if err != nil {
		return fmt.Errorf("sns signature: %w", err)
	}
	pub := cert.PublicKey.(*rsa.PublicKey) // checked by parseCerts
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(s))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(s))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return fmt.Errorf("sns signature: does not verify (SignatureVersion %s, type %s)", m.SignatureVersion, m.Type)
	}
	return nil
}

// certificate returns the certificate for a URL that passed checkCertURL.
func (v *Verifier) certificate(ctx context.Context, rawURL string) (*x509.Certificate, error) {
	if v.certDir != "" {
		return v.readLocal(rawURL)
	}
	v.mu.Lock()
	if c, ok := v.cache[rawURL]; ok {
		v.mu.Unlock()
		return c, v.checkValid(c, rawURL)
	}
	if f, ok := v.failed[rawURL]; ok {
		if v.now().Before(f.until) {
			v.mu.Unlock()
			return nil, fmt.Errorf("%w (not fetched again before %s)", f.err, f.until.UTC().Format(time.RFC3339))
		}
		delete(v.failed, rawURL)
	}
	call, ok := v.inflight[rawURL]
	if !ok {
		call = &fetchCall{done: make(chan struct{})}
		v.inflight[rawURL] = call
		// The fetch runs detached from this caller's cancellation, so that
		// other callers waiting on it do not inherit it; it has its own
		// timeout.
		go func() {
			call.cert, call.err = v.fetchRecovering(context.WithoutCancel(ctx), rawURL)
			v.mu.Lock()
			delete(v.inflight, rawURL)
			if call.err == nil {
				v.store(rawURL, call.cert)
			} else {
				v.remember(rawURL, call.err)
			}
			v.mu.Unlock()
			close(call.done)
		}()
	}
	v.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: %w", ErrCertUnavailable, rawURL, context.Cause(ctx))
	}
	if call.err != nil {
		return nil, call.err
	}
	return call.cert, nil
}

// store caches a fetched certificate, evicting the oldest when full. The
// caller holds v.mu.
func (v *Verifier) store(rawURL string, c *x509.Certificate) {
	if _, ok := v.cache[rawURL]; ok {
		return
	}
	if len(v.order) >= certCacheSize {
		delete(v.cache, v.order[0])
		v.order = v.order[1:]
	}
	v.cache[rawURL] = c
	v.order = append(v.order, rawURL)
}

// remember records a failed fetch for failureMemory, forgetting the
// failures whose time is up, or else the one that ends first, when full.
// The caller holds v.mu.
func (v *Verifier) remember(rawURL string, err error) {
	now := v.now()
	if len(v.failed) >= failedSize {
		first := ""
		for u, f := range v.failed {
			if !now.Before(f.until) {
				delete(v.failed, u)
			} else if first == "" || f.until.Before(v.failed[first].until) {
				first = u
			}
		}
		if len(v.failed) >= failedSize {
			delete(v.failed, first)
		}
	}
	v.failed[rawURL] = failedFetch{err: err, until: now.Add(failureMemory)}
}

// fetchRecovering is fetch, with a panic turned into an error that wraps
// ErrCertUnavailable: it runs in a goroutine of its own, on a URL and a
// certificate that anyone can choose, and a bug met there must not crash
// the process.
func (v *Verifier) fetchRecovering(ctx context.Context, rawURL string) (c *x509.Certificate, err error) {
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("%w: %s: %w", ErrCertUnavailable, rawURL, recovered("certificate fetch", p))
		}
	}()
	return v.fetch(ctx, rawURL)
}

// checkValid refuses a fetched certificate outside its validity period.
func (v *Verifier) checkValid(c *x509.Certificate, rawURL string) error {
	now := v.now()
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("certificate %s: not valid now (valid %s to %s)",
			rawURL, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// readLocal reads the certificate named by the last path element of rawURL
// from CertDir. Its chain and validity dates are not checked.
func (v *Verifier) readLocal(rawURL string) (*x509.Certificate, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	name := path.Base(u.Path)
	f, err := os.Open(filepath.Join(v.certDir, name))
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, v.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", name, err)
	}
	if int64(len(data)) > v.maxSize {
		return nil, fmt.Errorf("certificate %s: larger than %d bytes", name, v.maxSize)
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", name, err)
	}
	if err := namesSNS(certs[0]); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", name, err)
	}
	return certs[0], nil
}

// fetch GETs a certificate and checks that it is a currently valid RSA
// certificate of SNS that chains to the roots.
func (v *Verifier) fetch(ctx context.Context, rawURL string) (*x509.Certificate, error) {
	data, err := v.get(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", rawURL, err)
	}
	leaf := certs[0]
	if err := v.checkValid(leaf, rawURL); err != nil {
		return nil, err
	}
	if err := namesSNS(leaf); err != nil {
		return nil, fmt.Errorf("certificate %s: %w", rawURL, err)
	}
	if err := v.checkChain(ctx, rawURL, leaf, certs[1:]); err != nil {
		return nil, err
	}
	return leaf, nil
}
