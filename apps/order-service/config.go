package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ordersaga/ordersaga/libs/participant"
)

type config struct {
	participant.Config
	PaymentTimeout time.Duration
}

func parseConfig(getenv func(string) string) (config, error) {
	base, err := participant.Env(getenv, "order-service", ":3001",
		"postgres://postgres@127.0.0.1:5432/orders?sslmode=disable")
	errs := []error{err}
	c := config{Config: base}
	c.PaymentTimeout, errs = participant.Duration(getenv, "ORDER_PAYMENT_TIMEOUT", 2*time.Minute, errs)
	if c.PaymentTimeout == 0 {
		errs = append(errs, errors.New("ORDER_PAYMENT_TIMEOUT must be positive"))
	}
	if v := getenv("CONSUMER_PREFETCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			errs = append(errs, fmt.Errorf("CONSUMER_PREFETCH %q: want an integer from 1 to 10000", v))
		}
		c.Prefetch = n
	}
	return c, errors.Join(errs...)
}
