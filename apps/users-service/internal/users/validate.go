package users

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/web"
)

// Limits of an account's fields.
const (
	MinPasswordLen = 12
	// maxPasswordLen bounds the work one request makes the hash do.
	maxPasswordLen = 1024
	maxEmailLen    = 254
	maxNameLen     = 200
)

// NormaliseEmail is the form an e-mail address is stored and compared in:
// trimmed and lower case (contract §7: compared case-insensitively).
func NormaliseEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// validEmail reports whether email (normalised) is a plain address:
// local@domain, no display name, a dot in the domain.
func validEmail(email string) bool {
	if email == "" || len(email) > maxEmailLen {
		return false
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return false
	}
	_, domain, _ := strings.Cut(email, "@")
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// Registration is a registration request, validated by Validate.
type Registration struct {
	Email    string
	Password string
	Name     string
}

// Validate returns the field errors of r (its e-mail normalised first).
func (r *Registration) Validate() []web.FieldError {
	var errs []web.FieldError
	r.Email = NormaliseEmail(r.Email)
	r.Name = strings.TrimSpace(r.Name)
	if !validEmail(r.Email) {
		errs = append(errs, web.FieldError{Field: "email", Message: "must be an e-mail address such as ada@example.com"})
	}
	switch n := utf8.RuneCountInString(r.Password); {
	case n < MinPasswordLen:
		errs = append(errs, web.FieldError{Field: "password", Message: "must be at least 12 characters long"})
	case len(r.Password) > maxPasswordLen:
		errs = append(errs, web.FieldError{Field: "password", Message: "must be at most 1024 bytes long"})
	}
	if r.Name == "" || utf8.RuneCountInString(r.Name) > maxNameLen {
		errs = append(errs, web.FieldError{Field: "name", Message: "must be 1 to 200 characters long"})
	}
	return errs
}

// normaliseRoles validates roles (a non-empty subset of auth.Roles) and
// returns them sorted, without repeats.
func normaliseRoles(roles []string) ([]string, []web.FieldError) {
	if len(roles) == 0 {
		return nil, []web.FieldError{{Field: "roles", Message: "must name at least one role: customer or admin"}}
	}
	for i, r := range roles {
		if !slices.Contains(auth.Roles, r) {
			return nil, []web.FieldError{{Field: fmt.Sprintf("roles[%d]", i), Message: "must be customer or admin"}}
		}
	}
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out), nil
}
