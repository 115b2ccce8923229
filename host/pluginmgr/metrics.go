package pluginmgr

import (
	"context"

	"github.com/routinglayer/routing/host/metrics"
)

var allStates = []State{StateStarting, StateRunning, StateBackoff, StateFailed, StateStopped, StateStandby}

// MetricSources are the plugin series, read from the supervisors at
// scrape time: plugin_up, plugin_state (1 for the current state) and
// plugin_restarts_total.
func (m *Manager) MetricSources() []metrics.GaugeSource {
	read := func(f func(st Status) []metrics.Gauge) func(context.Context) ([]metrics.Gauge, error) {
		return func(context.Context) ([]metrics.Gauge, error) {
			var out []metrics.Gauge
			for _, st := range m.List() {
				out = append(out, f(st)...)
			}
			return out, nil
		}
	}
	return []metrics.GaugeSource{
		{
			Name: "plugin_up", Help: "1 while the plugin's process is running and attached.",
			Labels: []string{"plugin", "kind"},
			Read: read(func(st Status) []metrics.Gauge {
				return []metrics.Gauge{{Labels: []string{st.Name, string(st.Kind)}, Value: metrics.Bool(st.State == StateRunning)}}
			}),
		},
		{
			Name: "plugin_state", Help: "1 for the plugin's current state (starting, running, backoff, failed, stopped, standby), 0 for the others.",
			Labels: []string{"plugin", "state"},
			Read: read(func(st Status) []metrics.Gauge {
				out := make([]metrics.Gauge, 0, len(allStates))
				for _, s := range allStates {
					out = append(out, metrics.Gauge{Labels: []string{st.Name, string(s)}, Value: metrics.Bool(st.State == s)})
				}
				return out
			}),
		},
		{
			Name: "plugin_restarts_total", Help: "Restarts of the plugin's process since it was installed.",
			Labels: []string{"plugin"}, Counter: true,
			Read: read(func(st Status) []metrics.Gauge {
				return []metrics.Gauge{{Labels: []string{st.Name}, Value: float64(st.Restarts)}}
			}),
		},
	}
}
