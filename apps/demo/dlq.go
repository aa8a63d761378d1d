package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The topology the dead-letter story uses (contract §4).
const (
	exchangeCommands = "orders.commands"
	commandsDLQ      = "order-service.commands.dlq"
	typeCreate       = "order.create.requested"
	typeCancel       = "order.cancel.requested"
	// deadLetterTimeout bounds the wait for the dead letter: the contract
	// says "within seconds".
	deadLetterTimeout = 20 * time.Second
	// replaySettleTimeout bounds the wait for the replayed saga.
	replaySettleTimeout = 30 * time.Second
	brokerTimeout       = 10 * time.Second
)

// deadLetterStory tells, and checks, what happens to a command that fails
// for good, and how an operator gets it processed once it can succeed: a
// publisher sends an order's cancel before its create; the order service
// cannot cancel an order it does not know and retrying would not change
// that, so it dead-letters the cancel at once (x-error-kind permanent).
// Once the create arrived, `sagactl dlq replay` gives the cancel another
// try, which succeeds. A step that went wrong is the order's Failure; only
// the end of ctx is returned.
func (d *demo) deadLetterStory(ctx context.Context) (*tracked, error) {
	t := &tracked{scenario: replayScenario, ID: uuid.NewString()}
	fail := func(format string, args ...any) (*tracked, error) {
		d.out.endProgress()
		t.Failure, t.Settled = fmt.Sprintf(format, args...), true
		d.out.printf("  ✗ %s\n", t.Failure)
		return t, nil
	}
	b, err := dialBroker(ctx, d.cfg.AMQPURL)
	if err != nil {
		return fail("%v", err)
	}
	defer b.close()
	before, err := b.count(commandsDLQ)
	if err != nil {
		return fail("%v", err)
	}

	d.out.printf(`  A back-office tool publishes to %s itself, and gets the order of two
  commands wrong: it sends the cancel of order %s before the order's create.
  The order service cannot cancel an order it does not know, and retrying
  would not change that: the cancel is a permanent failure, so it goes at once
  to %s with its reason, and nothing queued behind it waits.
`, exchangeCommands, short(t.ID), commandsDLQ)
	cancelID, err := b.publish(ctx, typeCancel, t.ID, map[string]any{"orderId": t.ID, "reason": reasonUserRequested})
	if err != nil {
		return fail("publish %s: %v", typeCancel, err)
	}
	d.out.printf("  published %s  message_id %s  correlation_id %s\n", typeCancel, cancelID, t.ID)

	dead, err := d.waitDeadLetter(ctx, b, cancelID, before)
	if err != nil {
		return fail("the cancel did not reach %s: %v", commandsDLQ, err)
	}
	if err := d.showSagactl(ctx, "dlq", "list"); err != nil {
		return fail("%v", err)
	}
	d.out.printf("  $ %s dlq show %s --json -n %d   (the demo's message, out of its JSON)\n", d.sagactlShown(), commandsDLQ, dead.shownWith)
	for _, f := range [][2]string{
		{"message_id", dead.MessageID}, {"type", dead.Type}, {"correlation_id", dead.CorrelationID},
		{"x-error-kind", dead.ErrorKind}, {"x-error", dead.Error}, {"x-original-queue", dead.OriginalQueue},
		{"body", dead.Body},
	} {
		d.out.printf("    %-17s %s\n", f[0]+":", orNone(f[1], "-"))
	}
	if dead.ErrorKind != "permanent" || dead.Type != typeCancel || dead.CorrelationID != t.ID {
		return fail("dead letter %+v: want a permanent failure of the %s of order %s", dead, typeCancel, t.ID)
	}

	d.out.printf("\n  Now the order's create arrives, and the order exists:\n")
	createID, err := b.publish(ctx, typeCreate, t.ID, map[string]any{
		"orderId": t.ID, "userId": d.userID, "total": orderTotal, "currency": "USD", "paymentMethod": t.Method,
	})
	if err != nil {
		return fail("publish %s: %v", typeCreate, err)
	}
	d.out.printf("  published %s  message_id %s\n", typeCreate, createID)
	o, err := d.waitExists(ctx, t.ID)
	if err != nil {
		return fail("%v", err)
	}
	d.out.printf("  GET /api/orders/%s → %s\n", short(t.ID), o.Status)
	d.out.printf("\n  The dead letter can succeed now, so the operator replays it:\n")
	if err := d.showSagactl(ctx, "dlq", "replay", commandsDLQ, "--id", cancelID); err != nil {
		return fail("%v", err)
	}
	t.CancelSent = true
	d.out.printf(`  Its timeline below shows only the replayed try: a timeline lists what the
  services processed, and the first try never was. A message that can never
  succeed (not JSON, an invalid payload) lands in the same queue; replaying it
  only dead-letters it again, it is never lost: fix its publisher, then purge
  it (sagactl dlq purge QUEUE --yes).
`)
	if err := d.follow(ctx, []*tracked{t}, replaySettleTimeout); err != nil {
		return nil, err
	}
	return t, nil
}

// deadLetter is a message as `sagactl dlq show --json` prints it, as far as
// the demo reads it.
type deadLetter struct {
	MessageID     string `json:"messageId"`
	Type          string `json:"type"`
	CorrelationID string `json:"correlationId"`
	ErrorKind     string `json:"errorKind"`
	Error         string `json:"error"`
	OriginalQueue string `json:"originalQueue"`
	Body          string `json:"body"`
	// shownWith is the -n that found it.
	shownWith int
}

// waitDeadLetter waits for message id in the commands' dead-letter queue,
// which held before messages when it was published. The count is read
// over AMQP (exact and cheap); sagactl looks at the messages only when the
// count changed, since every look is a redelivery to the quorum queue.
func (d *demo) waitDeadLetter(ctx context.Context, b *broker, id string, before int) (deadLetter, error) {
	start := time.Now()
	looked := before
	var found deadLetter
	var arrived time.Duration // when the count last grew
	err := poll(ctx, deadLetterTimeout, func() (bool, error) {
		d.out.progress("waiting for it in "+commandsDLQ+"…", time.Since(start))
		n, err := b.count(commandsDLQ)
		if err != nil || n == looked {
			return false, err
		}
		looked, arrived = n, time.Since(start)
		out, err := d.sagactl(ctx, "dlq", "show", commandsDLQ, "--json", "-n", fmt.Sprint(n))
		if err != nil {
			return false, err
		}
		var peek struct {
			Messages []deadLetter `json:"messages"`
		}
		if err := json.Unmarshal([]byte(out), &peek); err != nil {
			return false, fmt.Errorf("sagactl dlq show --json: %w", err)
		}
		for _, m := range peek.Messages {
			if m.MessageID == id {
				found, found.shownWith = m, n
				return true, nil
			}
		}
		return false, nil
	})
	d.out.endProgress()
	if err != nil {
		return found, err
	}
	d.out.printf("  in %s within %s of its publication\n", commandsDLQ, seconds(arrived))
	return found, nil
}

// showSagactl runs sagactl with args and prints the command line and its
// output, as the operator would see them.
func (d *demo) showSagactl(ctx context.Context, args ...string) error {
	d.out.printf("  $ %s %s\n", d.sagactlShown(), strings.Join(args, " "))
	out, err := d.sagactl(ctx, args...)
	for line := range strings.Lines(out) {
		d.out.printf("    %s", line)
	}
	return err
}

// sagactl runs the sagactl binary with the demo's broker settings and
// returns its standard output.
func (d *demo) sagactl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.cfg.Sagactl, args...)
	cmd.Env = []string{"AMQP_URL=" + d.cfg.AMQPURL, "RABBITMQ_MGMT_URL=" + d.cfg.ManagementURL}
	if d.cfg.SagactlStateDir != "" {
		cmd.Env = append(cmd.Env, "SAGACTL_STATE_DIR="+d.cfg.SagactlStateDir)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("sagactl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// sagactlShown is the sagactl path as the user would type it: relative to
// the working directory when inside it ("bin/sagactl").
func (d *demo) sagactlShown() string {
	p := d.cfg.Sagactl
	if !filepath.IsAbs(p) {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

// broker is the demo's connection to RabbitMQ: a confirming channel for
// its commands, which also reads queue counts.
type broker struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
}

func dialBroker(ctx context.Context, url string) (*broker, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("ordersaga-demo") // how the management UI names it
	conn, err := amqp.DialConfig(url, amqp.Config{Properties: props, Dial: amqp.DefaultDial(brokerTimeout)})
	if err != nil {
		return nil, fmt.Errorf("connect to the broker: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open a confirming channel: %w", err)
	}
	return &broker{conn: conn, ch: ch, returns: ch.NotifyReturn(make(chan amqp.Return, 1))}, nil
}

func (b *broker) close() { _ = b.conn.Close() }

// count is the number of messages in queue now.
func (b *broker) count(queue string) (int, error) {
	q, err := b.ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", queue, err)
	}
	return q.Messages, nil
}

// publish sends a command of order orderID to the commands exchange the way
// the contract says every message looks (§4), mandatory, and waits for the
// broker's confirm. It returns the message's id.
func (b *broker) publish(ctx context.Context, typ, orderID string, payload any) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	id := uuid.NewString()
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	confirm, err := b.ch.PublishWithDeferredConfirmWithContext(ctx, exchangeCommands, typ, true, false, amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  amqp.Persistent,
		MessageId:     id,
		Type:          typ,
		CorrelationId: orderID,
		Timestamp:     time.Now().UTC(),
		AppId:         "ordersaga-demo",
		Headers:       amqp.Table{"x-schema-version": int32(1)},
		Body:          body,
	})
	if err != nil {
		return "", err
	}
	acked, err := confirm.WaitContext(ctx)
	if err != nil {
		return "", fmt.Errorf("wait for the confirm: %w", err)
	}
	if !acked {
		return "", errors.New("the broker refused the message (nack)")
	}
	// A mandatory message nobody is bound to comes back before its ack.
	select {
	case r := <-b.returns:
		return "", fmt.Errorf("unroutable: %s %s", r.ReplyText, r.RoutingKey)
	default:
	}
	return id, nil
}
