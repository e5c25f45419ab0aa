// Package yamltext answers questions about YAML source text that the YAML
// library does not: how many lines a document has and where it ends,
// counted the way the parser counts them. The parsers use End to keep the
// positions in their error messages inside the file (the YAML library puts
// an implicit empty value, as in "---" or "? key", on the line after the
// last); tests use Lines to check those positions.
package yamltext

import (
	"strings"
	"unicode/utf16"
)

// Lines counts the lines of a YAML stream as the parser numbers them: CR,
// LF, CRLF, NEL, LS and PS each end one. A stream that opens with a UTF-16
// byte-order mark is decoded first, as the parser does, so a line break
// encoded in UTF-16 counts and a stray 0x0A byte inside a UTF-16 character
// does not.
func Lines(data []byte) int {
	line, _ := End(data)
	return line
}

// End returns the 1-based line and column just past the last character of
// a YAML stream: the last position a message about it may name.
func End(data []byte) (line, col int) {
	s := strings.ReplaceAll(decode(data), "\r\n", "\n")
	line, col = 1, 1
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			line, col = line+1, 1
		default:
			col++
		}
	}
	return line, col
}

// Clamp moves a position past the end of data to End(data), and leaves any
// other position as it is.
func Clamp(data []byte, line, col int) (int, int) {
	if endLine, endCol := End(data); line > endLine {
		return endLine, endCol
	}
	return line, col
}

func decode(data []byte) string {
	var bigEndian bool
	switch {
	case len(data) >= 2 && data[0] == 0xff && data[1] == 0xfe:
	case len(data) >= 2 && data[0] == 0xfe && data[1] == 0xff:
		bigEndian = true
	default:
		return string(data)
	}
	body := data[2:]
	units := make([]uint16, 0, len(body)/2)
	for i := 0; i+1 < len(body); i += 2 {
		if bigEndian {
			units = append(units, uint16(body[i])<<8|uint16(body[i+1]))
		} else {
			units = append(units, uint16(body[i+1])<<8|uint16(body[i]))
		}
	}
	return string(utf16.Decode(units))
}
