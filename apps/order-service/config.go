package main

import (
	"time"

	"github.com/ordersaga/ordersaga/libs/participant"
	"github.com/ordersaga/ordersaga/libs/settings"
)

// config is the order service's configuration (contract §1): every
// participant's, and its own saga timeout.
type config struct {
	participant.Config
	PaymentTimeout time.Duration `env:"ORDER_PAYMENT_TIMEOUT" envDefault:"2m" valid:"positive"`
	StockTimeout   time.Duration `env:"ORDER_STOCK_TIMEOUT" envDefault:"2m" valid:"positive"`
}

const intro = `order-service owns orders: it consumes order commands and payment events,
moves each order through its state machine, and emits order events.

Usage: order-service [-h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config {
	return config{Config: participant.Defaults("order-service", ":3001",
		"postgres://postgres@127.0.0.1:5432/orders?sslmode=disable")}
}

func parseConfig(getenv func(string) string) (config, error) {
	c := defaults()
	return c, settings.Parse(getenv, &c)
}
