package compose

import (
	"os"
	"testing"

	"github.com/ordersaga/ordersaga/libs/testinfra/containers"
)

func TestMain(m *testing.M) {
	// Where only Docker is there, the suite starts its servers in containers.
	containers.Register()
	os.Exit(m.Run())
}
