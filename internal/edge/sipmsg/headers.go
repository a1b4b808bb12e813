package sipmsg

import "github.com/emiago/sipgo/sip"

// The edge looks headers up with FirstHeader and Headers rather than
// sipgo's GetHeader and GetHeaders: those lower the case of every header's
// name on each lookup, an allocation for each name outside sipgo's short
// list (Authorization, Expires, User-Agent, Allow, …), and checking and
// authenticating one REGISTER took about fifteen lookups.

// headerList is a request or a response.
type headerList interface{ Headers() []sip.Header }

// FirstHeader is m's first header called name, in any letter case (nil
// if there is none), as GetHeader finds it.
func FirstHeader(m headerList, name string) sip.Header {
	for _, h := range m.Headers() {
		if nameIs(h.Name(), name) {
			return h
		}
	}
	return nil
}

// Headers are m's headers called name, in any letter case, in their order
// (nil if there is none), as GetHeaders finds them.
func Headers(m headerList, name string) []sip.Header {
	var hs []sip.Header
	for _, h := range m.Headers() {
		if nameIs(h.Name(), name) {
			hs = append(hs, h)
		}
	}
	return hs
}

// countHeaders is how many of m's headers are called name.
func countHeaders(m headerList, name string) int {
	n := 0
	for _, h := range m.Headers() {
		if nameIs(h.Name(), name) {
			n++
		}
	}
	return n
}

// nameIs compares header names as sipgo does: equal once ASCII letters
// are lowered.
func nameIs(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
