package sipdesk

import "strings"

// CountryInfo is one country or territory with an ITU calling code.
type CountryInfo struct {
	ISO  string // ISO 3166-1 alpha-2, upper case
	Name string // English short name
	// Codes are the E.164 digit prefixes that identify the country: its
	// calling code, or calling code + area codes where a code is shared
	// (NANP +1, +7, +44, +47, +262, +358, +599, +61, ...).
	Codes []string
}

// countryTable lists every country and territory with an ITU calling code.
// Where several share a prefix, the first listed owns it: US owns "1" (every
// NANP number not listed under another country), RU owns "7", GB "44",
// GP "590" (BL and MF have no prefix of their own), FK "500" and so on.
var countryTable = []CountryInfo{
	// North American Numbering Plan (+1): US is the remainder.
	{"US", "United States", []string{"1"}},
	{"CA", "Canada", []string{
		"1204", "1226", "1236", "1249", "1250", "1257", "1263", "1289", "1306", "1343",
		"1354", "1365", "1367", "1368", "1382", "1403", "1416", "1418", "1428", "1431",
		"1437", "1438", "1450", "1468", "1474", "1506", "1514", "1519", "1548", "1579",
		"1581", "1584", "1587", "1600", "1604", "1613", "1622", "1639", "1647", "1672",
		"1683", "1705", "1709", "1742", "1753", "1778", "1780", "1782", "1807", "1819",
		"1825", "1867", "1873", "1879", "1902", "1905", "1942",
	}},
	{"AG", "Antigua and Barbuda", []string{"1268"}},
	{"AI", "Anguilla", []string{"1264"}},
	{"AS", "American Samoa", []string{"1684"}},
	{"BB", "Barbados", []string{"1246"}},
	{"BM", "Bermuda", []string{"1441"}},
	{"BS", "Bahamas", []string{"1242"}},
	{"DM", "Dominica", []string{"1767"}},
	{"DO", "Dominican Republic", []string{"1809", "1829", "1849"}},
	{"GD", "Grenada", []string{"1473"}},
	{"GU", "Guam", []string{"1671"}},
	{"JM", "Jamaica", []string{"1876", "1658"}},
	{"KN", "Saint Kitts and Nevis", []string{"1869"}},
	{"KY", "Cayman Islands", []string{"1345"}},
	{"LC", "Saint Lucia", []string{"1758"}},
	{"MP", "Northern Mariana Islands", []string{"1670"}},
	{"MS", "Montserrat", []string{"1664"}},
	{"PR", "Puerto Rico", []string{"1787", "1939"}},
	{"SX", "Sint Maarten", []string{"1721"}},
	{"TC", "Turks and Caicos Islands", []string{"1649"}},
	{"TT", "Trinidad and Tobago", []string{"1868"}},
	{"VC", "Saint Vincent and the Grenadines", []string{"1784"}},
	{"VG", "British Virgin Islands", []string{"1284"}},
	{"VI", "U.S. Virgin Islands", []string{"1340"}},

	// +7: Kazakhstan is 7 6xx and 7 7xx, Russia the rest.
	{"RU", "Russia", []string{"7"}},
	{"KZ", "Kazakhstan", []string{"76", "77"}},

	// Europe.
	{"GB", "United Kingdom", []string{"44"}},
	{"GG", "Guernsey", []string{"441481", "447781", "447839", "447911"}},
	{"JE", "Jersey", []string{"441534", "447509", "447700", "447797", "447829", "447937"}},
	{"IM", "Isle of Man", []string{"441624", "447524", "447624", "447924"}},
	{"NO", "Norway", []string{"47"}},
	{"SJ", "Svalbard and Jan Mayen", []string{"4779"}},
	{"FI", "Finland", []string{"358"}},
	{"AX", "Åland Islands", []string{"35818"}},
	{"IT", "Italy", []string{"39"}},
	{"VA", "Vatican City", []string{"379", "3906698"}},
	{"AL", "Albania", []string{"355"}},
	{"AD", "Andorra", []string{"376"}},
	{"AT", "Austria", []string{"43"}},
	{"BY", "Belarus", []string{"375"}},
	{"BE", "Belgium", []string{"32"}},
	{"BA", "Bosnia and Herzegovina", []string{"387"}},
	{"BG", "Bulgaria", []string{"359"}},
	{"HR", "Croatia", []string{"385"}},
	{"CY", "Cyprus", []string{"357"}},
	{"CZ", "Czechia", []string{"420"}},
	{"DK", "Denmark", []string{"45"}},
	{"EE", "Estonia", []string{"372"}},
	{"FO", "Faroe Islands", []string{"298"}},
	{"FR", "France", []string{"33"}},
	{"DE", "Germany", []string{"49"}},
	{"GI", "Gibraltar", []string{"350"}},
	{"GR", "Greece", []string{"30"}},
	{"HU", "Hungary", []string{"36"}},
	{"IS", "Iceland", []string{"354"}},
	{"IE", "Ireland", []string{"353"}},
	{"XK", "Kosovo", []string{"383"}},
	{"LV", "Latvia", []string{"371"}},
	{"LI", "Liechtenstein", []string{"423"}},
	{"LT", "Lithuania", []string{"370"}},
	{"LU", "Luxembourg", []string{"352"}},
	{"MT", "Malta", []string{"356"}},
	{"MD", "Moldova", []string{"373"}},
	{"MC", "Monaco", []string{"377"}},
	{"ME", "Montenegro", []string{"382"}},
	{"NL", "Netherlands", []string{"31"}},
	{"MK", "North Macedonia", []string{"389"}},
	{"PL", "Poland", []string{"48"}},
	{"PT", "Portugal", []string{"351"}},
	{"RO", "Romania", []string{"40"}},
	{"SM", "San Marino", []string{"378"}},
	{"RS", "Serbia", []string{"381"}},
	{"SK", "Slovakia", []string{"421"}},
	{"SI", "Slovenia", []string{"386"}},
	{"ES", "Spain", []string{"34"}},
	{"SE", "Sweden", []string{"46"}},
	{"CH", "Switzerland", []string{"41"}},
	{"UA", "Ukraine", []string{"380"}},

	// Africa.
	{"DZ", "Algeria", []string{"213"}},
	{"AO", "Angola", []string{"244"}},
	{"BJ", "Benin", []string{"229"}},
	{"BW", "Botswana", []string{"267"}},
	{"BF", "Burkina Faso", []string{"226"}},
	{"BI", "Burundi", []string{"257"}},
	{"CV", "Cabo Verde", []string{"238"}},
	{"CM", "Cameroon", []string{"237"}},
	{"CF", "Central African Republic", []string{"236"}},
	{"TD", "Chad", []string{"235"}},
	{"KM", "Comoros", []string{"269"}},
	{"CG", "Congo", []string{"242"}},
	{"CD", "DR Congo", []string{"243"}},
	{"CI", "Côte d'Ivoire", []string{"225"}},
	{"DJ", "Djibouti", []string{"253"}},
	{"EG", "Egypt", []string{"20"}},
	{"GQ", "Equatorial Guinea", []string{"240"}},
	{"ER", "Eritrea", []string{"291"}},
	{"SZ", "Eswatini", []string{"268"}},
	{"ET", "Ethiopia", []string{"251"}},
	{"GA", "Gabon", []string{"241"}},
	{"GM", "Gambia", []string{"220"}},
	{"GH", "Ghana", []string{"233"}},
	{"GN", "Guinea", []string{"224"}},
	{"GW", "Guinea-Bissau", []string{"245"}},
	{"IO", "British Indian Ocean Territory", []string{"246"}},
	{"KE", "Kenya", []string{"254"}},
	{"LS", "Lesotho", []string{"266"}},
	{"LR", "Liberia", []string{"231"}},
	{"LY", "Libya", []string{"218"}},
	{"MG", "Madagascar", []string{"261"}},
	{"MW", "Malawi", []string{"265"}},
	{"ML", "Mali", []string{"223"}},
	{"MR", "Mauritania", []string{"222"}},
	{"MU", "Mauritius", []string{"230"}},
	{"MA", "Morocco", []string{"212"}},
	{"EH", "Western Sahara", []string{"2125288", "2125289"}},
	{"MZ", "Mozambique", []string{"258"}},
	{"NA", "Namibia", []string{"264"}},
	{"NE", "Niger", []string{"227"}},
	{"NG", "Nigeria", []string{"234"}},
	{"RE", "Réunion", []string{"262"}},
	{"YT", "Mayotte", []string{"262269", "262639"}},
	{"RW", "Rwanda", []string{"250"}},
	{"SH", "Saint Helena, Ascension and Tristan da Cunha", []string{"290", "247"}},
	{"ST", "São Tomé and Príncipe", []string{"239"}},
	{"SN", "Senegal", []string{"221"}},
	{"SC", "Seychelles", []string{"248"}},
	{"SL", "Sierra Leone", []string{"232"}},
	{"SO", "Somalia", []string{"252"}},
	{"ZA", "South Africa", []string{"27"}},
	{"SS", "South Sudan", []string{"211"}},
	{"SD", "Sudan", []string{"249"}},
	{"TZ", "Tanzania", []string{"255"}},
	{"TG", "Togo", []string{"228"}},
	{"TN", "Tunisia", []string{"216"}},
	{"UG", "Uganda", []string{"256"}},
	{"ZM", "Zambia", []string{"260"}},
	{"ZW", "Zimbabwe", []string{"263"}},

	// Asia and the Middle East.
	{"AF", "Afghanistan", []string{"93"}},
	{"AM", "Armenia", []string{"374"}},
	{"AZ", "Azerbaijan", []string{"994"}},
	{"BH", "Bahrain", []string{"973"}},
	{"BD", "Bangladesh", []string{"880"}},
	{"BT", "Bhutan", []string{"975"}},
	{"BN", "Brunei", []string{"673"}},
	{"KH", "Cambodia", []string{"855"}},
	{"CN", "China", []string{"86"}},
	{"GE", "Georgia", []string{"995"}},
	{"HK", "Hong Kong", []string{"852"}},
	{"IN", "India", []string{"91"}},
	{"ID", "Indonesia", []string{"62"}},
	{"IR", "Iran", []string{"98"}},
	{"IQ", "Iraq", []string{"964"}},
	{"IL", "Israel", []string{"972"}},
	{"JP", "Japan", []string{"81"}},
	{"JO", "Jordan", []string{"962"}},
	{"KW", "Kuwait", []string{"965"}},
	{"KG", "Kyrgyzstan", []string{"996"}},
	{"LA", "Laos", []string{"856"}},
	{"LB", "Lebanon", []string{"961"}},
	{"MO", "Macao", []string{"853"}},
	{"MY", "Malaysia", []string{"60"}},
	{"MV", "Maldives", []string{"960"}},
	{"MN", "Mongolia", []string{"976"}},
	{"MM", "Myanmar", []string{"95"}},
	{"NP", "Nepal", []string{"977"}},
	{"KP", "North Korea", []string{"850"}},
	{"OM", "Oman", []string{"968"}},
	{"PK", "Pakistan", []string{"92"}},
	{"PS", "Palestine", []string{"970"}},
	{"PH", "Philippines", []string{"63"}},
	{"QA", "Qatar", []string{"974"}},
	{"SA", "Saudi Arabia", []string{"966"}},
	{"SG", "Singapore", []string{"65"}},
	{"KR", "South Korea", []string{"82"}},
	{"LK", "Sri Lanka", []string{"94"}},
	{"SY", "Syria", []string{"963"}},
	{"TW", "Taiwan", []string{"886"}},
	{"TJ", "Tajikistan", []string{"992"}},
	{"TH", "Thailand", []string{"66"}},
	{"TL", "Timor-Leste", []string{"670"}},
	{"TR", "Türkiye", []string{"90"}},
	{"TM", "Turkmenistan", []string{"993"}},
	{"AE", "United Arab Emirates", []string{"971"}},
	{"UZ", "Uzbekistan", []string{"998"}},
	{"VN", "Vietnam", []string{"84"}},
	{"YE", "Yemen", []string{"967"}},

	// Oceania.
	{"AU", "Australia", []string{"61"}},
	{"CX", "Christmas Island", []string{"6189164"}},
	{"CC", "Cocos (Keeling) Islands", []string{"6189162"}},
	{"NF", "Norfolk Island", []string{"672"}},
	{"AQ", "Antarctica", []string{"6721"}},
	{"CK", "Cook Islands", []string{"682"}},
	{"FJ", "Fiji", []string{"679"}},
	{"PF", "French Polynesia", []string{"689"}},
	{"KI", "Kiribati", []string{"686"}},
	{"MH", "Marshall Islands", []string{"692"}},
	{"FM", "Micronesia", []string{"691"}},
	{"NR", "Nauru", []string{"674"}},
	{"NC", "New Caledonia", []string{"687"}},
	{"NZ", "New Zealand", []string{"64"}},
	{"NU", "Niue", []string{"683"}},
	{"PW", "Palau", []string{"680"}},
	{"PG", "Papua New Guinea", []string{"675"}},
	{"WS", "Samoa", []string{"685"}},
	{"SB", "Solomon Islands", []string{"677"}},
	{"TK", "Tokelau", []string{"690"}},
	{"TO", "Tonga", []string{"676"}},
	{"TV", "Tuvalu", []string{"688"}},
	{"VU", "Vanuatu", []string{"678"}},
	{"WF", "Wallis and Futuna", []string{"681"}},

	// Latin America and the rest of the Caribbean.
	{"AR", "Argentina", []string{"54"}},
	{"AW", "Aruba", []string{"297"}},
	{"BZ", "Belize", []string{"501"}},
	{"BO", "Bolivia", []string{"591"}},
	{"CW", "Curaçao", []string{"599"}},
	{"BQ", "Caribbean Netherlands", []string{"5993", "5994", "5997"}},
	{"BR", "Brazil", []string{"55"}},
	{"CL", "Chile", []string{"56"}},
	{"CO", "Colombia", []string{"57"}},
	{"CR", "Costa Rica", []string{"506"}},
	{"CU", "Cuba", []string{"53"}},
	{"EC", "Ecuador", []string{"593"}},
	{"SV", "El Salvador", []string{"503"}},
	{"FK", "Falkland Islands", []string{"500"}},
	{"GS", "South Georgia and the South Sandwich Islands", []string{"500"}},
	{"GF", "French Guiana", []string{"594"}},
	{"GL", "Greenland", []string{"299"}},
	{"GP", "Guadeloupe", []string{"590"}},
	{"BL", "Saint Barthélemy", []string{"590"}},
	{"MF", "Saint Martin", []string{"590"}},
	{"GT", "Guatemala", []string{"502"}},
	{"GY", "Guyana", []string{"592"}},
	{"HT", "Haiti", []string{"509"}},
	{"HN", "Honduras", []string{"504"}},
	{"MQ", "Martinique", []string{"596"}},
	{"MX", "Mexico", []string{"52"}},
	{"NI", "Nicaragua", []string{"505"}},
	{"PA", "Panama", []string{"507"}},
	{"PY", "Paraguay", []string{"595"}},
	{"PE", "Peru", []string{"51"}},
	{"PM", "Saint Pierre and Miquelon", []string{"508"}},
	{"SR", "Suriname", []string{"597"}},
	{"UY", "Uruguay", []string{"598"}},
	{"VE", "Venezuela", []string{"58"}},
}

var (
	countryByISO    = map[string]int{} // ISO → index in countryTable
	countryByPrefix = map[string]string{}
	countryMaxCode  int // longest prefix in countryByPrefix
)

func init() {
	for i, c := range countryTable {
		countryByISO[c.ISO] = i
		for _, p := range c.Codes {
			if _, taken := countryByPrefix[p]; !taken {
				countryByPrefix[p] = c.ISO
			}
			countryMaxCode = max(countryMaxCode, len(p))
		}
	}
}

// CountryOf returns the ISO 3166-1 alpha-2 code of the country an E.164
// number (digits, no '+') belongs to, by the longest matching calling code or
// area code, or "" when no country has it (e.g. +800, +882 networks).
// It does not allocate.
func CountryOf(e164digits string) string {
	for n := min(countryMaxCode, len(e164digits)); n > 0; n-- {
		if iso, ok := countryByPrefix[e164digits[:n]]; ok {
			return iso
		}
	}
	return ""
}

// CountryName returns the English name of an ISO 3166-1 alpha-2 code (any
// case), or "" when the code is unknown.
func CountryName(iso string) string {
	if i, ok := countryByISO[strings.ToUpper(iso)]; ok {
		return countryTable[i].Name
	}
	return ""
}

// KnownCountry reports whether iso (any case) is a country or territory of
// the table, i.e. one with a calling code.
func KnownCountry(iso string) bool {
	_, ok := countryByISO[strings.ToUpper(iso)]
	return ok
}

// Countries returns a copy of the country table (for pickers), in table
// order; sort it as needed.
func Countries() []CountryInfo {
	out := make([]CountryInfo, len(countryTable))
	for i, c := range countryTable {
		c.Codes = append([]string(nil), c.Codes...)
		out[i] = c
	}
	return out
}
