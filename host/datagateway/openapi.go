package datagateway

import _ "embed"

// OpenAPI is the data-gateway's OpenAPI 3.1 document (JSON), served on
// GET /openapi.json: every route with its authentication, request and
// response bodies.
//
//go:embed openapi.json
var OpenAPI []byte
