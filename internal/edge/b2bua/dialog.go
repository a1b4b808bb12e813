package b2bua

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/sipmsg"
)

// Dead dialogs. A device that vanishes without a BYE would hold its channel
// until the maximum duration. Devices that support RFC 4028 session timers
// (Supported: timer) get Session-Expires with refresher=uac in our 200 OK
// and must refresh (re-INVITE or UPDATE) within the interval; the call ends
// when a refresh is missing (RFC 4028 §10: at SE − min(32 s, SE/3)). Other
// devices are probed with an in-dialog OPTIONS every ProbeInterval; a 408,
// a 481 or no answer within ProbeTimeout ends the call.

// sessionInterval is the session interval to run with the caller of req,
// or 0 when the caller does not support session timers (or asked us to
// refresh, which we do not do: then we probe).
func (s *B2BUA) sessionInterval(req *sip.Request) time.Duration {
	if s.cfg.SessionExpires <= 0 || !sipmsg.HasOptionTag(req, "Supported", "k", "timer") && !sipmsg.HasOptionTag(req, "Require", "", "timer") {
		return 0
	}
	se := s.cfg.SessionExpires
	if h := sipmsg.Header(req, "Session-Expires", "x"); h != "" {
		val, params, _ := strings.Cut(h, ";")
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && n > 0 {
			se = time.Duration(n) * time.Second
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "refresher") && strings.EqualFold(strings.TrimSpace(v), "uas") {
				return 0
			}
		}
	}
	if h := sipmsg.Header(req, "Min-SE", ""); h != "" {
		val, _, _ := strings.Cut(h, ";")
		if n, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && time.Duration(n)*time.Second > se {
			se = time.Duration(n) * time.Second
		}
	}
	if se < s.cfg.MinSE {
		se = s.cfg.MinSE
	}
	return se
}

func sessionTimerHeaders(se time.Duration) []sip.Header {
	return []sip.Header{
		sip.NewHeader("Session-Expires", strconv.Itoa(int(se/time.Second))+";refresher=uac"),
		sip.NewHeader("Require", "timer"),
	}
}

// watchDialog arms the call's dead-dialog watch. It is a timer, not a
// goroutine waiting on one: a goroutine would hold its stack for the whole
// call, and calls up are what an edge's memory grows with.
func (s *B2BUA) watchDialog(c *call) {
	if c.se > 0 {
		s.sessionRefreshed(c)
		return
	}
	if s.cfg.ProbeInterval <= 0 {
		return
	}
	var probe func()
	probe = func() {
		if code, alive := s.probe(c); !alive {
			c.log.Info("dead dialog", "probe", code)
			s.endCall(c, "", endDeadDialog)
			return
		}
		c.arm(s.cfg.ProbeInterval, probe)
	}
	c.arm(s.cfg.ProbeInterval, probe)
}

// sessionRefreshed starts the session interval again (at the answer and
// at each refresh from leg a): the call ends when it runs out.
func (s *B2BUA) sessionRefreshed(c *call) {
	c.arm(c.se-min(32*time.Second, c.se/3), func() {
		c.log.Info("session timer expired", "session_expires", c.se.String())
		s.endCall(c, "", endSessionExpired)
	})
}

// arm replaces the call's watch with f after d. endCall stops the watch
// after marking the call ended, so one armed as the call ends is stopped
// either there or here.
func (c *call) arm(d time.Duration, f func()) {
	if old := c.watch.Swap(time.AfterFunc(d, f)); old != nil {
		old.Stop()
	}
	if c.ended.Load() {
		c.watch.Load().Stop()
	}
}

// probe sends an in-dialog OPTIONS to the caller; any answer but 408 and
// 481 means the dialog lives.
func (s *B2BUA) probe(c *call) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProbeTimeout)
	defer cancel()
	var res *sip.Response
	req, err := c.a.request(sip.OPTIONS, 0)
	if err == nil {
		req.SetBody(nil)
		res, err = s.dua.Client.Do(ctx, req, sipgo.ClientRequestBuild)
	}
	if c.ended.Load() {
		return "ended", true
	}
	if err != nil {
		return "no answer", false
	}
	if res.StatusCode == 408 || res.StatusCode == 481 {
		return strconv.Itoa(res.StatusCode), false
	}
	return strconv.Itoa(res.StatusCode), true
}
