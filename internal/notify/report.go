package notify

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// ReportHandler takes Kannel's delivery reports: GET or POST
// ReportPath + <token>?type=N, the token being the message's own (only its
// hash is stored), so nobody can report on a message they did not send.
// Types: 1 delivered, 2 undelivered, 16 rejected by the SMSC; 4 and 8
// (queued, at the SMSC) change nothing.
func (d *Dispatcher) ReportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
			return
		}
		token := strings.TrimPrefix(r.URL.Path, ReportPath)
		typ, err := strconv.Atoi(r.URL.Query().Get("type"))
		if token == "" || len(token) > 100 || err != nil || typ <= 0 {
			http.Error(w, "want "+ReportPath+"<token>?type=N", http.StatusBadRequest)
			return
		}
		found, err := d.report(r.Context(), sipdesk.HashToken(token), typ)
		switch {
		case err != nil:
			d.log.Warn("delivery report not recorded", "err", err)
			http.Error(w, "try again", http.StatusServiceUnavailable)
		case !found:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
		}
	})
}

// report applies a delivery report to the message with the token hash.
func (d *Dispatcher) report(ctx context.Context, hash string, typ int) (bool, error) {
	var state sipdesk.MessageState
	switch {
	case typ&1 != 0:
		state = sipdesk.MessageDelivered
	case typ&(2|16) != 0:
		state = sipdesk.MessageUndelivered
	}
	var m *sipdesk.VerificationMessage
	changed := false
	err := d.st.Update(ctx, func(tx sipdesk.Tx) (err error) {
		changed = false // Update may retry fn
		if m, err = tx.VerificationMessageByReport(hash); err != nil {
			return err
		}
		// A report may come before the try's outcome is recorded (queued);
		// a replaced or given-up message keeps its state.
		if state == "" || (m.State != sipdesk.MessageQueued && m.State != sipdesk.MessageSent) {
			return nil
		}
		m.State, m.Code, changed = state, "", true
		if state == sipdesk.MessageUndelivered {
			m.LastError = "the gateway reported the message undelivered (type " + strconv.Itoa(typ) + ")"
		} else {
			m.LastError = ""
		}
		m.NextAt = time.Time{}
		return tx.UpdateVerificationMessage(m)
	})
	if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if changed {
		result := ResultDelivered
		if state == sipdesk.MessageUndelivered {
			result = ResultUndelivered
		}
		d.count.WithLabelValues(m.Channel, result).Inc()
		d.log.Info("verification message "+result, "message", m.ID, "customer", m.CustomerID, "number", m.To, "channel", m.Channel)
	}
	return true, nil
}
