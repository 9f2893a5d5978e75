package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/sesrouter/sesrouter/intake"
	"github.com/sesrouter/sesrouter/pipeline"
)

// lambdaGate builds, from the environment, what decides which inputs the
// function acts on (pipeline.Gate): SESROUTER_VERIFY_SNS (on, the
// default, or off), SESROUTER_SNS_CERT_DIR (as serve -sns-cert-dir),
// SESROUTER_TOPICS and SESROUTER_QUEUES (comma-separated ARNs). SNS
// signatures are checked by the verifier serve uses, built once: its
// certificates are cached for the life of the process.
func lambdaGate(e env) (*pipeline.Gate, error) {
	g := &pipeline.Gate{Retryable: func(err error) bool { return errors.Is(err, intake.ErrCertUnavailable) }}
	var err error
	if g.Topics, err = arnList(e, "SESROUTER_TOPICS", intake.CheckTopicArn); err != nil {
		return nil, err
	}
	if g.Queues, err = arnList(e, "SESROUTER_QUEUES", checkQueueArn); err != nil {
		return nil, err
	}
	certDir := e.getenv("SESROUTER_SNS_CERT_DIR")
	if certDir != "" {
		if fi, err := os.Stat(certDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("SESROUTER_SNS_CERT_DIR %s is not a folder", certDir)
		}
	}
	switch v := e.getenv("SESROUTER_VERIFY_SNS"); v {
	case "", "on":
		var client *http.Client // nil: intake's own
		if e.outbound != nil {
			client = &http.Client{Transport: e.outbound, Timeout: intake.DefaultFetchTimeout}
		}
		g.Verifier = intake.NewVerifier(intake.VerifierOptions{CertDir: certDir, HTTPClient: client})
	case "off":
	default:
		return nil, fmt.Errorf("SESROUTER_VERIFY_SNS is on or off, not %q", v)
	}
	return g, nil
}

// arnList reads the comma-separated ARNs of the variable name, each
// checked by check; unset or empty: none.
func arnList(e env, name string, check func(string) error) ([]string, error) {
	var arns []string
	for a := range strings.SplitSeq(e.getenv(name), ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if err := check(a); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		arns = append(arns, a)
	}
	return arns, nil
}

// checkQueueArn refuses what is not an SQS queue ARN,
// arn:PARTITION:sqs:REGION:ACCOUNT:NAME.
func checkQueueArn(arn string) error {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] != "sqs" || p[3] == "" || len(p[4]) != 12 || strings.Trim(p[4], "0123456789") != "" || p[5] == "" {
		return fmt.Errorf("%q is not an SQS queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)", arn)
	}
	return nil
}
