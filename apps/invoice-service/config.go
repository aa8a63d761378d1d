package main

import (
	"github.com/ordersaga/ordersaga/libs/participant"
)

// config is the invoice service's configuration (contract §1): every
// participant's, and the seller its documents name.
type config struct {
	participant.Config
	SellerName    string `env:"SELLER_NAME" envDefault:"ordersaga demo shop" help:"the seller's name on invoices and credit notes"`
	SellerAddress string `env:"SELLER_ADDRESS" envDefault:"1 Example Street; 12345 Example City" help:"the seller's address on invoices and credit notes, its lines separated by ;"`
}

const intro = `invoice-service owns invoices and credit notes: it issues one invoice, with
its PDF, for every paid order, numbered without gaps, and a credit note for
every invoiced order that is cancelled, and emits invoice events.

Usage: invoice-service [-h | --help | --version]
`

// defaults is the configuration before the environment is read.
func defaults() config {
	return config{Config: participant.Defaults("invoice-service", ":3004",
		"postgres://postgres@127.0.0.1:5432/invoices?sslmode=disable")}
}
