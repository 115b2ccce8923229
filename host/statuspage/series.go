package statuspage

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/internal/poll"
)

// Chart is one plot of the status page: lines of one unit over the
// recent past, read from the service's own figures.
type Chart struct {
	// ID names the chart in GET /status/series and on the page, e.g.
	// "rows".
	ID string
	// Title is the chart's heading, Unit its y axis ("rows/s", "tasks").
	Title, Unit string
	// Rate makes each line the per-second increase of what Read returns
	// (a counter) between two samples; otherwise a line is the value
	// itself (a gauge).
	Rate bool
	// Read returns the current value of each line, by line name. A line
	// missing from one sample is a gap there.
	Read func(ctx context.Context) (map[string]float64, error)
	// First names the lines listed first, in this order; the others
	// follow by name.
	First []string
}

// Default sampling: one sample every 5 s, 180 kept, so the charts span
// the last 15 minutes.
const (
	DefaultInterval = 5 * time.Second
	Points          = 180
)

// Series keeps the last Points samples of a service's charts in memory,
// one every interval. It is safe for concurrent use.
type Series struct {
	charts   []Chart
	interval time.Duration
	log      hclog.Logger

	mu      sync.Mutex
	times   []time.Time
	values  [][]map[string]float64 // [sample][chart] line -> value
	last    []map[string]float64   // [chart] the last raw readings, for rates
	lastAt  []time.Time            // [chart] when they were read
	lastErr map[string]string      // chart id -> the error of its last failed read, logged once
}

// NewSeries returns a Series for charts sampled every interval (0:
// DefaultInterval). Run takes the samples.
func NewSeries(charts []Chart, interval time.Duration, log hclog.Logger) *Series {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Series{
		charts: charts, interval: interval, log: log,
		last: make([]map[string]float64, len(charts)), lastAt: make([]time.Time, len(charts)),
		lastErr: map[string]string{},
	}
}

// Run samples at once, then every interval until ctx ends.
func (s *Series) Run(ctx context.Context) {
	s.Sample(ctx, time.Now())
	poll.Every(ctx, s.interval, func() bool {
		s.Sample(ctx, time.Now())
		return true
	})
}

// Sample reads every chart once, at now, and keeps the sample, dropping
// the oldest beyond Points. A rate's first sample, and a line's first
// appearance, have no value yet.
func (s *Series) Sample(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, s.interval)
	defer cancel()
	readings := make([]map[string]float64, len(s.charts))
	for i, c := range s.charts {
		v, err := c.Read(ctx)
		s.mu.Lock()
		if err != nil {
			if s.lastErr[c.ID] != err.Error() && ctx.Err() == nil {
				s.log.Warn("status page chart not readable", "chart", c.ID, "error", err)
			}
			s.lastErr[c.ID] = err.Error()
		} else {
			delete(s.lastErr, c.ID)
		}
		s.mu.Unlock()
		readings[i] = v
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sample := make([]map[string]float64, len(s.charts))
	for i, c := range s.charts {
		cur := readings[i]
		if !c.Rate {
			sample[i] = cur
			continue
		}
		sample[i] = map[string]float64{}
		prev, dt := s.last[i], now.Sub(s.lastAt[i]).Seconds()
		for name, v := range cur {
			if p, ok := prev[name]; ok && dt > 0 {
				sample[i][name] = max(v-p, 0) / dt
			}
		}
		if cur != nil {
			s.last[i], s.lastAt[i] = cur, now
		}
	}
	s.times = append(s.times, now)
	s.values = append(s.values, sample)
	if n := len(s.times) - Points; n > 0 {
		s.times = slices.Delete(s.times, 0, n)
		s.values = slices.Delete(s.values, 0, n)
	}
}

// SeriesView is the answer of GET /status/series: the samples' times and,
// per chart, one list of values per line, aligned with Times.
type SeriesView struct {
	// IntervalSeconds is the time between samples; WindowSeconds the
	// span the charts cover when full (Points samples).
	IntervalSeconds float64 `json:"intervalSeconds"`
	WindowSeconds   float64 `json:"windowSeconds"`
	// Times are the samples' times, oldest first, in Unix milliseconds.
	Times  []int64     `json:"times"`
	Charts []ChartView `json:"charts"`
}

// ChartView is one chart's samples.
type ChartView struct {
	ID    string     `json:"id"`
	Title string     `json:"title"`
	Unit  string     `json:"unit"`
	Lines []LineView `json:"lines"`
}

// LineView is one line of a chart: a value per sample time, null where
// the sample has none.
type LineView struct {
	Name   string     `json:"name"`
	Values []*float64 `json:"values"`
}

// View returns the samples kept, oldest first.
func (s *Series) View() SeriesView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := SeriesView{
		IntervalSeconds: s.interval.Seconds(),
		WindowSeconds:   (s.interval * Points).Seconds(),
		Times:           make([]int64, len(s.times)),
		Charts:          make([]ChartView, len(s.charts)),
	}
	for i, t := range s.times {
		v.Times[i] = t.UnixMilli()
	}
	for ci, c := range s.charts {
		names := map[string]bool{}
		for _, sample := range s.values {
			for name := range sample[ci] {
				names[name] = true
			}
		}
		cv := ChartView{ID: c.ID, Title: c.Title, Unit: c.Unit, Lines: []LineView{}}
		order := slices.Sorted(maps.Keys(names))
		slices.SortStableFunc(order, func(a, b string) int {
			ia, ib := slices.Index(c.First, a), slices.Index(c.First, b)
			switch {
			case ia >= 0 && ib >= 0:
				return ia - ib
			case ia >= 0:
				return -1
			case ib >= 0:
				return 1
			}
			return 0
		})
		for _, name := range order {
			line := LineView{Name: name, Values: make([]*float64, len(s.values))}
			for i, sample := range s.values {
				if x, ok := sample[ci][name]; ok {
					line.Values[i] = &x
				}
			}
			cv.Lines = append(cv.Lines, line)
		}
		v.Charts[ci] = cv
	}
	return v
}
