package users

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/ordersaga/ordersaga/libs/auth"
	"github.com/ordersaga/ordersaga/libs/web"
)

// maxBodyBytes is the largest request body accepted (as the gateway's).
const maxBodyBytes = 64 << 10

// principalKey is the gin key of the authenticated caller.
const principalKey = "principal"

// Routes adds the accounts' routes: the gateway forwards /api/auth/* and
// /api/users* here as they are, Authorization header included.
func Routes(e *gin.Engine, s *Service) {
	e.POST("/api/auth/register", register(s))
	e.POST("/api/auth/login", login(s))
	e.GET("/api/auth/jwks.json", func(c *gin.Context) {
		// Short enough that a rotation reaches caches within minutes.
		c.Header("Cache-Control", "public, max-age=60")
		c.JSON(http.StatusOK, s.JWKS())
	})

	authed := e.Group("/api/users", authenticate(s))
	authed.GET("/me", me(s))
	admin := authed.Group("", requireRole(auth.RoleAdmin))
	admin.GET("", listUsers(s))
	admin.PATCH("/:id", setRoles(s))
}

// register creates an account (201), or says why not.
func register(s *Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in struct {
			Email    *string `json:"email"`
			Password *string `json:"password"`
			Name     *string `json:"name"`
		}
		if !decode(c, &in) {
			return
		}
		u, err := s.Register(c, Registration{Email: deref(in.Email), Password: deref(in.Password), Name: deref(in.Name)})
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusCreated, u)
	}
}

// login answers a token for a right e-mail and password.
func login(s *Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in struct {
			Email    *string `json:"email"`
			Password *string `json:"password"`
		}
		if !decode(c, &in) {
			return
		}
		var errs []web.FieldError
		if in.Email == nil {
			errs = append(errs, web.FieldError{Field: "email", Message: "is required"})
		}
		if in.Password == nil {
			errs = append(errs, web.FieldError{Field: "password", Message: "is required"})
		}
		if len(errs) > 0 {
			web.Fail(c, http.StatusUnprocessableEntity, "the request has invalid fields", errs...)
			return
		}
		t, err := s.Login(c, *in.Email, *in.Password)
		if err != nil {
			fail(c, err)
			return
		}
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, t)
	}
}

// me answers the caller's account.
func me(s *Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		u, err := s.Get(c, principal(c).UserID)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, u)
	}
}

// listUsers answers one page of accounts (an administrator's).
func listUsers(s *Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		paging, ok := web.ParsePaging(c)
		if !ok {
			return
		}
		us, total, err := s.List(c, paging.Limit, paging.Offset())
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, web.NewPage(us, paging, total))
	}
}

// setRoles replaces an account's roles (an administrator's).
func setRoles(s *Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := web.PathUUID(c, "id")
		if !ok {
			return
		}
		var in struct {
			Roles *[]string `json:"roles"`
		}
		if !decode(c, &in) {
			return
		}
		if in.Roles == nil {
			web.Fail(c, http.StatusUnprocessableEntity, "the request has invalid fields",
				web.FieldError{Field: "roles", Message: "is required"})
			return
		}
		u, err := s.SetRoles(c, id, *in.Roles)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, u)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// authenticate answers 401 to a request without a valid bearer token.
func authenticate(s *Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.Authenticate(c.GetHeader("Authorization"))
		if err != nil {
			fail(c, err)
			return
		}
		c.Set(principalKey, p)
	}
}

// requireRole answers 403 to a caller without role.
func requireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !hasRole(principal(c), role) {
			fail(c, ErrForbidden)
		}
	}
}

func principal(c *gin.Context) auth.Principal {
	p, _ := c.Get(principalKey)
	pr, _ := p.(auth.Principal)
	return pr
}

// decode reads a JSON body of at most maxBodyBytes into out, strictly:
// unknown fields, wrong types and trailing data are a 400, a body that is
// not JSON a 415, a body too large a 413.
func decode(c *gin.Context, out any) bool {
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		web.Fail(c, http.StatusUnsupportedMediaType, "the request body must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			web.Fail(c, http.StatusRequestEntityTooLarge, "the request body must not exceed 64 KiB")
			return false
		}
		web.Fail(c, http.StatusBadRequest, "the request body could not be read")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		web.Fail(c, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		web.Fail(c, http.StatusBadRequest, "malformed JSON body: data after the object")
		return false
	}
	return true
}

// fail maps a service error to its problem response.
func fail(c *gin.Context, err error) {
	var invalid *InvalidError
	var throttled *ThrottledError
	switch {
	case errors.As(err, &invalid):
		web.Fail(c, http.StatusUnprocessableEntity, "the request has invalid fields", invalid.Errors...)
	case errors.Is(err, ErrConflict):
		web.Fail(c, http.StatusConflict, ErrConflict.Error())
	case errors.Is(err, ErrBadCredentials):
		web.Fail(c, http.StatusUnauthorized, ErrBadCredentials.Error())
	case errors.Is(err, ErrUnauthenticated):
		c.Header("WWW-Authenticate", "Bearer")
		web.Fail(c, http.StatusUnauthorized, ErrUnauthenticated.Error())
	case errors.Is(err, ErrForbidden):
		web.Fail(c, http.StatusForbidden, ErrForbidden.Error())
	case errors.As(err, &throttled):
		c.Header("Retry-After", strconv.Itoa(int(math.Max(1, math.Ceil(throttled.RetryAfter.Seconds())))))
		web.Fail(c, http.StatusTooManyRequests, "too many failed logins for this e-mail address; retry later")
	case errors.Is(err, ErrNotFound):
		web.Fail(c, http.StatusNotFound, err.Error())
	default:
		_ = c.Error(err)
		web.Fail(c, http.StatusServiceUnavailable, "the user store is unavailable")
	}
}
