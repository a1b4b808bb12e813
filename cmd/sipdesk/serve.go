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

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
	"github.com/sipdesk/sipdesk/internal/edge"
	"github.com/sipdesk/sipdesk/internal/logq"
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
	db, err := store.Open(ctx, store.Options{DSN: s.Database, DataDir: s.Data, SecretKey: key, Logger: quietLog(log)})
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

	msgs, voice, err := verificationMessages(cfg, db, log)
	if err != nil {
		return err
	}
	svc := app.New(db, app.Options{
		Realm: cfg.SIPDomain, PaidChannelLimit: cfg.PaidChannelLimit, AllowPrivateIPs: cfg.AllowPrivateIPs,
		HoldIPAccounts: cfg.HoldIPAccounts, BaseURL: cfg.BaseURL, LogCodes: cfg.SMTP == "", LeaseTTL: cfg.LeaseTTL, Log: log,
		Messages:  messenger(msgs),
		DeviceKey: key,
		SIP:       sipEndpoints(cfg),
	})
	voice.setService(svc)
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
	errc := make(chan error, 8) // one per goroutine started below, so none blocks
	run := func(ctx context.Context, wg *sync.WaitGroup, name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start := func(name string, fn func(context.Context) error) { run(ctx, &wg, name, fn) }
	// HTTP (health, /readyz) and the heartbeat outlive the rest until the
	// edge has drained: a draining node stays visible as draining, not dead.
	late, lateCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer lateCancel()
	var lateWG sync.WaitGroup
	startLate := func(name string, fn func(context.Context) error) { run(late, &lateWG, name, fn) }

	// Every role serves HTTP: the portal and API with health and metrics,
	// or (an edge) health and metrics only. It binds first, so a taken
	// address stops the node before anything else starts.
	var ed *edge.Server
	hopt := web.Options{Addr: cfg.HTTP, DevMailbox: cfg.SMTP == "", Secure: strings.HasPrefix(cfg.BaseURL, "https://"), Registry: reg, Log: log, SoftphoneWS: cfg.SIPWSURL,
		TrustedProxies: cfg.TrustedProxies, Metrics: web.MetricsOptions{Token: cfg.MetricsToken, Customers: cfg.MetricsCustomers}}
	if cfg.Role != "portal" {
		hopt.NotReady = func() []string { return ed.NotReady() } // ed is set before the server starts
	}
	var hs *web.Server
	if cfg.Role == "edge" {
		hs = web.NewHealth(hopt)
	} else {
		hopt.Handlers = smsHandlers(msgs, reg)
		hopt.OpsAddr = cfg.OpsHTTP
		hs = web.New(svc, hopt)
	}
	if err := hs.Listen(); err != nil {
		return err
	}
	if cfg.Role != "portal" {
		if ed, err = startEdge(ctx, cfg, db, svc, key, reg, log, start); err != nil {
			return err
		}
	}
	startLate("http", hs.Serve)
	if cfg.Role != "edge" {
		if msgs != nil {
			start("verification messages", func(ctx context.Context) error { msgs.Run(ctx); return nil })
		}
		if cfg.SMTP != "" {
			sender, err := mail.NewSMTP(cfg.SMTP)
			if err != nil {
				return err
			}
			log.Info("mail goes over SMTP", "smtp", config.Redacted(cfg.SMTP))
			start("mail", func(ctx context.Context) error { mail.Deliver(ctx, db, sender, 2*time.Second, log); return nil })
		} else {
			log.Info("no --smtp: emails and verification codes go to the dev mailbox", "url", cfg.BaseURL+"/dev/mail")
		}
		log.Info("portal ready", "url", cfg.BaseURL+"/", "listen", hs.Addr())
	}
	if cfg.Role != "portal" && cfg.Carrier == "" {
		log.Warn("no --carrier: every outbound call is refused with 503 No carrier configured")
	}
	self := nodeReport(cfg, ed, hs.Addr())
	startLate("nodes", func(ctx context.Context) error { return nodeLoop(ctx, svc, self, quietLog(log)) })

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	lateCancel()
	lateWG.Wait()
	return err
}

// nodeReport is what this node says about itself at each heartbeat.
func nodeReport(cfg *config.Serve, ed *edge.Server, httpAddr string) func() sipdesk.Node {
	return func() sipdesk.Node {
		n := sipdesk.Node{Name: cfg.Node, Role: cfg.Role, AppliedVersion: -1, HTTPAddr: httpAddr, Version: version}
		if ed == nil {
			return n // a node without an edge applies nothing
		}
		n.AppliedVersion, n.SIPAddr = ed.AppliedVersion(), cfg.SIP
		if a := ed.UDPAddr(); a != nil {
			n.SIPAddr = a.String()
		}
		n.LiveCalls, n.Bindings, n.Draining = ed.ActiveCalls(), ed.Bindings(), ed.Draining()
		return n
	}
}

// Node loop timing: a heartbeat every nodeBeat (NodeTTL is 10 s), each
// store call bounded by nodeCallTimeout; failed heartbeats are retried after
// a backoff that doubles up to nodeBackoffMax (under NodeTTL, so a node is
// not taken for dead while its database answers again); dead nodes are
// pruned every nodePruneEvery.
const (
	nodeBeat        = 2 * time.Second
	nodeCallTimeout = 2 * time.Second
	nodeBackoffMin  = 500 * time.Millisecond
	nodeBackoffMax  = 4 * time.Second
	nodePruneEvery  = time.Hour
)

// nodeLoop reports this node's heartbeat (applied config version, listeners,
// calls, bindings, draining), moves accounts out of in_process once every
// live edge has applied them, and prunes nodes dead for a day. It watches
// its own edge's applied version closely (a cheap atomic load) so that on a
// single node an account is active within moments of its change; other
// nodes' progress is checked every half second.
func nodeLoop(ctx context.Context, svc *app.Service, self func() sipdesk.Node, log *slog.Logger) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var seen int64 = -1
	var lastBeat, lastCheck, nextBeat, lastPrune time.Time
	var lastApplied int64 = -2
	lastDraining := false
	backoff := nodeBackoffMin
	call := func(f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, nodeCallTimeout)
		defer cancel()
		return f(cctx)
	}
	for {
		now := time.Now()
		n := self()
		changed := n.AppliedVersion != lastApplied
		beatNow := changed || n.Draining != lastDraining // a drain shows in node list at once
		if (beatNow || now.Sub(lastBeat) >= nodeBeat) && !now.Before(nextBeat) {
			if err := call(func(c context.Context) error { return svc.Beat(c, n) }); err != nil && ctx.Err() == nil {
				log.Warn("heartbeat failed", "err", err, "retry_in", backoff)
				nextBeat, backoff = now.Add(backoff), min(2*backoff, nodeBackoffMax)
			} else {
				lastBeat, lastApplied, lastDraining, backoff = now, n.AppliedVersion, n.Draining, nodeBackoffMin
			}
		}
		if (changed || now.Sub(lastCheck) >= 500*time.Millisecond) && !now.Before(nextBeat) {
			lastCheck = now
			var v int64
			var k int
			err := call(func(c context.Context) (err error) { v, k, err = svc.ActivateApplied(c, seen); return err })
			if err != nil && ctx.Err() == nil {
				log.Warn("activating applied accounts failed", "err", err)
			} else if err == nil {
				if k > 0 {
					log.Info("SIP accounts applied at every edge", "activated", k, "version", v)
				}
				seen = v
			}
		}
		if now.Sub(lastPrune) >= nodePruneEvery && !now.Before(nextBeat) {
			lastPrune = now
			k := 0
			err := call(func(c context.Context) (err error) { k, err = svc.PruneNodes(c); return err })
			if err != nil && ctx.Err() == nil {
				log.Warn("pruning dead nodes failed", "err", err)
			} else if k > 0 {
				log.Info("dead nodes pruned", "nodes", k, "silent_for", app.NodePrune.String())
			}
			if err := call(func(c context.Context) error { return svc.SweepEdgeRequests(c, true) }); err != nil && ctx.Err() == nil {
				log.Warn("pruning edge requests failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// quietLog is log with each kind of warning at most once per 10 s, with a
// count of the ones held back (the database being away fails every beat).
func quietLog(log *slog.Logger) *slog.Logger { return logq.Logger(log) }

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sipEndpoints is what the connection page and GET /api/v1/connection tell
// customers (config: --public-sip-host, --sip, --sip-tls, --sip-ws-url).
func sipEndpoints(cfg *config.Serve) app.Endpoints {
	host, port, tlsPort := cfg.SIPEndpoint()
	return app.Endpoints{Host: host, UDPPort: port, TLSPort: tlsPort, WSSURL: cfg.SIPWSURL}
}
