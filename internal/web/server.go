// Package web serves sipdesk over HTTP: the JSON API, health and metrics,
// the dev mailbox and the customer portal.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/web/api"
	"github.com/sipdesk/sipdesk/internal/web/ops"
	"github.com/sipdesk/sipdesk/internal/web/ui"
)

// Options configure the HTTP server.
type Options struct {
	Addr       string
	DevMailbox bool // serve /dev/mail (no SMTP configured)
	Secure     bool // the portal is reached over HTTPS (cookies get Secure)
	Registry   *prometheus.Registry
	Log        *slog.Logger
	// SoftphoneWS is the SIP over WebSocket URL the softphone page uses.
	SoftphoneWS string
	// TrustedProxies are the addresses whose X-Forwarded-For/Forwarded
	// name the client (--trusted-proxies); anyone else is its own client.
	TrustedProxies []netip.Prefix
	// Metrics guard /metrics (--metrics-token, --metrics-customers).
	Metrics MetricsOptions
	// NotReady lists why the node's edge cannot serve (edge.Server.NotReady);
	// /readyz answers 503 with them. nil: the node has no edge.
	NotReady func() []string
	// Handlers are more routes by pattern (the SMS delivery reports).
	Handlers map[string]http.Handler
	// OpsAddr, when set, serves the operator console (/ops/) and API
	// (/api/ops/v1) only on this address (--ops-http), not on Addr.
	OpsAddr string
}

// Server is the HTTP side of a node.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
	svc *app.Service
	ops *Server // the operator console's own listener (--ops-http), or nil
}

// New builds the handler tree.
func New(svc *app.Service, o Options) *Server {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(svc, o.Log))
	healthRoutes(mux, o, svc.Ready)
	if o.DevMailbox {
		m := &devMailbox{svc: svc}
		mux.HandleFunc("GET /dev/mail", m.list)
		mux.HandleFunc("GET /dev/mail/{id}", m.show)
	}
	for pattern, h := range o.Handlers {
		mux.Handle(pattern, h)
	}
	ui.New(svc, ui.Options{Log: o.Log, Secure: o.Secure, DevMailbox: o.DevMailbox, SoftphoneWS: o.SoftphoneWS}).Register(mux)
	console := ops.New(svc, ops.Options{Log: o.Log, Secure: o.Secure})
	var opsSrv *Server
	if o.OpsAddr == "" {
		console.Register(mux)
	} else {
		omux := http.NewServeMux()
		console.Register(omux)
		opsSrv = &Server{srv: newHTTPServer(o.OpsAddr, withClientAddr(withHeaders(omux, o.Secure), o.TrustedProxies), o.Log), log: o.Log}
	}
	return &Server{
		srv: newHTTPServer(o.Addr, withClientAddr(withHeaders(mux, o.Secure), o.TrustedProxies), o.Log),
		log: o.Log,
		svc: svc,
		ops: opsSrv,
	}
}

// OpsAddr is the operator console's own bound address (--ops-http), "" when
// it shares the portal's.
func (s *Server) OpsAddr() string {
	if s.ops == nil {
		return ""
	}
	return s.ops.Addr()
}

// Listen binds the address, so the caller knows at once if it is taken.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	if s.ops != nil {
		if err := s.ops.Listen(); err != nil {
			ln.Close()
			return err
		}
	}
	return nil
}

// Addr is the bound address once Listen returned.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2) // the portal's and the console's listener
	go func() { errc <- s.srv.Serve(s.ln) }()
	if s.svc != nil { // a portal
		go s.prune(ctx)
	}
	if s.ops != nil {
		go func() { errc <- s.ops.Serve(ctx) }()
	}
	s.log.Info("http listening", "addr", s.ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// prune deletes run-out attempt counters and old outbox rows every 10
// minutes (every portal node does; the deletes are idempotent).
func (s *Server) prune(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if err := s.svc.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("pruning counters and outbox failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// withHeaders sets the headers every answer carries; HSTS when the portal
// is served over HTTPS (secure).
func withHeaders(h http.Handler, secure bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		if secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
