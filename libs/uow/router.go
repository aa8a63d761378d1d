package uow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Handler is a typed handler of one message type; On makes one.
type Handler struct {
	typ    string
	handle HandleFunc
}

// HandleFunc is the work of a handler on a decoded payload.
type HandleFunc func(ctx context.Context, tx *Tx, p events.Payload) error

// Wrap returns h with mw around its work, the way watermill's middleware
// wraps a handler: for logging, tracing, or injecting faults in tests.
func (h Handler) Wrap(mw func(HandleFunc) HandleFunc) Handler {
	h.handle = mw(h.handle)
	return h
}

// On returns the handler of the messages whose payload is an M: fn gets the
// payload decoded and validated, inside a unit of work whose Tx also
// records the message as handled (so a redelivery does not run fn again)
// and marks what fn emits as caused by it. fn's nil acknowledges the
// message once the transaction committed; an error made by rabbit.Permanent
// (or wrapping events.ErrInvalid) dead-letters it; any other error retries
// it later.
func On[T any, M interface {
	*T
	events.Payload
}](fn func(ctx context.Context, tx *Tx, m M) error) Handler {
	return Handler{
		typ:    M(new(T)).MessageType(),
		handle: func(ctx context.Context, tx *Tx, p events.Payload) error { return fn(ctx, tx, p.(M)) },
	}
}

// Type is the message type h handles.
func (h Handler) Type() string { return h.typ }

// Router routes the deliveries of a participant's work queues to their
// handlers.
type Router struct {
	runner *Runner
	queues []string
	// handlers maps each queue to its handlers by message type.
	handlers map[string]map[string]Handler
	lock     Lock
}

// Lock takes, in one transaction of a consumer, the row locks that the
// handlers of ps will need, in one global order (Prelude): for a
// participant whose handlers of different messages lock the same rows.
type Lock func(ctx context.Context, tx *Tx, ps []events.Payload) error

// LockFirst makes the router run lock first in every transaction of its
// consumers, with the payloads that transaction handles.
func (r *Router) LockFirst(lock Lock) { r.lock = lock }

// NewRouter returns the router of the work queues that t declares as its
// own (not IfMissing) to hs. Every type bound to one of those queues must
// have exactly one handler, and every handler's type must be bound to one
// of them: the error says what is missing, so that a participant cannot
// start with a message nobody handles or a handler nothing feeds.
func NewRouter(runner *Runner, t events.Topology, hs ...Handler) (*Router, error) {
	r := &Router{runner: runner, handlers: map[string]map[string]Handler{}}
	queueOf := map[string]string{}
	var errs []error
	for _, q := range t.Queues {
		if q.IfMissing {
			continue
		}
		r.queues = append(r.queues, q.Name)
		r.handlers[q.Name] = map[string]Handler{}
		for _, b := range q.Bindings {
			if other, ok := queueOf[b.Key]; ok && other != q.Name {
				errs = append(errs, fmt.Errorf("%s is bound to both %s and %s: a handler cannot tell them apart", b.Key, other, q.Name))
			}
			queueOf[b.Key] = q.Name
		}
	}
	for _, h := range hs {
		q, ok := queueOf[h.typ]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("a handler of %s, but no queue subscribes to it (add it to a consumes line of saga/saga.conf)", h.typ))
		case r.handlers[q][h.typ].handle != nil:
			errs = append(errs, fmt.Errorf("two handlers of %s", h.typ))
		default:
			r.handlers[q][h.typ] = h
		}
	}
	for typ, q := range queueOf {
		if _, ok := r.handlers[q][typ]; !ok {
			errs = append(errs, fmt.Errorf("%s is bound to %s but has no handler", typ, q))
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, fmt.Errorf("handlers do not match the subscriptions: %w", errors.Join(errs...))
	}
	return r, nil
}

// Queues returns the work queues the router handles.
func (r *Router) Queues() []string { return slices.Clone(r.queues) }

// QueueOf returns the work queue whose deliveries of type typ reach a
// handler, "" if none does.
func (r *Router) QueueOf(typ string) string {
	for q, hs := range r.handlers {
		if _, ok := hs[typ]; ok {
			return q
		}
	}
	return ""
}

// Handler returns the batch handler of queue's deliveries: each is
// decoded and validated, then the batch runs in one unit of work
// (Runner.Batch). A delivery of a type outside the contract, or that does
// not decode, fails permanently; one of a contract type that this queue has
// no handler for is acknowledged and ignored (contract §4).
func (r *Router) Handler(queue string) rabbit.BatchHandler {
	handlers := r.handlers[queue]
	return func(ctx context.Context, ds []rabbit.Delivery) []error {
		errs := make([]error, len(ds))
		todo := make([]rabbit.Delivery, 0, len(ds))
		type work struct {
			h Handler
			p events.Payload
		}
		works := make([]work, 0, len(ds))
		at := make([]int, 0, len(ds))
		for i, d := range ds {
			h, ok := handlers[d.Type]
			if !ok {
				if !events.Known(d.Type) {
					errs[i] = rabbit.Permanent(fmt.Errorf("%w: unknown message type %q", events.ErrInvalid, d.Type))
				}
				continue
			}
			p, err := events.Decode(d.Type, d.Body)
			if err != nil {
				errs[i] = err
				continue
			}
			todo = append(todo, d)
			works = append(works, work{h, p})
			at = append(at, i)
		}
		if len(todo) == 0 {
			return errs
		}
		var prelude Prelude
		if r.lock != nil {
			prelude = func(ctx context.Context, tx *Tx, is []int) error {
				ps := make([]events.Payload, len(is))
				for j, i := range is {
					ps[j] = works[i].p
				}
				return r.lock(ctx, tx, ps)
			}
		}
		results := r.runner.BatchWith(ctx, queue, todo, prelude, func(ctx context.Context, tx *Tx, i int) error {
			return works[i].h.handle(ctx, tx, works[i].p)
		})
		for j, err := range results {
			errs[at[j]] = err
		}
		return errs
	}
}

// Record returns the handler of the messages whose payload is an M that
// the participant only records as received (its timeline shows them): it
// changes nothing else.
func Record[T any, M interface {
	*T
	events.Payload
}]() Handler {
	return On(func(context.Context, *Tx, M) error { return nil })
}
