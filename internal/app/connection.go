package app

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// Endpoints is where the operator's edges take SIP, as configured
// (--sip, --sip-tls, --sip-ws-url, --public-sip-host).
type Endpoints struct {
	Host    string // host name or address customers register to
	UDPPort int    // UDP and TCP share --sip's port
	TLSPort int    // 0: no TLS listener
	WSSURL  string // the WebSocket URL ("" none)
}

// Registration timing the edge accepts (its MinExpires and MaxExpires
// defaults) and the interval the connection page recommends.
const (
	RegisterInterval = 300
	RegisterMin      = 60
	RegisterMax      = 3600
)

// Transport is one way to reach the edge.
type Transport struct {
	Name string `json:"name"` // udp, tcp, tls, wss
	Port int    `json:"port,omitempty"`
	URI  string `json:"uri"` // ready to use as an outbound proxy or server URI
}

// Connection is what a customer needs to connect devices and PBXs.
type Connection struct {
	Domain           string              `json:"sip_domain"`
	Host             string              `json:"host"`
	Transports       []Transport         `json:"transports"`
	RegisterInterval int                 `json:"registration_interval"`
	RegisterMin      int                 `json:"registration_min"`
	RegisterMax      int                 `json:"registration_max"`
	Accounts         []ConnectionAccount `json:"accounts"`
}

// ConnectionAccount is one SIP account's part: the masked username (the
// reveal is the SIP account's, audited) or the addresses and how to dial.
type ConnectionAccount struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	AuthType   string    `json:"auth_type"`
	Username   string    `json:"username_masked,omitempty"`
	IPs        []string  `json:"allowed_ips,omitempty"`
	TechPrefix string    `json:"tech_prefix,omitempty"`
	DialFormat string    `json:"dial_format"`
	Snippets   []Snippet `json:"snippets"`
}

// Snippet is a ready-to-paste configuration; secrets are placeholders.
type Snippet struct {
	ID    string `json:"id"` // asterisk, freeswitch, softphone
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Placeholders the snippets use instead of the secret values.
const (
	PlaceholderUser     = "YOUR_SIP_USERNAME"
	PlaceholderPassword = "YOUR_SIP_PASSWORD"
)

// Connection returns the connection details of the customer's SIP
// accounts (accountID 0: every one; else that one, ENotFound if not the
// customer's).
func (s *Service) Connection(ctx context.Context, customerID, accountID int64) (*Connection, error) {
	var as []*sipdesk.SIPAccount
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		if accountID != 0 {
			a, err := tx.SIPAccount(customerID, accountID)
			as = []*sipdesk.SIPAccount{a}
			return err
		}
		var err error
		as, err = tx.SIPAccounts(customerID)
		return err
	})
	if err != nil {
		return nil, err
	}
	c := &Connection{Domain: s.opt.Realm, Host: s.opt.SIP.Host, Transports: s.transports(),
		RegisterInterval: RegisterInterval, RegisterMin: RegisterMin, RegisterMax: RegisterMax, Accounts: []ConnectionAccount{}}
	for _, a := range as {
		c.Accounts = append(c.Accounts, s.connectionAccount(c, a))
	}
	return c, nil
}

func (s *Service) transports() []Transport {
	e := s.opt.SIP
	hp := func(port int) string { return net.JoinHostPort(e.Host, strconv.Itoa(port)) }
	ts := []Transport{}
	if e.UDPPort != 0 {
		ts = append(ts, Transport{Name: "udp", Port: e.UDPPort, URI: "sip:" + hp(e.UDPPort)},
			Transport{Name: "tcp", Port: e.UDPPort, URI: "sip:" + hp(e.UDPPort) + ";transport=tcp"})
	}
	if e.TLSPort != 0 {
		ts = append(ts, Transport{Name: "tls", Port: e.TLSPort, URI: "sips:" + hp(e.TLSPort)})
	}
	if e.WSSURL != "" {
		name := "wss"
		if strings.HasPrefix(e.WSSURL, "ws:") {
			name = "ws"
		}
		ts = append(ts, Transport{Name: name, URI: e.WSSURL})
	}
	return ts
}

func (s *Service) connectionAccount(c *Connection, a *sipdesk.SIPAccount) ConnectionAccount {
	ca := ConnectionAccount{ID: a.ID, Name: a.Name, AuthType: string(a.AuthType)}
	port := s.opt.SIP.UDPPort
	if a.AuthType == sipdesk.AuthIP {
		for _, ip := range a.AllowedIPs {
			ca.IPs = append(ca.IPs, ip.String())
		}
		ca.TechPrefix = a.TechPrefix
		ca.DialFormat = "sip:" + a.TechPrefix + "<number in E.164 without +>@" + c.Host
		ca.Snippets = []Snippet{
			{ID: "asterisk", Title: "Asterisk (pjsip.conf)", Text: asteriskIP(c, port, a.TechPrefix)},
			{ID: "freeswitch", Title: "FreeSWITCH (gateway XML)", Text: freeswitchIP(c, port)},
			{ID: "softphone", Title: "Any SIP device", Text: genericIP(c, port, a.TechPrefix)},
		}
		return ca
	}
	ca.Username = sipdesk.MaskUsername(a.Username)
	ca.DialFormat = "sip:<number in E.164 without +>@" + c.Domain
	ca.Snippets = []Snippet{
		{ID: "asterisk", Title: "Asterisk (pjsip.conf)", Text: asteriskPassword(c, port)},
		{ID: "freeswitch", Title: "FreeSWITCH (gateway XML)", Text: freeswitchPassword(c, port)},
		{ID: "softphone", Title: "Softphone", Text: genericPassword(c, port)},
	}
	return ca
}

func asteriskPassword(c *Connection, port int) string {
	server := "sip:" + net.JoinHostPort(c.Host, strconv.Itoa(port))
	return `; Replace ` + PlaceholderUser + ` (reveal it on the SIP Accounts page) and ` + PlaceholderPassword + `.
[sipdesk-reg]
type=registration
transport=transport-udp
outbound_auth=sipdesk-auth
server_uri=` + server + `
client_uri=sip:` + PlaceholderUser + `@` + c.Domain + `
contact_user=` + PlaceholderUser + `
expiration=` + strconv.Itoa(c.RegisterInterval) + `
retry_interval=60

[sipdesk-auth]
type=auth
auth_type=userpass
username=` + PlaceholderUser + `
password=` + PlaceholderPassword + `
realm=` + c.Domain + `

[sipdesk]
type=aor
contact=` + server + `

[sipdesk]
type=endpoint
transport=transport-udp
context=from-sipdesk
disallow=all
allow=ulaw,alaw
outbound_auth=sipdesk-auth
aors=sipdesk
from_user=` + PlaceholderUser + `
from_domain=` + c.Domain + `

[sipdesk-identify]
type=identify
endpoint=sipdesk
match=` + c.Host + `

; Outbound: Dial(PJSIP/${EXTEN}@sipdesk) with EXTEN the number in E.164 without +.
`
}

func asteriskIP(c *Connection, port int, prefix string) string {
	server := "sip:" + net.JoinHostPort(c.Host, strconv.Itoa(port))
	return `; No registration: sipdesk knows this PBX by its address.
[sipdesk]
type=aor
contact=` + server + `

[sipdesk]
type=endpoint
transport=transport-udp
context=from-sipdesk
disallow=all
allow=ulaw,alaw
aors=sipdesk

[sipdesk-identify]
type=identify
endpoint=sipdesk
match=` + c.Host + `

; Outbound: Dial(PJSIP/` + prefix + `${EXTEN}@sipdesk) with EXTEN the number in E.164 without +.
`
}

func freeswitchPassword(c *Connection, port int) string {
	return `<!-- conf/sip_profiles/external/sipdesk.xml; replace ` + PlaceholderUser + ` and ` + PlaceholderPassword + ` -->
<include>
  <gateway name="sipdesk">
    <param name="username" value="` + PlaceholderUser + `"/>
    <param name="password" value="` + PlaceholderPassword + `"/>
    <param name="realm" value="` + c.Domain + `"/>
    <param name="from-domain" value="` + c.Domain + `"/>
    <param name="proxy" value="` + net.JoinHostPort(c.Host, strconv.Itoa(port)) + `"/>
    <param name="register" value="true"/>
    <param name="expire-seconds" value="` + strconv.Itoa(c.RegisterInterval) + `"/>
    <param name="retry-seconds" value="60"/>
  </gateway>
</include>
`
}

func freeswitchIP(c *Connection, port int) string {
	return `<!-- conf/sip_profiles/external/sipdesk.xml: no registration, sipdesk knows this PBX by its address -->
<include>
  <gateway name="sipdesk">
    <param name="proxy" value="` + net.JoinHostPort(c.Host, strconv.Itoa(port)) + `"/>
    <param name="register" value="false"/>
    <param name="caller-id-in-from" value="true"/>
  </gateway>
</include>
`
}

func genericPassword(c *Connection, port int) string {
	return "SIP server / domain:  " + c.Domain + "\n" +
		"Outbound proxy:       " + net.JoinHostPort(c.Host, strconv.Itoa(port)) + "\n" +
		"Username:             " + PlaceholderUser + "\n" +
		"Authentication user:  " + PlaceholderUser + "\n" +
		"Password:             " + PlaceholderPassword + "\n" +
		"Transport:            UDP (or TCP on the same port)\n" +
		"Registration expiry:  " + strconv.Itoa(c.RegisterInterval) + " s\n" +
		"Dial:                 the number in E.164, e.g. 12025550143\n"
}

func genericIP(c *Connection, port int, prefix string) string {
	p := prefix
	if p == "" {
		p = "(none)"
	}
	return "Send calls to:        " + net.JoinHostPort(c.Host, strconv.Itoa(port)) + " (UDP or TCP)\n" +
		"Register:             no (sipdesk knows you by your address)\n" +
		"Tech prefix:          " + p + "\n" +
		"Request-URI:          sip:" + prefix + "447700900123@" + c.Host + "\n"
}
