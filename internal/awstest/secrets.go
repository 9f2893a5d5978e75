package awstest

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretsManager returns a Secrets Manager client of the server (Config).
func (s *Server) SecretsManager() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(s.Config())
}

// Secret makes a secret named after tb (Name) whose SecretString is value,
// and returns its ARN.
func (s *Server) Secret(tb testing.TB, value string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := s.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(Name(tb)), SecretString: aws.String(value)})
	if err != nil {
		tb.Fatalf("awstest: creating a secret: %v\n%s", err, lastLines(s.Output(), 5))
	}
	return aws.ToString(out.ARN)
}

// PutSecret gives the secret id a new current value, as a rotation does.
func (s *Server) PutSecret(tb testing.TB, id, value string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.SecretsManager().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)}); err != nil {
		tb.Fatalf("awstest: putting a value into the secret %s: %v", id, err)
	}
}
