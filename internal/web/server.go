// Package web serves sipdesk over HTTP: the JSON API, health and metrics,
// the dev mailbox and the customer portal.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/web/api"
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
	// NotReady lists why the node's edge cannot serve (edge.Server.NotReady);
	// /readyz answers 503 with them. nil: the node has no edge.
	NotReady func() []string
	// Handlers are more routes by pattern (the SMS delivery reports).
	Handlers map[string]http.Handler
}

// Server is the HTTP side of a node.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
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
	return &Server{srv: newHTTPServer(o.Addr, withHeaders(mux), o.Log), log: o.Log}
}

// Listen binds the address, so the caller knows at once if it is taken.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr is the bound address once Listen returned.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx is done, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
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

// withHeaders sets the headers every answer carries.
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
