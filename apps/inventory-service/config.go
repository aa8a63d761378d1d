package main

import (
	"github.com/ordersaga/ordersaga/libs/participant"
)

// config is the inventory service's configuration (contract §1): every
// participant's.
type config struct {
	participant.Config
}

const intro = `inventory-service owns products and their stock: it reserves an order's
lines when the order is placed, commits them when it is paid, releases or
returns them on every compensation, and emits stock events.

Usage: inventory-service [-h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config {
	return config{Config: participant.Defaults("inventory-service", ":3003",
		"postgres://postgres@127.0.0.1:5432/inventory?sslmode=disable")}
}
