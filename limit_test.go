package sipdesk

import "testing"

func TestCountsAgainstLimit(t *testing.T) {
	want := map[[2]string]bool{
		{ScopeOutbound, DirOutbound}: true,
		{ScopeOutbound, DirInbound}:  false,
		{ScopeBoth, DirOutbound}:     true,
		{ScopeBoth, DirInbound}:      true,
	}
	for _, scope := range ChannelScopes {
		for _, dir := range Directions {
			w, ok := want[[2]string{scope, dir}]
			if !ok {
				t.Errorf("scope %q, direction %q: no expectation; add it here and check the store's SQL", scope, dir)
				continue
			}
			if got := CountsAgainstLimit(scope, dir); got != w {
				t.Errorf("CountsAgainstLimit(%q, %q) = %v, want %v", scope, dir, got, w)
			}
			if got := (&Customer{ChannelScope: scope}).Counted(dir); got != w {
				t.Errorf("Customer{ChannelScope: %q}.Counted(%q) = %v, want %v", scope, dir, got, w)
			}
		}
	}
}
