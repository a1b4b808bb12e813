package sipdesk

import "strings"

// CallResults are the dispositions a call record can have, in the order the
// portal's Result filter offers them, with their words.
var CallResults = []struct{ Disposition, Words string }{
	{DispAnswered, "Answered"},
	{DispNoAnswer, "No answer"},
	{DispBusy, "Busy"},
	{DispCancelled, "Cancelled by the caller"},
	{DispRefused, "Refused"},
	{DispFailed, "Failed"},
	{DispActive, "In progress"},
	{DispNodeLost, "Ended: edge node lost"},
}

// ValidDisposition reports whether d is one of CallResults.
func ValidDisposition(d string) bool {
	for _, r := range CallResults {
		if r.Disposition == d {
			return true
		}
	}
	return false
}

// CallResult says how a call ended in words ("Answered", "No answer",
// "Refused: channel limit reached"). A refusal's words come from the code
// table's SIP reason phrase (the refusal recorded as RefusalCode), so the
// call records and the edge's answers never disagree.
func CallResult(r *CallRecord) string {
	words := r.Disposition
	for _, c := range CallResults {
		if c.Disposition == r.Disposition {
			words = c.Words
		}
	}
	if r.Disposition == DispRefused {
		if why := refusalWords(r.Reason); why != "" {
			return words + ": " + why
		}
	}
	return words
}

// refusalWords is the reason phrase of the code table row recorded as
// reason, sentence-cased ("Channel limit reached" → "channel limit
// reached"; "SIP account channel cap reached" keeps its acronym).
func refusalWords(reason string) string {
	if reason == "" {
		return ""
	}
	for _, row := range codeTable {
		if row.SIP == nil || row.SIP.Reason == "" || RefusalCode(row.Code) != reason {
			continue
		}
		ws := strings.Fields(row.SIP.Reason)
		for i, w := range ws {
			if w != strings.ToUpper(w) || len(w) == 1 {
				ws[i] = strings.ToLower(w)
			}
		}
		return strings.Join(ws, " ")
	}
	return strings.ReplaceAll(reason, "_", " ")
}
