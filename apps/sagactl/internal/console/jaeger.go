package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"
)

// JaegerCorrelationTag is the span tag whose value is an order id, by which
// the saga page finds the order's traces (the OpenTelemetry attribute of a
// message's conversation, the correlation id of contract §4).
const JaegerCorrelationTag = "messaging.message.conversation_id"

// jaegerAnswer is what Jaeger's query API answers for /api/traces/{id} and
// for a search of /api/traces.
type jaegerAnswer struct {
	Data   []jaegerTrace `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

type jaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []jaegerSpan             `json:"spans"`
	Processes map[string]jaegerProcess `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64  `json:"startTime"` // µs since the epoch
	Duration  int64  `json:"duration"`  // µs
	ProcessID string `json:"processID"`
	Tags      []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

type jaegerProcess struct {
	ServiceName string `json:"serviceName"`
}

// waterfall is a trace's spans as bars on one time axis.
type waterfall struct {
	TraceID  string
	Start    time.Time
	Duration time.Duration
	Spans    []bar
}

// bar is one span: Offset and Width are fractions of the trace's duration.
type bar struct {
	Service   string
	Operation string
	Depth     int
	Start     time.Duration // from the trace's start
	Duration  time.Duration
	Offset    float64
	Width     float64
	Error     bool
}

// Indent is the bar's label indentation, in ch.
func (b bar) Indent() int { return b.Depth * 2 }

// Trace reads trace id from Jaeger's query API at base.
func (c *Console) Trace(ctx context.Context, base, id string) (*waterfall, error) {
	var a jaegerAnswer
	if err := c.getJSON(ctx, base+"/api/traces/"+url.PathEscape(id), &a); err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	if len(a.Data) == 0 {
		return nil, fmt.Errorf("jaeger: no trace %s", id)
	}
	return toWaterfall(a.Data[0]), nil
}

// FindTraces returns the ids of the traces of order id, newest first, found
// by the tag JaegerCorrelationTag on the spans of service.
func (c *Console) FindTraces(ctx context.Context, base, service, id string) ([]string, error) {
	tags, _ := json.Marshal(map[string]string{JaegerCorrelationTag: id})
	q := url.Values{"service": {service}, "tags": {string(tags)}, "limit": {"20"}, "lookback": {"7d"}}
	var a jaegerAnswer
	if err := c.getJSON(ctx, base+"/api/traces?"+q.Encode(), &a); err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	sort.Slice(a.Data, func(i, j int) bool { return traceStart(a.Data[i]) > traceStart(a.Data[j]) })
	ids := make([]string, 0, len(a.Data))
	for _, t := range a.Data {
		ids = append(ids, t.TraceID)
	}
	return ids, nil
}

func traceStart(t jaegerTrace) int64 {
	var s int64
	for i, sp := range t.Spans {
		if i == 0 || sp.StartTime < s {
			s = sp.StartTime
		}
	}
	return s
}

// toWaterfall lays trace t's spans out: each under its parent, in start
// order, indented by depth.
func toWaterfall(t jaegerTrace) *waterfall {
	w := &waterfall{TraceID: t.TraceID}
	if len(t.Spans) == 0 {
		return w
	}
	start, end := t.Spans[0].StartTime, int64(0)
	children := map[string][]jaegerSpan{}
	ids := map[string]bool{}
	for _, s := range t.Spans {
		start, end = min(start, s.StartTime), max(end, s.StartTime+s.Duration)
		ids[s.SpanID] = true
	}
	var roots []jaegerSpan
	for _, s := range t.Spans {
		if p := parentOf(s); p != "" && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	total := max(end-start, 1)
	w.Start, w.Duration = time.UnixMicro(start).UTC(), time.Duration(total)*time.Microsecond
	var walk func(spans []jaegerSpan, depth int)
	walk = func(spans []jaegerSpan, depth int) {
		sort.SliceStable(spans, func(i, j int) bool { return spans[i].StartTime < spans[j].StartTime })
		for _, s := range spans {
			w.Spans = append(w.Spans, bar{
				Service: t.Processes[s.ProcessID].ServiceName, Operation: s.OperationName, Depth: depth,
				Start: time.Duration(s.StartTime-start) * time.Microsecond, Duration: time.Duration(s.Duration) * time.Microsecond,
				Offset: float64(s.StartTime-start) / float64(total), Width: max(float64(s.Duration)/float64(total), 0.002),
				Error: hasError(s),
			})
			walk(children[s.SpanID], depth+1)
		}
	}
	walk(roots, 0)
	return w
}

func parentOf(s jaegerSpan) string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	if len(s.References) > 0 {
		return s.References[0].SpanID // FOLLOWS_FROM: a consumer after its producer
	}
	return ""
}

func hasError(s jaegerSpan) bool {
	for _, t := range s.Tags {
		if t.Key == "error" && t.Value == true || t.Key == "otel.status_code" && t.Value == "ERROR" {
			return true
		}
	}
	return false
}

// trace fills the page's waterfall: trace traceID when given, else the
// newest trace tagged with the order id.
func (c *Console) trace(ctx context.Context, id, traceID string, d *sagaData) {
	base := c.cfg.JaegerURL
	if base == "" {
		return
	}
	if traceID == "" {
		ids, err := c.FindTraces(ctx, base, orderService, id)
		if err != nil {
			d.TraceNote = err.Error()
			return
		}
		if len(ids) == 0 {
			d.TraceNote = fmt.Sprintf("Jaeger holds no trace of order-service tagged %s=%s", JaegerCorrelationTag, id)
			return
		}
		traceID = ids[0]
	}
	w, err := c.Trace(ctx, base, traceID)
	if err != nil {
		d.TraceNote = err.Error()
		var se *statusError
		if errors.As(err, &se) && se.code == 404 {
			d.TraceNote = "Jaeger has no trace " + traceID
		}
		return
	}
	d.Trace = w
}
