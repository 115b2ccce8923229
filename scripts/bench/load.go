package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadResult is what one load run measured.
type loadResult struct {
	OK, Failed int
	// Refused counts the 429 answers (among Failed); after each, the
	// connection waits as long as Retry-After asks, as a client should.
	Refused    int
	Elapsed    time.Duration
	Latencies  []time.Duration // of the successful requests
	FirstError string
}

func (r loadResult) perSecond() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// load POSTs bodies (round robin) to url from conns connections for d and
// counts the answers with status want.
func load(ctx context.Context, url, token string, bodies [][]byte, conns int, d time.Duration, want int) loadResult {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	var (
		mu  sync.Mutex
		res loadResult
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range conns {
		wg.Go(func() {
			var lat []time.Duration
			ok, failed, refused, firstErr := 0, 0, 0, ""
			for i := w; time.Now().Before(deadline) && ctx.Err() == nil; i += conns {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests && want != http.StatusTooManyRequests {
					failed++
					refused++
					wait := time.Second
					if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
						wait = time.Duration(s) * time.Second
					}
					time.Sleep(min(wait, time.Until(deadline)))
					continue
				}
				if resp.StatusCode != want {
					failed++
					if firstErr == "" {
						firstErr = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
					}
					continue
				}
				ok++
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.OK += ok
			res.Failed += failed
			res.Refused += refused
			res.Latencies = append(res.Latencies, lat...)
			if res.FirstError == "" {
				res.FirstError = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// dataBodies are batches of rows a plate reader might send: n rows of
// eight fields each, for several uuids.
func dataBodies(uuids, rows int) [][]byte {
	out := make([][]byte, uuids)
	for u := range uuids {
		type row struct {
			Index int            `json:"index"`
			Data  map[string]any `json:"data"`
		}
		body := struct {
			UUID string `json:"uuid"`
			Rows []row  `json:"rows"`
		}{UUID: fmt.Sprintf("bench%04d", u)}
		for i := range rows {
			body.Rows = append(body.Rows, row{Index: i, Data: map[string]any{
				"well": fmt.Sprintf("%c%d", 'A'+i/12%8, i%12+1), "od600": 0.4213 + float64(i)/1000,
				"temperature": 37.02, "gain": 100, "flag": i%7 == 0, "note": nil,
				"reader": "Tecan Spark", "timestamp": "2026-11-24T10:00:00Z",
			}})
		}
		out[u], _ = json.Marshal(body)
	}
	return out
}

// triggerBodies are OT-2 triggers without uuids (each POST creates one).
func triggerBodies(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"apiVersion":"OT-2/v1alpha1/Bench","protocol":"Dilution","spec":{"volume":%d,"mix":true}}`, 100+i)
	}
	return out
}

// decodeOnlyServer is the intake baseline: net/http and encoding/json
// decoding the same body into the same shape, storing nothing.
func decodeOnlyServer(status int, shape func() any) (url string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := shape()
		if err := json.NewDecoder(r.Body).Decode(v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }
}
