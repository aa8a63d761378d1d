package timeline_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/events"
	"github.com/ordersaga/ordersaga/libs/timeline"
	"github.com/ordersaga/ordersaga/libs/timeline/timelinetest"
)

// TestTimelineShowsRetriesAndTheMessages reads, over HTTP as the console
// does, the timeline of a participant on a real database and broker: a
// command handled only at its third attempt says so with the error of the
// second, one handled at once says nothing of attempts (the contract's
// five fields as they were), every command received and every event
// emitted carries its message, headers and body.
func TestTimelineShowsRetriesAndTheMessages(t *testing.T) {
	t.Parallel()
	s := timelinetest.Run(t, "p", 2)
	resp, err := http.Get(s.URL + strings.Replace(timelinetest.Path, "{id}", s.OrderID.String(), 1))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	var typed struct {
		Events []timeline.Entry `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &typed))
	var raw struct {
		Events []map[string]json.RawMessage `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &raw))
	require.Len(t, typed.Events, 4, "two commands received, two events emitted: %s", body)

	received := map[string]int{} // message id → index
	var emitted []int
	for i, e := range typed.Events {
		assert.Equal(t, "p", e.Service)
		if strings.HasPrefix(e.Detail, "received") {
			received[e.MessageID] = i
		} else {
			emitted = append(emitted, i)
		}
	}

	retried := typed.Events[received[s.Retried.ID.String()]]
	assert.Equal(t, 3, retried.Attempt, "handled at its third attempt")
	assert.Equal(t, s.LastError, retried.LastError, "with the error of the attempt before")
	require.NotNil(t, retried.Message, "a command's body is kept where it is received")
	assert.Equal(t, events.ExchangeOrderCommands, retried.Message.Exchange)
	assert.Equal(t, s.OrderID.String(), retried.Message.CorrelationID)
	assert.JSONEq(t, string(s.Retried.Body), string(retried.Message.Body), "the command's body as published")
	assert.Nil(t, retried.Message.PublishedAt, "nothing this service published")

	first := raw.Events[received[s.First.ID.String()]]
	for _, key := range []string{"attempt", "lastError"} {
		assert.NotContains(t, first, key, "a command handled at once has no %s", key)
	}
	for _, key := range []string{"at", "service", "type", "messageId", "detail"} {
		assert.Contains(t, first, key, "the contract's fields stay")
	}
	assert.JSONEq(t, string(s.First.Body), string(typed.Events[received[s.First.ID.String()]].Message.Body))

	require.Len(t, emitted, 2)
	causes := map[string]bool{}
	for _, i := range emitted {
		e := typed.Events[i]
		assert.Equal(t, events.TypeOrderCancelled, e.Type)
		assert.Zero(t, e.Attempt, "an emitted message has no attempt")
		require.NotNil(t, e.Message, "an emitted message carries what the outbox keeps")
		m := e.Message
		assert.Equal(t, events.ExchangeOrderEvents, m.Exchange)
		assert.Equal(t, s.OrderID.String(), m.CorrelationID)
		assert.NotNil(t, m.PublishedAt, "published by the relay")
		causes[m.CausationID] = true
		var cancelled events.OrderCancelled
		require.NoError(t, json.Unmarshal(m.Body, &cancelled), "the body is the event's JSON: %s", m.Body)
		assert.Equal(t, s.OrderID, cancelled.OrderID)
	}
	assert.Equal(t, map[string]bool{s.Retried.ID.String(): true, s.First.ID.String(): true}, causes,
		"each event names the command that caused it")
}
