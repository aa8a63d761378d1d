package users

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPasswordHashing(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery staple")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	assert.NotContains(t, h, "correct horse", "the hash never holds the password")
	again, err := HashPassword("correct horse battery staple")
	require.NoError(t, err)
	assert.NotEqual(t, h, again, "a fresh salt each time")

	cases := []struct {
		name     string
		password string
		ok       bool
	}{
		{"the password", "correct horse battery staple", true},
		{"another", "correct horse battery stapLe", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CheckPassword(h, tc.password)
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
		})
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=99999999,t=1,p=1$AA$AA", "$argon2id$v=19$m=8,t=1,p=1$!!$AA"} {
		ok, err := CheckPassword(bad, "x")
		assert.False(t, ok, bad)
		assert.Error(t, err, bad)
	}
}

func TestNormaliseEmail(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "ada@example.com", NormaliseEmail("  Ada@EXAMPLE.com\t"))
}
