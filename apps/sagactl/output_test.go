package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPrintableBody(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", maxBody-1) + "é" + "tail" // é straddles the cut
	tests := []struct {
		name string
		in   []byte
		want body
	}{
		{"json", []byte(`{"orderId":"x"}`), body{Text: `{"orderId":"x"}`, Encoding: "text", Size: 15}},
		{"empty", nil, body{Text: "", Encoding: "text", Size: 0}},
		{"binary", []byte{0xff, 0x00}, body{Text: "/wA=", Encoding: "base64", Size: 2}},
		{"long text cut at a character", []byte(long),
			body{Text: strings.Repeat("a", maxBody-1), Encoding: "text", Size: len(long), Truncated: true}},
		{"exactly the limit", []byte(strings.Repeat("b", maxBody)),
			body{Text: strings.Repeat("b", maxBody), Encoding: "text", Size: maxBody}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, printable(tt.in))
		})
	}
	big := printable(append([]byte{0xff}, make([]byte, 3*maxBody)...))
	assert.True(t, big.Truncated, "binary bodies are cut too")
	assert.Len(t, big.Text, base64.StdEncoding.EncodedLen(maxBody), "base64 of the first 2 KiB")
}
