package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// startPprof serves net/http/pprof on SIPDESK_PPROF_ADDR (e.g.
// 127.0.0.1:6060) when it is set: for profiling under load (make bench-sip).
// It is off by default and never on the portal's listener.
func startPprof(log *slog.Logger) {
	addr := os.Getenv("SIPDESK_PPROF_ADDR")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			log.Warn("pprof listener", "addr", addr, "error", err)
		}
	}()
	log.Info("pprof listening", "addr", addr)
}
