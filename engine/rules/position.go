package rules

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// exprPos maps an offset (in runes) into a when expression to a position
// in the rules file. Literal blocks keep their lines; plain, quoted and
// folded scalars fold their lines into spaces, so the offset is walked
// through the source lines the scalar spans. Escapes in double-quoted
// scalars make the column approximate; the line is right.
func exprPos(n *yaml.Node, src []byte, offset int) (int, int) {
	lines := strings.Split(string(src), "\n")
	value := []rune(n.Value)
	offset = max(0, min(offset, len(value)))
	if n.Style == yaml.LiteralStyle {
		vline, vcol := 0, 0
		for _, r := range value[:offset] {
			if r == '\n' {
				vline, vcol = vline+1, 0
			} else {
				vcol++
			}
		}
		// The content starts after the indicator; its indentation is
		// that of its first line that is not blank.
		indent := 0
		for i := n.Line; i < len(lines); i++ {
			if t := strings.TrimLeft(lines[i], " "); t != "" {
				indent = len(lines[i]) - len(t)
				break
			}
		}
		return min(n.Line+1+vline, len(lines)), indent + vcol + 1
	}
	// The first segment starts after the indicator (folded: on the next
	// line) or the opening quote (quoted) or at the scalar (plain).
	line, col := n.Line, n.Column
	switch n.Style {
	case yaml.FoldedStyle:
		line, col = n.Line+1, 0
	case yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		col++
	}
	for ; line <= len(lines); line, col = line+1, 0 {
		text := []rune(lines[line-1])
		start := min(max(col-1, 0), len(text))
		if col == 0 { // a continuation line: its content starts after the indentation
			start = len(text) - len([]rune(strings.TrimLeft(string(text), " \t")))
		}
		seg := len(text) - start
		if offset <= seg || line == len(lines) {
			return line, start + min(offset, seg) + 1
		}
		offset -= seg + 1 // the line break folds into one character
	}
	return n.Line, n.Column
}
