package gateway

import (
	_ "embed" // the OpenAPI document and the documentation page
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/ordersaga/ordersaga/libs/web"
)

// openAPIDocument is the OpenAPI 3 document of the public API (contract
// §2), written by hand; the tests check it against the routes and answers.
//
//go:embed openapi.json
var openAPIDocument []byte

// The Swagger UI page and its start-up script are ours: the ones in the
// swagger-ui distribution load a demo document from the internet.
var (
	//go:embed docs.html
	docsHTML []byte
	//go:embed docs.js
	docsJS []byte
)

// docsScript is the name of our start-up script under /docs/.
const docsScript = "ordersaga.js"

// swaggerAssets are the files of the swagger-ui distribution the page uses;
// nothing else of it is served.
var swaggerAssets = []string{
	"swagger-ui.css",
	"index.css",
	"swagger-ui-bundle.js",
	"swagger-ui-standalone-preset.js",
	"favicon-32x32.png",
	"favicon-16x16.png",
}

// openAPI is GET /api/openapi.json.
func openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", openAPIDocument)
}

// docsPage is GET /docs (and /docs/): Swagger UI showing /api/openapi.json,
// with every asset served by the gateway itself.
func docsPage(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", docsHTML)
}

// docsFile is GET /docs/{file}: the page's script and Swagger UI's assets.
func docsFile(c *gin.Context) {
	file := c.Param("file")
	switch {
	case file == docsScript:
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", docsJS)
	case slices.Contains(swaggerAssets, file):
		// The assets change only with the module version.
		c.Header("Cache-Control", "public, max-age=3600")
		http.ServeFileFS(c.Writer, c.Request, swaggerfiles.FS, file)
	default:
		// As for any unknown route.
		web.Fail(c, http.StatusNotFound, "no route for "+c.Request.Method+" "+c.Request.URL.Path)
	}
}
