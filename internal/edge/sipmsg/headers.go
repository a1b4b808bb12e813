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

// dialogHeaders are the headers of an INVITE that its dialog still reads
// once the INVITE is answered: what a response copies (RFC 3261 8.2.6.2,
// 12.1.1; Timestamp for a 100), the remote target and the route set.
var dialogHeaders = [...]string{"Via", "Record-Route", "From", "To", "Call-ID", "CSeq", "Contact", "Timestamp"}

// DialogInvite is req reduced to what a UAS dialog needs of the INVITE that
// made it (dialogHeaders, the Request-URI, where it came from), sharing
// req's headers. sipgo's dialog session clones the INVITE it is given and
// keeps the clone for the whole call; given this, it keeps no credentials,
// body or other headers (350 to 720 bytes less a call for the INVITEs of
// BenchmarkDialogInviteHeld and docs/PERFORMANCE.md).
func DialogInvite(req *sip.Request) *sip.Request {
	d := sip.NewRequest(req.Method, req.Recipient)
	d.SipVersion = req.SipVersion
	for _, h := range req.Headers() {
		for _, name := range dialogHeaders {
			if nameIs(h.Name(), name) {
				d.AppendHeader(h)
				break
			}
		}
	}
	d.SetTransport(req.Transport())
	d.SetSource(req.Source())
	d.SetDestination(req.Destination())
	d.Laddr = req.Laddr
	return d
}
