package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/sesrouter/sesrouter/actions/slack"
	"github.com/sesrouter/sesrouter/actions/suppression"
	"github.com/sesrouter/sesrouter/internal/pace"
	"github.com/sesrouter/sesrouter/pipeline"
	"github.com/sesrouter/sesrouter/pipeline/dedup"
	"github.com/sesrouter/sesrouter/pipeline/state"
	"github.com/sesrouter/sesrouter/pipeline/storm"
	"github.com/sesrouter/sesrouter/rulestore"
)

// defaultTimeout bounds the actions of one notification, retries included.
const defaultTimeout = 2 * time.Minute

// seenLimit bounds the notifications remembered to tell duplicates:
// 100,000 keys, about 10 MB.
const seenLimit = 100_000

// newLogger returns the logger, at $SESROUTER_LOG_LEVEL (debug, info,
// warn, error; info when unset).
func newLogger(w io.Writer, e env) (*slog.Logger, error) {
	var level slog.Level
	if v := e.getenv("SESROUTER_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("SESROUTER_LOG_LEVEL is debug, info, warn or error, not %q", v)
		}
	}
	return pipeline.NewLogger(w, level), nil
}

// newParts builds what carries out actions for real, from the
// environment: Slack's credentials and URL, SESROUTER_CONCURRENCY (the
// processes that share every pace), and the AWS SDK's configuration,
// read only when a rules file or a sweep needs SES.
func newParts(e env, logger *slog.Logger, concurrency int) (*pipeline.Parts, error) {
	processes := 1
	if v := e.getenv("SESROUTER_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("SESROUTER_CONCURRENCY is a positive whole number, not %q", v)
		}
		processes = n
	}
	timeout := defaultTimeout
	if e.actionTimeout > 0 {
		timeout = e.actionTimeout
	}
	client := e.slackClient
	if client == nil {
		client = slack.NewHTTPClient(concurrency)
	}
	aws := new(suppression.AWSConfig)
	if e.sesClient != nil {
		aws.Options = append(aws.Options, config.WithHTTPClient(e.sesClient))
	}
	storms := storm.New()
	st, err := stateTable(e, aws.Options...)
	if err != nil {
		return nil, err
	}
	if st != nil {
		storms = pipeline.FleetStorm(st)
	}
	return &pipeline.Parts{
		Slack: slack.SlackConfig{Token: slack.Secret(e.getenv("SLACK_BOT_TOKEN")), APIURL: e.getenv("SLACK_API_URL"),
			Getenv: e.getenv, Vault: newVault(e), HTTPClient: client, Pacers: pace.NewPacers(processes)},
		CheckSES: aws.Check,
		NewSES: func(ctx context.Context) (pipeline.SESAPI, error) {
			c, err := aws.NewSESClient(ctx)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Seen: dedup.NewSeen(seenLimit), Storm: storms, State: st, Logger: logger, Timeout: timeout,
	}, nil
}

// stateTable returns the fleet state $SESROUTER_STATE_TABLE names, nil
// when it is not set. The client is made only when there is a table.
func stateTable(e env, opts ...func(*config.LoadOptions) error) (state.Store, error) {
	name := e.getenv("SESROUTER_STATE_TABLE")
	if name == "" {
		return nil, nil
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("SESROUTER_STATE_TABLE is set, but the AWS configuration cannot be read: %w", err)
	}
	return state.NewTable(cfg, name), nil
}

// newVault returns the vault of the secret $SESROUTER_SECRETS names, nil
// when it is not set. Its Secrets Manager client is made, from the AWS
// SDK's configuration, at its first read: when the handler is built, so
// that a dry run never makes it.
func newVault(e env) *slack.Vault {
	id := e.getenv("SESROUTER_SECRETS")
	if id == "" {
		return nil
	}
	return slack.NewVault(id, func(ctx context.Context) (slack.SecretsAPI, error) {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("the AWS configuration cannot be read: %w", err)
		}
		return secretsmanager.NewFromConfig(cfg), nil
	})
}

// joinedLines prints a joined error one problem per line.
func joinedLines(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

// setup loads the rules and builds the logger and the parts that carry
// out actions; it prints why not and reports false (exit status 2). A
// dry run may use history without a state table: it counts 0.
func setup(name, rulesFlag string, dryRun bool, e env, stderr io.Writer, concurrency int) (*pipeline.Config, *pipeline.Parts, bool) {
	cfg, _, parts, ok := setupFrom(rulestore.NewStore(), name, pipeline.RulesPath(rulesFlag, e.getenv, e.executable), dryRun, e, stderr, concurrency)
	return cfg, parts, ok
}

// setupFrom is setup of the rules file path, read through store; obj is
// what was read.
func setupFrom(store *rulestore.Store, name, path string, dryRun bool, e env, stderr io.Writer, concurrency int) (*pipeline.Config, *rulestore.Object, *pipeline.Parts, bool) {
	cfg, obj, ok := loadRules(store, path, stderr)
	if !ok {
		return nil, nil, nil, false
	}
	if err := cfg.NeedsState(dryRun || e.getenv("SESROUTER_STATE_TABLE") != ""); err != nil {
		fmt.Fprintf(stderr, "sesrouter %s: %v\n", name, err)
		return nil, nil, nil, false
	}
	logger, err := newLogger(stderr, e)
	var parts *pipeline.Parts
	if err == nil {
		parts, err = newParts(e, logger, concurrency)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter %s: %v\n", name, err)
		return nil, nil, nil, false
	}
	return cfg, obj, parts, true
}

// setupLive is setup for a process that runs on (serve, lambda): the
// rules are put in force with their Handler, and renewed from where they
// were read (a file on Reload, an S3 object every
// $SESROUTER_RULES_REFRESH too); metrics gets the RulesRefused metric of
// each refusal. It prints why not and reports false (exit status 2).
func setupLive(name, rulesFlag string, e env, metrics, stderr io.Writer, concurrency int, gate *pipeline.Gate) (*pipeline.Live, *pipeline.Parts, bool) {
	refresh, err := rulesRefresh(e)
	if err != nil {
		fmt.Fprintf(stderr, "sesrouter %s: %v\n", name, err)
		return nil, nil, false
	}
	src := pipeline.Source{Name: pipeline.RulesPath(rulesFlag, e.getenv, e.executable), Store: rulestore.NewStore(), Refresh: refresh}
	cfg, obj, parts, ok := setupFrom(src.Store, name, src.Name, false, e, stderr, concurrency)
	if !ok {
		return nil, nil, false
	}
	parts.Gate = gate
	live, err := pipeline.NewLive(context.Background(), parts, src, cfg, obj, metrics)
	if err != nil {
		cannot(name, err, stderr)
		return nil, nil, false
	}
	return live, parts, true
}

// rulesRefresh reads $SESROUTER_RULES_REFRESH: how long the rules of an
// S3 object are used before its ETag is looked at again (default
// pipeline.DefaultRefresh; 0: before every item, or every invocation).
func rulesRefresh(e env) (time.Duration, error) {
	v := e.getenv("SESROUTER_RULES_REFRESH")
	if v == "" {
		return pipeline.DefaultRefresh, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("SESROUTER_RULES_REFRESH is a duration such as 1m, 30s or 0s, not %q", v)
	}
	return d, nil
}

// cannot prints why the actions cannot be carried out: exit status 2.
func cannot(name string, err error, stderr io.Writer) int {
	if !strings.Contains(err.Error(), "\n") {
		fmt.Fprintf(stderr, "sesrouter %s: cannot carry out the actions: %v\n", name, err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "sesrouter %s: cannot carry out the actions:\n  %s\n", name, joinedLines(err))
	return exitUsage
}
