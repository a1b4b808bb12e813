package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
	"github.com/sipdesk/sipdesk/internal/edge"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/edge/transport"
	"github.com/sipdesk/sipdesk/internal/media"
)

// startEdge starts the SIP edge and returns it (its applied config version,
// readiness, calls and bindings are read by the node loop and /readyz).
func startEdge(ctx context.Context, cfg *config.Serve, st sipdesk.Store, svc *app.Service, key []byte, reg *prometheus.Registry, log *slog.Logger,
	start func(string, func(context.Context) error)) (*edge.Server, error) {
	var mc edge.MediaConfig
	if cfg.SIPWS != "" {
		lo, hi, err := media.ParsePortRange(cfg.RTPPorts)
		if err != nil {
			return nil, fmt.Errorf("--rtp-ports: %w", err)
		}
		mc = edge.MediaConfig{PortMin: lo, PortMax: hi, PublicIP: mediaIP(cfg.SIP)}
	}
	// Channel limits on the leases in the store (renewed, fenced and swept
	// on sipdesk.LeaseTiming); the same admission batches the call records.
	// On SQLite this edge is the only one: the calls are counted in memory
	// and the leases written behind (policy.ChannelOptions.Local).
	channels := policy.NewChannels(st, svc, cfg.Node, policy.ChannelOptions{Timing: sipdesk.LeaseTimingFor(cfg.LeaseTTL), Log: quietLog(log),
		Local: cfg.Database == ""})
	guard := shield.GuardConfig{Failures: off(cfg.AccountFailures), Window: cfg.AccountFailureWindow,
		Duration: cfg.AccountGuard, Trust: cfg.AccountTrust}
	srv, err := edge.New(edge.Config{
		Addr:            cfg.SIP,
		TLSAddr:         cfg.SIPTLS,
		TLSCert:         cfg.SIPTLSCert,
		TLSKey:          cfg.SIPTLSKey,
		WSAddr:          cfg.SIPWS,
		WS:              transport.WSConfig{Origins: splitList(cfg.WSOrigins)},
		Media:           mc,
		Realm:           cfg.SIPDomain,
		Carrier:         cfg.Carrier,
		CarrierAddrs:    splitList(cfg.CarrierAddrs),
		CarrierUsername: cfg.CarrierUsername,
		CarrierPassword: cfg.CarrierPassword,
		MaxCallDuration: cfg.MaxCallDuration,
		DrainTimeout:    cfg.DrainTimeout,
		OverloadWait:    off(cfg.OverloadWait),
		Shared:          cfg.Database != "",
		NodeTTL:         app.NodeTTL,
		PollInterval:    pollInterval(cfg.Database),
		MaxContacts:     off(cfg.MaxContacts),
		BanFailures:     off(cfg.BanFailures),
		BanWindow:       cfg.BanWindow,
		BanDuration:     cfg.BanDuration,
		ChallengeRate:   cfg.ChallengeRate,
		AccountGuard:    guard,
		Node:            cfg.Node,
		NonceKey:        derive(key, "sipdesk digest nonce"),
		Channels:        channels,
		Records:         channels,
		Registry:        reg,
		VoiceCalls:      cfg.SMS.Voice,
		RequestPoll:     pollInterval(cfg.Database),
	}, st, log)
	if err != nil {
		return nil, err
	}
	start("sip", srv.Run)
	return srv, nil
}

// pollInterval is the edge's fallback config check: on SQLite, `sipdesk
// admin` writes from another process that cannot signal, so the edge looks
// every 200 ms (one indexed read); PostgreSQL signals every change (NOTIFY)
// and keeps the 1 s default.
func pollInterval(database string) time.Duration {
	if database == "" {
		return 200 * time.Millisecond
	}
	return 0
}

// derive makes a purpose-bound key from the secret key, so the nonce key
// is shared by every node but differs from the encryption key.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// off maps a flag where 0 turns a limit off (--ban-failures, --max-contacts,
// --overload-wait) to the edge's setting, where 0 means the default and a
// negative value turns it off.
func off[T int | time.Duration](v T) T {
	if v <= 0 {
		return -1
	}
	return v
}

// mediaIP is the address the media relay writes in SDPs: the host of --sip
// (127.0.0.1 when --sip listens on every address).
func mediaIP(sipAddr string) netip.Addr {
	host, _, _ := net.SplitHostPort(sipAddr)
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsUnspecified() {
		return netip.MustParseAddr("127.0.0.1")
	}
	return a
}
