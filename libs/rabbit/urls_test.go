package rabbit

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"one node", "amqp://guest:guest@127.0.0.1:5672/", []string{"amqp://guest:guest@127.0.0.1:5672/"}},
		{"one node, no vhost", "amqp://guest:guest@127.0.0.1:5672", []string{"amqp://guest:guest@127.0.0.1:5672"}},
		{"whole urls", "amqp://a:b@n1:5672/v,amqps://c:d@n2:5671/v",
			[]string{"amqp://a:b@n1:5672/v", "amqps://c:d@n2:5671/v"}},
		{"short form: credentials from the first, vhost from the last", "amqp://a:b@n1:5672,n2:5673,n3:5674/orders",
			[]string{"amqp://a:b@n1:5672/orders", "amqp://a:b@n2:5673/orders", "amqp://a:b@n3:5674/orders"}},
		{"blanks around elements", " amqp://a:b@n1:5672/ , n2:5673 ",
			[]string{"amqp://a:b@n1:5672/", "amqp://a:b@n2:5673/"}},
		{"no credentials", "amqp://n1,n2/", []string{"amqp://n1/", "amqp://n2/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseURLs(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{"", "amqp://a:secret@n1,", "n1:5672,amqp://a:b@n2/", "http://n1/", "amqp://a:secret@n1:notaport/"} {
		_, err := ParseURLs(bad)
		require.Error(t, err, "%q", bad)
		assert.NotContains(t, err.Error(), "secret", "no password in the error")
	}
}

// TestQuorumTiersSetting: the quorum retry tiers are on unless
// RABBITMQ_QUORUM_RETRY_TIERS is "false" (on a broker older than 3.10 the
// connection falls back to the classic tiers whatever it says).
func TestQuorumTiersSetting(t *testing.T) {
	for v, want := range map[string]bool{"": true, "true": true, "false": false} {
		if got := quorumTiersSetting(v); got != want {
			t.Errorf("RABBITMQ_QUORUM_RETRY_TIERS=%q: quorum tiers %v, want %v", v, got, want)
		}
	}
	for v, want := range map[string]bool{"3.9.29": false, "3.10.8": true, "3.13.7": true, "4.0.5": true, "": true} {
		if got := QuorumRetries(v); got != want {
			t.Errorf("broker %q: quorum retries %v, want %v", v, got, want)
		}
	}
}
