package ops

import (
	"context"
	"io"
	"log/slog"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
)

// Layout is the topology as an operator reads it: every exchange, and every
// work queue with its bindings, retry queues and dead-letter queue.
type Layout struct {
	Exchanges []LayoutExchange `json:"exchanges"`
	Queues    []LayoutQueue    `json:"queues"`
}

// LayoutExchange is an exchange of the topology.
type LayoutExchange struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// LayoutQueue is a work queue and the queues derived from its name.
type LayoutQueue struct {
	Name            string          `json:"name"`
	Bindings        []LayoutBinding `json:"bindings"`
	RetryQueues     []RetryQueue    `json:"retryQueues"`
	DeadLetterQueue string          `json:"deadLetterQueue"`
}

// LayoutBinding routes messages with RoutingKey from Exchange to a queue.
type LayoutBinding struct {
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routingKey"`
}

// RetryQueue is a delay tier of a work queue: its messages wait Delay, then
// go back to the work queue.
type RetryQueue struct {
	Name  string `json:"name"`
	Delay string `json:"delay"`
}

// Describe returns the layout of t, with the retry tiers rabbit declares.
func Describe(t events.Topology) Layout {
	l := Layout{Exchanges: []LayoutExchange{}, Queues: []LayoutQueue{}}
	for _, e := range t.Exchanges {
		l.Exchanges = append(l.Exchanges, LayoutExchange{Name: e.Name, Type: e.Kind})
	}
	for _, q := range t.Queues {
		lq := LayoutQueue{Name: q.Name, Bindings: []LayoutBinding{}, RetryQueues: []RetryQueue{},
			DeadLetterQueue: events.DeadLetterQueue(q.Name)}
		for _, b := range q.Bindings {
			lq.Bindings = append(lq.Bindings, LayoutBinding{Exchange: b.Exchange, RoutingKey: b.Key})
		}
		for i, d := range rabbit.RetryDelays {
			lq.RetryQueues = append(lq.RetryQueues, RetryQueue{Name: rabbit.RetryQueue(q.Name, i), Delay: d.String()})
		}
		l.Queues = append(l.Queues, lq)
	}
	return l
}

// Declare declares t on the broker at amqpURL: rabbit.Dial declares the
// topology on connect, as every service does at start-up.
func Declare(ctx context.Context, amqpURL string, t events.Topology) error {
	conn, err := rabbit.Dial(ctx, amqpURL, "sagactl", t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	return conn.Close()
}
