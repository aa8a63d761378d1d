package invoice

import (
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// MinorUnits is the number of decimals of currency code (ISO 4217's minor
// units, from CLDR through golang.org/x/text: USD 2, JPY 0, BHD 3). A code
// the table does not know has 2, the most common.
func MinorUnits(code string) int {
	u, err := currency.ParseISO(code)
	if err != nil {
		return 2
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale
}

// FormatAmount writes amount, in minor units of currency code, with the
// currency's own number of decimals and its code: 1234 is "12.34 USD",
// "1234 JPY" and "1.234 BHD".
func FormatAmount(amount int64, code string) string {
	digits := MinorUnits(code)
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	s := strconv.FormatInt(amount, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	return sign + s + " " + code
}
