package analyze

import (
	"fmt"
	"strconv"
	"strings"
)

// parseHex reads an address or other hexadecimal argument as crash's
// htoll does: hex digits with an optional 0x, at most 16 of them.
func parseHex(what, s string) (uint64, error) {
	digits := s
	if strings.HasPrefix(digits, "0x") || strings.HasPrefix(digits, "0X") {
		digits = digits[2:]
	}
	if digits == "" || !isHex(digits) {
		return 0, fmt.Errorf("invalid %s %q: expected a hexadecimal number", what, s)
	}
	if len(digits) > 16 {
		return 0, fmt.Errorf("invalid %s %q: more than 16 hexadecimal digits", what, s)
	}
	v, err := strconv.ParseUint(digits, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: %v", what, s, err)
	}
	return v, nil
}

// parseNumber reads a count or offset as crash's stol does: decimal when
// it is all decimal digits ("010" is ten), hexadecimal otherwise ("1f",
// "0x10").
func parseNumber(what, s string) (uint64, error) {
	if s != "" && isDecimal(s) {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid %s %q: too large", what, s)
		}
		return v, nil
	}
	v, err := parseHex(what, s)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: expected a decimal or hexadecimal number", what, s)
	}
	return v, nil
}

func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
