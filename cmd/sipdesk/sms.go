package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/config"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/notify"
)

// verificationMessages builds the dispatcher of verification codes from the
// --sms-* flags, or nil in dev mode (no gateway and no --smtp: codes go to
// the dev mailbox and the log). With --smtp and no gateway, codes are queued
// for no channel and fail visibly: the customer and the operator see it.
//
// With --voice-calls the dispatcher also has the voice channel: an edge
// places the calls (edge requests).
func verificationMessages(cfg *config.Serve, st sipdesk.Store, log *slog.Logger) (*notify.Dispatcher, *voiceChannel, error) {
	if cfg.Role == "edge" {
		return nil, nil, nil // codes are issued and sent by portal nodes
	}
	var ch notify.Channel
	switch s := cfg.SMS; {
	case s.Kannel != "":
		k, err := notify.NewKannel(s.Kannel, s.KannelUser, s.KannelPassword, s.From)
		if err != nil {
			return nil, nil, err
		}
		ch = k
		log.Info("verification codes go through Kannel", "url", s.Kannel, "user", s.KannelUser, "from", s.From, "reports", cfg.BaseURL+notify.ReportPath)
	case s.Webhook != "":
		w, err := notify.NewWebhook(s.Webhook, s.WebhookSecret)
		if err != nil {
			return nil, nil, err
		}
		ch = w
		log.Info("verification codes go to the webhook", "url", config.Redacted(s.Webhook))
	case cfg.SMTP == "":
		if s.Voice {
			log.Warn("--voice-calls is off in dev mode (no --smtp): codes go to the dev mailbox")
		}
		return nil, nil, nil
	default:
		log.Warn("no SMS gateway (--sms-kannel or --sms-webhook): verification codes cannot be sent; customers are told, support can use `sipdesk admin customer verify-phone`")
	}
	opt := notify.Options{SMS: ch, ReportBase: cfg.BaseURL, Log: log}
	var voice *voiceChannel
	if cfg.SMS.Voice {
		voice = &voiceChannel{from: cfg.SMS.VoiceFrom}
		opt.Extra = append(opt.Extra, voice)
		log.Info("verification codes can also be read out by a call over the carrier (Call me instead)", "from", cfg.SMS.VoiceFrom)
	}
	return notify.New(st, opt), voice, nil
}

// voiceChannel is the "voice" channel: it asks an edge (any edge with
// --carrier and --voice-calls, this node's on --role all) to call the
// number and read the code out, through an edge request, and waits for the
// call's end.
type voiceChannel struct {
	from string
	svc  atomic.Pointer[app.Service]
}

func (v *voiceChannel) Name() string { return notify.ChannelVoice }

// TryTimeout covers the wait for an edge, the ring timeout and the code
// read out twice.
func (v *voiceChannel) TryTimeout() time.Duration {
	return app.VoiceCallQueue + b2bua.VoiceRingTimeout + 30*time.Second
}

func (v *voiceChannel) Send(ctx context.Context, m notify.Message) error {
	svc := v.svc.Load()
	if svc == nil {
		return errors.New("the service is not running yet")
	}
	r, err := svc.PlaceVoiceCall(ctx, sipdesk.VoiceCallRequest{CustomerID: m.CustomerID, Number: m.To, Code: m.Code, From: v.from})
	if err != nil {
		return err
	}
	switch r.State {
	case sipdesk.EdgeDone:
		return nil
	case sipdesk.EdgeFailed:
		// Not answered, hung up early, refused by the carrier: calling
		// again unasked would pester the callee; the customer asks again
		// (or for an SMS) when ready.
		return notify.Permanent(errors.New("voice call: " + r.Result))
	case sipdesk.EdgeExpired:
		return errors.New("voice call: " + r.Result) // no call was placed: retried
	}
	return errors.New("voice call: still " + string(r.State) + " when the try timed out")
}

// setService gives the channel the service that queues its calls.
func (v *voiceChannel) setService(svc *app.Service) {
	if v != nil {
		v.svc.Store(svc)
	}
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
