package compose

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/rabbit"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/saga"
)

// applyDefinitions imports deploy/rabbitmq/definitions.json into the test
// broker the way load_definitions does, but into a throwaway vhost and with
// every user renamed and given a random password, and returns an AMQP URL
// per user of the file (by its name there). The vhost and the users are
// deleted when the test ends.
func applyDefinitions(t *testing.T) map[string]string {
	t.Helper()
	s := testinfra.Need(t)
	defs, doc := readDefinitions(t, repoRoot(t))
	for key := range doc {
		require.Contains(t, []string{"vhosts", "users", "permissions", "exchanges"}, key,
			"definitions.json has a section this test does not move to its vhost yet")
	}
	suffix := "-" + uuid.NewString()[:8]
	vhost := "compose" + suffix
	doc["vhosts"] = []map[string]any{{"name": vhost}}
	names := map[string]string{}
	passwords := map[string]string{}
	for _, u := range doc["users"].([]any) {
		u := u.(map[string]any)
		name := u["name"].(string)
		names[name] = name + suffix
		passwords[name] = uuid.NewString()
		u["name"], u["password"] = names[name], passwords[name]
	}
	for _, p := range doc["permissions"].([]any) {
		p := p.(map[string]any)
		p["user"], p["vhost"] = names[p["user"].(string)], vhost
	}
	for _, e := range doc["exchanges"].([]any) {
		e.(map[string]any)["vhost"] = vhost
	}
	body, err := json.Marshal(doc)
	require.NoError(t, err)

	t.Cleanup(func() {
		if err := testinfra.Management(s.ManagementURL, http.MethodDelete, "/api/vhosts/"+vhost, ""); err != nil {
			t.Errorf("delete vhost %s: %v", vhost, err)
		}
		for _, name := range names {
			if err := testinfra.Management(s.ManagementURL, http.MethodDelete, "/api/users/"+name, ""); err != nil {
				t.Errorf("delete user %s: %v", name, err)
			}
		}
	})
	require.NoError(t, testinfra.Management(s.ManagementURL, http.MethodPost, "/api/definitions", string(body)),
		"the broker imports definitions.json")

	base, err := url.Parse(s.AMQPURL)
	require.NoError(t, err)
	urls := map[string]string{}
	for _, u := range defs.Users {
		v := *base
		v.User = url.UserPassword(names[u.Name], passwords[u.Name])
		v.Path = "/" + vhost
		urls[u.Name] = v.String()
	}
	return urls
}

// TestBrokerUsersHaveLeastPrivilege applies definitions.json and starts each
// service's broker connection with its own user, as the service does at
// start-up, so each declares its topology; then, as each user, publishes what the service publishes,
// consumes its queues and republishes to their retry and dead-letter queues.
// Then each user tries what its service never does, and is refused.
func TestBrokerUsersHaveLeastPrivilege(t *testing.T) {
	t.Parallel()
	urls := applyDefinitions(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The gateway only checks that the command queue exists; creating it
	// is the order service's right. Compose starts the gateway after a
	// healthy order service for this reason.
	// Dial retries until its deadline and then says what the broker last
	// answered; a busy broker may take seconds over one attempt.
	dialCtx, dialCancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := rabbit.Dial(dialCtx, urls["gateway"], "gateway", saga.TopologyOf("gateway"), quiet)
	dialCancel()
	require.Error(t, err, "the gateway cannot start before the order service declared its queue")
	assert.Contains(t, err.Error(), "ACCESS_REFUSED")

	// Each participant declares its own queues and waits for the queues of
	// the consumers of what it publishes, which only their owners may
	// declare: started together, as compose starts them, all come up.
	publishers := map[string]*rabbit.Publisher{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range saga.Participants() {
		wg.Go(func() {
			pub := connect(t, ctx, p.Name, urls[p.Name], saga.TopologyOf(p.Name))
			mu.Lock()
			defer mu.Unlock()
			publishers[p.Name] = pub
		})
	}
	wg.Wait()
	require.Len(t, publishers, len(saga.Participants()), "every participant connected")
	order, payment := publishers["order-service"], publishers["payment-service"]
	require.False(t, order == nil || payment == nil, "the order and payment services connected")
	gateway := connect(t, ctx, "gateway", urls["gateway"], saga.TopologyOf("gateway"))

	orderID := uuid.New()
	placed := events.OrderPlaced{OrderID: orderID, UserID: uuid.New(), Total: 4200, Currency: "USD", PaymentMethod: "tok_visa"}
	command := message(t, orderID, events.OrderCreateRequested{OrderPlaced: placed})
	require.NoError(t, gateway.Publish(ctx, command), "the gateway publishes a command")
	created := message(t, orderID, events.OrderCreated{OrderPlaced: placed})
	require.NoError(t, order.Publish(ctx, created), "the order service publishes an order event")
	approved := message(t, orderID,
		events.PaymentApproved{PaymentOutcome: events.PaymentOutcome{PaymentID: uuid.New(), OrderID: orderID, Amount: 4200, Currency: "USD"}})
	require.NoError(t, payment.Publish(ctx, approved), "the payment service publishes a payment event")

	for _, c := range []struct {
		user, queue string
		id          uuid.UUID
	}{
		{"order-service", saga.QueueOrderCommands, command.ID},
		{"order-service", saga.QueueOrderPaymentEvents, approved.ID},
		{"payment-service", saga.QueuePaymentOrderEvents, created.ID},
	} {
		consumeAndFail(t, urls[c.user], c.queue, c.id.String())
		dead := getOne(t, urls["admin"], events.DeadLetterQueue(c.queue))
		assert.Equal(t, c.id.String(), dead.MessageId, "%s dead-lettered the message of %s", c.user, c.queue)
	}

	refusals := []struct {
		user, what string
		op         func(*amqp.Channel) error
	}{
		{"gateway", "consume the order service's commands", consume(saga.QueueOrderCommands)},
		{"gateway", "create the command queue", declareQueue(saga.QueueOrderCommands)},
		{"gateway", "declare a payment service queue", declareQueue(saga.QueuePaymentOrderEvents)},
		{"gateway", "publish an order event", publish(events.ExchangeOrderEvents, events.TypeOrderCreated)},
		{"gateway", "publish to a queue through the default exchange", publish("", saga.QueueOrderCommands)},
		{"order-service", "consume the payment service's order events", consume(saga.QueuePaymentOrderEvents)},
		{"order-service", "publish a command", publish(events.ExchangeOrderCommands, events.TypeOrderCreateRequested)},
		{"order-service", "publish a payment event", publish(events.ExchangePaymentEvents, events.TypePaymentApproved)},
		{"order-service", "redeclare the payment events exchange", declareExchange(events.ExchangePaymentEvents, "topic")},
		{"order-service", "delete the command exchange", deleteExchange(events.ExchangeOrderCommands)},
		{"order-service", "read its dead letters (an operator's job)", get(events.DeadLetterQueue(saga.QueueOrderCommands))},
		{"payment-service", "publish a command", publish(events.ExchangeOrderCommands, events.TypeOrderCreateRequested)},
		{"payment-service", "publish an order event", publish(events.ExchangeOrderEvents, events.TypeOrderCreated)},
		{"payment-service", "consume the order service's commands", consume(saga.QueueOrderCommands)},
		{"payment-service", "declare an order service queue", declareQueue(saga.QueueOrderPaymentEvents)},
		{"payment-service", "delete the order events exchange", deleteExchange(events.ExchangeOrderEvents)},
		{"payment-service", "purge the order service's dead letters", purge(events.DeadLetterQueue(saga.QueueOrderCommands))},
	}
	for _, r := range refusals {
		t.Run(r.user+" cannot "+r.what, func(t *testing.T) {
			err := try(t, urls[r.user], r.op)
			var amqpErr *amqp.Error
			require.True(t, errors.As(err, &amqpErr), "refused by the broker, got %v", err)
			assert.Equal(t, amqp.AccessRefused, amqpErr.Code, "refused for lack of permission: %v", err)
		})
	}

	// The limit README states: the default exchange routes to any queue
	// by name, and RabbitMQ checks write permission on the exchange
	// (amq.default), which the consumers need for their retries and dead
	// letters. A consumer can therefore put a message into any queue.
	assert.NoError(t, try(t, urls["order-service"], publish("", events.DeadLetterQueue(saga.QueuePaymentOrderEvents))),
		"known limit: through the default exchange, a consumer's user can publish to another service's queue")
}

// connect connects to the broker as a service does at start-up
// (participant.Start and the gateway's run call rabbit.Dial with the
// service's topology), and returns a publisher on that connection.
func connect(t *testing.T, ctx context.Context, name, amqpURL string, topology events.Topology) *rabbit.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := rabbit.Dial(ctx, amqpURL, name, topology, quiet)
	require.NoError(t, err, "%s connects and declares its topology with its own broker user", name)
	pub := rabbit.NewPublisher(conn, name, 5*time.Second)
	t.Cleanup(func() {
		_ = pub.Close()
		_ = conn.Close()
	})
	return pub
}

// consumeAndFail consumes queue as the user of amqpURL and fails its
// message the way rabbit.Consumer does, by republishing through the
// default exchange: once to the first retry tier, whose TTL sends it back,
// and then to the dead-letter queue.
func consumeAndFail(t *testing.T, amqpURL, queue, messageID string) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	require.NoError(t, err, "consume %s", queue)
	for _, next := range []string{rabbit.RetryQueue(queue, 0), events.DeadLetterQueue(queue)} {
		var d amqp.Delivery
		select {
		case d = <-deliveries:
		case <-time.After(30 * time.Second):
			t.Fatalf("nothing on %s within 30s", queue)
		}
		require.Equal(t, messageID, d.MessageId, "the message published to %s", queue)
		dc, err := ch.PublishWithDeferredConfirm("", next, true, false, amqp.Publishing{
			MessageId: d.MessageId, Type: d.Type, ContentType: d.ContentType, DeliveryMode: amqp.Persistent, Body: d.Body,
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		acked, err := dc.WaitContext(ctx)
		cancel()
		require.NoError(t, err, "republish to %s", next)
		require.True(t, acked, "republished to %s", next)
		require.NoError(t, d.Ack(false))
	}
}

func message(t *testing.T, orderID uuid.UUID, payload events.Payload) events.Message {
	t.Helper()
	m, err := events.NewMessage(payload, orderID.String())
	require.NoError(t, err)
	return m
}

// getOne waits for a message on queue and takes it.
func getOne(t *testing.T, amqpURL, queue string) amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		d, ok, err := ch.Get(queue, true)
		require.NoError(t, err)
		if ok {
			return d
		}
	}
	t.Fatalf("no message on %s within 30s", queue)
	return amqp.Delivery{}
}

// try runs op on a fresh channel of a fresh connection as the user of
// amqpURL and returns the broker's answer: nil, or the error that closed
// the channel.
func try(t *testing.T, amqpURL string, op func(*amqp.Channel) error) error {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	err = op(ch)
	var amqpErr *amqp.Error
	if err != nil && !errors.As(err, &amqpErr) {
		// A refused publish closes the channel asynchronously.
		select {
		case e := <-closed:
			if e != nil {
				return e
			}
		case <-time.After(5 * time.Second):
		}
	}
	return err
}

func consume(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.Consume(queue, "", false, false, false, false, nil)
		return err
	}
}

func get(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, _, err := ch.Get(queue, false)
		return err
	}
}

func purge(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.QueuePurge(queue, false)
		return err
	}
}

func declareQueue(queue string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		return err
	}
}

func declareExchange(name, kind string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare(name, kind, true, false, false, false, nil)
	}
}

func deleteExchange(name string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		return ch.ExchangeDelete(name, false, false)
	}
}

// publish publishes a mandatory message with a confirm and waits for it.
func publish(exchange, key string) func(*amqp.Channel) error {
	return func(ch *amqp.Channel) error {
		if err := ch.Confirm(false); err != nil {
			return err
		}
		returns := ch.NotifyReturn(make(chan amqp.Return, 1))
		dc, err := ch.PublishWithDeferredConfirm(exchange, key, true, false,
			amqp.Publishing{MessageId: uuid.NewString(), ContentType: "application/json", Body: []byte("{}")})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		acked, err := dc.WaitContext(ctx)
		switch {
		case err != nil:
			return err
		case !acked:
			return errors.New("not confirmed")
		}
		select {
		case r := <-returns:
			return errors.New("returned: " + r.ReplyText)
		default:
			return nil
		}
	}
}
