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
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := svc.Ready(ctx); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
	if o.DevMailbox {
		m := &devMailbox{svc: svc}
		mux.HandleFunc("GET /dev/mail", m.list)
		mux.HandleFunc("GET /dev/mail/{id}", m.show)
	}
	for pattern, h := range o.Handlers {
		mux.Handle(pattern, h)
	}
	ui.New(svc, ui.Options{Log: o.Log, Secure: o.Secure, DevMailbox: o.DevMailbox, SoftphoneWS: o.SoftphoneWS}).Register(mux)
	return &Server{
		srv: &http.Server{
			Addr:              o.Addr,
			Handler:           withHeaders(mux),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
		},
		log: o.Log,
	}
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
