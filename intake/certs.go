package intake

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

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
