package rabbit

import (
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ParseURLs reads a broker address that names one node or several, separated
// by commas, the nodes of one cluster in the order they are tried:
//
//	amqp://user:pass@node1:5672/vhost
//	amqp://user:pass@node1:5672,amqp://user:pass@node2:5672/vhost
//	amqp://user:pass@node1:5672,node2:5672,node3:5672/vhost
//
// An element with a scheme is a whole URL. A bare host[:port] takes the
// scheme and credentials of the element before it. Every element without a
// vhost takes the vhost of the last element that names one, so that the
// short form above reaches one vhost on every node.
func ParseURLs(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	var (
		out      []string
		prefix   string // scheme://userinfo@ of the last whole URL
		vhost    = ""   // path of the last element naming one
		hasVHost = make([]bool, len(parts))
	)
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("broker address %q has an empty element", redactURLs(s))
		}
		if !strings.Contains(p, "://") {
			if prefix == "" {
				return nil, fmt.Errorf("broker address %q: the first node needs a scheme (amqp:// or amqps://)", redactURLs(s))
			}
			p = prefix + p
		} else if at := strings.LastIndex(p, "@"); at >= 0 {
			prefix = p[:at+1]
		} else {
			prefix = p[:strings.Index(p, "://")+3]
		}
		_, rest, _ := strings.Cut(p, "://")
		if slash := strings.Index(rest, "/"); slash >= 0 {
			hasVHost[i] = true
			vhost = rest[slash:]
		}
		out = append(out, p)
	}
	var errs []error
	for i := range out {
		if !hasVHost[i] {
			out[i] += vhost
		}
		if _, err := amqp.ParseURI(out[i]); err != nil {
			// The parser's message quotes the URL, password and all.
			errs = append(errs, fmt.Errorf("broker address element %d (%s) is not an AMQP URL", i+1, redactURLs(out[i])))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// redactURLs hides the passwords of a broker address for an error message.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		scheme := strings.Index(p, "://")
		at := strings.LastIndex(p, "@")
		if scheme < 0 || at < scheme {
			continue
		}
		if colon := strings.Index(p[scheme+3:at], ":"); colon >= 0 {
			parts[i] = p[:scheme+3+colon+1] + "xxxxx" + p[at:]
		}
	}
	return strings.Join(parts, ",")
}
