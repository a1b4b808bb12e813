package sipdesk

import "strings"

// NormalizeNumber turns a dialed or typed number into E.164 digits without the
// '+': it accepts a leading '+' or '00', a "tel:" or "sip:" URI (the user part),
// and the spaces, dashes, dots and brackets people type. The result has 7 to 15
// digits and no leading zero, or the error is EInvalidNumber.
func NormalizeNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	low := strings.ToLower(s)
	switch {
	case strings.HasPrefix(low, "tel:"):
		s = s[4:]
		if i := strings.IndexByte(s, ';'); i >= 0 { // tel URI parameters
			s = s[:i]
		}
	case strings.HasPrefix(low, "sip:"), strings.HasPrefix(low, "sips:"):
		s = s[strings.IndexByte(s, ':')+1:]
		if i := strings.IndexAny(s, "@;"); i >= 0 {
			s = s[:i]
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' && b.Len() == 0 && i == strings.IndexByte(s, '+'):
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", &Error{Code: EInvalidNumber, Message: "must be a phone number in international format"}
		}
	}
	d := b.String()
	if strings.HasPrefix(d, "00") && !strings.Contains(s, "+") {
		d = d[2:]
	}
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", &Error{Code: EInvalidNumber, Message: "must be a phone number in international format (7 to 15 digits with country code)"}
	}
	return d, nil
}

// NormalizePhone validates a phone number and returns it as "+<digits>", the
// form stored for verified phones and Caller ID numbers. field names the input.
func NormalizePhone(field, s string) (string, error) {
	d, err := NormalizeNumber(s)
	if err != nil {
		return "", &Error{Code: EInvalid, Field: field, Message: ErrorMessage(err)}
	}
	return "+" + d, nil
}
