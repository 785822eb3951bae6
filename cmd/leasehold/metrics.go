package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the daemon's Prometheus metrics, on its own registry.
type metrics struct {
	reg         *prometheus.Registry
	transitions *prometheus.CounterVec
	alarms      *prometheus.CounterVec
	renewRTT    prometheus.Histogram
	margin      prometheus.Gauge
	sessionUp   prometheus.Gauge
	sessionLoss prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_transitions_total",
			Help: "Role transitions per group and target role."}, []string{"group", "to"}),
		alarms: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leasehold_alarms_total",
			Help: "Alarms (stale-holder, fence-failed, lease-deleted...) per group."}, []string{"group", "kind"}),
		renewRTT: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "leasehold_renew_latency_seconds",
			Help: "Round trip of acknowledged lease renewals.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		margin: prometheus.NewGauge(prometheus.GaugeOpts{Name: "leasehold_deadline_margin_seconds",
			Help: "Time left to the local deadline right after the last renewal."}),
		sessionUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "leasehold_quorum_session_up",
			Help: "1 while this node holds a quorum session."}),
		sessionLoss: prometheus.NewCounter(prometheus.CounterOpts{Name: "leasehold_quorum_session_lost_total",
			Help: "Quorum sessions lost."}),
	}
	m.reg.MustRegister(m.transitions, m.alarms, m.renewRTT, m.margin, m.sessionUp, m.sessionLoss,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) transition(group, to string) { m.transitions.WithLabelValues(group, to).Inc() }
func (m *metrics) alarm(group, kind string)    { m.alarms.WithLabelValues(group, kind).Inc() }

func (m *metrics) renewed(rtt time.Duration, deadline time.Time) {
	m.renewRTT.Observe(rtt.Seconds())
	m.margin.Set(time.Until(deadline).Seconds())
}

func (m *metrics) session(up bool, _ error) {
	if up {
		m.sessionUp.Set(1)
		return
	}
	m.sessionUp.Set(0)
	m.sessionLoss.Inc()
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }
