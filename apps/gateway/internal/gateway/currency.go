package gateway

import "slices"

// currencies are the ISO 4217 codes an order may be priced in: the current
// list of codes (amendment 179, 2025, plus ANG, SLL and ZWL, withdrawn in
// 2024–25 and still in use), without the X codes that have no minor unit:
// gold, silver, platinum and palladium (XAU, XAG, XPT, XPD), the bond
// market units (XBA–XBD), the SDR (XDR), the SUCRE (XSU), the ADB unit
// (XUA), the testing code (XTS) and the "no currency" code. A total is in
// minor units, so a currency without one cannot price an order.
//
// golang.org/x/text knows more codes (withdrawn ones such as DEM, and CNH,
// which is not ISO 4217) and cannot tell those apart, hence the list. The
// message contract (events.IsCurrencyCode) stays lenient, so that no
// message already accepted becomes invalid.
var currencies = []string{
	"AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN",
	"BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
	"CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK",
	"DJF", "DKK", "DOP", "DZD",
	"EGP", "ERN", "ETB", "EUR",
	"FJD", "FKP",
	"GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
	"HKD", "HNL", "HTG", "HUF",
	"IDR", "ILS", "INR", "IQD", "IRR", "ISK",
	"JMD", "JOD", "JPY",
	"KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
	"LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
	"MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN",
	"NAD", "NGN", "NIO", "NOK", "NPR", "NZD",
	"OMR",
	"PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
	"QAR",
	"RON", "RSD", "RUB", "RWF",
	"SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL",
	"THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
	"UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS",
	"VED", "VES", "VND", "VUV",
	"WST",
	"XAF", "XCD", "XCG", "XOF", "XPF",
	"YER",
	"ZAR", "ZMW", "ZWG", "ZWL",
}

// IsCurrency reports whether an order may be priced in code: an ISO 4217
// currency with a minor unit, in upper case.
func IsCurrency(code string) bool {
	return slices.Contains(currencies, code)
}
