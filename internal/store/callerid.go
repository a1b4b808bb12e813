package store

import (
	"github.com/sipdesk/sipdesk"
)

// Caller ID numbers. The edge's snapshot does not hold them today, but they
// are what Caller ID decisions allow: writes of verified numbers and deletes
// bump the config version like the other writes of edge config (pending
// codes and attempts do not).

const callerIDNumberCols = "id, customer_id, number, verified, code_hash, expires_at, attempts, created_at"

func scanCallerIDNumber(s interface{ Scan(...any) error }) (*sipdesk.CallerIDNumber, error) {
	var n sipdesk.CallerIDNumber
	var verified int
	var expires, created int64
	if err := s.Scan(&n.ID, &n.CustomerID, &n.Number, &verified, &n.CodeHash, &expires, &n.Attempts, &created); err != nil {
		return nil, err
	}
	n.Verified, n.ExpiresAt, n.CreatedAt = verified != 0, fromMS(expires), fromMS(created)
	return &n, nil
}

func (t *tx) InsertCallerIDNumber(n *sipdesk.CallerIDNumber) error {
	if n.Verified {
		t.configChanged()
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = now()
	}
	id, err := t.insert(`INSERT INTO caller_id_numbers (customer_id, number, verified, code_hash, expires_at, attempts, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		n.CustomerID, n.Number, b2i(n.Verified), n.CodeHash, ms(n.ExpiresAt), n.Attempts, ms(n.CreatedAt))
	if err != nil {
		return t.fail("insert Caller ID number", err)
	}
	n.ID = id
	return nil
}

func (t *tx) CallerIDNumbers(customerID int64) ([]*sipdesk.CallerIDNumber, error) {
	q, args := scoped("SELECT "+callerIDNumberCols+" FROM caller_id_numbers WHERE 1 = 1", nil, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY id", args...)
	if err != nil {
		return nil, t.fail("list Caller ID numbers", err)
	}
	return collect(t, rows, "list Caller ID numbers", scanCallerIDNumber)
}

func (t *tx) CallerIDNumber(customerID, id int64) (*sipdesk.CallerIDNumber, error) {
	q, args := scoped("SELECT "+callerIDNumberCols+" FROM caller_id_numbers WHERE id = ?", []any{id}, "customer_id", customerID)
	n, err := scanCallerIDNumber(t.queryRow(q, args...))
	if err != nil {
		return nil, t.get("Caller ID number", "get Caller ID number", err)
	}
	return n, nil
}

func (t *tx) UpdateCallerIDNumber(n *sipdesk.CallerIDNumber) error {
	if n.Verified {
		t.configChanged()
	}
	q, args := scoped(`UPDATE caller_id_numbers SET number = ?, verified = ?, code_hash = ?, expires_at = ?, attempts = ?
		WHERE id = ?`, []any{n.Number, b2i(n.Verified), n.CodeHash, ms(n.ExpiresAt), n.Attempts, n.ID}, "customer_id", n.CustomerID)
	res, err := t.exec(q, args...)
	return t.affected("Caller ID number", "update Caller ID number", res, err)
}

func (t *tx) DeleteCallerIDNumber(customerID, id int64) error {
	t.configChanged()
	q, args := scoped("DELETE FROM caller_id_numbers WHERE id = ?", []any{id}, "customer_id", customerID)
	res, err := t.exec(q, args...)
	return t.affected("Caller ID number", "delete Caller ID number", res, err)
}

// Caller ID rules.

const ruleCols = "r.id, r.customer_id, r.name, r.apply_for, r.country, r.prefix, r.type, r.display_name"

func scanRule(s interface{ Scan(...any) error }) (*sipdesk.CallerIDRule, error) {
	var r sipdesk.CallerIDRule
	var applyFor, typ string
	if err := s.Scan(&r.ID, &r.CustomerID, &r.Name, &applyFor, &r.Country, &r.Prefix, &typ, &r.DisplayName); err != nil {
		return nil, err
	}
	r.ApplyFor, r.Type = sipdesk.RuleScope(applyFor), sipdesk.RuleType(typ)
	return &r, nil
}

func (t *tx) InsertRule(r *sipdesk.CallerIDRule) error {
	t.configChanged()
	id, err := t.insert(`INSERT INTO caller_id_rules (customer_id, name, apply_for, country, prefix, type, display_name)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.CustomerID, r.Name, string(r.ApplyFor), r.Country, r.Prefix, string(r.Type), r.DisplayName)
	if err != nil {
		return t.fail("insert Caller ID rule", err)
	}
	r.ID = id
	return t.putRuleNumbers(r, false)
}

func (t *tx) putRuleNumbers(r *sipdesk.CallerIDRule, replace bool) error {
	if replace {
		if _, err := t.exec("DELETE FROM caller_id_rule_numbers WHERE rule_id = ?", r.ID); err != nil {
			return t.fail("replace rule numbers", err)
		}
	}
	for i, n := range r.Numbers {
		if _, err := t.exec("INSERT INTO caller_id_rule_numbers (rule_id, position, number) VALUES (?, ?, ?)", r.ID, i, n); err != nil {
			return t.fail("insert rule number", err)
		}
	}
	return nil
}

// rules loads the rules matching where (over caller_id_rules r) with their
// numbers.
func (t *tx) rules(where string, args ...any) ([]*sipdesk.CallerIDRule, error) {
	rows, err := t.query("SELECT "+ruleCols+" FROM caller_id_rules r WHERE "+where+" ORDER BY r.id", args...)
	if err != nil {
		return nil, t.fail("list Caller ID rules", err)
	}
	list, err := collect(t, rows, "list Caller ID rules", scanRule)
	if err != nil || len(list) == 0 {
		return list, err
	}
	byID := make(map[int64]*sipdesk.CallerIDRule, len(list))
	for _, r := range list {
		byID[r.ID] = r
	}
	rows, err = t.query(`SELECT n.rule_id, n.number FROM caller_id_rule_numbers n
		JOIN caller_id_rules r ON r.id = n.rule_id WHERE `+where+` ORDER BY n.rule_id, n.position`, args...)
	if err != nil {
		return nil, t.fail("list rule numbers", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n string
		if err := rows.Scan(&id, &n); err != nil {
			return nil, t.fail("list rule numbers", err)
		}
		if r := byID[id]; r != nil {
			r.Numbers = append(r.Numbers, n)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail("list rule numbers", err)
	}
	return list, nil
}

func (t *tx) Rule(customerID, id int64) (*sipdesk.CallerIDRule, error) {
	q, args := scoped("r.id = ?", []any{id}, "r.customer_id", customerID)
	list, err := t.rules(q, args...)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, notFound("Caller ID rule")
	}
	return list[0], nil
}

func (t *tx) Rules(customerID int64) ([]*sipdesk.CallerIDRule, error) {
	q, args := scoped("1 = 1", nil, "r.customer_id", customerID)
	return t.rules(q, args...)
}

func (t *tx) UpdateRule(r *sipdesk.CallerIDRule) error {
	t.configChanged()
	q, args := scoped(`UPDATE caller_id_rules SET name = ?, apply_for = ?, country = ?, prefix = ?, type = ?, display_name = ?
		WHERE id = ?`, []any{r.Name, string(r.ApplyFor), r.Country, r.Prefix, string(r.Type), r.DisplayName, r.ID}, "customer_id", r.CustomerID)
	res, err := t.exec(q, args...)
	if err := t.affected("Caller ID rule", "update Caller ID rule", res, err); err != nil {
		return err
	}
	return t.putRuleNumbers(r, true)
}

// DeleteRule deletes the rule; ON DELETE CASCADE drops it from every SIP
// account's selection.
func (t *tx) DeleteRule(customerID, id int64) error {
	t.configChanged()
	q, args := scoped("DELETE FROM caller_id_rules WHERE id = ?", []any{id}, "customer_id", customerID)
	res, err := t.exec(q, args...)
	return t.affected("Caller ID rule", "delete Caller ID rule", res, err)
}
