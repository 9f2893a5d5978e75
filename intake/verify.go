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
	"slices"
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

// snsCertName is the name SNS's signing certificates bear, whatever the
// region.
const snsCertName = "sns.amazonaws.com"

// snsHost returns the SNS host of the region of topicArn
// (arn:PARTITION:sns:REGION:ACCOUNT:NAME): sns.REGION.amazonaws.com, or
// sns.REGION.amazonaws.com.cn for a region of China. REGION must look like
// a region and belong to PARTITION (aws, aws-cn for cn-*, aws-us-gov for
// us-gov-*): a host built from anything else could be an S3 bucket's
// (sns.s3-accelerate.amazonaws.com).
func snsHost(topicArn string) (string, error) {
	parts := strings.Split(topicArn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" {
		return "", fmt.Errorf("TopicArn %q is not arn:PARTITION:sns:REGION:ACCOUNT:NAME", topicArn)
	}
	partition, region := parts[1], parts[3]
	if !isRegion(region) {
		return "", fmt.Errorf("TopicArn %q: %q is not a region", topicArn, region)
	}
	want, host := "aws", "sns."+region+".amazonaws.com"
	switch {
	case strings.HasPrefix(region, "cn-"):
		want, host = "aws-cn", host+".cn"
	case strings.HasPrefix(region, "us-gov-"):
		want = "aws-us-gov"
	}
	if partition != want {
		return "", fmt.Errorf("TopicArn %q: region %s is in partition %s, not %s", topicArn, region, want, partition)
	}
	return host, nil
}

// CheckTopicArn refuses a topic ARN whose messages Verify refuses whatever
// they hold: one that is not arn:PARTITION:sns:REGION:ACCOUNT:NAME with a
// REGION shaped like a region of PARTITION (aws, aws-cn for cn-*,
// aws-us-gov for us-gov-*). An allow-list of topics can be checked with it
// before the first message comes.
func CheckTopicArn(topicArn string) error {
	_, err := snsHost(topicArn)
	return err
}

// isRegion reports whether s is shaped like an AWS region:
// ^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+$ (us-east-1, us-gov-west-1,
// us-isob-east-1).
func isRegion(s string) bool {
	parts := strings.Split(s, "-")
	n := len(parts)
	if n < 3 || n > 4 || len(parts[0]) != 2 || !isLower(parts[0]) || !isLower(parts[n-2]) || !isDigits(parts[n-1]) {
		return false
	}
	if n == 4 {
		q := parts[1]
		return q == "gov" || strings.HasPrefix(q, "iso") && isLower(q)
	}
	return true
}

// isLower reports whether s is one or more of a-z.
func isLower(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz") == ""
}

// isDigits reports whether s is one or more of 0-9.
func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// parseSNSURL applies the rules CheckCertURL and CheckSNSURL share: https,
// the SNS host of topicArn's region, no user info, no port, no fragment, no
// backslash, space or control character.
func parseSNSURL(what, raw, topicArn string) (*url.URL, error) {
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
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%s %q: fragment not allowed", what, raw)
	}
	host, err := snsHost(topicArn)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, raw, err)
	}
	if strings.ToLower(u.Host) != host {
		return nil, fmt.Errorf("%s %q: host is not %s, the SNS host of the topic's region", what, raw, host)
	}
	return u, nil
}

// CheckCertURL refuses a SigningCertURL of a message of topicArn that is
// not https, on the SNS host of the topic's region (sns.REGION.amazonaws.com,
// or sns.REGION.amazonaws.com.cn in China, compared case-insensitively),
// with a path ending in .pem made only of letters, digits, '.', '_', '-'
// and '/' (no percent-encoding, no "." or ".." segment), no user info, no
// port, no query or fragment. A topicArn that is not an SNS topic ARN of a
// region is refused. It never fetches.
func CheckCertURL(raw, topicArn string) error {
	const what = "SigningCertURL"
	u, err := parseSNSURL(what, raw, topicArn)
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

// CheckSNSURL refuses a SubscribeURL (or UnsubscribeURL) of a message of
// topicArn that is not https on the SNS host of the topic's region (the
// host rule of CheckCertURL), or that has user info, a port, a fragment, a
// backslash, a space or a control character. Any path and a query are
// allowed. It never fetches.
func CheckSNSURL(raw, topicArn string) error {
	_, err := parseSNSURL("SNS URL", raw, topicArn)
	return err
}

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
	// MaxCertSize bounds a certificate file; 0 means DefaultMaxCertSize.
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
	c.CheckRedirect = refuseRedirect
	v.client = &c
	return v
}

// Verify checks m's SignatureVersion ("1": SHA1withRSA, unless
// MinSignatureVersion is 2; "2": SHA256withRSA), its SigningCertURL
// (CheckCertURL against m's TopicArn, before any fetch), and the signature
// over StringToSign with the certificate's RSA key. Every certificate must name sns.amazonaws.com (in
// its CN or a DNS SAN). One fetched over the network must also be valid
// now and chain to Roots (with the intermediates of its file, else with
// the issuer at its CA Issuers URL on amazontrust.com: SNS serves the leaf
// alone); it is cached by URL (a bounded cache). A certificate from CertDir
// is the operator's: its chain and dates are not checked. The error says
// why verification failed; it wraps ErrCertUnavailable when the
// certificate could not be obtained for a possibly transient reason.
func (v *Verifier) Verify(ctx context.Context, m *engine.SNSMessage) error {
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
	if err := CheckCertURL(m.SigningCertURL, m.TopicArn); err != nil {
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

// checkChain refuses a leaf that does not chain to the roots, with the
// intermediates of its file. When these do not reach a root (SNS serves
// the leaf alone), the issuer at the leaf's first CA Issuers URL on
// amazontrust.com is fetched and tried. Any such issuer is authenticated
// by the chain, whatever carried it (CA Issuers URLs are plain http).
func (v *Verifier) checkChain(ctx context.Context, rawURL string, leaf *x509.Certificate, rest []*x509.Certificate) error {
	inter := x509.NewCertPool()
	for _, c := range rest {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots: v.roots, Intermediates: inter, CurrentTime: v.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	_, err := leaf.Verify(opts)
	if _, unknown := errors.AsType[x509.UnknownAuthorityError](err); unknown {
		if i := slices.IndexFunc(leaf.IssuingCertificateURL, isAmazonTrustURL); i >= 0 {
			issuers, ferr := v.fetchIssuers(ctx, leaf.IssuingCertificateURL[i])
			if ferr != nil {
				return ferr
			}
			for _, c := range issuers {
				inter.AddCert(c)
			}
			_, err = leaf.Verify(opts)
		}
	}
	if err != nil {
		return fmt.Errorf("certificate %s: does not chain to a trusted root: %w", rawURL, err)
	}
	return nil
}

// isAmazonTrustURL reports whether raw is an http or https URL on a host
// of amazontrust.com, where Amazon's CAs publish their certificates.
func isAmazonTrustURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Opaque != "" {
		return false
	}
	host := strings.ToLower(u.Host)
	return strings.HasSuffix(host, ".amazontrust.com") && !strings.ContainsAny(host, ":[]")
}

// fetchIssuers GETs the certificates at a CA Issuers URL: DER, or PEM.
func (v *Verifier) fetchIssuers(ctx context.Context, rawURL string) ([]*x509.Certificate, error) {
	data, err := v.get(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		certs, err = pemCerts(data)
	}
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", rawURL, err)
	}
	return certs, nil
}

// get GETs rawURL with a timeout and a size limit, and wants 200.
func (v *Verifier) get(ctx context.Context, rawURL string) ([]byte, error) {
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
	return data, nil
}

// refuseRedirect is the CheckRedirect of the clients of intake: an SNS URL
// is checked before it is fetched, and where it redirects is not.
func refuseRedirect(*http.Request, []*http.Request) error {
	return errors.New("redirect not followed")
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// namesSNS refuses a certificate that does not name sns.amazonaws.com in
// its subject's CN or a DNS SAN.
func namesSNS(c *x509.Certificate) error {
	is := func(name string) bool { return strings.EqualFold(name, snsCertName) }
	if is(c.Subject.CommonName) || slices.ContainsFunc(c.DNSNames, is) {
		return nil
	}
	return fmt.Errorf("does not name %s (CN %q, DNS names %v)", snsCertName, c.Subject.CommonName, c.DNSNames)
}

// parseCerts decodes the PEM CERTIFICATE blocks of a certificate file: the
// first is the signing certificate, with an RSA public key; the others are
// intermediates.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	certs, err := pemCerts(data)
	if err != nil {
		return nil, err
	}
	if _, ok := certs[0].PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("public key is %T, not RSA", certs[0].PublicKey)
	}
	return certs, nil
}

// pemCerts decodes the PEM CERTIFICATE blocks in data, at least one.
func pemCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return certs, nil
}
