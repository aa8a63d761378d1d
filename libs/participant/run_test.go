package participant_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/db"
	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/settings/settingstest"
	"github.com/ordersaga/ordersaga/libs/testinfra"
	"github.com/ordersaga/ordersaga/libs/uow"
)

func TestRunRefusesHandlersThatDoNotMatchTheSubscriptions(t *testing.T) {
	t.Parallel()
	topology := events.Topology{Exchanges: events.Exchanges(), Queues: []events.Queue{
		{Name: "p.order-events", Bindings: []events.Binding{{Exchange: events.ExchangeOrderEvents, Key: events.TypeOrderCreated}}},
	}}
	amqpURL, dbURL := testinfra.VHost(t).AMQPURL, testinfra.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := participant.Start(ctx, participant.Config{
		Name: "p", HTTPAddr: "127.0.0.1:0", AMQPURL: amqpURL, DatabaseURL: dbURL,
		StartupTimeout: 20 * time.Second, PublishTimeout: 5 * time.Second, MessageRetention: time.Hour,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), db.Messaging(), topology)
	require.NoError(t, err)
	p.Handle(uow.On(func(context.Context, *uow.Tx, *events.OrderPaid) error { return nil }))
	err = p.Run(ctx, p.Engine())
	require.Error(t, err, "a participant whose handlers miss a subscribed type does not start")
	assert.ErrorContains(t, err, "order.created is bound to p.order-events but has no handler")
	assert.ErrorContains(t, err, "a handler of order.paid, but no queue subscribes to it")
}

func TestRunAnswersVersionAndStartsNothing(t *testing.T) {
	t.Parallel()
	// Were it to start, it would wait STARTUP_TIMEOUT for a database that
	// is not there, and fail; Wire would fail too.
	s := participant.Service[participant.Config]{
		Intro:  "p does things.",
		Config: participant.Defaults("p", "127.0.0.1:0", "postgres://postgres@127.0.0.1:1/none"),
		Wire: func(*participant.Participant, *participant.Config, *gin.Engine) error {
			return errors.New("wired")
		},
	}
	run := func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
		return participant.Run(ctx, s, args, getenv, stdout)
	}
	settingstest.VersionStartsNothing(t, run, settingstest.Env(map[string]string{"STARTUP_TIMEOUT": "1m"}))
}
