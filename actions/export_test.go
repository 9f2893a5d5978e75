package actions

// What the external tests of this package reach inside for.

// UnescapeHTML is unescapeHTML, for the payload tests.
var UnescapeHTML = unescapeHTML
