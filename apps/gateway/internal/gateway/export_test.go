package gateway

import "github.com/gin-gonic/gin"

// OpenAPIDocument is the embedded document GET /api/openapi.json serves.
var OpenAPIDocument = openAPIDocument

// Engine is the gin engine behind Handler, for its list of routes.
func (g *Gateway) Engine() *gin.Engine { return g.engine }

// Currencies are the codes an order may be priced in.
var Currencies = currencies
