package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-json-experiment/json"
)

// RenewEvery is how often, at most, a Vault reads its secret again.
const RenewEvery = time.Minute

// loadTimeout bounds one read of the secret.
const loadTimeout = 30 * time.Second

// SecretsAPI is the Secrets Manager call a Vault makes;
// *secretsmanager.Client satisfies it.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Vault holds the variables of a Secrets Manager secret
// ($SESROUTER_SECRETS): its SecretString, a JSON object of variable names
// to values (SLACK_BOT_TOKEN, any webhook_env name). It is read by Load
// and read again by Renew, at most once every RenewEvery, when Slack
// refuses a credential, so that a rotated credential is used without a
// restart. Values are Secrets: they never print, and no error names one.
// It is safe for concurrent use.
type Vault struct {
	id        string
	newClient func(context.Context) (SecretsAPI, error)

	// reading is held by the one read in progress: a Renew that arrives
	// meanwhile waits for it, then uses what it read.
	reading chan struct{}
	client  SecretsAPI // made at the first read; guarded by reading
	readAt  time.Time  // when the last read started; guarded by reading

	mu     sync.RWMutex
	values map[string]Secret // nil until a read succeeded
}

// NewVault returns the Vault of the secret id (a name or an ARN), read
// with the client newClient makes at the first read. It reads nothing
// yet: Load does.
func NewVault(id string, newClient func(context.Context) (SecretsAPI, error)) *Vault {
	return &Vault{id: id, newClient: newClient, reading: make(chan struct{}, 1)}
}

// ID is the secret's name or ARN, as given.
func (v *Vault) ID() string { return v.id }

// Load reads the secret unless a read has succeeded already (nil: no
// vault, nothing to do). Its error names the secret and never a value.
func (v *Vault) Load(ctx context.Context) error {
	if v == nil {
		return nil
	}
	if err := v.lock(ctx); err != nil {
		return err
	}
	defer v.unlock()
	v.mu.RLock()
	loaded := v.values != nil
	v.mu.RUnlock()
	if loaded {
		return nil
	}
	return v.read(ctx)
}

// Renew reads the secret again, unless a read started less than
// RenewEvery ago; a Renew that finds a read in progress waits for it
// (nil: no vault). After it, Value gives what was read. A failed read
// keeps the values read before.
func (v *Vault) Renew(ctx context.Context) error {
	if v == nil {
		return nil
	}
	if err := v.lock(ctx); err != nil {
		return err
	}
	defer v.unlock()
	if !v.readAt.IsZero() && time.Since(v.readAt) < RenewEvery {
		return nil
	}
	return v.read(ctx)
}

// Value is the variable name of the secret, "" when it has none (or for
// a nil vault).
func (v *Vault) Value(name string) Secret {
	if v == nil {
		return ""
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.values[name]
}

// lock waits for the read in progress, if any, or ctx's end.
func (v *Vault) lock(ctx context.Context) error {
	select {
	case v.reading <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the secret %s ($SESROUTER_SECRETS): %w", v.id, context.Cause(ctx))
	}
}

func (v *Vault) unlock() { <-v.reading }

// read reads the secret and keeps its values; the caller holds reading.
func (v *Vault) read(ctx context.Context) error {
	v.readAt = time.Now()
	values, err := v.fetch(ctx)
	if err != nil {
		return fmt.Errorf("the secret %s ($SESROUTER_SECRETS) cannot be read: %w", v.id, err)
	}
	v.mu.Lock()
	v.values = values
	v.mu.Unlock()
	return nil
}

// fetch makes the client unless made, and reads and decodes the secret.
func (v *Vault) fetch(ctx context.Context) (map[string]Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if v.client == nil {
		c, err := v.newClient(ctx)
		if err != nil {
			return nil, err
		}
		v.client = c
	}
	out, err := v.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(v.id)})
	if err != nil {
		return nil, err
	}
	if out.SecretString == nil {
		return nil, errors.New("it has no SecretString (a JSON object of variable names to values)")
	}
	return decodeVariables(*out.SecretString)
}

// decodeVariables decodes a SecretString: a JSON object of variable names
// to string values. Its errors name at most a variable, never a value nor
// any part of the text (the JSON library's errors may quote either).
func decodeVariables(s string) (map[string]Secret, error) {
	const want = "its SecretString is not a JSON object of variable names to string values"
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		var se *json.SemanticError
		if errors.As(err, &se) && se.JSONPointer != "" {
			return nil, fmt.Errorf("%s: %q is not a string", want, se.JSONPointer.LastToken())
		}
		return nil, errors.New(want)
	}
	if m == nil {
		return nil, errors.New(want)
	}
	out := make(map[string]Secret, len(m))
	for k, val := range m {
		out[k] = Secret(val)
	}
	return out, nil
}

// credential is where a notifier's credential comes from: fixed (the
// environment's, or none), or the variable name of a vault, looked up at
// every post.
type credential struct {
	fixed Secret
	vault *Vault
	name  string
}

// get is the credential now.
func (c credential) get() Secret {
	if c.vault != nil {
		return c.vault.Value(c.name)
	}
	return c.fixed
}

// renewed is what to post with once more after err: when Slack refused
// used as invalid or revoked and the credential comes from a vault, the
// vault is read again (Renew, at most once every RenewEvery), and a value
// other than used is returned with a nil error. Otherwise it returns err,
// with the renewal's failure when there was one.
func (c credential) renewed(ctx context.Context, used Secret, err error) (Secret, error) {
	if c.vault == nil || !credentialRefused(err) {
		return "", err
	}
	if rerr := c.vault.Renew(ctx); rerr != nil {
		return "", fmt.Errorf("%w; reading it again: %w", err, rerr)
	}
	if fresh := c.vault.Value(c.name); fresh != "" && fresh != used {
		return fresh, nil
	}
	return "", err
}

// String implements fmt.Stringer: a vault prints as its secret's name.
// Without it, fmt would print its unexported values as they are,
// bypassing Secret's methods.
func (v *Vault) String() string { return "secret " + v.id }

// GoString implements fmt.GoStringer, for %#v, for the same reason.
func (v *Vault) GoString() string { return v.String() }

// LogValue implements slog.LogValuer, for the same reason.
func (v *Vault) LogValue() slog.Value { return slog.StringValue(v.String()) }
