package riffyn

import (
	"strings"
	"unicode"
)

// title upper-cases each letter that follows a non-letter and lower-cases
// the others, as Python's str.title does ("LED 395nm" -> "Led 395Nm").
func title(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		isLetter := unicode.IsLetter(r)
		switch {
		case isLetter && !prevLetter:
			b.WriteRune(unicode.ToUpper(r))
		case isLetter:
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
		prevLetter = isLetter
	}
	return b.String()
}

// PascalCase turns a name into a protocol name: "Plate transfer" ->
// "PlateTransfer". Characters other than letters and digits are dropped.
func PascalCase(name string) string {
	var b strings.Builder
	for _, r := range title(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// CamelCase turns a property name into a key: "OD measured" ->
// "odMeasured", "LED 395nm setpoint" -> "led395NmSetpoint".
func CamelCase(name string) string {
	p := []rune(PascalCase(name))
	if len(p) == 0 {
		return ""
	}
	p[0] = unicode.ToLower(p[0])
	return string(p)
}
