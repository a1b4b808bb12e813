// Package sipmsg holds what every protocol layer of the edge needs to read
// and answer a SIP request: the checks sipgo's parser leaves to us
// (RFC 4475), the source address, header helpers, answering, and the
// refusal table (one SIP answer per refusal).
package sipmsg

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// MaxMessageSize is the largest SIP message the edge sends or takes over
// UDP, and takes over WebSocket (TCP and TLS take any size).
const MaxMessageSize = 8192

// LooksLikeSIP reports whether a datagram is empty (a keepalive) or starts
// with a request line ending in SIP/2.0 or a status line.
func LooksLikeSIP(b []byte) bool {
	b = bytes.TrimLeft(b, "\r\n\t ")
	if len(b) == 0 {
		return true
	}
	line := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		line = b[:i]
	}
	line = bytes.TrimRight(line, "\r\t ")
	return bytes.HasPrefix(line, []byte("SIP/")) || bytes.Contains(line, []byte(" SIP/"))
}

// AddrPortOf is the address and port of a transport address.
func AddrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort()
	case *net.TCPAddr:
		return v.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// SourceOf is the source of a request (IPv4-mapped addresses unmapped).
func SourceOf(req *sip.Request) (netip.AddrPort, bool) {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// Validate checks what the handlers rely on and what sipgo's parser lets
// through (RFC 4475): it returns 0 or the status code and reason to answer
// (for 420, the unsupported option tags instead of the reason).
func Validate(req *sip.Request) (int, string) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		return 400, "Missing mandatory header"
	}
	if v := req.Via(); v.ProtocolName != "SIP" || v.ProtocolVersion != "2.0" {
		return 400, "Bad Via"
	}
	for _, n := range SingleHeaders {
		if countHeaders(req, n) > 1 {
			return 400, "Multiple " + n
		}
	}
	if req.CSeq().MethodName != req.Method && Served[req.Method] {
		return 400, "CSeq method mismatch"
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return 400, "Content-Length mismatch"
	}
	if req.Recipient.Scheme != "sip" && req.Recipient.Scheme != "sips" && req.Recipient.Scheme != "tel" {
		return 416, "Unsupported URI Scheme"
	}
	if req.Recipient.Headers.Length() > 0 {
		return 400, "Headers in Request-URI"
	}
	if h := FirstHeader(req, "Date"); h != nil {
		if _, err := time.Parse(time.RFC1123, h.Value()); err != nil || !strings.HasSuffix(h.Value(), " GMT") {
			return 400, "Bad Date"
		}
	}
	if req.Method == sip.REGISTER {
		if sc := req.To().Address.Scheme; sc != "sip" && sc != "sips" {
			return 400, "To must be a SIP URI"
		}
		// Headers in a Contact would be copied into requests toward it.
		for _, h := range Headers(req, "Contact") {
			if c, ok := h.(*sip.ContactHeader); ok && c.Address.Headers.Length() > 0 {
				return 400, "Headers in Contact"
			}
		}
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		var bad []string
		for _, h := range Headers(req, "Require") {
			for _, t := range strings.Split(h.Value(), ",") {
				if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "timer") {
					bad = append(bad, t)
				}
			}
		}
		if len(bad) > 0 {
			return 420, strings.Join(bad, ", ")
		}
	}
	return 0, ""
}

// SingleHeaders may appear once in a request (RFC 4475 multi01, mcl01).
var SingleHeaders = []string{"From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// Allowed lists the methods the edge serves (Allow header).
const Allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO"

// Served are the methods with a handler; others get 501 whatever their CSeq.
var Served = map[sip.RequestMethod]bool{sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true,
	sip.OPTIONS: true, sip.REGISTER: true, sip.UPDATE: true, sip.INFO: true}

// NoDialog marks a server transaction that cannot carry a dialog (the
// edge's UDP fast path): its request must get a final response that is
// not a 2xx.
type NoDialog interface{ NoDialog() }

// Respond answers req with a response built from it (nothing when tx is
// nil: an ACK has no transaction to answer on).
func Respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) error {
	if tx == nil {
		return nil
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	return tx.Respond(res)
}

// Header is the value of header name (or its compact form), "" when absent.
func Header(req *sip.Request, name, compact string) string {
	if h := FirstHeader(req, name); h != nil {
		return h.Value()
	}
	if compact != "" {
		if h := FirstHeader(req, compact); h != nil {
			return h.Value()
		}
	}
	return ""
}

// HasOptionTag reports whether header name (or its compact form) lists tag.
func HasOptionTag(req *sip.Request, name, compact, tag string) bool {
	hs := Headers(req, name)
	if compact != "" {
		hs = append(hs, Headers(req, compact)...)
	}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

// CopyBody copies the body and its Content-Type.
func CopyBody(from *sip.Request, to *sip.Request) {
	if ct := from.ContentType(); ct != nil {
		to.AppendHeader(sip.NewHeader("Content-Type", ct.Value()))
	}
	if b := from.Body(); len(b) > 0 {
		to.SetBody(append([]byte(nil), b...))
	} else {
		to.SetBody(nil)
	}
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(req *sip.Request) (string, bool) {
	for _, h := range Headers(req, "Authorization") {
		v := strings.TrimSpace(h.Value())
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:]), true
		}
	}
	return "", false
}

// IsWS reports whether req came over SIP over WebSocket.
func IsWS(req *sip.Request) bool {
	t := req.Transport()
	return strings.EqualFold(t, "ws") || strings.EqualFold(t, "wss")
}

// HasDigest reports whether req carries a digest answer in header hname.
func HasDigest(req *sip.Request, hname string) bool {
	for _, h := range Headers(req, hname) {
		if v := strings.TrimSpace(h.Value()); len(v) > 7 && strings.EqualFold(v[:7], "digest ") {
			return true
		}
	}
	return false
}

// WantsBearer reports whether an INVITE is to be authenticated by JWT (or
// challenged for one) rather than by source address or digest.
func WantsBearer(req *sip.Request) bool {
	if _, ok := BearerToken(req); ok {
		return true
	}
	return IsWS(req)
}
