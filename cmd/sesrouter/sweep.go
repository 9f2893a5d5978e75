package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sesrouter/sesrouter/pipeline"
)

func cmdSweep(args []string, stdout, stderr io.Writer, e env) int {
	fmt.Fprintln(stderr, "sesrouter sweep: not yet")
	return exitUsage
}

func lambdaSweep(ctx context.Context, l *live, h *pipeline.Handler, cfg *pipeline.Config, req pipeline.Sweep, stdout io.Writer) error {
	return errors.New("sweep: not yet")
}
