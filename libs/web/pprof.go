package web

import (
	"net/http/pprof"

	"github.com/gin-gonic/gin"
)

// Pprof serves the runtime profiles under /debug/pprof/. Services mount it
// only when PPROF=true: profiles expose internals and cost CPU while taken.
func Pprof(e *gin.Engine) {
	g := e.Group("/debug/pprof")
	g.GET("/", gin.WrapF(pprof.Index))
	g.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	g.GET("/profile", gin.WrapF(pprof.Profile))
	g.GET("/symbol", gin.WrapF(pprof.Symbol))
	g.GET("/trace", gin.WrapF(pprof.Trace))
	g.GET("/:profile", func(c *gin.Context) { pprof.Handler(c.Param("profile")).ServeHTTP(c.Writer, c.Request) })
}
