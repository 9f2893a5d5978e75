package intake

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

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

// parseSNSURL applies the rules checkCertURL and checkSNSURL share: https,
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

// checkCertURL refuses a SigningCertURL of a message of topicArn that is
// not https, on the SNS host of the topic's region (sns.REGION.amazonaws.com,
// or sns.REGION.amazonaws.com.cn in China, compared case-insensitively),
// with a path ending in .pem made only of letters, digits, '.', '_', '-'
// and '/' (no percent-encoding, no "." or ".." segment), no user info, no
// port, no query or fragment. A topicArn that is not an SNS topic ARN of a
// region is refused. It never fetches.
func checkCertURL(raw, topicArn string) error {
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

// checkSNSURL refuses a SubscribeURL (or UnsubscribeURL) of a message of
// topicArn that is not https on the SNS host of the topic's region (the
// host rule of checkCertURL), or that has user info, a port, a fragment, a
// backslash, a space or a control character. Any path and a query are
// allowed. It never fetches.
func checkSNSURL(raw, topicArn string) error {
	_, err := parseSNSURL("SNS URL", raw, topicArn)
	return err
}
