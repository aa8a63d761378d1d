module github.com/ordersaga/ordersaga/apps/demo

go 1.26.0

replace (
	github.com/ordersaga/ordersaga/db => ../../db
	github.com/ordersaga/ordersaga/libs => ../../libs
)

require (
	github.com/google/uuid v1.6.0
	github.com/ordersaga/ordersaga/libs v0.0.0
	github.com/rabbitmq/amqp091-go v1.16.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/apapsch/go-jsonmerge/v2 v2.0.0 // indirect
	github.com/caarlos0/env/v11 v11.4.2 // indirect
	github.com/oapi-codegen/runtime v1.9.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
