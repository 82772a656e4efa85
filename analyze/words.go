package analyze

import "fmt"

// splitWords splits a command line into words at blanks. Single and double
// quotes group blanks into a word and are removed; a backslash outside
// single quotes escapes the next character. Pipes and redirections are not
// interpreted yet: "|" and ">" are ordinary characters.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur []byte
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != '\'' && c == '\\' && i+1 < len(line):
			i++
			cur = append(cur, line[i])
			inWord = true
		case quote != 0:
			cur = append(cur, c)
		case c == '\'' || c == '"':
			quote = c
			inWord = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, string(cur))
				cur, inWord = cur[:0], false
			}
		default:
			cur = append(cur, c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, string(cur))
	}
	return words, nil
}
