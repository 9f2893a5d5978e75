package words

import (
	"math"
	"testing"
)

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{
		{0, "0 rules"}, {1, "1 rule"}, {2, "2 rules"}, {1234, "1234 rules"}, {-1, "-1 rules"},
	} {
		if got := Plural(tt.n, "rule", "rules"); got != tt.want {
			t.Errorf("Plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := noun(1, "address", "addresses") + " " + noun(3, "address", "addresses"); got != "address addresses" {
		t.Errorf("noun = %q", got)
	}
	for n, want := range map[int]string{1: "1 address", 2: "2 addresses", 1234: "1,234 addresses"} {
		if got := Count(n, "address", "addresses"); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestThousands(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{
		{0, "0"}, {12, "12"}, {123, "123"}, {1234, "1,234"}, {123456, "123,456"}, {1234567, "1,234,567"},
		{-1234, "-1,234"}, {-123, "-123"}, {math.MinInt64, "-9,223,372,036,854,775,808"},
	} {
		if got := Thousands(tt.n); got != tt.want {
			t.Errorf("Thousands(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
