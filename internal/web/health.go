package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// ReadyTimeout bounds the database check of /readyz.
const ReadyTimeout = time.Second

// healthRoutes mounts /healthz (the process answers), /readyz (the node
// can serve: 200, or 503 with the reasons as JSON) and /metrics. ping is
// the database check (nil: none); o.NotReady adds the reasons of the
// node's edge.
func healthRoutes(mux *http.ServeMux, o Options, ping func(context.Context) error) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		reasons := []string{}
		if o.NotReady != nil {
			reasons = append(reasons, o.NotReady()...)
		}
		if ping != nil && !slices.Contains(reasons, "database") {
			ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
			err := ping(ctx)
			cancel()
			if err != nil {
				reasons = append(reasons, "database")
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if len(reasons) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(reasons) == 0, "reasons": reasons})
	})
	mux.Handle("GET /metrics", MetricsHandler(o.Registry, o.Metrics))
}

// NewHealth is the HTTP server of a node without the portal (an edge):
// /healthz, /readyz (from o.NotReady) and /metrics only.
func NewHealth(o Options) *Server {
	mux := http.NewServeMux()
	healthRoutes(mux, o, nil)
	return &Server{srv: newHTTPServer(o.Addr, withClientAddr(withHeaders(mux, o.Secure), o.TrustedProxies), o.Log), log: o.Log}
}

func newHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
