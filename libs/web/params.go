package web

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

// Paging is a page request: Page from 1, Limit from 1 to MaxLimit.
type Paging struct {
	Page  int
	Limit int
}

// Offset is the number of rows before the page.
func (p Paging) Offset() int { return (p.Page - 1) * p.Limit }

// Paging bounds.
const (
	DefaultLimit = 10
	MaxLimit     = 100
	maxPage      = 1_000_000
)

// Page is a paginated list response.
type Page[T any] struct {
	Data []T  `json:"data"`
	Meta Meta `json:"meta"`
}

// Meta describes a page.
type Meta struct {
	Page       int   `json:"page"`
	Limit      int   `json:"limit"`
	Total      int64 `json:"total"`
	TotalPages int64 `json:"totalPages"`
}

// NewPage builds the page p of a list of total items.
func NewPage[T any](data []T, p Paging, total int64) Page[T] {
	if data == nil {
		data = []T{}
	}
	pages := (total + int64(p.Limit) - 1) / int64(p.Limit)
	return Page[T]{Data: data, Meta: Meta{Page: p.Page, Limit: p.Limit, Total: total, TotalPages: pages}}
}

// ParsePaging reads page and limit from the query string. On a bad value it
// writes a 400 problem and returns false.
func ParsePaging(c *gin.Context) (Paging, bool) {
	p := Paging{Page: 1, Limit: DefaultLimit}
	var errs []FieldError
	if v, ok, bad := singleQuery(c, "page"); bad != nil {
		errs = append(errs, *bad)
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			errs = append(errs, FieldError{"page", "must be an integer from 1 to 1000000"})
		} else {
			p.Page = n
		}
	}
	if v, ok, bad := singleQuery(c, "limit"); bad != nil {
		errs = append(errs, *bad)
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			errs = append(errs, FieldError{"limit", "must be an integer from 1 to 100"})
		} else {
			p.Limit = n
		}
	}
	if len(errs) > 0 {
		Fail(c, http.StatusBadRequest, "invalid query parameters", errs...)
		return p, false
	}
	return p, true
}

// ParseEnumQuery reads the optional query parameter name, which must be one
// of allowed. On a bad value it writes a 400 problem and returns false.
func ParseEnumQuery(c *gin.Context, name string, allowed []string) (*string, bool) {
	v, ok, bad := singleQuery(c, name)
	if bad != nil {
		Fail(c, http.StatusBadRequest, "invalid query parameters", *bad)
		return nil, false
	}
	if !ok {
		return nil, true
	}
	for _, a := range allowed {
		if v == a {
			return &v, true
		}
	}
	Fail(c, http.StatusBadRequest, "invalid query parameters", FieldError{name, "must be one of " + joinQuoted(allowed)})
	return nil, false
}

// ParseUUIDQuery reads the optional UUID query parameter name.
func ParseUUIDQuery(c *gin.Context, name string) (*uuid.UUID, bool) {
	v, ok, bad := singleQuery(c, name)
	if bad != nil {
		Fail(c, http.StatusBadRequest, "invalid query parameters", *bad)
		return nil, false
	}
	if !ok {
		return nil, true
	}
	id, err := ParseUUID(v)
	if err != nil {
		Fail(c, http.StatusBadRequest, "invalid query parameters", FieldError{name, "must be a UUID"})
		return nil, false
	}
	return &id, true
}

// singleQuery returns the one value of a query parameter, whether it was
// given, and a field error for an empty or repeated one.
func singleQuery(c *gin.Context, name string) (string, bool, *FieldError) {
	vs, ok := c.Request.URL.Query()[name]
	if !ok {
		return "", false, nil
	}
	if len(vs) != 1 {
		return "", false, &FieldError{name, "must be given once"}
	}
	if vs[0] == "" {
		return "", false, &FieldError{name, "must not be empty"}
	}
	return vs[0], true, nil
}

var uuidShape = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ParseUUID accepts only the canonical 36-character form, in either case.
func ParseUUID(s string) (uuid.UUID, error) {
	if !uuidShape.MatchString(s) {
		return uuid.Nil, errNotUUID
	}
	return uuid.Parse(s)
}

// PathUUID reads the path parameter name as a UUID. On a bad value it writes
// a 400 problem and returns false.
func PathUUID(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := ParseUUID(c.Param(name))
	if err != nil {
		Fail(c, http.StatusBadRequest, "path parameter "+name+" must be a UUID", FieldError{name, "must be a UUID"})
		return uuid.Nil, false
	}
	return id, true
}

type webError string

func (e webError) Error() string { return string(e) }

const errNotUUID = webError("not a UUID")

func joinQuoted(xs []string) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

// ListQuery is the query of a list of records: the page, and the optional
// status and userId filters.
type ListQuery struct {
	Paging
	Status *string
	UserID *uuid.UUID
}

// ParseListQuery reads page, limit, status (one of statuses) and userId, in
// that order. On the first bad one it writes its 400 problem, as
// ParsePaging, ParseEnumQuery and ParseUUIDQuery do, and returns false.
func ParseListQuery(c *gin.Context, statuses []string) (ListQuery, bool) {
	var q ListQuery
	var ok bool
	if q.Paging, ok = ParsePaging(c); !ok {
		return q, false
	}
	if q.Status, ok = ParseEnumQuery(c, "status", statuses); !ok {
		return q, false
	}
	if q.UserID, ok = ParseUUIDQuery(c, "userId"); !ok {
		return q, false
	}
	return q, true
}
