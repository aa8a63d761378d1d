package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersaga/ordersaga/libs/web"

	"github.com/ordersaga/ordersaga/apps/gateway/internal/gateway"
)

// textDecoders registers, once for the test binary, the decoders of the
// text bodies the document describes, which kin-openapi lacks.
var textDecoders sync.Once

// loadOpenAPI loads and validates the document the gateway embeds.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	textDecoders.Do(func() {
		openapi3filter.RegisterBodyDecoder(gateway.EventStreamContentType, openapi3filter.PlainBodyDecoder)
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	})
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPIDocument)
	require.NoError(t, err, "load the OpenAPI document")
	require.NoError(t, doc.Validate(context.Background()), "the OpenAPI document is valid, examples included")
	return doc
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	h := startGateway(t, closedURL(t), closedURL(t))
	resp, body := do(t, h.URL, request{method: http.MethodGet, path: "/api/openapi.json"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, gateway.OpenAPIDocument, body, "the embedded document, as it is")
}

// TestOpenAPIMatchesRoutes fails when a route is added, removed or renamed
// without the document following, and the other way round.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	h := startGateway(t, closedURL(t), closedURL(t))
	param := regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

	var registered, apiRoutes []string
	for _, r := range h.Gateway.Engine().Routes() {
		route := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		registered = append(registered, route)
		if strings.HasPrefix(r.Path, "/api/") {
			apiRoutes = append(apiRoutes, route)
		}
	}
	var documented, apiDocumented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			route := method + " " + path
			documented = append(documented, route)
			if strings.HasPrefix(path, "/api/") {
				apiDocumented = append(apiDocumented, route)
			}
		}
	}
	require.NotEmpty(t, apiRoutes)
	for _, r := range apiRoutes {
		assert.Contains(t, apiDocumented, r, "route %s is registered but not documented", r)
	}
	for _, r := range documented {
		assert.Contains(t, registered, r, "route %s is documented but not registered", r)
	}
	assert.ElementsMatch(t, apiRoutes, apiDocumented, "routes under /api, registered and documented")
}

// exchange is one request to the gateway and the answer it must get.
type exchange struct {
	name    string
	method  string
	path    string
	headers http.Header
	body    string
	status  int
}

// checkAgainstOpenAPI sends each exchange to the gateway at base and checks
// the answer against the document: its status is documented for the
// operation, and its headers and body match the schemas. The requests of
// successful exchanges must match the document too.
func checkAgainstOpenAPI(t *testing.T, doc *openapi3.T, base string, exchanges []exchange) {
	t.Helper()
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err, "route the document")
	for _, x := range exchanges {
		t.Run(x.name, func(t *testing.T) {
			resp, body := do(t, base, request{method: x.method, path: x.path, headers: x.headers, body: strings.NewReader(x.body)})
			validateExchange(t, router, base, x, resp, body)
			assert.Equal(t, x.status, resp.StatusCode, "the exchange is the one meant; body %s", body)
		})
	}
}

func validateExchange(t testing.TB, router routers.Router, base string, x exchange, resp *http.Response, body []byte) {
	t.Helper()
	req, err := http.NewRequest(x.method, base+x.path, strings.NewReader(x.body))
	require.NoError(t, err)
	req.Header = x.headers.Clone()
	route, params, err := router.FindRoute(req)
	require.NoError(t, err, "%s %s is documented", x.method, x.path)
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	ctx := context.Background()
	if resp.StatusCode < 300 {
		assert.NoError(t, openapi3filter.ValidateRequest(ctx, in), "the document accepts a request the gateway accepts")
	}
	err = openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	})
	assert.NoError(t, err, "the answer matches the document; body %s", body)
}

// TestOpenAPIDescribesAnswers fails when the gateway answers with a status,
// header or body the document does not describe.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	orderID, paymentID, user := newUUID(), newUUID(), newUUID()
	cancelled, unknown := newUUID(), newUUID()
	orderJSON := func(id, status, reason string) string {
		r := "null"
		if reason != "" {
			r = `"` + reason + `"`
		}
		return fmt.Sprintf(`{"id":%q,"userId":%q,"total":4200,"currency":"USD","status":%q,"cancelReason":%s,"items":null,"createdAt":"2025-03-01T12:00:00.123456Z","updatedAt":"2025-03-01T12:00:01Z"}`,
			id, user, status, r)
	}
	paymentJSON := fmt.Sprintf(`{"id":%q,"orderId":%q,"amount":4200,"currency":"USD","status":"APPROVED","reason":null,"createdAt":"2025-03-01T12:00:00.5Z","updatedAt":"2025-03-01T12:00:00.5Z"}`,
		paymentID, orderID)
	notFound := `{"type":"https://ordersaga.dev/problems/not-found","title":"Not Found","status":404,"detail":"not found"}`
	tl := timelineJSON(t, orderID, timelineEvent{Service: "order-service", Type: "order.created", MessageID: newUUID(), Detail: "emitted total=4200"})
	orders := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders":                          answer(200, "application/json; charset=utf-8", `{"data":[`+orderJSON(orderID, "PAID", "")+`],"meta":{"page":1,"limit":10,"total":1,"totalPages":1}}`),
		"GET /api/orders/" + orderID:               answer(200, "application/json; charset=utf-8", orderJSON(orderID, "PAID", "")),
		"GET /api/orders/" + cancelled:             answer(200, "application/json; charset=utf-8", orderJSON(cancelled, "CANCELLED", "USER_REQUESTED")),
		"GET /api/orders/{id}":                     answer(404, web.ProblemContentType, notFound),
		"GET /api/orders/" + orderID + "/timeline": answer(200, "application/json; charset=utf-8", tl),
		"GET /api/orders/{id}/timeline":            answer(404, web.ProblemContentType, notFound),
	})
	payments := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/payments":                  answer(200, "application/json; charset=utf-8", `{"data":[`+paymentJSON+`],"meta":{"page":1,"limit":10,"total":1,"totalPages":1}}`),
		"GET /api/payments/stats":            answer(200, "application/json; charset=utf-8", `{"byStatus":[{"status":"APPROVED","count":1,"totalAmount":4200}]}`),
		"GET /api/payments/" + paymentID:     answer(200, "application/json; charset=utf-8", paymentJSON),
		"GET /api/payments/{id}":             answer(404, web.ProblemContentType, notFound),
		"GET /api/payments/order/" + orderID: answer(200, "application/json; charset=utf-8", paymentJSON),
		"GET /api/payments/order/{id}":       answer(404, web.ProblemContentType, notFound),
		"GET /api/payments/order/{id}/timeline": answer(200, "application/json; charset=utf-8",
			timelineJSON(t, orderID, timelineEvent{Service: "payment-service", Type: "payment.approved", MessageID: newUUID(), Detail: "emitted"})),
	})
	h := startGateway(t, orders.URL, payments.URL)
	broken := newFakeService(t, map[string]http.HandlerFunc{
		"GET /api/orders/{id}":    answer(500, "text/plain", "oops"),
		"GET /api/payments/stats": answer(500, "text/plain", "oops"),
	})
	sick := startGateway(t, broken.URL, broken.URL)
	down := startGateway(t, closedURL(t), closedURL(t))

	newOrder := `{"userId":"` + user + `","total":4200,"currency":"EUR","paymentMethod":"tok_visa"}`
	huge := `{"userId":"` + user + `","total":1,"x":"` + strings.Repeat("x", 70_000) + `"}`
	get := func(name, path string, status int) exchange {
		return exchange{name: name, method: http.MethodGet, path: path, status: status}
	}
	post := func(name string, headers http.Header, body string, status int) exchange {
		return exchange{name: name, method: http.MethodPost, path: "/api/orders", headers: headers, body: body, status: status}
	}
	patch := func(name, path string, headers http.Header, body string, status int) exchange {
		return exchange{name: name, method: http.MethodPatch, path: path, headers: headers, body: body, status: status}
	}

	t.Run("served", func(t *testing.T) {
		checkAgainstOpenAPI(t, doc, h.URL, []exchange{
			post("create", jsonHeaders(), newOrder, 202),
			post("create with an idempotency key", jsonHeaders("Idempotency-Key", "checkout-1"), `{"userId":"`+user+`","total":1}`, 202),
			post("create, malformed", jsonHeaders(), `{"userId":`, 400),
			post("create, unknown field", jsonHeaders(), `{"userId":"`+user+`","total":1,"x":1}`, 400),
			post("create, bad idempotency key", jsonHeaders("Idempotency-Key", "a b"), newOrder, 400),
			post("create, too large", jsonHeaders(), huge, 413),
			post("create, not JSON", http.Header{"Content-Type": {"text/plain"}}, newOrder, 415),
			post("create, invalid values", jsonHeaders(), `{"userId":"`+user+`","total":0,"currency":"usd"}`, 422),
			post("create with items", jsonHeaders(), `{"userId":"`+user+`","items":[{"sku":"MUG","quantity":2}]}`, 202),
			post("create with a bad line", jsonHeaders(), `{"userId":"`+user+`","items":[{"sku":"MUG","quantity":0}]}`, 422),
			{name: "create a product", method: http.MethodPost, path: "/api/products", headers: jsonHeaders(),
				body: `{"sku":"MUG","name":"Mug","price":1200,"currency":"USD","onHand":5}`, status: 202},
			{name: "create a bad product", method: http.MethodPost, path: "/api/products", headers: jsonHeaders(),
				body: `{"sku":"MUG","name":"Mug","price":0,"currency":"USD","onHand":5}`, status: 422},
			{name: "adjust stock", method: http.MethodPost, path: "/api/products/MUG/stock", headers: jsonHeaders(), body: `{"delta":-2}`, status: 202},
			get("products, inventory not a participant", "/api/products", 503),
			get("product, sku not a sku", "/api/products/a%20b", 400),
			get("list orders", "/api/orders?page=1&limit=10&status=PAID&userId="+user, 200),
			get("list orders, bad limit", "/api/orders?limit=101", 400),
			get("order", "/api/orders/"+orderID, 200),
			get("cancelled order", "/api/orders/"+cancelled, 200),
			get("order id not a UUID", "/api/orders/42", 400),
			get("unknown order", "/api/orders/"+unknown, 404),
			patch("cancel", "/api/orders/"+orderID+"/cancel", nil, "", 202),
			patch("cancel a cancelled order", "/api/orders/"+cancelled+"/cancel", nil, "", 409),
			patch("cancel an unknown order", "/api/orders/"+unknown+"/cancel", nil, "", 404),
			patch("cancel by status", "/api/orders/"+orderID, jsonHeaders(), `{"status":"CANCELLED"}`, 202),
			patch("cancel by status, cancelled order", "/api/orders/"+cancelled, jsonHeaders(), `{"status":"CANCELLED"}`, 409),
			patch("change to another status", "/api/orders/"+orderID, jsonHeaders(), `{"status":"PAID"}`, 422),
			patch("change, wrong type", "/api/orders/"+orderID, jsonHeaders(), `{"status":1}`, 400),
			patch("change, not JSON", "/api/orders/"+orderID, http.Header{"Content-Type": {"text/plain"}}, `{}`, 415),
			patch("change, too large", "/api/orders/"+orderID, jsonHeaders(), huge, 413),
			get("timeline", "/api/orders/"+orderID+"/timeline", 200),
			get("timeline of an unknown order", "/api/orders/"+unknown+"/timeline", 404),
			get("events of an order at its outcome", "/api/orders/"+cancelled+"/events", 200),
			get("events of an unknown order", "/api/orders/"+unknown+"/events", 404),
			get("events, id not a UUID", "/api/orders/42/events", 400),
			get("list payments", "/api/payments?page=1&limit=5&status=APPROVED", 200),
			get("list payments, bad status", "/api/payments?status=PAID", 400),
			get("payment stats", "/api/payments/stats", 200),
			get("payment", "/api/payments/"+paymentID, 200),
			get("unknown payment", "/api/payments/"+unknown, 404),
			get("payment of an order", "/api/payments/order/"+orderID, 200),
			get("payment of an unknown order", "/api/payments/order/"+unknown, 404),
			get("openapi document", "/api/openapi.json", 200),
			get("docs", "/docs", 200),
		})
	})
	t.Run("services failing", func(t *testing.T) {
		checkAgainstOpenAPI(t, doc, sick.URL, []exchange{
			get("order", "/api/orders/"+orderID, 502),
			get("events", "/api/orders/"+orderID+"/events", 502),
			get("payment stats", "/api/payments/stats", 502),
		})
	})
	t.Run("services down", func(t *testing.T) {
		checkAgainstOpenAPI(t, doc, down.URL, []exchange{
			get("list orders", "/api/orders", 503),
			get("order", "/api/orders/"+orderID, 503),
			get("events", "/api/orders/"+orderID+"/events", 503),
			patch("cancel", "/api/orders/"+orderID+"/cancel", nil, "", 503),
			get("timeline", "/api/orders/"+orderID+"/timeline", 503),
			get("list payments", "/api/payments", 503),
			get("payment", "/api/payments/"+paymentID, 503),
		})
	})
	t.Run("broker down", func(t *testing.T) {
		require.NoError(t, down.Conn.Close())
		checkAgainstOpenAPI(t, doc, down.URL, []exchange{post("create", jsonHeaders(), newOrder, 503)})
	})
}

// TestOpenAPICheckCatchesDrift shows that the check of answers can fail.
func TestOpenAPICheckCatchesDrift(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	id := newUUID()
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"undocumented status", http.StatusTeapot, http.Header{"Content-Type": {"application/json"}}, `{}`},
		{"order without its status", http.StatusOK, http.Header{"Content-Type": {"application/json"}},
			`{"id":"` + id + `","userId":"` + id + `","total":1,"currency":"USD","cancelReason":null,"createdAt":"2025-03-01T12:00:00Z","updatedAt":"2025-03-01T12:00:00Z"}`},
		{"order with a float total", http.StatusOK, http.Header{"Content-Type": {"application/json"}},
			`{"id":"` + id + `","userId":"` + id + `","total":1.5,"currency":"USD","status":"PAID","cancelReason":null,"createdAt":"2025-03-01T12:00:00Z","updatedAt":"2025-03-01T12:00:00Z"}`},
		{"problem as plain JSON", http.StatusNotFound, http.Header{"Content-Type": {"application/json"}}, `{"status":404}`},
		{"problem without a detail", http.StatusNotFound, http.Header{"Content-Type": {web.ProblemContentType}},
			`{"type":"https://ordersaga.dev/problems/not-found","title":"Not Found","status":404}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodGet, "http://gateway/api/orders/"+id, nil)
			require.NoError(t, err)
			route, params, err := router.FindRoute(req)
			require.NoError(t, err)
			opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
				Status:                 tc.status,
				Header:                 tc.header,
				Body:                   io.NopCloser(strings.NewReader(tc.body)),
				Options:                opts,
			})
			assert.Error(t, err, "the check rejects an answer the document does not describe")
		})
	}
	t.Run("unknown route", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequest(http.MethodGet, "http://gateway/api/orders/"+id+"/nothing", nil)
		require.NoError(t, err)
		_, _, err = router.FindRoute(req)
		assert.Error(t, err)
	})
}

func TestDocs(t *testing.T) {
	t.Parallel()
	h := startGateway(t, closedURL(t), closedURL(t))
	external := regexp.MustCompile(`(?i)https?://`)

	for _, path := range []string{"/docs", "/docs/"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Get(h.URL + path)
			require.NoError(t, err)
			page, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the page itself, no redirect")
			assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			assert.NotRegexp(t, external, string(page), "no URL of another host")

			refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(page), -1)
			require.NotEmpty(t, refs, "the page references its assets")
			var urls []string
			for _, m := range refs {
				urls = append(urls, m[1])
			}
			assert.Contains(t, urls, "/docs/swagger-ui-bundle.js")
			assert.Contains(t, urls, "/docs/swagger-ui.css")
			for _, u := range urls {
				assert.True(t, strings.HasPrefix(u, "/docs/"), "asset %s is served under /docs/", u)
				resp, body := do(t, h.URL, request{method: http.MethodGet, path: u})
				if assert.Equal(t, http.StatusOK, resp.StatusCode, "GET %s", u) {
					assert.NotEmpty(t, body, "GET %s", u)
					assert.NotContains(t, resp.Header.Get("Content-Type"), "html", "GET %s", u)
				}
				if strings.HasSuffix(u, "ordersaga.js") {
					assert.Contains(t, string(body), `url: "/api/openapi.json"`, "Swagger UI shows our document")
					assert.NotRegexp(t, external, string(body), "the start-up script names no other host")
				}
			}
		})
	}
	t.Run("not served", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			method, path string
			status       int
		}{
			// swagger-ui's own page and start-up script load a demo from the internet.
			{http.MethodGet, "/docs/index.html", http.StatusNotFound},
			{http.MethodGet, "/docs/swagger-initializer.js", http.StatusNotFound},
			{http.MethodGet, "/docs/..%2fgo.mod", http.StatusNotFound},
			{http.MethodGet, "/docs/swagger-ui.css/x", http.StatusNotFound},
			{http.MethodPost, "/docs", http.StatusMethodNotAllowed},
		}
		for _, tc := range cases {
			resp, body := do(t, h.URL, request{method: tc.method, path: tc.path})
			assertProblem(t, resp, body, tc.status)
		}
	})
}

// TestOpenAPIProblemResponsesAreProblems checks that every error response
// of the document is application/problem+json, as every error of the
// gateway is.
func TestOpenAPIProblemResponsesAreProblems(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, r := range op.Responses.Map() {
				if code < "400" {
					continue
				}
				content := r.Value.Content
				assert.Equal(t, []string{web.ProblemContentType}, slices.Collect(maps.Keys(content)),
					"%s %s %s is a problem", method, path, code)
			}
		}
	}
}
