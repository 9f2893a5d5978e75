package rules

import (
	"regexp"
	"strings"
)

// Credentials in the rules file: a Slack webhook URL or its path (with or
// without a scheme or host) and Slack tokens. The rules file must hold
// none; where one is found, a problem says what it looks like and never
// repeats it.
var (
	webhookRE = regexp.MustCompile(`(?i)(?:https?://)?(?:hooks\.slack(?:-gov)?\.com)?/?services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+|hooks\.slack(?:-gov)?\.com\S*`)
	tokenRE   = regexp.MustCompile(`(?:^|[^A-Za-z0-9])(xox[a-z]-[A-Za-z0-9-]*|xoxe[.-][A-Za-z0-9.-]*|xapp-[A-Za-z0-9-]*)`)
	urlRE     = regexp.MustCompile(`(?i)https?://\S*`)
)

// looksLikeCredential says what s looks like when it holds a credential
// or a URL ("a webhook URL", "a Slack token", "a URL"), or "".
func looksLikeCredential(s string) string {
	switch {
	case webhookRE.MatchString(s):
		return "a webhook URL"
	case tokenRE.MatchString(s):
		return "a Slack token"
	case urlRE.MatchString(s):
		return "a URL"
	}
	return ""
}

// redactCredentials replaces, in a problem's text, every part that looks
// like a webhook URL or a token with what it looks like, so that no
// problem, whatever value or key it quotes, repeats a credential.
func redactCredentials(s string) string {
	if !strings.Contains(s, "services/") && !strings.Contains(strings.ToLower(s), "hooks.slack") &&
		!strings.Contains(s, "xox") && !strings.Contains(s, "xapp-") {
		return s
	}
	s = webhookRE.ReplaceAllString(s, "<webhook URL>")
	return tokenRE.ReplaceAllStringFunc(s, func(m string) string {
		if len(m) > 0 && !strings.HasPrefix(m, "x") {
			return m[:1] + "<token>"
		}
		return "<token>"
	})
}
