package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestHelpListsTheMailSettings(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-h"}, env(nil), &out))
	for _, v := range []string{"SMTP_URL", "smtp://127.0.0.1:1025", "MAIL_FROM", "ordersaga <no-reply@ordersaga.local>", "INVOICE_SERVICE_URL", "NOTIFY_LEASE"} {
		assert.Contains(t, out.String(), v)
	}
}

func TestBadMailSettingsStopTheStart(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), nil, env(map[string]string{
		"SMTP_URL": "smtp://u:hunter2@mail.example.org?starttls=sometimes", "MAIL_FROM": "not an address",
		"NOTIFY_LEASE": "10s", "SMTP_TIMEOUT": "5s",
	}), &out)
	require.Error(t, err)
	for _, want := range []string{"SMTP_URL", "MAIL_FROM", "NOTIFY_LEASE"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "hunter2", "no password in an error")
}
