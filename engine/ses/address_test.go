package ses

import "testing"

// displayNameCases are addresses with a display name, each with the mailbox
// Mailbox gives, or "" when it gives an error.
var displayNameCases = []struct{ raw, want string }{
	{"Shop <shop@example.com>", "shop@example.com"},
	{"  Shop Team   <Shop.Orders@Example.COM>  ", "Shop.Orders@example.com"},
	{"<a@b.example>", "a@b.example"},
	{"Shop<a@b.example>", "a@b.example"},
	{"Shop 2 <o'brien+tag@b.example>", "o'brien+tag@b.example"},
	{`"Shop, Inc." <a@b.example>`, "a@b.example"},     // quoted name: net/mail
	{"Shop <a..b@b.example>", ""},                     // not a dot-atom: net/mail refuses it
	{"Shop <a@b.example> trailing", ""},               // text after the address
	{"Shop <a@b.example>>", ""},                       // a second '>'
	{"Shop (comment) <a@b.example>", "a@b.example"},   // a comment: net/mail
	{"=?utf-8?q?Shop?= <a@b.example>", "a@b.example"}, // an encoded word: net/mail
	{"Shöp <a@b.example>", "a@b.example"},             // not ASCII: net/mail
	{"Shop <@b.example>", ""},                         // empty local part
	{"Shop <a@>", ""},                                 // empty domain
	{"Shop <a@b@c.example>", ""},                      // two @
	{"Shop <.a@b.example>", ""},                       // leading dot
}

// TestMailboxWithDisplayName holds Mailbox to what it says of addresses
// with a display name.
func TestMailboxWithDisplayName(t *testing.T) {
	for _, c := range displayNameCases {
		got, err := Mailbox(c.raw)
		if c.want == "" {
			if err == nil {
				t.Errorf("Mailbox(%q) = %q, want an error", c.raw, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Mailbox(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
}
