package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// handlerRules is the fixture of the original handler's rules.
var handlerRules = filepath.Join("..", "..", "testdata", "rules", "handler.yaml")

// mustLoad loads src as rules.yaml and fails t when it does not load.
func mustLoad(t testing.TB, src string) *Rules {
	t.Helper()
	r, err := Load("rules.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Load:\n%v", err)
	}
	return r
}

// loadShipped loads the handler rules fixture.
func loadShipped(tb testing.TB) *Rules {
	tb.Helper()
	src, err := os.ReadFile(handlerRules)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := Load(handlerRules, src)
	if err != nil {
		tb.Fatalf("the handler rules fixture does not load:\n%v", err)
	}
	return r
}
