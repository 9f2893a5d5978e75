package intake

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sesrouter/sesrouter/engine"
)

// ErrCertUnavailable is wrapped by Verify's error when the signing
// certificate could not be obtained for a reason that may be transient (a
// network error, a timeout, a status other than 200): the message itself was
// not shown to be forged, so the sender may retry.
var ErrCertUnavailable = errors.New("signing certificate unavailable")

// Defaults for VerifierOptions.
const (
	DefaultFetchTimeout = 5 * time.Second
	DefaultMaxCertSize  = 64 << 10
	// certCacheSize bounds the number of fetched certificates kept.
	certCacheSize = 64
)

// isSNSHost reports whether host is sns.<region>.amazonaws.com or
// sns.<region>.amazonaws.com.cn, region being [a-z0-9-]{3,}. The comparison
// is case-insensitive, as DNS is.
func isSNSHost(host string) bool {
	h := strings.ToLower(host)
	rest, ok := strings.CutPrefix(h, "sns.")
	if !ok {
		return false
	}
	region, ok := strings.CutSuffix(rest, ".amazonaws.com")
	if !ok {
		region, ok = strings.CutSuffix(rest, ".amazonaws.com.cn")
		if !ok {
			return false
		}
	}
	if len(region) < 3 {
		return false
	}
	for _, c := range region {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseSNSURL applies the rules CheckCertURL and CheckSNSURL share: https,
// an SNS host, no user info, no port, no fragment, no backslash, space or
// control character.
func parseSNSURL(what, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s: empty", what)
	}
	for _, c := range raw {
		if c <= ' ' || c == 0x7f || c == '\\' || c > 0x7e {
			return nil, fmt.Errorf("%s %q: forbidden character %q", what, raw, c)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case u.Scheme != "https":
		return nil, fmt.Errorf("%s %q: not https", what, raw)
	case u.Opaque != "":
		return nil, fmt.Errorf("%s %q: not a hierarchical URL", what, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%s %q: user info not allowed", what, raw)
	case strings.Contains(u.Host, ":"):
		return nil, fmt.Errorf("%s %q: port not allowed", what, raw)
	case !isSNSHost(u.Host):
		return nil, fmt.Errorf("%s %q: host %q is not sns.<region>.amazonaws.com(.cn)", what, raw, u.Host)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%s %q: fragment not allowed", what, raw)
	}
	return u, nil
}

// CheckCertURL refuses a SigningCertURL that is not https, on a host
// sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn (region
// [a-z0-9-]{3,}, compared case-insensitively), with a path ending in .pem
// made only of letters, digits, '.', '_', '-' and '/' (no percent-encoding,
// no "." or ".." segment), no user info, no port, no query or fragment. It
// never fetches.
func CheckCertURL(raw string) error {
	const what = "SigningCertURL"
	u, err := parseSNSURL(what, raw)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "?") {
		return fmt.Errorf("%s %q: query not allowed", what, raw)
	}
	if u.RawPath != "" || !strings.HasPrefix(u.Path, "/") {
		return fmt.Errorf("%s %q: bad path", what, raw)
	}
	for _, c := range u.Path {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/", c)) {
			return fmt.Errorf("%s %q: forbidden character %q in path", what, raw, c)
		}
	}
	for _, seg := range strings.Split(u.Path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%s %q: bad path", what, raw)
		}
	}
	if name := path.Base(u.Path); !strings.HasSuffix(name, ".pem") || name == ".pem" {
		return fmt.Errorf("%s %q: path does not end in a .pem file name", what, raw)
	}
	return nil
}

// CheckSNSURL refuses a SubscribeURL (or UnsubscribeURL) that is not https
// on an SNS host (the host rule of CheckCertURL), or that has user info, a
// port, a fragment, a backslash, a space or a control character. Any path and
// a query are allowed. It never fetches.
func CheckSNSURL(raw string) error {
	_, err := parseSNSURL("SNS URL", raw)
	return err
}

// VerifierOptions configures a Verifier. The zero value fetches
// certificates with the defaults.
type VerifierOptions struct {
	// CertDir, when set, is a folder certificates are read from (file name =
	// last path element of SigningCertURL) instead of being fetched; such
	// certificates are used even when expired.
	CertDir string
	// HTTPClient fetches certificates; nil means a client with FetchTimeout.
	// Redirects are never followed, whichever client is given.
	HTTPClient *http.Client
	// FetchTimeout bounds one fetch; 0 means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MaxCertSize bounds a certificate file; 0 means DefaultMaxCertSize.
	MaxCertSize int64
}

// Verifier verifies SNS message signatures, with certificates from a folder
// or fetched and cached. It is safe for concurrent use.
type Verifier struct {
	certDir string
	client  *http.Client
	timeout time.Duration
	maxSize int64
	now     func() time.Time

	mu       sync.Mutex
	cache    map[string]*x509.Certificate // fetched, by URL
	order    []string                     // cache keys, oldest first
	inflight map[string]*fetchCall
}

// fetchCall is one fetch in progress that concurrent Verify calls for the
// same URL wait on.
type fetchCall struct {
	done chan struct{}
	cert *x509.Certificate
	err  error
}

// NewVerifier returns a Verifier configured by o.
func NewVerifier(o VerifierOptions) *Verifier {
	v := &Verifier{
		certDir:  o.CertDir,
		timeout:  o.FetchTimeout,
		maxSize:  o.MaxCertSize,
		now:      time.Now,
		cache:    map[string]*x509.Certificate{},
		inflight: map[string]*fetchCall{},
	}
	if v.timeout <= 0 {
		v.timeout = DefaultFetchTimeout
	}
	if v.maxSize <= 0 {
		v.maxSize = DefaultMaxCertSize
	}
	var c http.Client
	if o.HTTPClient != nil {
		c = *o.HTTPClient
	} else {
		c.Timeout = v.timeout
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error {
		return errors.New("redirect not followed")
	}
	v.client = &c
	return v
}

// Verify checks m's SignatureVersion ("1": SHA1withRSA, "2":
// SHA256withRSA), its SigningCertURL (CheckCertURL, before any fetch), and
// the signature over StringToSign with the certificate's RSA key.
// Certificates fetched over the network are cached by URL (a bounded cache)
// and must be currently valid; a certificate from CertDir need not be. The
// error says why verification failed; it wraps ErrCertUnavailable when the
// certificate could not be obtained for a possibly transient reason.
func (v *Verifier) Verify(ctx context.Context, m *engine.SNSMessage) error {
	if m == nil {
		return errors.New("sns signature: no message")
	}
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return fmt.Errorf("sns signature: unsupported SignatureVersion %q", m.SignatureVersion)
	}
	if err := CheckCertURL(m.SigningCertURL); err != nil {
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
	pub := cert.PublicKey.(*rsa.PublicKey) // checked by parseCert
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

// certificate returns the certificate for a URL that passed CheckCertURL.
func (v *Verifier) certificate(ctx context.Context, rawURL string) (*x509.Certificate, error) {
	if v.certDir != "" {
		return v.readLocal(rawURL)
	}
	v.mu.Lock()
	if c, ok := v.cache[rawURL]; ok {
		v.mu.Unlock()
		return c, v.checkValid(c, rawURL)
	}
	call, ok := v.inflight[rawURL]
	if !ok {
		call = &fetchCall{done: make(chan struct{})}
		v.inflight[rawURL] = call
		// The fetch runs detached from this caller's cancellation, so that
		// other callers waiting on it do not inherit it; it has its own
		// timeout.
		go func() {
			call.cert, call.err = v.fetch(context.WithoutCancel(ctx), rawURL)
			v.mu.Lock()
			delete(v.inflight, rawURL)
			if call.err == nil {
				v.store(rawURL, call.cert)
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
// from CertDir. Its validity dates are not checked.
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
	c, err := parseCert(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", name, err)
	}
	return c, nil
}

// fetch GETs a certificate with a timeout and a size limit and checks that
// it is a currently valid RSA certificate.
func (v *Verifier) fetch(ctx context.Context, rawURL string) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", rawURL, err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCertUnavailable, rawURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: HTTP status %d", ErrCertUnavailable, rawURL, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, v.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCertUnavailable, rawURL, err)
	}
	if int64(len(data)) > v.maxSize {
		return nil, fmt.Errorf("certificate %s: larger than %d bytes", rawURL, v.maxSize)
	}
	c, err := parseCert(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", rawURL, err)
	}
	if err := v.checkValid(c, rawURL); err != nil {
		return nil, err
	}
	return c, nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseCert decodes the first PEM CERTIFICATE block in data and requires an
// RSA public key.
func parseCert(data []byte) (*x509.Certificate, error) {
	var block *pem.Block
	for {
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			break
		}
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("public key is %T, not RSA", c.PublicKey)
	}
	return c, nil
}
