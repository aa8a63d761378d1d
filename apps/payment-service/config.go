package main

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/ordersaga/ordersaga/libs/participant"

	"github.com/ordersaga/ordersaga/apps/payment-service/internal/payment"
)

type config struct {
	participant.Config
	Gateway payment.Gateway
}

func parseConfig(getenv func(string) string) (config, error) {
	base, err := participant.Env(getenv, "payment-service", ":3002",
		"postgres://postgres@127.0.0.1:5432/payments?sslmode=disable")
	errs := []error{err}
	c := config{Config: base, Gateway: payment.Gateway{Limit: 1_000_000}}
	c.Gateway.Latency, errs = participant.Duration(getenv, "PAYMENT_LATENCY", 0, errs)
	if v := getenv("PAYMENT_DECLINE_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r >= 0 && r <= 1) { // NaN is neither
			errs = append(errs, fmt.Errorf("PAYMENT_DECLINE_RATE %q: want a number from 0 to 1", v))
		}
		c.Gateway.DeclineRate = r
	}
	if v := getenv("PAYMENT_LIMIT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("PAYMENT_LIMIT %q: want a non-negative integer (minor units)", v))
		}
		c.Gateway.Limit = n
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
