module github.com/ordersaga/ordersaga/saga

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/ordersaga/ordersaga/libs v0.0.0
	github.com/stretchr/testify v1.12.1
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace (
	github.com/ordersaga/ordersaga/db => ../db
	github.com/ordersaga/ordersaga/libs => ../libs
)
