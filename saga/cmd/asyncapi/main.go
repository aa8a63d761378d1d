// Command asyncapi writes docs/asyncapi.json, the AsyncAPI 3 document of
// every message of the saga, from libs/events and saga/saga.conf. Run it
// from the repository's root: go run ./saga/cmd/asyncapi
package main

import (
	"fmt"
	"os"

	"github.com/ordersaga/ordersaga/saga/asyncapi"
)

func main() {
	doc, err := asyncapi.Document()
	if err == nil {
		err = os.WriteFile(asyncapi.Path, doc, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "asyncapi: %v (run it from the repository's root)\n", err)
		os.Exit(1)
	}
	fmt.Println("wrote", asyncapi.Path)
}
