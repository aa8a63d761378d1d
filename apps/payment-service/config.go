package main

import (
	"time"

	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/settings"

	"github.com/ordersaga/ordersaga/apps/payment-service/internal/payment"
)

// config is the payment service's configuration (contract §1): every
// participant's, and its simulated payment gateway's.
type config struct {
	participant.Config
	Latency     time.Duration `env:"PAYMENT_LATENCY" envDefault:"0s" valid:"0.."`
	DeclineRate float64       `env:"PAYMENT_DECLINE_RATE" envDefault:"0" valid:"0..1"`
	Limit       int64         `env:"PAYMENT_LIMIT" envDefault:"1000000" valid:"0.."`
}

const intro = `payment-service owns payments: it charges orders when they are created
(through a simulated gateway), cancels or refunds them when they are
cancelled, and emits payment events.

Usage: payment-service [-h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config {
	return config{Config: participant.Defaults("payment-service", ":3002",
		"postgres://postgres@127.0.0.1:5432/payments?sslmode=disable")}
}

func parseConfig(getenv func(string) string) (config, error) {
	c := defaults()
	return c, settings.Parse(getenv, &c)
}

// Gateway is the simulated payment gateway the configuration describes.
func (c config) Gateway() payment.Gateway {
	return payment.Gateway{Latency: c.Latency, DeclineRate: c.DeclineRate, Limit: c.Limit}
}
