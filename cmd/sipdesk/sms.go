package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
	"github.com/sipdesk/sipdesk/internal/notify"
)

// verificationMessages builds the dispatcher of verification codes from the
// --sms-* flags, or nil in dev mode (no gateway and no --smtp: codes go to
// the dev mailbox and the log). With --smtp and no gateway, codes are queued
// for no channel and fail visibly: the customer and the operator see it.
func verificationMessages(cfg *config.Serve, st sipdesk.Store, log *slog.Logger) (*notify.Dispatcher, error) {
	if cfg.Role == "edge" {
		return nil, nil // codes are issued and sent by portal nodes
	}
	var ch notify.Channel
	switch s := cfg.SMS; {
	case s.Kannel != "":
		k, err := notify.NewKannel(s.Kannel, s.KannelUser, s.KannelPassword, s.From)
		if err != nil {
			return nil, err
		}
		ch = k
		log.Info("verification codes go through Kannel", "url", s.Kannel, "user", s.KannelUser, "from", s.From, "reports", cfg.BaseURL+notify.ReportPath)
	case s.Webhook != "":
		w, err := notify.NewWebhook(s.Webhook, s.WebhookSecret)
		if err != nil {
			return nil, err
		}
		ch = w
		log.Info("verification codes go to the webhook", "url", config.Redacted(s.Webhook))
	case cfg.SMTP == "":
		return nil, nil
	default:
		log.Warn("no SMS gateway (--sms-kannel or --sms-webhook): verification codes cannot be sent; customers are told, support can use `sipdesk admin customer verify-phone`")
	}
	return notify.New(st, notify.Options{SMS: ch, ReportBase: cfg.BaseURL, Log: log}), nil
}

// messenger is d as the service's Messenger (a nil interface for nil d).
func messenger(d *notify.Dispatcher) app.Messenger {
	if d == nil {
		return nil
	}
	return d
}

// smsHandlers registers the dispatcher's metric and returns its HTTP
// routes (delivery reports) for the web server.
func smsHandlers(d *notify.Dispatcher, reg *prometheus.Registry) map[string]http.Handler {
	if d == nil {
		return nil
	}
	reg.MustRegister(d.Collector())
	return map[string]http.Handler{notify.ReportPath: d.ReportHandler()}
}
