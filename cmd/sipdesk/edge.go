package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
)

// startEdge starts the SIP edge and returns its applied config version.
// Until the edge lands, the node applies each version at once.
func startEdge(ctx context.Context, cfg *config.Serve, svc *app.Service, reg *prometheus.Registry, log *slog.Logger,
	start func(string, func(context.Context) error)) (func() int64, error) {
	return func() int64 {
		v, err := svc.Store().ConfigVersion(ctx)
		if err != nil {
			return -1
		}
		return v
	}, nil
}
