package edge

import (
	"context"
	"net/netip"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// TestIPAccountsPortFirst: an address:port entry takes the sources with
// that port alone; other ports of the address go to the address-only
// entries (here none for 127.0.0.1, so a digest caller there finds no IP
// account), and a password account's ACL entry with a port admits that
// port only.
func TestIPAccountsPortFirst(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	trunk := f.ipAccount(cust, "trunk", "", "127.0.0.1:5084")
	v6 := f.ipAccount(cust, "trunk6", "", "[::1]:5060")
	host := f.ipAccount(cust, "host", "", "127.0.0.2")
	hostPort := f.ipAccount(cust, "hostport", "", "127.0.0.2:5099")
	net := f.ipAccount(cust, "net", "", "10.1.0.0/16")
	snap, err := policy.LoadSnapshot(context.Background(), st, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(as []*sipdesk.SIPAccount) []int64 {
		var out []int64
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	for src, want := range map[string][]int64{
		"127.0.0.1:5084":          {trunk.ID},
		"[::ffff:127.0.0.1]:5084": {trunk.ID},
		"127.0.0.1:5085":          nil, // a digest caller on the trunk's address
		"[::1]:5060":              {v6.ID},
		"[::1]:5061":              nil,
		"127.0.0.2:5060":          {host.ID},
		"127.0.0.2:5099":          {hostPort.ID}, // exact port first, alone
		"10.1.2.3:5060":           {net.ID},
	} {
		got := ids(snap.IPAccounts(netip.MustParseAddrPort(src)))
		if len(got) != len(want) || len(want) > 0 && got[0] != want[0] {
			t.Errorf("ipAccounts(%s) = %v, want %v", src, got, want)
		}
	}
	acl := &sipdesk.SIPAccount{}
	acl.AllowedIPs, _ = sipdesk.ParseAllowedIPs([]string{"127.0.0.1:5070", "127.0.0.3"}, false, true)
	for src, want := range map[string]bool{"127.0.0.1:5070": true, "127.0.0.1:5071": false, "127.0.0.3:1": true, "127.0.0.4:5070": false} {
		if got := policy.ACLAllows(acl, netip.MustParseAddrPort(src)); got != want {
			t.Errorf("aclAllowsFrom(%s) = %v, want %v", src, got, want)
		}
	}
}
