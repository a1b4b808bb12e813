package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
	"github.com/sipdesk/sipdesk/internal/edge"
)

// startEdge starts the SIP edge and returns its applied config version.
func startEdge(ctx context.Context, cfg *config.Serve, svc *app.Service, key []byte, reg *prometheus.Registry, log *slog.Logger,
	start func(string, func(context.Context) error)) (func() int64, error) {
	srv, err := edge.New(edge.Config{
		Addr:            cfg.SIP,
		TLSAddr:         cfg.SIPTLS,
		TLSCert:         cfg.SIPTLSCert,
		TLSKey:          cfg.SIPTLSKey,
		Realm:           cfg.SIPDomain,
		Carrier:         cfg.Carrier,
		CarrierAddrs:    splitList(cfg.CarrierAddrs),
		CarrierUsername: cfg.CarrierUsername,
		CarrierPassword: cfg.CarrierPassword,
		MaxCallDuration: cfg.MaxCallDuration,
		BanFailures:     banFailures(cfg.BanFailures),
		BanWindow:       cfg.BanWindow,
		BanDuration:     cfg.BanDuration,
		Node:            cfg.Node,
		NonceKey:        derive(key, "sipdesk digest nonce"),
		// Channel limits on the leases in the store (renewed every
		// sipdesk.LeaseRenew), call records through the service.
		Admission: edge.NewChannels(svc, cfg.Node, edge.ChannelOptions{Log: log}),
		Registry:  reg,
	}, svc.Store(), log)
	if err != nil {
		return nil, err
	}
	start("sip", srv.Run)
	return srv.AppliedVersion, nil
}

// derive makes a purpose-bound key from the secret key, so the nonce key
// is shared by every node but differs from the encryption key.
func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// banFailures maps the flag (0: never ban) to the edge's setting
// (negative disables, 0 means the default).
func banFailures(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
