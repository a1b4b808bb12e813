package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
	"github.com/sipdesk/sipdesk/internal/mail"
	"github.com/sipdesk/sipdesk/internal/store"
	"github.com/sipdesk/sipdesk/internal/web"
)

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := config.ParseServe(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sipdesk serve:", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	if err := runServe(ctx, cfg, log); err != nil {
		log.Error("serve stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// openStore opens the configured database with the secret key of the data
// folder (or SIPDESK_SECRET_KEY, which nodes sharing PostgreSQL must share).
func openStore(ctx context.Context, s config.Store, log *slog.Logger) (*store.DB, []byte, error) {
	if s.Database == "" {
		if err := os.MkdirAll(s.Data, 0o700); err != nil {
			return nil, nil, err
		}
	}
	key, err := store.LoadSecretKey(s.Data, os.Getenv("SIPDESK_SECRET_KEY"))
	if err != nil {
		return nil, nil, fmt.Errorf("secret key: %w", err)
	}
	db, err := store.Open(ctx, store.Options{DSN: s.Database, DataDir: s.Data, SecretKey: key, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	return db, key, nil
}

func runServe(ctx context.Context, cfg *config.Serve, log *slog.Logger) error {
	db, key, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		return err
	}
	defer db.Close()
	where := "sqlite:" + cfg.Data
	if cfg.Database != "" {
		where = config.Redacted(cfg.Database)
	}
	log.Info("store open", "store", where, "node", cfg.Node, "role", cfg.Role)
	startPprof(log)

	svc := app.New(db, app.Options{
		Realm: cfg.SIPDomain, PaidChannelLimit: cfg.PaidChannelLimit, AllowPrivateIPs: cfg.AllowPrivateIPs,
		HoldIPAccounts: cfg.HoldIPAccounts, BaseURL: cfg.BaseURL, LogCodes: cfg.SMTP == "", LeaseTTL: cfg.LeaseTTL, Log: log,
	})
	if cfg.Demo {
		if err := demoData(ctx, svc, log); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sipdesk_build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	start := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	applied := func() int64 { return -1 } // a node without an edge applies nothing
	if cfg.Role != "edge" {
		hs := web.New(svc, web.Options{Addr: cfg.HTTP, DevMailbox: cfg.SMTP == "", Secure: strings.HasPrefix(cfg.BaseURL, "https://"), Registry: reg, Log: log, SoftphoneWS: cfg.SIPWSURL})
		if err := hs.Listen(); err != nil {
			return err
		}
		start("http", hs.Serve)
		if cfg.SMTP != "" {
			sender, err := mail.NewSMTP(cfg.SMTP)
			if err != nil {
				return err
			}
			log.Info("mail goes over SMTP", "smtp", config.Redacted(cfg.SMTP))
			start("mail", func(ctx context.Context) error { mail.Deliver(ctx, db, sender, 2*time.Second, log); return nil })
		}
	}
	if cfg.Role != "portal" {
		edgeApplied, err := startEdge(ctx, cfg, db, svc, key, reg, log, start)
		if err != nil {
			return err
		}
		applied = edgeApplied
	}
	start("nodes", func(ctx context.Context) error { return nodeLoop(ctx, svc, cfg, applied, log) })

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	return err
}

// nodeLoop reports this node's heartbeat and applied config version, and
// moves accounts out of in_process once every live edge has applied them.
// It watches its own edge's applied version closely (a cheap atomic load) so
// that on a single node an account is active within moments of its change;
// other nodes' progress is checked every half second.
func nodeLoop(ctx context.Context, svc *app.Service, cfg *config.Serve, applied func() int64, log *slog.Logger) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var seen int64 = -1
	var lastBeat, lastCheck time.Time
	var lastApplied int64 = -2
	for {
		now := time.Now()
		a := applied()
		changed := a != lastApplied
		if changed || now.Sub(lastBeat) >= 2*time.Second {
			if err := svc.Heartbeat(ctx, cfg.Node, cfg.Role, a); err != nil {
				log.Warn("heartbeat failed", "err", err)
			} else {
				lastBeat, lastApplied = now, a
			}
		}
		if changed || now.Sub(lastCheck) >= 500*time.Millisecond {
			lastCheck = now
			v, n, err := svc.ActivateApplied(ctx, seen)
			if err != nil {
				log.Warn("activating applied accounts failed", "err", err)
			} else {
				if n > 0 {
					log.Info("SIP accounts applied at every edge", "activated", n, "version", v)
				}
				seen = v
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
