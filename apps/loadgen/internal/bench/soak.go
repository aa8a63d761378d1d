package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metric names read from each service's /metrics during a soak.
const (
	metricGoroutines = "go_goroutines"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
)

// ParseMetrics reads the unlabelled gauges named in want from Prometheus
// text exposition.
func ParseMetrics(r io.Reader, want ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, w := range want {
			if name == w {
				f := strings.Fields(val) // a timestamp may follow
				v, err := strconv.ParseFloat(f[0], 64)
				if err != nil {
					return nil, fmt.Errorf("metric %s: %w", name, err)
				}
				out[name] = v
			}
		}
	}
	return out, sc.Err()
}

// scrape reads the wanted gauges of one service.
func scrape(ctx context.Context, base string, want ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	return ParseMetrics(resp.Body, want...)
}

// soakSample looks at every service once.
func (b *bencher) soakSample(ctx context.Context, at time.Duration) SoakSample {
	s := SoakSample{AtSec: at.Seconds(), Goroutines: map[string]float64{}, RSSMiB: map[string]float64{}, HeapMiB: map[string]float64{}}
	for _, name := range b.o.Services() {
		if m, err := scrape(ctx, b.o.Endpoints.URL(name), metricGoroutines, metricHeapInuse); err == nil {
			if v, ok := m[metricGoroutines]; ok {
				s.Goroutines[name] = v
			}
			if v, ok := m[metricHeapInuse]; ok {
				s.HeapMiB[name] = v / (1 << 20)
			}
		}
	}
	for name, pid := range b.acct.PIDs() {
		if m, err := b.acct.Proc.Memory(pid); err == nil {
			s.RSSMiB[name] = float64(m.RSSKiB) / 1024
		}
	}
	return s
}
