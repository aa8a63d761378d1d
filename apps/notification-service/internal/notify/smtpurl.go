package notify

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTPOptions is what SMTP_URL says about the mail server (see ParseSMTPURL).
type SMTPOptions struct {
	Host     string
	Port     int
	TLS      string // "implicit" (smtps), "required", "opportunistic" or "none"
	Insecure bool   // skip certificate verification (tls_insecure=true)
	Username string
	Password string
	Auth     string // go-mail's SMTP AUTH mechanism; "" without credentials
	HELO     string
}

// ParseSMTPURL reads SMTP_URL:
//
//	smtp://[user:password@]host[:port][?starttls=opportunistic|required|none][&auth=...][&helo=name][&tls_insecure=true]
//	smtps://[user:password@]host[:port][?auth=...][&helo=name][&tls_insecure=true]
//
// smtp:// defaults to port 25 and opportunistic STARTTLS (used when the
// server offers it); starttls=required refuses a server without it
// (production, port 587); smtps:// is TLS from the first byte (port 465 by
// default). With credentials, auth picks the mechanism (plain, login,
// cram-md5, scram-sha-256…; default: the best the server offers).
func ParseSMTPURL(raw string) (SMTPOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPOptions{}, fmt.Errorf("SMTP_URL: %w", err)
	}
	o := SMTPOptions{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
		o.Port, o.TLS = 25, "opportunistic"
	case "smtps":
		o.Port, o.TLS = 465, "implicit"
	default:
		return o, fmt.Errorf("SMTP_URL %q: want smtp:// or smtps://", redact(u))
	}
	if o.Host == "" {
		return o, fmt.Errorf("SMTP_URL %q: no host", redact(u))
	}
	if p := u.Port(); p != "" {
		if o.Port, err = strconv.Atoi(p); err != nil || o.Port < 1 || o.Port > 65535 {
			return o, fmt.Errorf("SMTP_URL %q: bad port", redact(u))
		}
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "starttls", "auth", "helo", "tls_insecure":
		default:
			return o, fmt.Errorf("SMTP_URL %q: unknown option %q", redact(u), k)
		}
	}
	if v := q.Get("starttls"); v != "" {
		if u.Scheme == "smtps" || (v != "opportunistic" && v != "required" && v != "none") {
			return o, fmt.Errorf("SMTP_URL %q: starttls is opportunistic, required or none, on smtp:// only", redact(u))
		}
		o.TLS = v
	}
	if v := q.Get("tls_insecure"); v != "" {
		if o.Insecure, err = strconv.ParseBool(v); err != nil {
			return o, fmt.Errorf("SMTP_URL %q: tls_insecure is true or false", redact(u))
		}
	}
	o.HELO = q.Get("helo")
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
		o.Auth = q.Get("auth")
		if o.Auth == "" {
			o.Auth = string(mail.SMTPAuthAutoDiscover)
		}
		var a mail.SMTPAuthType
		if err := a.UnmarshalString(o.Auth); err != nil {
			return o, fmt.Errorf("SMTP_URL %q: auth: %w", redact(u), err)
		}
		o.Auth = string(a)
	} else if q.Get("auth") != "" {
		return o, fmt.Errorf("SMTP_URL %q: auth without user and password", redact(u))
	}
	return o, nil
}

// redact is u without its password, for errors and logs.
func redact(u *url.URL) string { return u.Redacted() }

// clientOptions are the go-mail options of o, with timeout bounding every
// SMTP command.
func (o SMTPOptions) clientOptions(timeout time.Duration) []mail.Option {
	opts := []mail.Option{mail.WithPort(o.Port), mail.WithTimeout(timeout), mail.WithoutNoop()}
	tlsConf := &tls.Config{ServerName: o.Host, InsecureSkipVerify: o.Insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // only when SMTP_URL asks for it
	opts = append(opts, mail.WithTLSConfig(tlsConf))
	switch o.TLS {
	case "implicit":
		opts = append(opts, mail.WithSSL())
	case "required":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "opportunistic":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if o.HELO != "" {
		opts = append(opts, mail.WithHELO(o.HELO))
	}
	if o.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthType(o.Auth)),
			mail.WithUsername(o.Username), mail.WithPassword(o.Password))
	}
	return opts
}
