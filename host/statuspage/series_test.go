package statuspage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/routinglayer/routing/host/statuspage"
)

func TestSeriesKeepsRatesAndLevelsOfTheLastPoints(t *testing.T) {
	var counter, level float64
	var failing bool
	s := statuspage.NewSeries([]statuspage.Chart{
		{ID: "rate", Rate: true, First: []string{"z"}, Read: func(context.Context) (map[string]float64, error) {
			if failing {
				return nil, errors.New("store down")
			}
			return map[string]float64{"a": counter, "z": 2 * counter}, nil
		}},
		{ID: "level", Read: func(context.Context) (map[string]float64, error) {
			return map[string]float64{"n": level}, nil
		}},
	}, time.Second, hclog.NewNullLogger())

	t0 := time.Unix(1000, 0)
	for i := range statuspage.Points + 10 {
		counter += 10 // 10 a second, one sample a second
		level = float64(i)
		failing = i == 50
		s.Sample(context.Background(), t0.Add(time.Duration(i)*time.Second))
	}
	v := s.View()
	if len(v.Times) != statuspage.Points || v.IntervalSeconds != 1 || v.WindowSeconds != statuspage.Points {
		t.Fatalf("%d times, interval %v, window %v; want %d, 1, %d", len(v.Times), v.IntervalSeconds, v.WindowSeconds, statuspage.Points, statuspage.Points)
	}
	if v.Times[0] != t0.Add(10*time.Second).UnixMilli() {
		t.Fatalf("oldest sample at %d, want the 11th", v.Times[0])
	}
	rate := v.Charts[0]
	if rate.ID != "rate" || len(rate.Lines) != 2 || rate.Lines[0].Name != "z" || rate.Lines[1].Name != "a" {
		t.Fatalf("rate chart %+v: want lines z (listed first), then a", rate)
	}
	for i, x := range rate.Lines[1].Values {
		switch {
		case i == 40: // the failed read, sample 50: a gap
			if x != nil {
				t.Errorf("sample %d: %v, want a gap where the read failed", i, *x)
			}
		case x == nil || *x != 10:
			t.Errorf("sample %d: %v, want 10/s (the rate after a failed read spans both intervals)", i, x)
		}
	}
	if z := rate.Lines[0].Values[len(v.Times)-1]; z == nil || *z != 20 {
		t.Errorf("line z: %v, want 20/s", z)
	}
	level0 := v.Charts[1].Lines[0]
	if level0.Name != "n" || *level0.Values[0] != 10 || *level0.Values[len(v.Times)-1] != statuspage.Points+9 {
		t.Errorf("level chart %+v", v.Charts[1])
	}
}

func TestSeriesFirstRateSampleIsAGap(t *testing.T) {
	s := statuspage.NewSeries([]statuspage.Chart{{ID: "rate", Rate: true, Read: func(context.Context) (map[string]float64, error) {
		return map[string]float64{"a": 5}, nil
	}}}, 0, hclog.NewNullLogger())
	s.Sample(context.Background(), time.Now())
	v := s.View()
	if v.IntervalSeconds != 5 || len(v.Times) != 1 || len(v.Charts[0].Lines) != 0 {
		t.Fatalf("%+v: want the default 5 s interval, one sample and no value yet", v)
	}
}
