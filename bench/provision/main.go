// Command provision fills a fresh sipdesk data folder from the SIP bench
// data set (../shared/bench/gen-users.sh): one customer per account of
// accounts.csv (its channel limit), one password SIP account per user of
// users.csv and limit_users.csv (HA1 for realm -realm, the user's caller ID
// as a verified number of the customer and the account's default Caller ID)
// and (-trunk, on by default) the IP account of trunk_addrs.csv at its
// address:port (Caller ID set by the
// caller). Everything goes in one write transaction through the store, the
// way the app layer writes it, so 10,000 accounts take seconds.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/store"
)

func main() {
	data := flag.String("data", "", "sipdesk data folder to create (must not hold a database yet)")
	in := flag.String("in", "", "bench data folder (users.csv, accounts.csv, …)")
	realm := flag.String("realm", "bench.local", "SIP domain / digest realm")
	trunk := flag.Bool("trunk", true, "also create the IP account of trunk_addrs.csv (address:port)")
	flag.Parse()
	if *data == "" || *in == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*data, *in, *realm, *trunk); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
}

func readCSV(path string, skipHeader bool) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first && skipHeader {
			first = false
			continue
		}
		first = false
		if line == "" {
			continue
		}
		rows = append(rows, strings.Split(line, ";"))
	}
	return rows, sc.Err()
}

func run(dataDir, in, realm string, trunk bool) error {
	ctx := context.Background()
	start := time.Now()
	if _, err := os.Stat(filepath.Join(dataDir, "sipdesk.db")); err == nil {
		return fmt.Errorf("%s already holds a database", dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	key, err := store.LoadSecretKey(dataDir, "")
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Options{DataDir: dataDir, SecretKey: key})
	if err != nil {
		return err
	}
	defer db.Close()

	accounts, err := readCSV(filepath.Join(in, "accounts.csv"), false)
	if err != nil {
		return err
	}
	users, err := readCSV(filepath.Join(in, "users.csv"), true)
	if err != nil {
		return err
	}
	lim, err := readCSV(filepath.Join(in, "limit_users.csv"), true)
	if err != nil {
		return err
	}
	users = append(users, lim...)
	var addrs [][]string
	if trunk {
		if addrs, err = readCSV(filepath.Join(in, "trunk_addrs.csv"), false); err != nil {
			return err
		}
	}

	byAcct := map[string][][]string{}
	for _, u := range users {
		if len(u) < 4 {
			return fmt.Errorf("users.csv: short row %q", strings.Join(u, ";"))
		}
		byAcct[u[3]] = append(byAcct[u[3]], u)
	}
	portalHash := app.HashPassword("Bench-Portal-Password-1") // one argon2id hash for every customer

	nUsers, nCust := 0, 0
	err = db.Update(ctx, func(tx sipdesk.Tx) error {
		v, err := tx.BumpConfigVersion()
		if err != nil {
			return err
		}
		for _, a := range accounts {
			name := a[0]
			max, err := strconv.Atoi(a[1])
			if err != nil {
				return fmt.Errorf("accounts.csv: %q: %w", a, err)
			}
			us := byAcct[name]
			isTrunk := strings.HasPrefix(name, "trunk")
			if len(us) == 0 && !(isTrunk && trunk) {
				continue
			}
			phone := "+15570000000"
			if len(us) > 0 {
				phone = us[0][2]
			}
			c := &sipdesk.Customer{Email: name + "@" + realm, PasswordHash: portalHash, VerifiedPhone: phone,
				BillingState: sipdesk.BillingPaid, ChannelLimit: max, ChannelScope: sipdesk.ScopeOutbound,
				SIPAccountQuota: len(us) + 1, TopUpTotalCents: 1000}
			if err := tx.InsertCustomer(c); err != nil {
				return fmt.Errorf("customer %s: %w", name, err)
			}
			nCust++
			seen := map[string]bool{}
			for _, u := range us {
				if !seen[u[2]] {
					seen[u[2]] = true
					if err := tx.InsertCallerIDNumber(&sipdesk.CallerIDNumber{CustomerID: c.ID, Number: u[2], Verified: true}); err != nil {
						return fmt.Errorf("caller id %s: %w", u[2], err)
					}
				}
				sa := &sipdesk.SIPAccount{CustomerID: c.ID, Name: u[0], AuthType: sipdesk.AuthPassword, Username: u[0],
					Digest: sipdesk.NewDigestHashes(u[0], realm, u[1]), Status: sipdesk.StatusActive, PrevStatus: sipdesk.StatusActive,
					PendingVersion: v, CallerID: sipdesk.CallerIDSetting{DefaultNumber: u[2]}}
				if err := tx.InsertSIPAccount(sa); err != nil {
					return fmt.Errorf("sip account %s: %w", u[0], err)
				}
				nUsers++
			}
			if isTrunk && trunk {
				if !seen[phone] {
					if err := tx.InsertCallerIDNumber(&sipdesk.CallerIDNumber{CustomerID: c.ID, Number: phone, Verified: true}); err != nil {
						return err
					}
				}
				r := &sipdesk.CallerIDRule{CustomerID: c.ID, Name: "trunk sets its caller ID", ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleSetByCaller}
				if err := tx.InsertRule(r); err != nil {
					return fmt.Errorf("rule: %w", err)
				}
				// address:port (trunk_addrs.csv: ip;port;account): the trunk
				// shares 127.0.0.1 with the digest callers, which must not
				// match it.
				var ips []sipdesk.AllowedIP
				for _, ad := range addrs {
					if len(ad) >= 3 && ad[2] == name {
						hp := ad[0]
						if ad[1] != "" && ad[1] != "0" {
							hp = net.JoinHostPort(ad[0], ad[1])
						}
						e, err := sipdesk.ParseAllowedIP(hp)
						if err != nil {
							return fmt.Errorf("trunk_addrs.csv: %q: %w", ad, err)
						}
						ips = append(ips, e)
					}
				}
				sa := &sipdesk.SIPAccount{CustomerID: c.ID, Name: name, AuthType: sipdesk.AuthIP, AllowedIPs: ips,
					Status: sipdesk.StatusActive, PrevStatus: sipdesk.StatusActive, PendingVersion: v,
					CallerID: sipdesk.CallerIDSetting{DefaultNumber: phone, RuleIDs: []int64{r.ID}}}
				if err := tx.InsertSIPAccount(sa); err != nil {
					return fmt.Errorf("ip account %s: %w", name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "provisioned %d customers, %d SIP accounts (trunk: %v) in %s into %s\n",
		nCust, nUsers, trunk, time.Since(start).Round(time.Millisecond), dataDir)
	return nil
}
