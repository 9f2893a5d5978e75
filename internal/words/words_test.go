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
		{0, "0 rules"}, {1, "1 rule"}, {2, "2 rules"}, {999, "999 rules"}, {1000, "1,000 rules"}, {-1, "-1 rules"},
	} {
		if got := Plural(tt.n, "rule", "rules"); got != tt.want {
			t.Errorf("Plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := Plural(3, "address", "addresses"); got != "3 addresses" {
		t.Errorf("Plural(3, address) = %q", got)
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
